"""Periods and forecast maths (pure): which calendar period a day falls in, when it resets, the
recent daily run-rate and where spend lands at that pace. Rates are ``Fraction`` micros per day
so a forecast never rounds a dollar amount through a float."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from bot.domain.clock import local_today
from bot.domain.periods import Period, calendar_period

RUN_RATE_DAYS = 7  # the forecast's "recent daily run-rate": the last 7 complete days


def current_period(kind: str, now: datetime, tz: ZoneInfo) -> Period:
    """The calendar week (Monday), month or quarter containing ``now`` in the org's timezone."""
    return calendar_period(kind, local_today(now, tz))


def reset_at(period: Period, tz: ZoneInfo) -> datetime:
    """The moment the period ends: local midnight of its end date (DST-aware)."""
    return datetime.combine(period.end, time(0), tzinfo=tz)


# -- forecast maths (pure) ---------------------------------------------------------------------


def run_rate(daily: dict[date, int], today: date, days: int = RUN_RATE_DAYS) -> Fraction:
    """Micros per day over the ``days`` complete days before ``today`` (today is still partial)."""
    start = today - timedelta(days=days)
    return Fraction(sum(v for d, v in daily.items() if start <= d < today), days)


def projected(spent: int, rate: Fraction, today: date, period: Period) -> int:
    """Spend at the end of the period if each remaining day (today included) adds ``rate``."""
    remaining = max(0, (period.end - today).days)
    return spent + math.floor(rate * remaining)


def reach_day(spent: int, target: int, rate: Fraction, today: date, period: Period) -> date | None:
    """The day cumulative spend reaches ``target`` at this pace; None when not before the
    period resets. Today when already reached."""
    if spent >= target:
        return today
    if rate <= 0:
        return None
    days = math.ceil((target - spent) / rate)  # days of spending at ``rate`` needed, today being day 1
    if days > (period.end - today).days:
        return None  # not before the reset (and a tiny rate's millions of days overflow a date)
    return today + timedelta(days=days - 1)


def share_reached(spent: int, ceiling: int, percent: int) -> bool:
    return spent * 100 >= ceiling * percent


def threshold_micros(ceiling: int, percent: int) -> int:
    return -(-ceiling * percent // 100)  # round up: the threshold is reached at or above it
