"""The recap's money section end to end: `/tokens recap preview` through the real Bolt app over
the demo's usage plus merged PRs, showing cost per merged PR (apportioned, median and spread,
no names) and the pre-adoption baseline; too few authors keep it out. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.db.models import UsageDaily
from bot.domain.money import format_usd
from bot.services import recap, teams
from bot.slack.blocks.common import validate
from tests.support.slack_app import (
    PLATFORM,
    TODAY,
    all_text,
    person_id,
    seed_demo,
    send,
    slack_client,
)
from tests.support.value import add_merged_pr

AUTHORS = ["ana", "ben", "chen", "dana", "emil", "farah"]


pytestmark = pytest.mark.usefixtures("slack_team")


@pytest.fixture
def fake(slack_team):
    """The fake Slack with the demo org's whole team in its directory (conftest ``slack_team``)."""
    return slack_team


def _seed(engine, authors: list[str]) -> list[int]:
    """The demo (about 10 weeks of usage), 5 merged PRs a week (by 5 people) in the 4 weeks before it, and one
    PR per author this week; returns each author's AI spend over their PR's span."""
    seed_demo(engine)
    spans = []
    with engine.begin() as conn:
        ids = {name: person_id(conn, f"{name}@example.com") for name in AUTHORS}
        number = 1
        for weeks_back in (11, 12, 13, 14):  # the demo's data starts 70 days (10 weeks) back
            start = TODAY - timedelta(days=7 * weeks_back)
            for name in AUTHORS[:5]:
                add_merged_pr(conn, ids[name], number, start + timedelta(days=1), start + timedelta(days=3))
                number += 1
        opened, merged = TODAY - timedelta(days=5), TODAY - timedelta(days=2)
        for name in authors:
            add_merged_pr(conn, ids[name], number, opened, merged)
            number += 1
            spans.append(
                int(
                    conn.execute(
                        select(func.coalesce(func.sum(UsageDaily.cost_micros), 0)).where(
                            UsageDaily.person_id == ids[name],
                            UsageDaily.kind != "seat",
                            UsageDaily.in_org_total.is_(True),
                            UsageDaily.day >= opened,
                            UsageDaily.day <= merged,
                        )
                    ).scalar_one()
                )
            )
    return sorted(spans)


def test_the_preview_shows_cost_per_pr_and_the_baseline(engine, fake):
    spans = _seed(engine, AUTHORS)
    median = (spans[2] + spans[3] + 1) // 2
    with slack_client(engine, fake, TOKENWISE_ADOPTION_THRESHOLD="1") as client:
        reply = send(client, f"recap preview {PLATFORM}", user_id="UADMIN", channel_id="CPAYMENTS")
    assert reply["response_type"] == "ephemeral" and validate(reply["blocks"]) == []
    text = all_text(reply)
    assert ":moneybag: *Cost per PR and baseline*" in text
    assert f"Cost per merged PR (apportioned): median {format_usd(median)}" in text
    assert "over 6 PRs by 6 authors" in text
    assert "Merged PRs: 6 this week against 5.0 a week before the team adopted AI tools (4 weeks" in text
    assert "9 weeks ago) and 0 last week." in text
    assert "Early dip" not in text
    for name in ("Ana", "Ben", "Chen"):
        assert name not in text.split("Cost per PR and baseline")[1].split("The case for")[0]


def test_too_few_authors_keep_the_money_lines_out_of_the_recap(engine, fake):
    _seed(engine, AUTHORS[:2])
    with slack_client(engine, fake, TOKENWISE_ADOPTION_THRESHOLD="1") as client:
        text = all_text(send(client, f"recap preview {PLATFORM}", user_id="UADMIN", channel_id="CPAYMENTS"))
    # Two authors this week: both money lines are made of their figures, so neither is shown,
    # nor held for the managers' DM (a median cannot be cut to the people a grant reaches).
    assert "Weekly AI recap" in text and "Cost per PR and baseline" not in text
    assert "Cost per merged PR" not in text
    with engine.connect() as conn:
        team = teams.get_team(conn, workspace_id="default", kind=teams.USERGROUP, slack_id="SPLATFORM")
        found = recap.load_recap(
            conn, workspace_id="default", scope=recap.team_scope(team), end=TODAY, min_group_size=5
        )
    assert found.money == [] and not any(f.rule in ("cost_per_pr", "baseline") for f in found.withheld)
