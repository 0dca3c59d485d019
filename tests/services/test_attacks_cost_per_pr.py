"""Attacks on the recap's cost per merged PR (median and middle half per team), from a channel
member's seat: can the posted line give away one person's AI spend?"""

from __future__ import annotations

from datetime import date, timedelta

from bot.db import rollups
from bot.services.recap.money_rules import load_money_findings
from bot.services.recap.rules import postable
from bot.services.recap.scope import Scope
from tests.support.value import add_merged_pr, add_person, add_usage

USD = 1_000_000
END = date(2026, 11, 30)
MIN = 5


def _team(engine, spenders: int, idle_authors: int) -> list[int]:
    """``spenders`` authors with AI spend (two PRs each, $40 and $60 of spend on their days) and
    ``idle_authors`` who merged a PR this week with no AI spend at all."""
    ids = []
    with engine.begin() as conn:
        for i in range(spenders):
            pid = add_person(conn, f"spender{i}")
            for n, back, micros in ((1, 2, 40 * USD + i), (2, 4, 60 * USD + i)):
                day = END - timedelta(days=back)
                add_usage(conn, pid, day, micros)
                add_merged_pr(conn, pid, 100 * i + n, day, day)
            ids.append(pid)
        for i in range(idle_authors):
            pid = add_person(conn, f"idle{i}")
            add_merged_pr(conn, pid, 1000 + i, END - timedelta(days=3), END - timedelta(days=3))
            ids.append(pid)
        rollups.rebuild(conn)
    return ids


def _cost_line(engine, ids):
    with engine.connect() as conn:
        found = load_money_findings(conn, "default", Scope("@t", "@t", person_ids=tuple(ids)), END)
    return next(f for f in found if f.rule == "cost_per_pr")


def test_authors_without_ai_spend_do_not_make_one_spenders_pr_costs_postable(engine):
    """Attack: one heavy AI user among four colleagues who merged a PR with no AI spend. Sorted,
    the PR costs are $0, $0, $0, $0, $40, $60: the middle half ends at the spender's $40 PR, so a
    channel would read one person's apportioned spend. Before the fix the finding's group was
    every author (5, the minimum) and it was posted; now it is the authors with spend (1), and
    the line goes to the managers only."""
    finding = _cost_line(engine, _team(engine, spenders=1, idle_authors=4))
    assert finding.numbers["high_micros"] == 40 * USD  # the one spender's PR, in the text
    assert finding.numbers["authors"] == 5
    assert not postable(finding, MIN)


def test_five_authors_with_spend_still_post_the_cost_per_pr(engine):
    """Not triggered: five authors with spend (and idle ones beside them) reach the minimum."""
    finding = _cost_line(engine, _team(engine, spenders=5, idle_authors=3))
    assert finding.groups[0] == frozenset(finding.groups[0]) and len(finding.groups[0]) == 5
    assert postable(finding, MIN)
    assert not postable(finding, MIN + 1)
