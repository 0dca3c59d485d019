"""value_measures over stored pull requests on SQLite and PostgreSQL: a team counts a PR when its
author was a member on the merge day; a person's own measures; the lines /tokens team and
/tokens me add."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.db.models import Person, PullRequest, TeamMembership
from bot.domain.periods import Period
from bot.services import teams
from bot.services.value.measures import value_measures
from bot.services.value.merged_prs import Whose
from bot.slack.blocks.value_lines import value_lines

MAY = Period(date(2026, 5, 1), date(2026, 6, 1), "May 2026")
NOW = datetime(2026, 6, 20, tzinfo=UTC)


def _seed(engine) -> tuple[int, list[int]]:
    with engine.begin() as conn:
        team = teams.ensure_team(conn, workspace_id="W", kind=teams.USERGROUP, slack_id="SAPP", name="app")
        people = [
            conn.execute(
                Person.__table__.insert().values(
                    workspace_id="W", email=f"p{i}@lab.test", display_name=f"P{i}"
                )
            ).inserted_primary_key[0]
            for i in range(3)
        ]
        # p0 is a member all along, p1 joined on May 15, p2 never.
        for person, joined in ((people[0], date(2026, 1, 1)), (people[1], date(2026, 5, 15))):
            conn.execute(
                TeamMembership.__table__.insert().values(
                    workspace_id="W", team_id=team.id, person_id=person, joined_on=joined
                )
            )
        rows = []
        for number, (person, day, ai, fix) in enumerate(
            [
                (people[0], 2, True, False),  # followed by #3's fix
                (people[1], 5, True, False),  # before p1 joined: not the team's
                (people[1], 6, False, True),  # fixes #1 and #2 (same file), before joining
                (people[1], 20, True, False),
                (people[2], 21, False, False),  # never a member
            ],
            start=1,
        ):
            merged = datetime(2026, 5, day, 12, tzinfo=UTC)
            rows.append(
                dict(
                    workspace_id="W",
                    source="github_delivery",
                    repo="lab/app",
                    number=number,
                    actor=f"github:p{number}",
                    person_id=person,
                    opened_at=merged - timedelta(hours=8),
                    merged_at=merged,
                    ready_at=merged - timedelta(hours=4),
                    review_rounds=2,
                    ai_confidence="high" if ai else "none",
                    ai_rule="label:ai" if ai else "",
                    is_fix=fix,
                    files="src/shared.py",
                )
            )
        conn.execute(PullRequest.__table__.insert(), rows)
    return team.id, people


def test_team_measures_count_prs_of_members_on_the_merge_day(engine):
    team_id, people = _seed(engine)
    with engine.connect() as conn:
        team = value_measures(conn, Whose("W", team_id=team_id), period=MAY, fix_days=14, now=NOW)
        mine = value_measures(conn, Whose("W", [people[1]]), period=MAY, fix_days=14, now=NOW)
        org = value_measures(conn, Whose("W"), period=MAY, fix_days=14, now=NOW)
    assert sorted(n for _, n in team.survival.verdicts) == [1, 4]
    assert (team.survival.ai.survived, team.survival.ai.fixed) == (1, 1)
    assert team.survival.ai.people == {people[0], people[1]}
    assert (team.review.ai.prs, team.review.ai.median_minutes, team.review.ai.mean_rounds) == (2, 240, 2.0)
    assert sorted(n for _, n in mine.survival.verdicts) == [2, 3, 4]
    assert len(org.survival.verdicts) == 5 and org.survival.other.decided == 2

    assert value_lines(team, min_group=2) == [
        "PRs surviving 14 days (no revert, no follow-up fix): AI-assisted 50% of 2 · others none decided yet",
        "Ready for review to merge (median): AI-assisted 4.0 h, 2.0 rounds (2 PRs) · others none",
    ]
    assert "AI-assisted withheld (fewer than 3 people)" in value_lines(team, min_group=3)[0]
    assert value_lines(mine)[0].endswith("AI-assisted 50% of 2 · others 100% of 1")  # #3 fixed #2 too


def test_no_prs_no_lines(engine):
    with engine.connect() as conn:
        empty = value_measures(conn, Whose("W", [1]), period=MAY, fix_days=14, now=NOW)
    assert value_lines(empty) == [] and value_lines(empty, 5) == []
