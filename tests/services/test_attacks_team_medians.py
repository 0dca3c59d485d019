"""Attacks on the team medians of ``/tokens me`` and the App Home (``services.me.team_medians``):
can a member pad the group so that the median gives away one colleague's figure?"""

from __future__ import annotations

from datetime import date, timedelta

from bot.db import rollups
from bot.domain.periods import Period
from bot.services import teams
from bot.services.me import team_medians
from tests.factories import add_activity, add_team
from tests.support.value import SEAT_MICROS, W, add_person, add_usage

USD = 1_000_000
START = date(2026, 11, 2)
WEEK = Period(START, START + timedelta(days=7), "week")
MIN = 5


def _lines(conn, pid: int, lines: int) -> None:
    add_activity(
        conn,
        pid,
        START,
        workspace_id=W,
        vendor="github_copilot",
        actor=f"github:{pid}",
        lines_accepted=lines,
        acceptances=1,
        rebuild=False,
    )


def _team(engine, *, users: dict[str, tuple[int, int]], seat_only: dict[str, int]) -> dict[str, int]:
    """``users``: name -> (dollars of usage, accepted lines); ``seat_only``: name -> accepted lines
    of a colleague whose only cost is a Copilot seat all week. Everyone in one channel team."""
    ids = {}
    with engine.begin() as conn:
        for name, (dollars, lines) in users.items():
            ids[name] = add_person(conn, name)
            add_usage(conn, ids[name], START, dollars * USD)
            _lines(conn, ids[name], lines)
        for name, lines in seat_only.items():
            ids[name] = add_person(conn, name)
            for back in range(7):
                add_usage(conn, ids[name], START + timedelta(days=back), SEAT_MICROS, kind="seat")
            _lines(conn, ids[name], lines)
        rollups.rebuild(conn)
        members = {f"U{pid}": pid for pid in ids.values()}
        add_team(
            conn,
            "C1",
            members,
            workspace_id=W,
            today=START - timedelta(days=30),
            kind=teams.CHANNEL,
            name="eng",
        )
    return ids


def _median_per_line(engine, viewer: int) -> int | None:
    with engine.connect() as conn:
        found = team_medians(conn, workspace_id=W, person_id=viewer, period=WEEK, min_group_size=MIN)
    return found[0].ratios.per_accepted_line if found else None


# Two seat-only colleagues with one accepted line (a seat's week per line: far above anyone) and
# two with a thousand (far below): the viewer's and the target's figures are the middle two.
PADDING = {"high1": 1, "high2": 1, "low1": 1000, "low2": 1000}


def test_seat_only_colleagues_do_not_pad_the_median_around_one_colleague(engine):
    """Attack: the viewer ($30 over 100 lines, $0.30 a line) and one colleague with usage ($50 over
    100 lines) among four seat-only colleagues placed above and below. Before the fix the four
    counted towards the minimum group (five besides the viewer had the measure), the median of six
    was the mean of the viewer's and the target's figures, $0.40, and 2 × $0.40 − $0.30 gave the
    target's $0.50 a line. Now the group counts people with usage: one besides the viewer, so no
    median is shown."""
    ids = _team(engine, users={"viewer": (30, 100), "target": (50, 100)}, seat_only=PADDING)
    assert _median_per_line(engine, ids["viewer"]) is None


def test_five_colleagues_with_usage_show_the_median_with_seat_only_people_beside_them(engine):
    """Not triggered: five colleagues with usage besides the viewer reach the minimum; seat-only
    colleagues' figures still take part in the median (their seat is what they cost per line)."""
    users = {"viewer": (30, 100), **{f"user{i}": (10 * (i + 1), 100) for i in range(5)}}
    ids = _team(engine, users=users, seat_only={"high1": 1})
    # $0.10 … $0.50, the viewer's $0.30 and one seat's week over one line: the middle of seven.
    assert _median_per_line(engine, ids["viewer"]) == 300_000
