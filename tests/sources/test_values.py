"""The one reading of vendor numbers and dates every connector shares (bot/sources/values.py):
null is zero, anything malformed raises instead of becoming zero."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bot.domain.money import to_decimal
from bot.sources.values import count, optional_day, utc_day, utc_moment


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 0), (7, 7), (-2, -2), (Decimal("12"), 12), (Decimal("1E+3"), 1000), ("42", 42), (" 5 ", 5)],
)
def test_count_reads_ints_integral_decimals_and_digit_strings(value, expected):
    assert count(value) == expected


@pytest.mark.parametrize("value", [True, "x", "", "NaN", Decimal("1.5"), "2.5", Decimal("Infinity")])
def test_count_refuses_what_is_not_a_whole_number(value):
    with pytest.raises(ValueError, match="tokens"):
        count(value, "tokens")


def test_count_refuses_floats_and_other_types():
    for value in (1.0, [1], {"n": 1}):
        with pytest.raises(TypeError):
            count(value)


def test_count_truncates_only_when_asked_and_refuses_negatives_when_asked():
    assert count(Decimal("12.9"), truncate=True) == 12
    assert count("-3.5", truncate=True) == -3
    with pytest.raises(ValueError, match="additions is negative"):
        count(-1, "additions", negative=False)
    with pytest.raises(ValueError, match="additions is negative"):
        count("-1", "additions", negative=False)


def test_days_and_moments_are_utc():
    assert utc_day("2025-08-08") == date(2025, 8, 8)
    assert utc_day("2025-08-08T23:30:00-02:00") == date(2025, 8, 9)
    assert utc_day("2025-08-08T10:00:00z") == date(2025, 8, 8)
    assert utc_moment("2025-08-08T10:00:00") == datetime(2025, 8, 8, 10, tzinfo=UTC)
    assert utc_moment("2025-08-08T12:00:00+02:00") == datetime(2025, 8, 8, 10, tzinfo=UTC)
    assert utc_moment(None) is None and utc_moment("") is None
    assert optional_day(None) is None and optional_day("2025-01-31") == date(2025, 1, 31)
    for bad in (None, "", 20250808, "yesterday"):
        with pytest.raises(ValueError):
            utc_day(bad)
    with pytest.raises(ValueError, match="submitted_at is not a timestamp"):
        utc_moment(5, "submitted_at")


SECRET_LIKE = "sk-ant-admin01-abcdefghijklmnop"


@pytest.mark.parametrize(
    "read",
    [
        lambda v: count(v, "tokens"),
        lambda v: utc_moment(v, "timestamp"),
        lambda v: utc_day(v, "date"),
        lambda v: utc_day(v[:10], "date"),
        lambda v: to_decimal(v),
    ],
)
def test_an_unreadable_value_is_named_by_field_and_kind_never_echoed(read):
    """A value from outside may be a secret pasted into the wrong field: the error says which field
    and what kind of value it was, not the value."""
    with pytest.raises(ValueError) as raised:
        read(SECRET_LIKE)
    message = str(raised.value)
    assert "a text of" in message and SECRET_LIKE[:10] not in message
