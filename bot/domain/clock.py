"""The one clock: storage speaks UTC, people speak the org's timezone.

Every "now" and "today" in Tokenwise comes from here, so a test can reason about which day a row
falls on, and no module computes "today" in the server's local zone by accident.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo


def utcnow() -> datetime:
    """The current moment, timezone-aware in UTC (what storage keeps)."""
    return datetime.now(UTC)


def utc_today() -> date:
    """The current UTC day: the day vendors' daily buckets and sync windows are cut on."""
    return utcnow().date()


def local_today(now: datetime, tz: tzinfo) -> date:
    """The calendar day ``now`` falls on in the org's timezone (what people see as "today")."""
    return now.astimezone(tz).date()


def org_today(tz: tzinfo) -> date:
    """Today in the org's timezone."""
    return local_today(utcnow(), tz)
