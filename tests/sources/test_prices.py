"""The versioned price tables: every family priced at its list price, no look-alike model priced
by another's row, old tables still answering for the estimates they made, unpriced never $0."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from bot.domain.money import Money
from bot.domain.records import ESTIMATED, UNPRICED
from bot.sources import prices
from bot.sources.prices import (
    ESTIMATE_UNIT,
    PRICE_TABLE_VERSION,
    TABLES,
    estimate,
    estimate_or_unpriced,
    price_for,
)

D = Decimal


def _row(model, version=PRICE_TABLE_VERSION):
    price = price_for(model, version)
    assert price is not None, model
    return (price.input, price.output, price.cache_read, price.cache_write_5m, price.cache_write_1h)


def test_version_and_unit():
    assert PRICE_TABLE_VERSION == "2026-12"
    assert ESTIMATE_UNIT == "estimate:2026-12"
    assert list(TABLES) == ["2026-02", "2026-12"]  # every table ever shipped, oldest first
    assert prices.table("estimate:2026-02").version == "2026-02"  # a stored raw unit names its table
    with pytest.raises(KeyError, match="no price table '1999-01'"):
        prices.table("1999-01")


@pytest.mark.parametrize(
    ("model", "row"),
    [
        # Opus 4.5 to 4.8 list at $5 / $25; 1-hour writes 2x input, 5-minute 1.25x, reads 0.1x
        ("claude-opus-4-8", ("5", "25", "0.50", "6.25", "10")),
        ("claude-opus-4-7", ("5", "25", "0.50", "6.25", "10")),
        ("claude-opus-4-6", ("5", "25", "0.50", "6.25", "10")),
        ("claude-opus-4-5-20251101", ("5", "25", "0.50", "6.25", "10")),
        # only Opus 4.0 / 4.1 (and Opus 3) at $15 / $75
        ("claude-opus-4-1-20250805", ("15", "75", "1.50", "18.75", "30")),
        ("claude-opus-4-20250514", ("15", "75", "1.50", "18.75", "30")),
        ("claude-opus-4-0", ("15", "75", "1.50", "18.75", "30")),
        ("claude-3-opus-20240229", ("15", "75", "1.50", "18.75", "30")),
        # 5.x: each its own row
        ("claude-opus-5", ("5", "25", "0.50", "6.25", "10")),
        ("claude-opus-5-5", ("4", "20", "0.20", "5", "8")),
        ("claude-sonnet-5", ("2", "10", "0.20", "2.50", "4")),
        ("claude-sonnet-5-5", ("2", "10", "0.10", "2.50", "4")),
        ("claude-haiku-5-5", ("0.10", "0.50", "0.01", "0.125", "0.20")),
        ("claude-fable-5", ("10", "50", "1", "12.50", "20")),
        ("claude-fable-5-1", ("10", "50", "0.25", "12.50", "20")),
        ("claude-mythos-5-1", ("10", "50", "0.25", "12.50", "20")),
        # Sonnet 4.x and 3.x, Haiku
        ("claude-sonnet-4-6", ("3", "15", "0.30", "3.75", "6")),
        ("claude-sonnet-4-5-20250929", ("3", "15", "0.30", "3.75", "6")),
        ("claude-sonnet-4-20250514", ("3", "15", "0.30", "3.75", "6")),
        ("claude-3-7-sonnet-latest", ("3", "15", "0.30", "3.75", "6")),
        ("claude-haiku-4-5-20251001", ("1", "5", "0.10", "1.25", "2")),
        ("claude-3-5-haiku-20241022", ("0.80", "4", "0.08", "1", "1.6")),
        ("claude-3-haiku-20240307", ("0.25", "1.25", "0.03", "0.30", "0.50")),
        # OpenAI: GPT-6 lists cache-write prices; earlier models write at the input price
        ("gpt-6-astra", ("10", "50", "1", "12.50", "12.50")),
        ("gpt-6.2-astra", ("8", "40", "0.40", "10", "10")),
        ("gpt-6-sol", ("2", "10", "0.20", "2.50", "2.50")),
        ("gpt-6.1-sol", ("2", "10", "0.10", "2.50", "2.50")),
        ("gpt-6-luna", ("0.10", "0.50", "0.01", "0.125", "0.125")),
        ("gpt-5.6-sol", ("4", "20", "0.40", "4", "4")),
        ("gpt-5.6", ("4", "20", "0.40", "4", "4")),
        ("gpt-5.6-terra", ("2", "12", "0.20", "2", "2")),
        ("gpt-5.6-luna", ("0.20", "1.20", "0.02", "0.20", "0.20")),
        ("gpt-5.5", ("5", "30", "0.50", "5", "5")),
        ("gpt-5.5-pro", ("30", "180", "30", "30", "30")),
        ("gpt-5.4", ("2.50", "15", "0.25", "2.50", "2.50")),
        ("gpt-5.4-mini", ("0.75", "4.50", "0.075", "0.75", "0.75")),
        ("gpt-5.4-nano", ("0.20", "1.25", "0.02", "0.20", "0.20")),
        ("gpt-5.2", ("1.75", "14", "0.175", "1.75", "1.75")),
        ("gpt-5.1", ("1.25", "10", "0.125", "1.25", "1.25")),
        ("gpt-5-2025-08-07", ("1.25", "10", "0.125", "1.25", "1.25")),
        ("gpt-5-mini-2025-08-07", ("0.25", "2", "0.025", "0.25", "0.25")),
        ("gpt-5-nano", ("0.05", "0.40", "0.005", "0.05", "0.05")),
        ("gpt-5-pro", ("15", "120", "15", "15", "15")),
        ("gpt-4.1-mini", ("0.40", "1.60", "0.10", "0.40", "0.40")),
        ("GPT-4o-2024-08-06", ("2.50", "10", "1.25", "2.50", "2.50")),
        ("gpt-4o-mini-2024-07-18", ("0.15", "0.60", "0.075", "0.15", "0.15")),
        ("o3-2025-04-16", ("2", "8", "0.50", "2", "2")),
        ("o3-mini", ("1.10", "4.40", "0.55", "1.10", "1.10")),
        ("o4-mini", ("1.10", "4.40", "0.275", "1.10", "1.10")),
    ],
)
def test_every_family_at_its_list_price(model, row):
    assert _row(model) == tuple(D(v) for v in row)


@pytest.mark.parametrize(
    "model",
    [
        "claude-opus-4-9",  # not claude-opus-4 ($15/$75) by prefix
        "claude-opus-4-7-turbo",
        "claude-sonnet-4-7",
        "claude-sonnet-5-6",  # not claude-sonnet-5
        "claude-haiku-5",  # no such row; not claude-haiku-5-5
        "claude-opus-6",
        "gpt-5.3-codex",  # not gpt-5
        "gpt-5.7",
        "gpt-5-turbo",
        "gpt-6",
        "gpt-6.3-sol",  # not gpt-6-sol
        "gpt-4o-realtime-preview",  # not gpt-4o
        "o3-deep-research",  # not o3
        "claude-experimental-9",
        "llama-3",
        "",
        None,
    ],
)
def test_look_alike_models_are_not_priced_by_another_row(model):
    assert price_for(model) is None
    assert estimate(model, 1000, 1000) is None


def test_names_as_routers_and_claude_code_write_them():
    assert _row("anthropic/claude-opus-4.7") == _row("claude-opus-4-7")
    assert _row("openai/gpt-5.5") == _row("gpt-5.5")
    assert _row("claude-sonnet-5-5[1m]") == _row("claude-sonnet-5-5")
    assert price_for("gpt-5.5") != price_for("gpt-5")  # dots are versions for OpenAI


def test_old_table_still_answers_as_it_did():
    """2026-02 priced claude-opus-4-7 as Opus 4.0 (the bug issue 19 fixed) and every cache write at the
    5-minute rate: kept, so an estimate stored as estimate:2026-02 can be recomputed exactly."""
    assert _row("claude-opus-4-7", "2026-02") == (D("15"), D("75"), D("1.50"), D("18.75"), D("18.75"))
    old = estimate(
        "claude-sonnet-4-20250514", 1_000_000, 200_000, 2_000_000, 500_000, 100_000, version="2026-02"
    )
    assert old == Money(8_475_000, "8.475", "estimate:2026-02")
    assert price_for("claude-opus-5", "2026-02") is None


def test_estimate_is_exact_and_prices_each_cache_write_lifetime():
    # 1M x $3 + 0.2M x $15 + 2M x $0.30 + 0.4M 5-minute writes x $3.75 + 0.1M 1-hour writes x $6
    cost = estimate("claude-sonnet-4-20250514", 1_000_000, 200_000, 2_000_000, 500_000, 100_000)
    assert cost == Money(8_700_000, "8.7", ESTIMATE_UNIT)
    # Opus 4.7: 1M 1-hour writes cost $10 (2x input), 1M 5-minute writes $6.25.
    assert estimate("claude-opus-4-7", cache_write=1_000_000, cache_write_1h=1_000_000).micros == 10_000_000
    assert estimate("claude-opus-4-7", cache_write=1_000_000).micros == 6_250_000
    assert estimate("gpt-4.1-nano", input=1).micros == 0  # $0.0000001 rounds half-even to 0
    assert estimate("gpt-4.1-nano", input=1).raw_amount == "0.0000001"
    assert estimate("claude-opus-4", output=3).micros == 225  # 3 x $75 / 1M
    with pytest.raises(ValueError, match="1-hour cache writes"):
        estimate("claude-opus-4-7", cache_write=10, cache_write_1h=11)


def test_service_tiers():
    standard = estimate("claude-opus-4-7", 1_000_000, 1_000_000)
    assert standard.micros == 30_000_000
    assert estimate("claude-opus-4-7", 1_000_000, 1_000_000, tier="standard") == standard
    assert estimate("claude-opus-4-7", 1_000_000, 1_000_000, tier="batch").micros == 15_000_000  # 50% off
    # Anthropic's priority tier is sold by commitment, with no list price: unpriced, not guessed.
    assert estimate("claude-opus-4-7", 1_000_000, 1_000_000, tier="priority") is None
    assert estimate("gpt-6-sol", 1_000_000, tier="priority").micros == 4_000_000
    assert estimate("gpt-5.5", 1_000_000, tier="flex").micros == 2_500_000


def test_unpriced_is_counted_and_logged_once_per_source_and_model(caplog):
    prices._warned.clear()
    with caplog.at_level(logging.WARNING, logger="bot.sources.prices"):
        first = estimate_or_unpriced("anthropic", "claude-opus-9", 100, 20, 3, 2)
        again = estimate_or_unpriced("anthropic", "claude-opus-9", 5)
        other = estimate_or_unpriced("anthropic-eu", "claude-opus-9", 7)
    assert first == again == other == (Money(0, "0", "unpriced"), UNPRICED)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "anthropic: unpriced model 'claude-opus-9': 125 tokens; add it to bot/sources/prices.py",
        "anthropic-eu: unpriced model 'claude-opus-9': 7 tokens; add it to bot/sources/prices.py",
    ]
    cost, basis = estimate_or_unpriced("anthropic", "claude-opus-4-7", 1_000_000)
    assert (cost, basis) == (Money(5_000_000, "5", ESTIMATE_UNIT), ESTIMATED)
