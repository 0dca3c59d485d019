"""A team's median of each value measure beside a member's own (``services.me.team_medians``), and
what it gives away: rows stored through the real sync engine, on SQLite and PostgreSQL.

The rule: a measure's median is shown only when at least the minimum group of people besides
the viewer have that measure. What a viewer could learn, and what not, is spelt out in
``test_what_a_viewer_can_and_cannot_learn_from_the_median``.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event

from bot.domain.periods import Period
from bot.services import people, privacy, teams
from bot.services.me import team_medians
from bot.services.reports import medians
from bot.services.sync import run_all
from tests.factories import add_team
from tests.services.support import DAY, Scripted

WEEK = Period(DAY, DAY + timedelta(days=7), "week")


def _team_of(engine, workspace: str, figures: dict[str, tuple[str, int, int]]) -> dict[str, int]:
    """Sync the figures into ``workspace`` and make everyone one team; email -> person id."""
    run_all(engine, [Scripted(figures)], workspace_id=workspace, since=DAY, today=DAY + timedelta(days=1))
    with engine.begin() as conn:
        ids = {email: people.find_by_email(conn, workspace_id=workspace, email=email).id for email in figures}
        members = {f"U{pid}": pid for pid in ids.values()}
        add_team(
            conn,
            "C1",
            members,
            workspace_id=workspace,
            today=DAY - timedelta(days=30),
            kind=teams.CHANNEL,
            name="eng",
        )
    return ids


def _medians(engine, workspace: str, viewer: int, min_group_size: int):
    with engine.connect() as conn:
        found = team_medians(
            conn, workspace_id=workspace, person_id=viewer, period=WEEK, min_group_size=min_group_size
        )
    return found[0].ratios if found else None


# $ spent, accepted lines, AI commits: per line $0.10, $0.20, $0.30, $0.40, $0.50.
FIVE = {
    "a@x.io": ("10", 100, 1),
    "b@x.io": ("20", 100, 2),
    "c@x.io": ("30", 100, 3),
    "d@x.io": ("40", 100, 4),
    "e@x.io": ("50", 100, 0),  # no AI commit: not in that measure
}


def test_the_median_needs_the_minimum_group_besides_the_viewer(engine):
    ids = _team_of(engine, "w", FIVE)
    a = ids["a@x.io"]
    # Four colleagues besides a have accepted lines: enough for a group of 4.
    shown = _medians(engine, "w", a, min_group_size=4)
    assert shown is not None and shown.per_accepted_line == 300_000  # $0.30, the middle of five
    # Only three colleagues besides a have AI commits: that measure is left out for a group of 4 …
    assert shown.per_ai_commit is None
    # … and shown for a group of 3 ($10/1, $10/1, $10/1, $10/1: every commit cost $10).
    assert _medians(engine, "w", a, min_group_size=3).per_ai_commit == 10_000_000
    # Four colleagues are too few for a group of 5: no median line at all.
    assert _medians(engine, "w", a, min_group_size=5) is None


def test_a_measure_of_two_people_is_never_shown_to_one_of_them(engine):
    ids = _team_of(engine, "w", {"a@x.io": ("4", 100, 0), "b@x.io": ("9", 100, 0), "c@x.io": ("1", 0, 0)})
    # Three active people, a group of 2: but only a and b have accepted lines. The median of
    # the two ($0.065) would hand a the other's figure ($0.13 - $0.04 = $0.09): withheld.
    assert _medians(engine, "w", ids["a@x.io"], min_group_size=2) is None


def test_what_a_viewer_can_and_cannot_learn_from_the_median(engine):
    """With the minimum group besides them, a viewer who knows their own figure learns one
    colleague's figure at most (the middle one), never whose it is, and nothing of the others:

    - could learn: that someone on the team spends $0.30 per accepted line;
    - could not learn: who that is (two colleagues trading figures give the same median), nor any
      other colleague's figure (moving it on its side of the middle leaves the median as it was),
      nor their own figure back out of it (there is nothing to subtract from a median).
    """
    base = _medians(engine, "w", _team_of(engine, "w", FIVE)["a@x.io"], min_group_size=4)
    swapped = {**FIVE, "c@x.io": FIVE["d@x.io"], "d@x.io": FIVE["c@x.io"]}
    moved = {**FIVE, "b@x.io": ("12", 100, 2), "e@x.io": ("90", 100, 0)}  # $0.12 and $0.90
    for workspace, figures in (("w2", swapped), ("w3", moved)):
        ratios = _medians(engine, workspace, _team_of(engine, workspace, figures)["a@x.io"], min_group_size=4)
        assert ratios.per_accepted_line == base.per_accepted_line == 300_000
    # The viewer's own figure is not the median here, and changing it within its side does not
    # move the median either: nobody can read a's $0.10 from what the team is shown.
    lower = _medians(
        engine, "w4", _team_of(engine, "w4", {**FIVE, "a@x.io": ("5", 100, 1)})["b@x.io"], min_group_size=4
    )
    assert lower.per_accepted_line == 300_000


def test_a_team_basis_is_reused_for_every_viewer_and_each_viewer_still_left_out(engine, monkeypatch):
    monkeypatch.setattr(medians, "CACHE_SECONDS", 60.0)
    ids = _team_of(engine, "w", FIVE)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    seen_by_a = _medians(engine, "w", ids["a@x.io"], 4)
    read_once = len(statements)
    seen_by_b = _medians(engine, "w", ids["b@x.io"], 4)
    # b's view does not read the team's rows again ...
    assert not any("usage_person_daily" in s for s in statements[read_once:])
    # ... and equals what b sees afresh: the rule leaves b out, not a (a's own figure would
    # otherwise be in b's group and b's out of it).
    monkeypatch.setattr(medians, "CACHE_SECONDS", 0.0)
    assert seen_by_b == _medians(engine, "w", ids["b@x.io"], 4)
    assert seen_by_a == _medians(engine, "w", ids["a@x.io"], 4)
    # A forget in this process drops what was kept: the next view reads the team again.
    monkeypatch.setattr(medians, "CACHE_SECONDS", 60.0)
    _medians(engine, "w", ids["a@x.io"], 4)
    with engine.begin() as conn:
        privacy.forget_person(conn, workspace_id="w", person_id=ids["e@x.io"], actor_user_id="UADMIN")
    before_forget_read = len(statements)
    _medians(engine, "w", ids["a@x.io"], 4)
    assert any("usage_person_daily" in s for s in statements[before_forget_read:])
