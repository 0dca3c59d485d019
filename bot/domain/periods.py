"""The period grammar of ``/tokens``: ``7d``, ``30d``, ``week``, ``month``, ``quarter``,
``YYYY-MM``, ``YYYY-MM-DD..YYYY-MM-DD``. Periods are calendar dates in the org's timezone;
end dates are exclusive internally and shown inclusive."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

PERIOD_HELP = "`7d`, `30d`, `week`, `month`, `quarter`, `YYYY-MM` or `YYYY-MM-DD..YYYY-MM-DD`"
MAX_RANGE_DAYS = 3 * 366

_DAYS = re.compile(r"^(\d{1,4})d$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


class PeriodError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date  # exclusive
    label: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def previous(self) -> Period:
        """The period of the same length just before this one (what "change" compares to)."""
        length = timedelta(days=self.days)
        return Period(self.start - length, self.start, f"previous {self.days} days")

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)


#: ``Comparison.status``: the two spans can be compared.
COMPARABLE = "comparable"
#: The period starts after today: there is no data yet, and nothing to compare.
NOT_STARTED = "not_started"
#: The comparison span starts before the earliest stored day: a percentage would compare real
#: spend with days Tokenwise never fetched (the "▲ 10437%" after a first sync).
PARTIAL_HISTORY = "partial_history"


@dataclass(frozen=True, slots=True)
class Comparison:
    """What a period's total is compared with, fairly.

    A period that is not over is compared with the same elapsed span of the previous one (Dec 1-2
    with Nov 1-2, not with all of November); ``elapsed_days`` of ``total_days`` have data so far.
    """

    period: Period
    #: The part of ``period`` that has happened: up to and including today.
    elapsed: Period
    #: The span of the previous period covering the same number of days from its start.
    previous: Period
    status: str = COMPARABLE
    #: The earliest stored day, when it cuts the comparison short (``PARTIAL_HISTORY``).
    history_start: date | None = None

    @property
    def elapsed_days(self) -> int:
        return self.elapsed.days

    @property
    def total_days(self) -> int:
        return self.period.days

    @property
    def in_progress(self) -> bool:
        return self.status != NOT_STARTED and self.elapsed.end < self.period.end

    def forecast_micros(self, so_far_micros: int) -> int | None:
        """The whole period's total at the pace so far (an estimate), while it is in progress."""
        if not self.in_progress or self.elapsed_days == 0:
            return None
        return so_far_micros * self.total_days // self.elapsed_days


def _previous_start(period: Period) -> tuple[date, date]:
    """Start and end of the period before ``period``: the previous calendar month or quarter when
    ``period`` is one, else the same number of days just before it."""
    if period.start.day == 1:
        for months in (1, 3):
            if period.end == add_months(period.start, months):
                start = add_months(period.start, -months)
                return start, period.start
    return period.start - timedelta(days=period.days), period.start


def compare_span(period: Period, today: date, history_start: date | None = None) -> Comparison:
    """The fair comparison of ``period`` as seen on ``today`` (the org's date), given the earliest
    day with stored data (``history_start``; None: nothing stored, which compares with zero)."""
    if period.start > today:
        empty = Period(period.start, period.start, period.label)
        return Comparison(period, empty, empty, NOT_STARTED)
    elapsed_end = min(period.end, today + timedelta(days=1))
    elapsed = Period(period.start, elapsed_end, period.label)
    previous_start, previous_end = _previous_start(period)
    # A closed period compares with the whole previous one (November with all of October); one in
    # progress with as many days from the previous one's start, stopping at its end (Mar 1-29
    # against a 28-day February is all of February).
    if elapsed_end == period.end:
        span_end = previous_end
    else:
        span_end = min(previous_end, previous_start + timedelta(days=elapsed.days))
    previous = Period(previous_start, span_end, f"previous {elapsed.days} days")
    if history_start is not None and previous.start < history_start:
        return Comparison(period, elapsed, previous, PARTIAL_HISTORY, history_start)
    return Comparison(period, elapsed, previous)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def calendar_period(kind: str, today: date) -> Period:
    """The current calendar week (Monday start), month or quarter containing ``today``."""
    if kind == "week":
        start = week_start(today)
        return Period(start, start + timedelta(days=7), "this week")
    if kind == "month":
        start = month_start(today)
        return Period(start, add_months(start, 1), start.strftime("%B %Y"))
    if kind == "quarter":
        start = quarter_start(today)
        return Period(start, add_months(start, 3), f"Q{(start.month - 1) // 3 + 1} {start.year}")
    raise PeriodError(f"unknown period kind {kind!r}")


def parse_period(text: str | None, today: date) -> Period:
    """Parse a period token; ``today`` is the current date in the org's timezone."""
    token = (text or "month").strip().lower()
    if token in ("week", "month", "quarter"):
        return calendar_period(token, today)
    if match := _DAYS.match(token):
        days = int(match.group(1))
        if not 1 <= days <= MAX_RANGE_DAYS:
            raise PeriodError(f"`{token}` is out of range: use between 1d and {MAX_RANGE_DAYS}d")
        end = today + timedelta(days=1)
        return Period(end - timedelta(days=days), end, f"last {days} days")
    if match := _MONTH.match(token):
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12 or not 2000 <= year <= 2100:
            raise PeriodError(f"`{token}` is not a month (expected YYYY-MM, e.g. 2026-03)")
        start = date(year, month, 1)
        return Period(start, add_months(start, 1), start.strftime("%B %Y"))
    if match := _RANGE.match(token):
        try:
            first, last = date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2))
        except ValueError:
            raise PeriodError(f"`{token}` holds a date that does not exist") from None
        if last < first:
            raise PeriodError(f"`{token}` ends before it starts")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise PeriodError(f"`{token}` is longer than {MAX_RANGE_DAYS} days")
        return Period(first, last + timedelta(days=1), f"{first.isoformat()} to {last.isoformat()}")
    raise PeriodError(f"`{text}` is not a period. Use {PERIOD_HELP}.")


def looks_like_period(token: str) -> bool:
    token = token.strip().lower()
    return bool(
        token in ("week", "month", "quarter")
        or _DAYS.match(token)
        or _MONTH.match(token)
        or _RANGE.match(token)
    )
