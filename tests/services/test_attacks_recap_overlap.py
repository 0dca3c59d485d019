"""Attacks on posted weekly recaps from a member of two channels: the recaps of two overlapping
teams, subtracted, must not give one person's figures (docs/privacy.md, "Recap posts")."""

from __future__ import annotations

from datetime import date, timedelta

from bot.db import rollups
from bot.db.models import Team
from bot.domain.money import format_usd
from bot.services import recap, teams
from bot.slack.blocks.recap import build_recap
from tests.support.value import W, add_person, add_usage

USD = 1_000_000
END = date(2026, 11, 30)
MIN = 5
TARGET_SPEND = 77 * USD + 123_456


def _people(conn, names: list[str], dollars: int) -> list[int]:
    ids = []
    for name in names:
        pid = add_person(conn, name)
        for back in range(1, 8 * 7, 3):  # usage in every one of the recap's eight weeks
            add_usage(conn, pid, END - timedelta(days=back), dollars)
        ids.append(pid)
    return ids


def _channel(conn, slack_id: str, ids: list[int]) -> Team:
    team = teams.ensure_team(conn, workspace_id=W, kind=teams.CHANNEL, slack_id=slack_id, name=slack_id)
    teams.apply_refresh(
        conn,
        workspace_id=W,
        team_id=team.id,
        known={f"U{pid}": pid for pid in ids},
        new_members=[],
        today=END - timedelta(days=365),
    )
    return team


def _recaps(engine, extra: int):
    """Channel A: five people with usage; channel B: the same five, the target and ``extra``
    more. Each one's recap, as the job would post it."""
    with engine.begin() as conn:
        five = _people(conn, [f"p{i}" for i in range(5)], 10 * USD)
        target = _people(conn, ["target"], TARGET_SPEND)
        more = _people(conn, [f"q{i}" for i in range(extra)], 10 * USD)
        rollups.rebuild(conn)
        a = _channel(conn, "CA", five)
        b = _channel(conn, "CB", five + target + more)
    with engine.connect() as conn:
        return [
            recap.load_recap(
                conn,
                workspace_id=W,
                scope=recap.team_scope(team),
                end=END,
                min_group_size=MIN,
                today=END - timedelta(days=1),
            )
            for team in (a, b)
        ]


def test_two_channels_that_differ_by_one_person_post_no_figures(engine):
    """Attack: a member of #a (five people) and #b (the same five and the target) reads both weekly
    recaps; #b's spend minus #a's is the target's week. Before the fix both recaps were posted with
    their totals (each team alone has enough people); now both (the rule is symmetric) are
    replaced by the note that says why, and no figure of either reaches its channel."""
    for posted in _recaps(engine, extra=0):
        assert posted.too_small and posted.overlaps_team
        text = str(build_recap(posted).as_kwargs())
        assert "differ from" in text and "$" not in text
        assert format_usd(TARGET_SPEND) not in text


def test_two_channels_that_differ_by_the_minimum_post_their_recaps(engine):
    """Not triggered: #b holds the target and four more (five beyond #a): the difference is the
    spend of five people, and both recaps are posted."""
    for posted in _recaps(engine, extra=4):
        assert not posted.too_small and not posted.overlaps_team
        assert "$" in str(build_recap(posted).as_kwargs())
