from decimal import Decimal

import pytest

from bot.domain.money import Money, format_usd, to_decimal


def test_units_convert_exactly():
    assert Money.from_usd(Decimal("0.06")).micros == 60_000
    assert Money.from_cents("123.45").micros == 1_234_500  # Anthropic: cents as a decimal string
    assert Money.from_cents(1025).micros == 10_250_000  # Claude Code: cents as a number
    assert Money.from_cents(Decimal("12.3456")).micros == 123_456  # Cursor: float cents, parsed as Decimal
    assert Money.from_usd("0.0000005").micros == 0  # half-even rounding below a micro-dollar
    assert Money.from_usd("0.0000015").micros == 2


def test_sums_keep_the_raw_amount():
    total = Money.from_cents("10.5") + Money.from_cents("0.25")
    assert (total.micros, total.raw_amount, total.raw_unit) == (107_500, "10.75", "usd_cents")
    with pytest.raises(ValueError):
        Money.from_cents(1) + Money.from_usd(1)


def test_floats_and_garbage_are_refused():
    with pytest.raises(TypeError):
        to_decimal(0.1)
    for bad in ("abc", "NaN", "Infinity", None, True):
        with pytest.raises(ValueError):
            to_decimal(bad)


def test_format_usd():
    assert format_usd(1_234_567_891) == "$1,234.57"
    assert format_usd(5_000) == "$0.00"  # half-even
    assert format_usd(15_000) == "$0.02"
    assert format_usd(5_001) == "$0.01"
    assert format_usd(-2_500_000) == "-$2.50"
    assert format_usd(0) == "$0.00"
