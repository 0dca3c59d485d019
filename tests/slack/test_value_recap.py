"""The recap's value findings (survival, review load) delivered through Slack: the scheduled
recap job against the recording fake Slack Web API, with the demo's @platform team and merged
pull requests stored as the GitHub delivery source stores them. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest
from sqlalchemy import select

from bot.db.models import Person, PullRequest
from bot.jobs.recaps import recap_job
from bot.slack.blocks.common import validate
from tests.support.recaps import subscribe
from tests.support.slack_app import TODAY, add_team_users, make_runtime, seed_demo
from tests.support.slack_fake import BOT_TOKEN, start_fake_slack

NOW = datetime.combine(TODAY, clock(12, 0), tzinfo=UTC)
END = datetime.combine(TODAY, clock(0, 0), tzinfo=UTC)  # the recap week ends today
CHANNEL = "CPAYMENTS"
PLATFORM = [f"{n}@example.com" for n in ("ana", "ben", "chen", "dana", "emil", "farah", "gus", "hana")]
REWORKED = "AI-assisted PRs were reverted or fixed more"
SLOWER = "AI-assisted PRs took longer to review"


@pytest.fixture
def fake(httpserver):
    fake = start_fake_slack(httpserver)
    add_team_users(fake)
    answer = fake.answer

    def extended(method, params, token=BOT_TOKEN):
        if method == "conversations.info":
            return {"ok": True, "channel": {"id": params.get("channel", ""), "is_member": True}}
        if method == "conversations.history":
            return {"ok": True, "messages": [], "has_more": False}
        return answer(method, params, token)

    fake.answer = extended
    return fake


def _seed_prs(engine, ai_authors: int) -> None:
    """Each @platform member merged one AI-assisted and one other PR 20 days ago; the first
    ``ai_authors`` people's AI PRs count as AI, and half of those were followed by a fix."""
    with engine.begin() as conn:
        people = dict(conn.execute(select(Person.email, Person.id).where(Person.email.in_(PLATFORM))).all())
        rows, number = [], 0
        for i, email in enumerate(PLATFORM):
            merged = END - timedelta(days=20, hours=i)
            for ai in (True, False):
                number += 1
                rows.append(
                    dict(
                        workspace_id="default",
                        source="github_delivery",
                        repo="acme/api",
                        number=number,
                        actor=f"github:{email}",
                        person_id=people[email],
                        opened_at=merged - timedelta(days=2),
                        merged_at=merged,
                        ready_at=merged - timedelta(hours=24 if ai else 2),
                        review_rounds=3 if ai else 1,
                        ai_confidence="high" if ai and i < ai_authors else "none",
                        ai_rule="assisted_by:claude" if ai and i < ai_authors else "",
                        title=f"Change {number}",
                        files=f"src/{'ai' if ai else 'other'}_{i}.py",
                        is_fix=False,
                    )
                )
                if ai and i % 2 == 0:  # a fix touching the AI PR's file two days later
                    number += 1
                    rows.append(
                        {
                            **rows[-1],
                            "number": number,
                            "merged_at": merged + timedelta(days=2),
                            "ready_at": merged + timedelta(days=2, hours=-2),
                            "ai_confidence": "none",
                            "ai_rule": "",
                            "is_fix": True,
                            "title": f"fix: change {number - 1}",
                            "review_rounds": 1,
                        }
                    )
        conn.execute(PullRequest.__table__.insert(), rows)


def _deliver(engine, fake, **settings) -> str:
    subscribe(engine, group="SPLATFORM", channel=CHANNEL, when=NOW)
    assert [o.status for o in recap_job(make_runtime(engine, fake, **settings), now=NOW)] == ["posted"]
    [post] = [c for c in fake.calls_to("chat.postMessage") if c.params.get("channel") == CHANNEL]
    assert validate(post.params["blocks"]) == []
    return str(post.params["blocks"])


def test_recap_posts_the_survival_and_review_findings(engine, fake):
    seed_demo(engine)
    _seed_prs(engine, ai_authors=8)
    posted = _deliver(engine, fake)
    # 4 of 8 AI PRs followed by a fix; every other PR (the 4 fixes too) lasted.
    assert f"{REWORKED}: 50% of 8 AI-assisted PRs survived 14 days" in posted
    assert "against 100% of 12 others" in posted
    assert f"{SLOWER}: 24.0 h from ready to merge (median of 8, 3.0 review rounds" in posted
    assert "AI-assisted PRs last as well" not in posted


def test_too_few_ai_prs_fire_nothing(engine, fake):
    seed_demo(engine)
    _seed_prs(engine, ai_authors=4)  # 4 AI-assisted PRs: under SURVIVAL_MIN_PRS and REVIEW_MIN_PRS
    posted = _deliver(engine, fake)
    assert REWORKED not in posted and SLOWER not in posted


def test_findings_from_fewer_authors_than_the_minimum_group_stay_out_of_the_channel(engine, fake):
    seed_demo(engine)
    _seed_prs(engine, ai_authors=8)  # the findings fire, from 8 authors each ...
    posted = _deliver(engine, fake, TOKENWISE_MIN_GROUP_SIZE=9)  # ... fewer than 9
    assert REWORKED not in posted and SLOWER not in posted
