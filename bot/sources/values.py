"""How every connector reads a vendor's numbers and dates (vendors disagree on their types).

Counts (tokens, requests, lines, pages) arrive as JSON ints, as integral Decimals (JSON is parsed
with ``parse_float=Decimal``), as digit strings, or as null. Amounts are read by
``bot.domain.money.to_decimal`` (str, int or Decimal; floats refused), which :func:`count` uses
too. Days and timestamps arrive as ``YYYY-MM-DD`` or RFC 3339 text.

A value that is not what it claims to be raises ValueError or TypeError; each connector turns
that into its own ``SourceError`` (naming the endpoint), so a malformed field fails the run
instead of silently becoming zero. Only null (a field the vendor left out) reads as zero.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from bot.domain.money import kind_of, to_decimal


def count(value: Any, field: str = "count", *, negative: bool = True, truncate: bool = False) -> int:
    """A whole number from a vendor: None is 0, an int as it is, an integral Decimal or numeric
    string as its int. Raises ValueError for a bool, a non-numeric or non-finite string, a
    fraction (unless ``truncate``: toward zero, for vendors whose counts were always read so) and,
    with ``negative=False``, a negative number; TypeError for a float or any other type."""
    if type(value) is int and (negative or value >= 0):  # the usual case, first
        return value
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{field} is not a number but {kind_of(value)}")
    try:
        number = to_decimal(value)
    except ValueError:
        raise ValueError(f"{field} is not a number but {kind_of(value)}") from None
    if not number.is_finite() or (not truncate and number != number.to_integral_value()):
        raise ValueError(f"{field} is not a whole number")
    if not negative and number < 0:
        raise ValueError(f"{field} is negative")
    return int(number)


def utc_moment(value: Any, field: str = "timestamp") -> datetime | None:
    """An ISO 8601 / RFC 3339 timestamp in UTC (one without an offset is taken as UTC); None
    for null or an empty string."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field} is not a timestamp but {kind_of(value)}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:  # its message would repeat the text
        raise ValueError(f"{field} is not a timestamp: {kind_of(value)} not in ISO 8601 form") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def utc_day(value: Any, field: str = "date") -> date:
    """``2025-08-08``, ``2025-08-08T00:00:00Z`` or any RFC 3339 time -> its UTC calendar day."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} is not a date but {kind_of(value)}")
    text = value.strip()
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{field} is not a date: {kind_of(value)} not in ISO 8601 form") from None
    moment = utc_moment(text, field)
    assert moment is not None
    return moment.date()


def optional_day(value: Any, field: str = "date") -> date | None:
    """:func:`utc_day`, or None for null or an empty string."""
    return None if value is None or value == "" else utc_day(value, field)
