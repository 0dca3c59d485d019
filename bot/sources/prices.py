"""A versioned price table for *estimates*, where a vendor reports tokens but no dollars.

Keys are lower-case model-name prefixes; the longest matching prefix wins, so
``claude-opus-4-5-20251101`` takes the ``claude-opus-4-5`` row and ``claude-opus-4-1-20250805`` the
``claude-opus-4`` row. Values are USD per million tokens as Decimal strings. Bump
``PRICE_TABLE_VERSION`` whenever a price changes: every estimate stores it in its raw unit
(``estimate:<version>``), so a figure can always be traced to the table that produced it.

Cache writes: Anthropic charges 1.25x input for 5-minute writes (listed here) and 2x for 1-hour
writes; callers that only have one cache-write count price it all at the 5-minute rate. OpenAI
does not charge extra for cache writes, so its ``cache_write`` equals ``input``.
"""

from __future__ import annotations

from decimal import Decimal

from bot.money import ESTIMATE_PREFIX, Money, usd_to_micros

PRICE_TABLE_VERSION = "2026-02"
ESTIMATE_UNIT = f"{ESTIMATE_PREFIX}{PRICE_TABLE_VERSION}"

PER_MILLION = Decimal(1_000_000)


def _p(input: str, output: str, cache_read: str, cache_write: str) -> dict[str, str]:
    return {"input": input, "output": output, "cache_read": cache_read, "cache_write": cache_write}


# Model-name prefix -> USD per million tokens (public list prices, standard tier).
PRICES: dict[str, dict[str, str]] = {
    # Anthropic
    "claude-opus-4-6": _p("5", "25", "0.50", "6.25"),
    "claude-opus-4-5": _p("5", "25", "0.50", "6.25"),
    "claude-opus-4": _p("15", "75", "1.50", "18.75"),  # opus 4 and 4.1
    "claude-sonnet-4": _p("3", "15", "0.30", "3.75"),  # sonnet 4, 4.5, 4.6 (<= 200k context)
    "claude-haiku-4-5": _p("1", "5", "0.10", "1.25"),
    "claude-3-7-sonnet": _p("3", "15", "0.30", "3.75"),
    "claude-3-5-sonnet": _p("3", "15", "0.30", "3.75"),
    "claude-3-5-haiku": _p("0.80", "4", "0.08", "1"),
    "claude-3-opus": _p("15", "75", "1.50", "18.75"),
    "claude-3-haiku": _p("0.25", "1.25", "0.03", "0.30"),
    # OpenAI
    "gpt-5.2": _p("1.75", "14", "0.175", "1.75"),
    "gpt-5-pro": _p("15", "120", "15", "15"),
    "gpt-5-mini": _p("0.25", "2", "0.025", "0.25"),
    "gpt-5-nano": _p("0.05", "0.40", "0.005", "0.05"),
    "gpt-5": _p("1.25", "10", "0.125", "1.25"),  # gpt-5, gpt-5.1, gpt-5-codex
    "gpt-4.1-mini": _p("0.40", "1.60", "0.10", "0.40"),
    "gpt-4.1-nano": _p("0.10", "0.40", "0.025", "0.10"),
    "gpt-4.1": _p("2", "8", "0.50", "2"),
    "gpt-4o-mini": _p("0.15", "0.60", "0.075", "0.15"),
    "gpt-4o": _p("2.50", "10", "1.25", "2.50"),
    "o4-mini": _p("1.10", "4.40", "0.275", "1.10"),
    "o3-pro": _p("20", "80", "20", "20"),
    "o3-mini": _p("1.10", "4.40", "0.55", "1.10"),
    "o3": _p("2", "8", "0.50", "2"),
    "o1-mini": _p("1.10", "4.40", "0.55", "1.10"),
    "o1": _p("15", "60", "7.50", "15"),
}


def price_for(model: str | None) -> dict[str, Decimal] | None:
    """The price row for ``model`` (longest prefix wins), or None when the model is unknown.

    A ``vendor/`` prefix (``anthropic/claude-sonnet-4``, as routers write it) is ignored.
    """
    name = (model or "").strip().lower().rsplit("/", 1)[-1]
    if not name:
        return None
    best = max((prefix for prefix in PRICES if name.startswith(prefix)), key=len, default=None)
    if best is None:
        return None
    return {kind: Decimal(value) for kind, value in PRICES[best].items()}


def estimate(
    model: str | None, input: int = 0, output: int = 0, cache_read: int = 0, cache_write: int = 0
) -> Money | None:
    """Estimated cost of these token counts, exact to the micro-dollar; None for an unknown model."""
    price = price_for(model)
    if price is None:
        return None
    usd = (
        Decimal(input) * price["input"]
        + Decimal(output) * price["output"]
        + Decimal(cache_read) * price["cache_read"]
        + Decimal(cache_write) * price["cache_write"]
    ) / PER_MILLION
    return Money(usd_to_micros(usd), format(usd.normalize(), "f"), ESTIMATE_UNIT)
