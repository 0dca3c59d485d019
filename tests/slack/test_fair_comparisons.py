"""A period that is not over is compared with the same elapsed span of the previous one; partial
history and periods that have not started say so instead of a percentage (issue #15, items 1-2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func as sql_func
from sqlalchemy import select

from bot.db.models import UsageDaily
from bot.domain.money import format_usd
from bot.domain.periods import COMPARABLE, NOT_STARTED, PARTIAL_HISTORY, Period, compare_span, parse_period
from bot.services.reports import SpendReport, VendorSpend
from bot.slack.blocks.common import validate
from bot.slack.blocks.format import comparison_text, span_text
from bot.slack.blocks.home import trend_block
from bot.slack.blocks.reports import build_me
from tests.support.slack_app import TODAY, all_text, send

UTC_ZONE = ZoneInfo("UTC")


def span(comparison):
    return (comparison.previous.start, comparison.previous.last_day)


@pytest.mark.parametrize(
    ("token", "today", "elapsed", "previous"),
    [
        # month: start, middle, last day
        ("month", date(2026, 12, 2), 2, (date(2026, 11, 1), date(2026, 11, 2))),
        ("month", date(2026, 12, 15), 15, (date(2026, 11, 1), date(2026, 11, 15))),
        ("month", date(2026, 12, 31), 31, (date(2026, 11, 1), date(2026, 11, 30))),
        # March 29 against a 28-day February: the whole of February, not days of March
        ("month", date(2027, 3, 29), 29, (date(2027, 2, 1), date(2027, 2, 28))),
        # week (Monday start): Monday, Thursday, Sunday
        ("week", date(2026, 11, 30), 1, (date(2026, 11, 23), date(2026, 11, 23))),
        ("week", date(2026, 12, 3), 4, (date(2026, 11, 23), date(2026, 11, 26))),
        ("week", date(2026, 12, 6), 7, (date(2026, 11, 23), date(2026, 11, 29))),
        # quarter: first day, middle, last day
        ("quarter", date(2026, 10, 1), 1, (date(2026, 7, 1), date(2026, 7, 1))),
        ("quarter", date(2026, 11, 15), 46, (date(2026, 7, 1), date(2026, 8, 15))),
        ("quarter", date(2026, 12, 31), 92, (date(2026, 7, 1), date(2026, 9, 30))),
        # rolling windows end today: the previous window of the same length
        ("7d", date(2026, 12, 2), 7, (date(2026, 11, 19), date(2026, 11, 25))),
        # a closed month: the whole previous month
        ("2026-10", date(2026, 12, 2), 31, (date(2026, 9, 1), date(2026, 9, 30))),
    ],
)
def test_the_previous_span_covers_the_same_elapsed_days(token, today, elapsed, previous):
    comparison = compare_span(parse_period(token, today), today, history_start=date(2025, 1, 1))
    assert comparison.status == COMPARABLE
    assert comparison.elapsed_days == elapsed
    assert span(comparison) == previous


def test_a_month_in_progress_is_labelled_so_far_with_a_forecast():
    today = date(2026, 12, 2)
    comparison = compare_span(parse_period("month", today), today, history_start=date(2026, 1, 1))
    assert comparison.in_progress
    # $4.00 in 2 days -> $62.00 over 31 days at the same pace
    assert comparison.forecast_micros(4_000_000) == 62_000_000
    text = comparison_text(4_000_000, 5_000_000, comparison)
    assert text.startswith("▼ 20% vs Nov 1–2 ($5.00)")
    assert "Forecast at this pace: ~$62.00 for the 31 days _(estimate)_" in text


def test_a_closed_period_has_no_forecast():
    today = date(2026, 12, 2)
    comparison = compare_span(parse_period("2026-11", today), today, history_start=date(2026, 1, 1))
    assert not comparison.in_progress
    assert comparison.forecast_micros(4_000_000) is None
    assert comparison_text(4_000_000, 2_000_000, comparison) == "▲ 100% vs Oct 1–31 ($2.00)"


def test_partial_history_says_so_instead_of_a_percentage():
    today = date(2026, 12, 2)
    # 90 days stored: the previous quarter (from Jul 1) was never fetched in full
    comparison = compare_span(parse_period("quarter", today), today, history_start=today - timedelta(days=89))
    assert comparison.status == PARTIAL_HISTORY
    text = comparison_text(10_000_000, 100_000, comparison)
    assert "%" not in text
    assert text == (
        "No comparison with Jul 1 – Sep 1: stored history starts Sep 4, 2026, "
        "so those days were never fetched."
    )


def test_history_that_covers_the_span_exactly_compares():
    today = date(2026, 12, 2)
    comparison = compare_span(parse_period("month", today), today, history_start=date(2026, 11, 1))
    assert comparison.status == COMPARABLE


def test_a_period_that_has_not_started_says_so():
    today = date(2026, 12, 2)
    comparison = compare_span(parse_period("2027-01", today), today, history_start=date(2026, 1, 1))
    assert comparison.status == NOT_STARTED
    assert comparison_text(0, 0, comparison) == "January 2027 has not started yet: there is no data for it."


def test_me_shows_the_days_covered_never_a_future_end():
    today = date(2026, 12, 2)
    period = parse_period("month", today)
    comparison = compare_span(period, today, history_start=date(2026, 1, 1))
    report = SpendReport(
        period,
        vendors=[VendorSpend("cursor", cost_micros=4_000_000)],
        previous_total_micros=5_000_000,
        active_people=1,
        comparison=comparison,
    )
    message = build_me(report, who="Ana", models=[], tz=UTC_ZONE)
    text = str(message.blocks)
    assert "in Dec 1 – Dec 2, 2026 so far (2 of 31 days)" in text
    assert "Dec 31" not in text
    assert "▼ 20% vs Nov 1–2 ($5.00)" in text
    assert validate(message.blocks) == []


def test_the_trend_marks_the_current_week_partial():
    weeks = [(date(2026, 11, 23), 1_000_000), (date(2026, 11, 30), 500_000)]
    block = trend_block(weeks, today=date(2026, 12, 2))
    lines = block["text"]["text"].splitlines()
    assert lines[-1].endswith("(so far, 3 of 7 days)```")
    assert "so far" not in lines[-2]


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        (date(2026, 11, 1), date(2026, 11, 2), "Nov 1"),
        (date(2026, 11, 1), date(2026, 11, 3), "Nov 1–2"),
        (date(2026, 11, 28), date(2026, 12, 3), "Nov 28 – Dec 2"),
        (date(2025, 12, 29), date(2026, 1, 3), "Dec 29, 2025 – Jan 2, 2026"),
    ],
)
def test_span_text(start, end, text):
    assert span_text(Period(start, end, "")) == text


def test_utc_moments_are_shown_on_the_orgs_day():
    # The App Home passes "now" in UTC; the partial week is the org's local week.
    now = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)  # Monday Nov 30 in Auckland
    local = now.astimezone(ZoneInfo("Pacific/Auckland")).date()
    block = trend_block([(date(2026, 11, 30), 1)], today=local)
    assert "(so far, 1 of 7 days)" in block["text"]["text"]


# -- through the real Slack request path (demo data: 70 days stored before today) ---------------


def _ana_spend(engine, first: date, last: date) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(sql_func.coalesce(sql_func.sum(UsageDaily.cost_micros), 0)).where(
                UsageDaily.actor == "email:ana@example.com",
                UsageDaily.day >= first,
                UsageDaily.day <= last,
                UsageDaily.cost_basis != "tokens_only",
            )
        ).scalar_one()


def test_me_this_month_compares_with_the_same_days_of_last_month(client, seeded):
    text = all_text(send(client, "me month"))
    month_start = TODAY.replace(day=1)
    previous_start = (month_start - timedelta(days=1)).replace(day=1)
    elapsed = (TODAY - month_start).days + 1
    previous_last = min(previous_start + timedelta(days=elapsed - 1), month_start - timedelta(days=1))
    assert f"so far ({elapsed} of " in text or TODAY.month != (TODAY + timedelta(days=1)).month
    previous = _ana_spend(seeded, previous_start, previous_last)
    assert span_text_of(previous_start, previous_last) in text
    assert f"({format_usd(previous)})" in text


def span_text_of(first: date, last: date) -> str:
    return span_text(Period(first, last + timedelta(days=1), ""))


def test_me_quarter_beyond_the_stored_history_gives_no_percentage(client):
    # 70 days are stored: last quarter's same span starts before them.
    text = all_text(send(client, "me quarter"))
    assert "No comparison with" in text and "stored history starts" in text


def test_me_for_a_month_that_has_not_started(client):
    next_year = TODAY.year + 1
    text = all_text(send(client, f"me {next_year}-01"))
    assert f"January {next_year} has not started yet" in text
