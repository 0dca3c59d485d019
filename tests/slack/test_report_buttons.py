"""The period and open-team buttons, the team median and the "why $0.00" explanation, end to end:
signed commands and block_actions through the real Bolt HTTP app, replies read back from the fake
Slack (``response_url`` posts, ``views.open`` / ``views.update``), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from bot.domain.money import format_usd
from bot.domain.periods import parse_period
from bot.slack.blocks.common import validate
from tests.support.slack_app import (
    PLATFORM,
    TODAY,
    all_text,
    post_action,
    post_event,
    send,
    slack_client,
    spend_of,
)
from tests.support.slack_fake import signed_headers

PLATFORM_ID = "<!subteam^SPLATFORM>"


pytestmark = pytest.mark.usefixtures("slack_team")


def _buttons(reply: dict) -> dict[str, str]:
    """action_id -> value of every button in a reply."""
    return {
        element["action_id"]: element.get("value", "")
        for block in reply["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }


def _click(client, fake, *, user_id: str, action_id: str, value: str) -> dict:
    """A click on an ephemeral reply's button; the answer as Slack's response_url received it."""
    before = len(fake.calls_to("response_url"))
    url = fake.server.url_for(f"/response_url/{user_id}")
    post_action(client, user_id=user_id, action_id=action_id, value=value, response_url=url)
    answer = fake.wait_for("response_url", before + 1, timeout=30)[before].params
    assert validate(answer["blocks"]) == [], answer
    assert answer["response_type"] == "ephemeral"
    return answer


def _click_on_view(client, *, user_id: str, action_id: str, value: str, view: dict) -> None:
    """A click on a button of the App Home or of a modal: no response_url, a view container."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "test"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy",
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": "123.456.home",
        "view": view,
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value}],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    assert client.post("/slack/events", content=body, headers=signed_headers(body)).status_code == 200


def _ask(client, fake, text: str, user_id: str = "UADMIN") -> dict:
    """A command's answer, awaited through the response_url when it came late (a loaded machine)."""
    before = len(fake.calls_to("response_url"))
    reply = send(client, text, user_id=user_id, response_url=fake.server.url_for(f"/response_url/{user_id}"))
    if "Working on it" in reply.get("text", ""):
        reply = fake.wait_for("response_url", before + 1, timeout=30)[before].params
    return reply


def _refresh_platform(client, fake) -> None:
    """An admin reads @platform's members (Ana, Ben, Chen, Dana, Emil, Farah, Gus, Hana)."""
    assert "Refreshed" in all_text(_ask(client, fake, f"team refresh {PLATFORM}"))


def test_me_sets_the_teams_median_beside_mine_and_offers_the_periods(client, fake_slack):
    _refresh_platform(client, fake_slack)
    reply = _ask(client, fake_slack, "me", "UANA")
    text = all_text(reply)
    assert validate(reply["blocks"]) == []
    # Seven colleagues besides Ana have usage, at least the minimum group of 5: the median shows.
    assert "per accepted line (@platform median $" in text
    assert _buttons(reply) == {
        "tokens_period_7d": "me 7d",
        "tokens_period_30d": "me 30d",
        "tokens_period_quarter": "me quarter",
    }
    assert "tokens_open_team_0" not in _buttons(reply)  # Ana manages no team


def test_no_median_when_the_team_has_too_few_people_besides_me(seeded, fake_slack):
    # The minimum group is 8: Ana's seven colleagues are one too few.
    with slack_client(seeded, fake_slack, TOKENWISE_MIN_GROUP_SIZE="8") as client:
        _refresh_platform(client, fake_slack)
        text = all_text(_ask(client, fake_slack, "me", "UANA"))
    assert "Spend beside value" in text and "median" not in text


def test_a_period_button_replaces_the_reply_with_that_period(client, fake_slack, seeded):
    answer = _click(client, fake_slack, user_id="UANA", action_id="tokens_period_7d", value="me 7d")
    period = parse_period("7d", TODAY)
    with seeded.connect() as conn:
        spent = spend_of(conn, ["ana@example.com"], period.start, period.end)
    assert answer["replace_original"] is True
    assert "Your AI spend: last 7 days" in all_text(answer) and format_usd(spent) in answer["text"]
    assert _buttons(answer)["tokens_period_quarter"] == "me quarter"  # the buttons stay


def test_a_click_answers_whoever_clicked_not_whoever_got_the_reply(client, fake_slack, seeded):
    # Ben clicks a button made for Ana ("me 30d"): he gets his own numbers.
    answer = _click(client, fake_slack, user_id="UBEN", action_id="tokens_period_30d", value="me 30d")
    period = parse_period("30d", TODAY)
    with seeded.connect() as conn:
        ben = spend_of(conn, ["ben@example.com"], period.start, period.end)
        ana = spend_of(conn, ["ana@example.com"], period.start, period.end)
    assert ben != ana and format_usd(ben) in answer["text"] and format_usd(ana) not in answer["text"]


def test_org_buttons_are_for_admins_whatever_the_value_says(client, fake_slack):
    _ask(client, fake_slack, "budget set org $900000/month")
    reply = _ask(client, fake_slack, "org", "UADMIN")
    assert _buttons(reply)["tokens_period_30d"] == "org 30d"
    assert "*Budgets*" in all_text(reply)  # the org's budget status where one applies
    refused = _click(client, fake_slack, user_id="UANA", action_id="tokens_period_30d", value="org 30d")
    assert "Org totals are for admins" in all_text(refused) and "Org AI spend" not in all_text(refused)
    allowed = _click(client, fake_slack, user_id="UADMIN", action_id="tokens_period_30d", value="org 30d")
    assert "Org AI spend: last 30 days" in all_text(allowed) and "*Budgets*" in all_text(allowed)


def test_a_forged_team_value_is_decided_again_for_the_clicker(client, fake_slack):
    _refresh_platform(client, fake_slack)
    # Ivan is not on @platform, manages nothing, is no admin: the forged button shows nothing.
    forged = _click(
        client, fake_slack, user_id="UIVAN", action_id="tokens_period_7d", value=f"team {PLATFORM_ID} 7d"
    )
    text = all_text(forged)
    assert f"The numbers of {PLATFORM_ID} are visible to" in text and "$" not in text
    # Shapes no button makes are refused before anything runs (a refresh, an approval, a budget).
    for value in (f"team refresh {PLATFORM_ID}", "team approve <@UIVAN> <#C1>", "budget set org $1/month"):
        refused = _click(client, fake_slack, user_id="UADMIN", action_id="tokens_period_7d", value=value)
        assert "not one I made" in all_text(refused), value


def test_a_manager_opens_the_team_and_the_grant_is_checked_on_each_click(client, fake_slack):
    _ask(client, fake_slack, f"role add manager <@UBEN|ben> {PLATFORM}")
    _ask(client, fake_slack, f"budget set {PLATFORM} $90000/month")
    reply = _ask(client, fake_slack, "me", "UBEN")
    assert _buttons(reply)["tokens_open_team_0"] == f"team {PLATFORM_ID}"
    opened = _click(
        client, fake_slack, user_id="UBEN", action_id="tokens_open_team_0", value=f"team {PLATFORM_ID}"
    )
    assert opened["replace_original"] is False  # a new message beside /tokens me
    assert "Members with spend" in all_text(opened) and "*Budgets*" in all_text(opened)
    assert _buttons(opened)["tokens_period_7d"] == f"team {PLATFORM_ID} 7d"
    # The grant is removed; the old button now shows the team as its members see it.
    _ask(client, fake_slack, f"role remove manager <@UBEN|ben> {PLATFORM}")
    again = _click(
        client, fake_slack, user_id="UBEN", action_id="tokens_open_team_0", value=f"team {PLATFORM_ID}"
    )
    assert "Members with spend" not in all_text(again) and "team aggregates only" in all_text(again)


def test_the_app_home_opens_a_managed_team_in_a_modal(client, fake_slack):
    _ask(client, fake_slack, f"role add manager <@UBEN|ben> {PLATFORM}")
    post_event(client, {"type": "app_home_opened", "user": "UBEN", "tab": "home"}, event_id="EvB1")
    home = fake_slack.wait_for("views.publish", timeout=30)[0].params["view"]
    buttons = _buttons(home)
    assert buttons["tokens_open_team_0"] == f"team {PLATFORM_ID}"
    _click_on_view(
        client,
        user_id="UBEN",
        action_id="tokens_open_team_0",
        value=buttons["tokens_open_team_0"],
        view={"id": "VHOME", "type": "home"},
    )
    opened = fake_slack.wait_for("views.open", timeout=30)[0].params
    assert opened["trigger_id"] == "123.456.home" and "Working on it" in json.dumps(opened["view"])
    modal = fake_slack.wait_for("views.update", timeout=30)[0].params
    assert modal["view_id"] == "V2" and modal["view"]["type"] == "modal"
    assert validate(modal["view"]["blocks"], max_blocks=100) == []
    assert "Members with spend" in all_text(modal["view"])
    # The modal's own period button updates the modal.
    _click_on_view(
        client,
        user_id="UBEN",
        action_id="tokens_period_quarter",
        value=f"team {PLATFORM_ID} quarter",
        view={"id": "V2", "type": "modal"},
    )
    updated = fake_slack.wait_for("views.update", 2, timeout=30)[1].params
    assert updated["view_id"] == "V2" and parse_period("quarter", TODAY).label in all_text(updated["view"])
    assert len(fake_slack.calls_to("views.open")) == 1


def test_no_email_no_match_and_no_usage_in_the_period_are_told_apart(client, fake_slack):
    no_email = all_text(_ask(client, fake_slack, "me", "UNOMAIL"))
    assert "Slack shows me no email for you" in no_email and "/tokens link <vendor> <id> @you" in no_email
    # lead@example.com is in Slack but in no vendor's data.
    no_match = _ask(client, fake_slack, "me", "ULISTED")
    text = all_text(no_match)
    assert validate(no_match["blocks"]) == []
    assert "I matched your Slack email `lead@example.com`" in text and "$0.00" in text
    assert "/tokens link github <login>" in text and "Connected sources: demo-openai (" in text
    assert "tokens_period_7d" not in _buttons(no_match)  # another period would not help
    # Ana is linked; January 2025 is before any of her data.
    quiet = all_text(_ask(client, fake_slack, "me 2025-01", "UANA"))
    assert "No usage in January 2025" in quiet and "Your last recorded usage was on" in quiet
    assert "I matched your Slack email" not in quiet


def test_the_app_home_says_why_it_is_empty(client, fake_slack):
    post_event(client, {"type": "app_home_opened", "user": "ULISTED", "tab": "home"}, event_id="EvL1")
    view = fake_slack.wait_for("views.publish", timeout=30)[0].params["view"]
    text = all_text(view)
    assert validate(view["blocks"], max_blocks=100) == []
    assert "I matched your Slack email `lead@example.com`" in text and "/tokens link github <login>" in text
    post_event(client, {"type": "app_home_opened", "user": "UANA", "tab": "home"}, event_id="EvA1")
    time.sleep(0.1)
    ana = fake_slack.wait_for("views.publish", 2, timeout=30)[1].params["view"]
    assert "I matched your Slack email" not in all_text(ana)


def test_the_app_home_period_buttons_publish_the_tab_again(client, fake_slack):
    post_event(client, {"type": "app_home_opened", "user": "UANA", "tab": "home"}, event_id="EvP1")
    home = fake_slack.wait_for("views.publish", timeout=30)[0].params["view"]
    assert _buttons(home)["tokens_home_period_7d"] == "7d"
    _click_on_view(
        client,
        user_id="UANA",
        action_id="tokens_home_period_7d",
        value="7d",
        view={"id": "VH", "type": "home"},
    )
    week = fake_slack.wait_for("views.publish", 2, timeout=30)[1].params
    assert week["user_id"] == "UANA" and validate(week["view"]["blocks"], max_blocks=100) == []
    shown = all_text(week["view"])
    assert "Your AI spend: last 7 days" in shown and "in the last 7 days" in shown
    # A value no button makes falls back to this month.
    _click_on_view(
        client,
        user_id="UANA",
        action_id="tokens_home_period_7d",
        value="2020-01",
        view={"id": "VH", "type": "home"},
    )
    forged = fake_slack.wait_for("views.publish", 3, timeout=30)[2].params["view"]
    assert "this month" in all_text(forged) and "2020" not in all_text(forged)
