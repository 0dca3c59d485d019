"""Cost per merged PR: the working span, largest-remainder apportioning that adds up exactly,
measured figures taking precedence, the summary, and the loader over real rows (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.db import rollups
from bot.services.value.cost_per_pr import (
    APPORTIONED,
    MAX_SPAN_DAYS,
    MEASURED,
    PrWork,
    apportion,
    largest_remainder,
    load_pr_costs,
    summarize,
    working_span,
)
from tests.support.value import W, add_merged_pr, add_person, add_usage

D = date(2026, 11, 2)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_largest_remainder_adds_up_exactly_and_is_stable():
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(1_000_001, [1, 2]) == [333_334, 666_667]
    assert sum(largest_remainder(7, [3, 3, 1])) == 7
    assert largest_remainder(0, [1, 1]) == [0, 0]
    with pytest.raises(ValueError):
        largest_remainder(5, [0, 0])


def test_working_span_from_first_commit_or_opening_capped():
    opened, merged = at(D), at(D + timedelta(days=3))
    assert working_span(opened, merged, None) == (D, D + timedelta(days=3))
    # A first commit before the PR was opened starts the span.
    assert working_span(opened, merged, at(D - timedelta(days=2))) == (D - timedelta(days=2), merged.date())
    # A months-old branch is cut to MAX_SPAN_DAYS ending on the merge day.
    start, end = working_span(at(D - timedelta(days=200)), merged, None)
    assert (end - start).days == MAX_SPAN_DAYS - 1
    # Naive datetimes (SQLite) are UTC.
    assert working_span(datetime(2026, 11, 2, 23), datetime(2026, 11, 3, 1), None) == (
        D,
        D + timedelta(days=1),
    )


def test_a_days_spend_is_shared_by_the_prs_open_that_day_and_sums_exactly():
    a = PrWork(1, 7, "acme/api", 1, D, D + timedelta(days=2))
    b = PrWork(2, 7, "acme/api", 2, D + timedelta(days=1), D + timedelta(days=1))
    other = PrWork(3, 8, "acme/web", 3, D, D)
    daily = {
        (7, D): 1_000_000,  # only a is open
        (7, D + timedelta(days=1)): 1_000_001,  # a and b share; the odd micro goes to the first
        (7, D + timedelta(days=2)): 500_000,
        (7, D + timedelta(days=5)): 9_000_000,  # no PR open: stays unapportioned
        (8, D): 250,
    }
    costs = {c.pr_id: c for c in apportion([a, b, other], daily)}
    assert costs[1].micros == 1_000_000 + 500_001 + 500_000
    assert costs[2].micros == 500_000
    assert costs[3].micros == 250
    assert all(c.basis == APPORTIONED for c in costs.values())
    covered = sum(v for (pid, day), v in daily.items() if day != D + timedelta(days=5))
    assert sum(c.micros for c in costs.values()) == covered


def test_a_measured_pr_shows_its_measured_figure_and_the_rest_is_apportioned():
    a = PrWork(1, 7, "acme/api", 1, D, D)
    b = PrWork(2, 7, "acme/api", 2, D, D)
    costs = {c.pr_id: c for c in apportion([a, b], {(7, D): 3_000_000}, measured={2: {D: 1_000_000}})}
    assert (costs[2].micros, costs[2].basis) == (1_000_000, MEASURED)
    assert (costs[1].micros, costs[1].basis) == (2_000_000, APPORTIONED)


def test_summary_median_and_middle_half_without_floats():
    def costs(values):
        return apportion(
            [PrWork(i, i, "r", i, D, D) for i in range(len(values))],
            {(i, D): v for i, v in enumerate(values)},
        )

    s = summarize(costs([1, 2, 3, 4]))
    assert (s.median_micros, s.low_micros, s.high_micros) == (3, 1, 3)  # (2+3+1)//2 rounds half up
    s = summarize(costs([0, 10, 20, 30, 40]))
    assert (s.median_micros, s.low_micros, s.high_micros, s.without_spend) == (20, 10, 30, 1)
    assert summarize([]) is None


def test_load_shares_days_with_prs_merged_after_the_period(engine):
    start, end = D, D + timedelta(days=7)
    with engine.begin() as conn:
        ana = add_person(conn, "ana")
        add_merged_pr(conn, ana, 1, D + timedelta(days=1), D + timedelta(days=2))  # in the period
        add_merged_pr(conn, ana, 2, D + timedelta(days=2), D + timedelta(days=9))  # merged after it
        add_usage(conn, ana, D + timedelta(days=1), 4_000_000)
        add_usage(conn, ana, D + timedelta(days=2), 3_000_001)  # shared with PR 2
        add_usage(
            conn, ana, D + timedelta(days=2), 50_000_000, kind="seat", model="seat"
        )  # seats are not PR work
        add_usage(
            conn, ana, D + timedelta(days=2), 7_000_000, in_org=False, model="claude-code"
        )  # billed elsewhere too
        rollups.rebuild(conn)
    with engine.connect() as conn:
        costs = load_pr_costs(conn, workspace_id=W, person_ids=[ana], start=start, end=end)
        assert [(c.number, c.micros, c.basis) for c in costs] == [(1, 4_000_000 + 1_500_001, APPORTIONED)]
        assert (
            load_pr_costs(conn, workspace_id=W, person_ids=[ana], start=end, end=end + timedelta(7))[0].micros
            == 1_500_000
        )
        assert load_pr_costs(conn, workspace_id=W, person_ids=[], start=start, end=end) == []
