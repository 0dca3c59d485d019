"""`/tokens seats` and its Reclaim button end to end: signed commands and block_actions through
the real Starlette+Bolt app, the recording fake Slack receiving the holder's DM (once), and a
forged click by a non-admin refused. SQLite and, with TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.db.models import AuditLog, SeatReclaim, UsageDaily
from bot.domain.periods import calendar_period
from bot.domain.records import SEAT
from bot.slack.blocks.common import validate
from bot.slack.blocks.format import usd
from bot.slack.blocks.seats import RECLAIM_ACTION
from tests.support.cursor_admin import serve_cursor_team, sync_cursor_days
from tests.support.slack_app import TODAY, all_text, post_action, send, slack_client
from tests.support.value import seed_seats

pytestmark = pytest.mark.usefixtures("slack_team")


@pytest.fixture
def fake(slack_team):
    """The fake Slack with the demo org's whole team in its directory (conftest ``slack_team``)."""
    return slack_team


def click(client, fake, *, user_id: str, value: str) -> str:
    before = len(fake.calls_to("response_url"))
    post_action(
        client,
        user_id=user_id,
        action_id=RECLAIM_ACTION,
        value=value,
        response_url=fake.server.url_for(f"/response_url/{user_id}"),
    )
    answer = fake.wait_for("response_url", before + 1)[before].params
    assert answer["response_type"] == "ephemeral"
    return answer["text"]


def dms_to(fake, user_id: str) -> list[str]:
    return [
        c.params["text"] for c in fake.calls_to("chat.postMessage") if c.params["channel"] == f"D{user_id}"
    ]


def reclaims(engine):
    with engine.connect() as conn:
        return conn.execute(select(SeatReclaim.actor, SeatReclaim.status, SeatReclaim.requested_by)).all()


def test_admin_sees_the_four_figures_and_reclaim_asks_the_holder_once(engine, fake):
    seed_seats(engine, TODAY)
    with slack_client(engine, fake) as client:
        reply = send(client, "seats", user_id="UADMIN")
        assert reply["response_type"] == "ephemeral" and validate(reply["blocks"]) == []
        text = all_text(reply)
        assert "Seats paid: *4*" in text and "Active in the last 7 days: *1*" in text
        assert "Reassignable now (unused 30+ days): *2*" in text
        assert "Reducible at the next renewal" in text and "unused 60+ days): *1*" in text
        assert "never added up" in text and "ROI" not in text
        buttons = [
            b["accessory"]["value"]
            for b in reply["blocks"]
            if b.get("accessory", {}).get("action_id") == RECLAIM_ACTION
        ]
        assert buttons == ["github_copilot|github:chen", "github_copilot|github:ben"]
        assert "<@UBEN>" in text and "Chen" in text

        answer = click(client, fake, user_id="UADMIN", value="github_copilot|github:ben")
        assert "Asked <@UBEN> by DM" in answer
        [dm] = dms_to(fake, "UBEN")
        assert "Copilot seat has not been used" in dm and "40 days" in dm and "<@UADMIN>" in dm
        # A second click (or a second admin): no second DM.
        assert "already asked" in click(client, fake, user_id="UADMIN", value="github_copilot|github:ben")
        assert len(dms_to(fake, "UBEN")) == 1
        # A holder with no Slack account: nobody to ask, nothing claimed.
        assert "no Slack account linked" in click(
            client, fake, user_id="UADMIN", value="github_copilot|github:chen"
        )
        assert "not reassignable" in click(client, fake, user_id="UADMIN", value="github_copilot|github:ana")
        assert "not one Tokenwise knows" in click(client, fake, user_id="UADMIN", value="garbage")
    assert reclaims(engine) == [("github:ben", "sent", "UADMIN")]
    with engine.connect() as conn:
        viewed = conn.execute(select(AuditLog.action).where(AuditLog.action == "view.seats")).scalars().all()
    assert len(viewed) == 2  # the two reassignable holders, who can see it in `audit me`


def test_a_forged_click_by_a_non_admin_is_refused_and_nothing_is_sent(engine, fake):
    seed_seats(engine, TODAY)
    with slack_client(engine, fake) as client:
        refused = all_text(send(client, "seats", user_id="UANA"))
        assert "for workspace admins" in refused and "Seats paid" not in refused
        # The button's value is easy to forge: the click is judged by who clicks, now.
        answer = click(client, fake, user_id="UANA", value="github_copilot|github:ben")
        assert answer == "Only workspace admins can reclaim seats."
        assert "takes no arguments" in all_text(send(client, "seats all", user_id="UADMIN"))
    assert dms_to(fake, "UBEN") == [] and reclaims(engine) == []


def test_a_dm_slack_refuses_is_recorded_and_the_next_click_tries_again(engine, fake):
    seed_seats(engine, TODAY)
    fake.fail_next("chat.postMessage", error="cannot_dm_bot")
    with slack_client(engine, fake) as client:
        answer = click(client, fake, user_id="UADMIN", value="github_copilot|github:ben")
        assert "did not deliver" in answer and "cannot_dm_bot" in answer
        assert reclaims(engine) == [("github:ben", "failed", "UADMIN")]
        assert "Asked <@UBEN>" in click(client, fake, user_id="UADMIN", value="github_copilot|github:ben")
    # Two attempts reached Slack: the one it refused, then the one it delivered.
    assert len(dms_to(fake, "UBEN")) == 2 and reclaims(engine) == [("github:ben", "sent", "UADMIN")]


def test_no_seats_stored_says_so(engine, fake):
    with slack_client(engine, fake) as client:
        assert "No seat-billed tool has stored seats yet" in all_text(send(client, "seats", user_id="UADMIN"))


def test_a_stale_seat_list_is_flagged(engine, fake):
    seed_seats(engine, TODAY - timedelta(days=20))
    with slack_client(engine, fake) as client:
        assert "run a sync to refresh it" in all_text(send(client, "seats", user_id="UADMIN"))


def test_cursor_seats_synced_from_its_admin_api_sit_beside_copilot(engine, fake, vendor_server):
    """Cursor's member list, synced through the loopback Admin API on two days 63 days apart,
    becomes its own four figures and Reclaim buttons; its holders are the people Copilot's are."""
    seed_seats(engine, TODAY)
    serve_cursor_team(vendor_server, daily="daily_usage_none.json")
    first = TODAY - timedelta(days=63)
    sync_cursor_days(engine, vendor_server, [(first, first), (TODAY - timedelta(days=1), TODAY)])
    with slack_client(engine, fake) as client:
        reply = send(client, "seats", user_id="UADMIN")
        assert validate(reply["blocks"]) == []
        sections = [b["text"]["text"] for b in reply["blocks"] if b["type"] == "section"]
        [cursor] = [t for t in sections if t.startswith("*Cursor*")]
        assert "Seats paid: *3*" in cursor and "Active in the last 7 days: *0*" in cursor
        assert "Reassignable now (unused 30+ days): *3*" in cursor and "unused 60+ days): *3*" in cursor
        assert any(t.startswith("*GitHub Copilot*") and "Seats paid: *4*" in t for t in sections)
        buttons = [
            b["accessory"]["value"]
            for b in reply["blocks"]
            if b.get("accessory", {}).get("action_id") == RECLAIM_ACTION
        ]
        held = {f"cursor|email:{name}@example.com" for name in ("ana", "dana", "gus")}
        assert held <= set(buttons)
        assert "cursor|email:ben@example.com" not in buttons  # an Unpaid Admin holds no seat

        answer = click(client, fake, user_id="UADMIN", value="cursor|email:dana@example.com")
        assert "Asked <@UDANA> by DM" in answer
        # The org view counts the seats in Cursor's spend, as it does Copilot's.
        month = calendar_period("month", TODAY)
        with engine.connect() as conn:
            seat_micros = conn.execute(
                select(func.sum(UsageDaily.cost_micros)).where(
                    UsageDaily.vendor == "cursor",
                    UsageDaily.kind == SEAT,
                    UsageDaily.day >= month.start,
                    UsageDaily.day < month.end,
                )
            ).scalar_one()
        org = all_text(send(client, "org", user_id="UADMIN"))
        assert f"{usd(seat_micros)} seats" in org and "Cursor" in org
    [dm] = dms_to(fake, "UDANA")
    assert "Cursor seat has not been used" in dm and "63 days" in dm
    assert reclaims(engine) == [("email:dana@example.com", "sent", "UADMIN")]
