from datetime import date

import pytest

from bot.domain.periods import PeriodError, calendar_period, days_covered, parse_period

TODAY = date(2026, 11, 27)  # a Friday


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        (None, date(2026, 11, 1), date(2026, 12, 1)),
        ("month", date(2026, 11, 1), date(2026, 12, 1)),
        ("week", date(2026, 11, 23), date(2026, 11, 30)),
        ("quarter", date(2026, 10, 1), date(2027, 1, 1)),
        ("7d", date(2026, 11, 21), date(2026, 11, 28)),
        ("30D", date(2026, 10, 29), date(2026, 11, 28)),
        ("2026-02", date(2026, 2, 1), date(2026, 3, 1)),
        ("2026-12", date(2026, 12, 1), date(2027, 1, 1)),
        ("2026-03-01..2026-03-15", date(2026, 3, 1), date(2026, 3, 16)),
    ],
)
def test_period_grammar(text, start, end):
    period = parse_period(text, TODAY)
    assert (period.start, period.end) == (start, end)


def test_previous_period_has_the_same_length():
    period = parse_period("2026-03", TODAY)
    previous = period.previous()
    assert previous.end == period.start and previous.days == period.days == 31


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "not a period"),
        ("0d", "out of range"),
        ("5000d", "out of range"),
        ("2026-13", "not a month"),
        ("2026-02-30..2026-03-01", "does not exist"),
        ("2026-03-10..2026-03-01", "ends before it starts"),
        ("2020-01-01..2026-01-01", "longer than"),
    ],
)
def test_bad_periods_say_what_is_wrong(text, message):
    with pytest.raises(PeriodError, match=message):
        parse_period(text, TODAY)


def test_quarter_and_week_boundaries():
    assert calendar_period("quarter", date(2026, 3, 31)).start == date(2026, 1, 1)
    assert calendar_period("week", date(2026, 11, 23)).start == date(2026, 11, 23)  # Monday
    assert calendar_period("week", date(2026, 11, 29)).start == date(2026, 11, 23)  # Sunday


def test_days_covered_is_inclusive_and_stops_at_today():
    today = date(2026, 12, 3)
    assert (
        days_covered(date(2026, 11, 2), date(2026, 12, 4), today)
        == "2026-11-02 to 2026-12-03 (32 days, today so far)"
    )
    assert (
        days_covered(date(2026, 11, 2), date(2027, 1, 1), today)
        == "2026-11-02 to 2026-12-03 (32 days, today so far)"
    )
    assert days_covered(date(2026, 11, 1), date(2026, 11, 8), today) == "2026-11-01 to 2026-11-07 (7 days)"
    assert days_covered(date(2026, 12, 3), date(2026, 12, 4), today) == "2026-12-03 (1 day, today so far)"
    assert days_covered(date(2026, 12, 4), date(2026, 12, 4), today) == "nothing yet (starts 2026-12-04)"
