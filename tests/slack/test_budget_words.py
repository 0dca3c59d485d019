"""Budget words through the real Bolt app (signed commands, events and clicks, Slack faked on
loopback): "they" about someone else, "unchanged" when nothing changes, one tightest budget in
every view, a request aimed at it (or asking which), and budgets on the App Home."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from bot.db.models import AuditLog, Budget, BudgetRequest
from tests.support.slack_app import (
    PLATFORM,
    all_text,
    post_action,
    post_event,
    send,
)

ANA = "<@UANA|ana>"


pytestmark = pytest.mark.usefixtures("slack_team")


@pytest.fixture
def fake(slack_team):
    """The fake Slack with the demo org's whole team in its directory (conftest ``slack_team``)."""
    return slack_team


def _status_line(reply: dict) -> str:
    """The budget's status line in a set / show answer (the section with the spend)."""
    lines = [b["text"]["text"] for b in reply["blocks"] if b.get("type") == "section"]
    found = [line for line in lines if "spent" in line or "% used" in line]
    assert found, lines
    return "\n".join(found)


def _audits(engine, action: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(AuditLog.action == action)).scalar_one()


def _requests(engine) -> list[tuple[int | None, int]]:
    with engine.connect() as conn:
        return conn.execute(select(BudgetRequest.budget_id, BudgetRequest.amount_micros)).all()


def _budget_id(engine, vendor: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(Budget.id).where(Budget.vendor == vendor)).scalar_one()


def test_someone_elses_budget_is_about_them_and_your_own_about_you(client):
    # $9,000 keeps the forecast a sentence with a subject ("reach" or "stay under"), never "over by".
    set_reply = send(client, f"budget set {ANA} $9,000/month", user_id="UADMIN")
    line = _status_line(set_reply)
    assert "at this pace they " in line and " you " not in line, line
    send(client, f"role add manager <@UBEN> {PLATFORM}", user_id="UADMIN")
    shown = _status_line(send(client, f"budget show {ANA}", user_id="UBEN"))
    assert "<@UANA>" in shown and "at this pace they " in shown and " you " not in shown, shown
    # Not triggered: Ana reading her own budget is "you".
    own = _status_line(send(client, "budget", user_id="UANA"))
    assert "at this pace you " in own and "they" not in own, own
    # A team's budget is the team's, for whoever reads it.
    team = _status_line(send(client, f"budget set {PLATFORM} $90,000/month", user_id="UADMIN"))
    assert "at this pace the team " in team and " you " not in team, team


def test_setting_the_same_budget_again_says_unchanged_and_writes_nothing(client, seeded):
    first = all_text(send(client, f"budget set {ANA} $400/month", user_id="UADMIN"))
    assert "*Budget set* for <@UANA>" in first
    with seeded.connect() as conn:
        stamp = conn.execute(select(Budget.updated_at)).scalar_one()
    # The same values, once as written and once spelled out (the default thresholds).
    for command in (f"budget set {ANA} $400/month", f"budget set {ANA} $400 per month thresholds 50,80,100"):
        again = all_text(send(client, command, user_id="UADMIN"))
        assert "*Budget unchanged* for <@UANA>: it is already *$400.00/month*" in again, again
        assert "Budget changed" not in again and "nothing was added to the audit log" in again
    assert _audits(seeded, "budget.set") == 1
    with seeded.connect() as conn:
        assert conn.execute(select(Budget.updated_at)).scalar_one() == stamp
    # Not triggered: one value differs, so it changes, with its audit row.
    changed = all_text(send(client, f"budget set {ANA} $400/month thresholds 90", user_id="UADMIN"))
    assert "*Budget changed* for <@UANA>" in changed and "unchanged" not in changed
    assert _audits(seeded, "budget.set") == 2


def _home_text(fake) -> str:
    views_published = fake.wait_for("views.publish")
    return json.dumps([c.params["view"] for c in views_published], ensure_ascii=False)


def test_the_tightest_budget_is_the_same_everywhere_and_a_request_raises_it(client, fake, seeded):
    send(client, f"budget set {ANA} $1/month", user_id="UADMIN")  # Ana's spend is far above $1
    send(client, f"budget set {ANA} $100/month windsurf", user_id="UADMIN")  # nothing spent there
    tight = "*Tightest:* :red_circle: <@UANA> · $1.00/month"
    for command in ("me", "budget"):
        text = all_text(send(client, command, user_id="UANA"))
        assert text.count("*Tightest:*") == 1 and tight in text, (command, text)
    post_event(
        client, {"type": "app_home_opened", "user": "UANA", "channel": "D1", "tab": "home"}, event_id="Ev1"
    )
    home = _home_text(fake)
    assert "*Your budgets*" in home and home.count("*Tightest:*") == 1 and tight in home
    asked = all_text(send(client, "budget request $200 load tests", user_id="UANA"))
    assert "Asked <@ULISTED> for $200.00 more on your personal budget ($1.00/month)" in asked, asked
    assert _requests(seeded) == [(_budget_id(seeded, ""), 200_000_000)]
    dm = fake.calls_to("chat.postMessage")[-1].params
    assert "<@UANA> asks for $200.00 more on their personal budget" in dm["text"]
    assert "at this pace you" not in json.dumps(dm["blocks"])  # the decider reads about Ana


def test_home_shows_no_budget_section_when_none_applies(client, fake):
    post_event(
        client, {"type": "app_home_opened", "user": "UANA", "channel": "D1", "tab": "home"}, event_id="Ev2"
    )
    home = _home_text(fake)
    assert "Your budgets" not in home and "Tightest" not in home


def _click(client, fake, user_id: str, button: dict) -> dict:
    """A signed click on ``button`` by ``user_id``; what the listener answered (response_url)."""
    before = len(fake.calls_to("response_url"))
    url = fake.server.url_for(f"/response_url/{user_id}")
    post_action(
        client, user_id=user_id, action_id=button["action_id"], value=button["value"], response_url=url
    )
    return fake.wait_for("response_url", before + 1)[before].params


def test_a_request_between_tied_budgets_asks_which_and_the_pick_sends_it(client, fake, seeded):
    # Two budgets nobody spends on, with the same ceiling: neither is tighter.
    send(client, f"budget set {ANA} $100/month windsurf", user_id="UADMIN")
    send(client, f"budget set {ANA} $100/month openrouter", user_id="UADMIN")
    dms_before = len(fake.calls_to("chat.postMessage"))
    reply = send(client, "budget request $200 load tests", user_id="UANA")
    text = all_text(reply)
    assert "Several budgets apply to you and none is tighter than the others" in text, text
    assert "Nothing was sent yet" in text and "Tightest" not in text
    [actions] = [b for b in reply["blocks"] if b["type"] == "actions"]
    buttons = {e["text"]["text"]: e for e in actions["elements"]}
    assert set(buttons) == {"Your personal Windsurf budget", "Your personal OpenRouter budget"}, buttons
    assert len({e["action_id"] for e in actions["elements"]}) == 2  # unique within the block
    assert _requests(seeded) == [] and len(fake.calls_to("chat.postMessage")) == dms_before

    pick = buttons["Your personal OpenRouter budget"]
    # Someone the budget does not apply to cannot send it with Ana's button.
    refused = _click(client, fake, "UBEN", pick)
    assert "That budget no longer applies to you; nothing was sent" in refused["text"]
    assert _requests(seeded) == []

    sent = _click(client, fake, "UANA", pick)
    assert sent["replace_original"] is True
    assert "Asked <@ULISTED> for $200.00 more on your personal OpenRouter budget" in sent["text"], sent
    assert _requests(seeded) == [(_budget_id(seeded, "openrouter"), 200_000_000)]
    assert "on their personal OpenRouter budget" in fake.calls_to("chat.postMessage")[-1].params["text"]
