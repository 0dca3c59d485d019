"""Every view that shows one person's numbers to someone else lands in that person's
``/tokens audit me``: the budget-request DM to its deciders and a manager's team view (the
recap detail DM is in tests/slack/test_recap_slack.py). Through the real app with signed requests."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.db.models import AuditLog
from tests.support.slack_app import (
    PLATFORM,
    all_text,
    person_id,
    send,
)

pytestmark = pytest.mark.usefixtures("slack_team")

ANA = "<@UANA|ana>"


def _views_of(engine, email: str, action: str) -> list[str]:
    with engine.connect() as conn:
        target = f"person:{person_id(conn, email)}"
        return (
            conn.execute(
                select(AuditLog.actor_user_id)
                .where(AuditLog.action == action, AuditLog.target == target)
                .order_by(AuditLog.id)
            )
            .scalars()
            .all()
        )


def test_the_budget_request_dm_is_in_the_requesters_audit(client, fake_slack, seeded):
    assert "now manages" in all_text(send(client, f"role add manager <@UBEN> {PLATFORM}", user_id="UADMIN"))
    send(client, f"budget set {ANA} $400/month", user_id="UADMIN")
    assert "Nobody but you" in all_text(send(client, "audit me", user_id="UANA"))
    assert "Asked <@UBEN>" in all_text(send(client, "budget request $200 load tests", user_id="UANA"))
    dm = fake_slack.calls_to("chat.postMessage")[-1].params
    assert dm["channel"] == "DUBEN" and "$" in all_text(dm)  # Ben was shown Ana's spend
    assert _views_of(seeded, "ana@example.com", "view.budget_request") == ["UBEN"]
    mine = all_text(send(client, "audit me", user_id="UANA"))
    assert "<@UBEN> was sent, to decide it, the budget request and spend of <@UANA>" in mine


def test_a_decider_who_could_not_be_reached_is_not_listed(client, fake_slack, seeded):
    send(client, f"role add manager <@UBEN> {PLATFORM}", user_id="UADMIN")
    send(client, f"role add manager <@UCHEN> {PLATFORM}", user_id="UADMIN")
    send(client, f"budget set {ANA} $400/month", user_id="UADMIN")
    fake_slack.fail_next("conversations.open", error="user_not_found")  # the first decider's DM fails
    reply = all_text(send(client, "budget request $200 load tests", user_id="UANA"))
    assert "I could not reach" not in reply
    reached = [c.params["channel"].removeprefix("D") for c in fake_slack.calls_to("chat.postMessage")]
    assert len(reached) == 1 and reached[0] in ("UBEN", "UCHEN")
    assert _views_of(seeded, "ana@example.com", "view.budget_request") == reached


def test_a_managers_team_view_is_in_each_members_audit(client, seeded):
    send(client, f"role add manager <@UBEN> {PLATFORM}", user_id="UADMIN")
    # A member's team view shows no one's own line, so nothing is recorded about Ana.
    send(client, f"team {PLATFORM} 30d", user_id="UCHEN")
    assert _views_of(seeded, "ana@example.com", "view.team_member") == []
    shown = all_text(send(client, f"team {PLATFORM} 30d", user_id="UBEN"))
    assert "<@UANA>: $" in shown
    assert _views_of(seeded, "ana@example.com", "view.team_member") == ["UBEN"]
    mine = all_text(send(client, "audit me", user_id="UANA"))
    assert "<@UBEN> viewed, in a team view, the numbers of <@UANA>" in mine
    # The manager's own line is theirs: not recorded as a look at themself.
    assert _views_of(seeded, "ben@example.com", "view.team_member") == []
