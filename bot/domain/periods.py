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


def days_covered(start: date, end: date, today: date) -> str:
    """``[start, end)`` as the days it holds data for, to say in a log or a CLI line:
    ``2026-11-02 to 2026-12-03 (32 days, today so far)``. The last day shown is inclusive and
    never after ``today``: a window that runs on to tomorrow has no data for it yet."""
    if start > today:
        return f"nothing yet (starts {start})"
    last = min(end - timedelta(days=1), today)
    if last < start:
        return f"no days ({start})"
    count = (last - start).days + 1
    span = f"{start}" if last == start else f"{start} to {last}"
    partial = ", today so far" if last == today else ""
    return f"{span} ({count} day{'s' if count != 1 else ''}{partial})"
