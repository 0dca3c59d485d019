"""``/tokens me`` through the real Bolt app over the demo org (SQLite and PostgreSQL): the caller
with merged PRs sees their own survival and review lines and their cost per PR (one measured
through a session its trailer names, the others apportioned); a caller without merged PRs sees
nothing about PRs."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update

from bot.db.models import Identity, OtelSessionDaily, PullRequest
from bot.slack.blocks.common import validate
from tests.support.slack_app import TODAY, all_text, person_id, send
from tests.support.value import W, add_merged_pr

SESSION = "6f1c2a8e-4b3d-4e5f-9a0b-1c2d3e4f5a6b"


def test_me_shows_the_callers_pr_lines_and_nothing_about_prs_without_any(seeded, client):
    merged = TODAY - timedelta(days=20)
    with seeded.begin() as conn:
        ana = person_id(conn, "ana@example.com")
        add_merged_pr(conn, ana, 1, merged - timedelta(days=2), merged)  # decided: survived
        add_merged_pr(conn, ana, 2, merged - timedelta(days=1), merged)  # names a session
        add_merged_pr(conn, ana, 3, TODAY - timedelta(days=3), TODAY - timedelta(days=2))  # pending
        conn.execute(
            update(PullRequest)
            .where(PullRequest.number == 2)
            .values(session_ids=SESSION, ready_at=datetime(merged.year, merged.month, merged.day, 11))
        )
        conn.execute(
            Identity.__table__.insert().values(
                workspace_id=W, actor="claude_code_account:acc-ana", person_id=ana, origin="admin"
            )
        )
        conn.execute(
            OtelSessionDaily.__table__.insert().values(
                workspace_id=W,
                source="otel_claude_code",
                day=merged,
                actor="claude_code_account:acc-ana",
                session=SESSION,
                cost_micros=2_345_678,
                tokens=90_000,
            )
        )

    reply = send(client, "me 30d")  # UANA is ana@example.com
    assert reply["response_type"] == "ephemeral" and validate(reply["blocks"]) == []
    text = all_text(reply)
    assert (
        "PRs surviving 14 days (no revert, no follow-up fix): AI-assisted none decided yet · others 100% of 2"
        in text
    )
    assert "(1 still within the window)" in text
    assert "Ready for review to merge (median): AI-assisted none · others" in text
    assert "*Cost per merged PR* (apportioned, some measured): median" in text and "over 3 PRs" in text
    assert "acme/api#2 $2.35 measured" in text
    assert "acme/api#1 $" in text and "acme/api#1 $2.35 measured" not in text

    other = all_text(send(client, "me 30d", user_id="UBEN"))
    assert "Your AI spend last 30 days: $" in other  # Ben's own numbers, as ever
    for phrase in ("PRs surviving", "Ready for review", "Cost per merged PR", "acme/api#"):
        assert phrase not in other
