"""Versioned price tables for *estimates*, where a vendor reports tokens but no dollars.

Every estimate stores the version of the table that made it in its raw unit
(``estimate:<version>``), and every table ever shipped stays here (``TABLES``), so a stored figure
can always be traced to, and recomputed from, the prices that produced it: ``estimate(...,
version=...)`` and ``table(version)``. A price change is a new table with a new version, never an
edit of an old one.

Prices are public list prices in USD per million tokens, as Decimal strings, with their sources
in docs/sources/anthropic.md and docs/sources/openai.md ("Prices"). Rows marked "from reference
notes" could not be confirmed on a stored vendor page.

Matching (tables from 2026-12 on): a row matches the model name itself or a snapshot of it, i.e.
the name followed by a date (``-20251101``, ``-2025-08-07``) or ``-latest``. A name that only
*starts* with a row's name is a different model and matches nothing: ``claude-opus-4`` does not
price ``claude-opus-4-7``, ``gpt-5`` does not price ``gpt-5.5`` or ``gpt-5-pro``. An unknown model
is never priced by a look-alike; it is stored as ``unpriced`` (see ``estimate_or_unpriced``).
The 2026-02 table keeps the longest-prefix rule it was made with, so its figures stay reproducible.

Cache writes: ``cache_write`` counts every write, ``cache_write_1h`` the part written for one hour;
Anthropic charges 1.25x input for 5-minute writes and 2x for 1-hour writes. OpenAI charges no
premium for cache writes on models before GPT-6 (the row's write prices equal ``input``).

Service tiers: a row lists the tiers the vendor prices as a multiple of the standard rate (batch:
0.5). A tier the row does not list (Anthropic's priority tier, sold by commitment) has no list price:
the usage is unpriced rather than guessed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from bot.domain.money import ESTIMATE_PREFIX, Money, usd_to_micros
from bot.domain.records import ESTIMATED, UNPRICED

log = logging.getLogger(__name__)

PER_MILLION = Decimal(1_000_000)
STANDARD = "standard"


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens for one model."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    #: Service tier -> multiplier on every token kind (the standard tier is 1).
    tiers: Mapping[str, Decimal] = field(default_factory=dict)

    def multiplier(self, tier: str | None) -> Decimal | None:
        if not tier or tier == STANDARD:
            return Decimal(1)
        return self.tiers.get(tier)


_ANTHROPIC_TIERS = MappingProxyType({"batch": Decimal("0.5")})
_OPENAI_TIERS = MappingProxyType({"batch": Decimal("0.5"), "flex": Decimal("0.5")})
# GPT-6 family: Fast / priority processing at 2x (from reference notes, see docs/sources/openai.md).
_OPENAI_6_TIERS = MappingProxyType({**_OPENAI_TIERS, "priority": Decimal("2")})


def _claude(input: str, output: str, cache_read: str, write_5m: str, write_1h: str) -> Price:
    return Price(*(Decimal(v) for v in (input, output, cache_read, write_5m, write_1h)), _ANTHROPIC_TIERS)


def _openai(input: str, output: str, cache_read: str, cache_write: str | None = None, *, tiers=None) -> Price:
    write = Decimal(cache_write or input)  # no write premium unless the vendor lists one
    return Price(Decimal(input), Decimal(output), Decimal(cache_read), write, write, tiers or _OPENAI_TIERS)


@dataclass(frozen=True)
class PriceTable:
    version: str
    rows: Mapping[str, Price]
    #: True: a row matches its model and that model's snapshots only. False (2026-02 only): the
    #: longest matching name prefix wins, which priced claude-opus-4-7 as claude-opus-4.
    exact: bool = True

    @property
    def unit(self) -> str:
        return f"{ESTIMATE_PREFIX}{self.version}"

    def price_for(self, model: str | None) -> Price | None:
        name = normalize(model)
        if not name:
            return None
        if self.exact:
            base = _SNAPSHOT.sub("", name)
            return self.rows.get(name) or self.rows.get(base)
        best = max((prefix for prefix in self.rows if name.startswith(prefix)), key=len, default=None)
        return None if best is None else self.rows[best]


#: A snapshot suffix: ``-20251101``, ``-2024-08-06`` or ``-latest``.
_SNAPSHOT = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$")


def normalize(model: str | None) -> str:
    """Lower case, without a router's ``vendor/`` prefix or Claude Code's ``[1m]`` context tag;
    Claude versions written with dots (``claude-opus-4.7``, as routers do) read as ``claude-opus-4-7``."""
    name = (model or "").strip().lower().rsplit("/", 1)[-1].removesuffix("[1m]")
    return name.replace(".", "-") if name.startswith("claude") else name


def _v2026_02() -> PriceTable:
    """The table shipped until 2026-11, kept so its estimates stay reproducible. It had one cache
    write price (the 5-minute one) and priced every write with it."""

    def row(input: str, output: str, cache_read: str, cache_write: str) -> Price:
        write = Decimal(cache_write)
        return Price(Decimal(input), Decimal(output), Decimal(cache_read), write, write)

    rows = {
        "claude-opus-4-6": row("5", "25", "0.50", "6.25"),
        "claude-opus-4-5": row("5", "25", "0.50", "6.25"),
        "claude-opus-4": row("15", "75", "1.50", "18.75"),
        "claude-sonnet-4": row("3", "15", "0.30", "3.75"),
        "claude-haiku-4-5": row("1", "5", "0.10", "1.25"),
        "claude-3-7-sonnet": row("3", "15", "0.30", "3.75"),
        "claude-3-5-sonnet": row("3", "15", "0.30", "3.75"),
        "claude-3-5-haiku": row("0.80", "4", "0.08", "1"),
        "claude-3-opus": row("15", "75", "1.50", "18.75"),
        "claude-3-haiku": row("0.25", "1.25", "0.03", "0.30"),
        "gpt-5.2": row("1.75", "14", "0.175", "1.75"),
        "gpt-5-pro": row("15", "120", "15", "15"),
        "gpt-5-mini": row("0.25", "2", "0.025", "0.25"),
        "gpt-5-nano": row("0.05", "0.40", "0.005", "0.05"),
        "gpt-5": row("1.25", "10", "0.125", "1.25"),
        "gpt-4.1-mini": row("0.40", "1.60", "0.10", "0.40"),
        "gpt-4.1-nano": row("0.10", "0.40", "0.025", "0.10"),
        "gpt-4.1": row("2", "8", "0.50", "2"),
        "gpt-4o-mini": row("0.15", "0.60", "0.075", "0.15"),
        "gpt-4o": row("2.50", "10", "1.25", "2.50"),
        "o4-mini": row("1.10", "4.40", "0.275", "1.10"),
        "o3-pro": row("20", "80", "20", "20"),
        "o3-mini": row("1.10", "4.40", "0.55", "1.10"),
        "o3": row("2", "8", "0.50", "2"),
        "o1-mini": row("1.10", "4.40", "0.55", "1.10"),
        "o1": row("15", "60", "7.50", "15"),
    }
    return PriceTable("2026-02", MappingProxyType(rows), exact=False)


def _v2026_12() -> PriceTable:
    """List prices read on 2026-12-02 (sources in docs/sources/anthropic.md and openai.md)."""
    opus_4_5 = _claude("5", "25", "0.50", "6.25", "10")  # Opus 4.5 to 4.8: one price
    opus_4 = _claude("15", "75", "1.50", "18.75", "30")
    sonnet_4 = _claude(
        "3", "15", "0.30", "3.75", "6"
    )  # <= 200k input (Sonnet 4 / 4.5 long context costs more)
    gpt_5 = _openai("1.25", "10", "0.125")
    gpt_pro = _openai("30", "180", "30")
    rows = {
        # Anthropic, platform.claude.com/docs/en/about-claude/pricing and the model pages
        "claude-fable-5-1": _claude("10", "50", "0.25", "12.50", "20"),
        "claude-mythos-5-1": _claude("10", "50", "0.25", "12.50", "20"),
        "claude-fable-5": _claude("10", "50", "1", "12.50", "20"),
        "claude-mythos-5": _claude("10", "50", "1", "12.50", "20"),
        "claude-opus-5-5": _claude("4", "20", "0.20", "5", "8"),
        "claude-opus-5": _claude("5", "25", "0.50", "6.25", "10"),
        "claude-opus-4-8": opus_4_5,
        "claude-opus-4-7": opus_4_5,
        "claude-opus-4-6": opus_4_5,
        "claude-opus-4-5": opus_4_5,
        "claude-opus-4-1": opus_4,
        "claude-opus-4-0": opus_4,
        "claude-opus-4": opus_4,
        # Sonnet 5.5 cache reads: $0.10 since 2026-10-07 (0.05x input, pricing page); the model page
        # still read $0.20 when stored.
        "claude-sonnet-5-5": _claude("2", "10", "0.10", "2.50", "4"),
        "claude-sonnet-5": _claude("2", "10", "0.20", "2.50", "4"),
        "claude-sonnet-4-6": sonnet_4,
        "claude-sonnet-4-5": sonnet_4,
        "claude-sonnet-4-0": sonnet_4,
        "claude-sonnet-4": sonnet_4,
        "claude-3-7-sonnet": sonnet_4,
        "claude-3-5-sonnet": sonnet_4,
        # Haiku 5.5: prompts up to 100k tokens (from reference notes: the band prices; the model page
        # says "from $0.10 / $0.50"). Longer prompts cost 5x; see the gaps in anthropic.md.
        "claude-haiku-5-5": _claude("0.10", "0.50", "0.01", "0.125", "0.20"),
        "claude-haiku-4-5": _claude("1", "5", "0.10", "1.25", "2"),
        "claude-3-5-haiku": _claude("0.80", "4", "0.08", "1", "1.6"),
        "claude-3-opus": opus_4,
        "claude-3-haiku": _claude("0.25", "1.25", "0.03", "0.30", "0.50"),
        # OpenAI, developers.openai.com/api/docs/models and pricing (see openai.md for each row's source)
        "gpt-6.2-astra": _openai("8", "40", "0.40", "10", tiers=_OPENAI_6_TIERS),  # from reference notes
        "gpt-6.2-sol": _openai("2", "10", "0.10", "2.50", tiers=_OPENAI_6_TIERS),  # from reference notes
        "gpt-6.1-sol": _openai("2", "10", "0.10", "2.50", tiers=_OPENAI_6_TIERS),  # from reference notes
        "gpt-6-astra": _openai("10", "50", "1", "12.50", tiers=_OPENAI_6_TIERS),
        "gpt-6-sol": _openai("2", "10", "0.20", "2.50", tiers=_OPENAI_6_TIERS),  # from reference notes
        "gpt-6-luna": _openai("0.10", "0.50", "0.01", "0.125", tiers=_OPENAI_6_TIERS),  # from reference notes
        "gpt-5.6-sol": _openai("4", "20", "0.40"),
        "gpt-5.6": _openai("4", "20", "0.40"),  # alias of gpt-5.6-sol
        "gpt-5.6-terra": _openai("2", "12", "0.20"),
        "gpt-5.6-luna": _openai("0.20", "1.20", "0.02"),
        "gpt-5.5-pro": gpt_pro,
        "gpt-5.5": _openai("5", "30", "0.50"),
        "gpt-5.4-pro": gpt_pro,
        "gpt-5.4-mini": _openai("0.75", "4.50", "0.075"),
        "gpt-5.4-nano": _openai("0.20", "1.25", "0.02"),
        "gpt-5.4": _openai("2.50", "15", "0.25"),
        "gpt-5.2-pro": _openai("21", "168", "21"),
        "gpt-5.2": _openai("1.75", "14", "0.175"),
        "gpt-5.1-codex": gpt_5,
        "gpt-5.1": gpt_5,
        "gpt-5-codex": gpt_5,
        "gpt-5-pro": _openai("15", "120", "15"),
        "gpt-5-mini": _openai("0.25", "2", "0.025"),
        "gpt-5-nano": _openai("0.05", "0.40", "0.005"),
        "gpt-5": gpt_5,
        "gpt-4.1-mini": _openai("0.40", "1.60", "0.10"),
        "gpt-4.1-nano": _openai("0.10", "0.40", "0.025"),
        "gpt-4.1": _openai("2", "8", "0.50"),
        "gpt-4o-mini": _openai("0.15", "0.60", "0.075"),
        "gpt-4o": _openai("2.50", "10", "1.25"),
        "o4-mini": _openai("1.10", "4.40", "0.275"),
        "o3-pro": _openai("20", "80", "20"),
        "o3-mini": _openai("1.10", "4.40", "0.55"),
        "o3": _openai("2", "8", "0.50"),
        "o1-mini": _openai("1.10", "4.40", "0.55"),
        "o1": _openai("15", "60", "7.50"),
    }
    return PriceTable("2026-12", MappingProxyType(rows))


#: Every table ever shipped, by version. The last one prices new estimates.
TABLES: Mapping[str, PriceTable] = MappingProxyType({t.version: t for t in (_v2026_02(), _v2026_12())})
PRICE_TABLE_VERSION = "2026-12"
ESTIMATE_UNIT = TABLES[PRICE_TABLE_VERSION].unit


def table(version: str = PRICE_TABLE_VERSION) -> PriceTable:
    """The table of ``version`` (e.g. from a stored ``estimate:<version>`` raw unit)."""
    found = TABLES.get(version.removeprefix(ESTIMATE_PREFIX))
    if found is None:
        raise KeyError(f"no price table {version!r}; known: {', '.join(TABLES)}")
    return found


def price_for(model: str | None, version: str = PRICE_TABLE_VERSION) -> Price | None:
    """The price row for ``model`` in table ``version``, or None when the model is unknown."""
    return table(version).price_for(model)


def estimate(
    model: str | None,
    input: int = 0,
    output: int = 0,
    cache_read: int = 0,
    cache_write: int = 0,
    cache_write_1h: int = 0,
    *,
    tier: str | None = None,
    version: str = PRICE_TABLE_VERSION,
) -> Money | None:
    """Estimated cost of these token counts, exact to the micro-dollar; None when the model (or
    the service tier) has no price. ``cache_write`` counts every write, ``cache_write_1h`` the
    one-hour part of it."""
    if not 0 <= cache_write_1h <= cache_write:
        raise ValueError(f"1-hour cache writes ({cache_write_1h}) outside 0..{cache_write} writes")
    prices = table(version)
    price = prices.price_for(model)
    multiplier = price.multiplier(tier) if price else None
    if price is None or multiplier is None:
        return None
    usd = (
        (
            Decimal(input) * price.input
            + Decimal(output) * price.output
            + Decimal(cache_read) * price.cache_read
            + Decimal(cache_write - cache_write_1h) * price.cache_write_5m
            + Decimal(cache_write_1h) * price.cache_write_1h
        )
        * multiplier
        / PER_MILLION
    )
    return Money(usd_to_micros(usd), format(usd.normalize(), "f"), prices.unit)


_warned: set[tuple[str, str, str]] = set()


def estimate_or_unpriced(
    source: str, model: str | None, *tokens: int, tier: str | None = None
) -> tuple[Money, str]:
    """(cost, cost basis) for a usage row: an estimate (basis ``estimated``), or, for a model or
    tier with no price, zero dollars with basis and raw unit ``unpriced`` so the tokens are still
    counted and shown as unpriced, never as a silent $0. Logged once per (source, model, tier).
    ``tokens`` are ``estimate``'s counts in its order: input, output, cache read, cache write,
    one-hour cache write."""
    cost = estimate(model, *tokens, tier=tier)
    if cost is not None:
        return cost, ESTIMATED
    key = (source, model or "", tier or STANDARD)
    if key not in _warned:
        _warned.add(key)
        total = sum(tokens[:4])  # the one-hour cache writes are part of the cache writes
        tier_note = f" ({tier} tier)" if tier and tier != STANDARD else ""
        log.warning(
            "%s: unpriced model %r%s: %d tokens; add it to bot/sources/prices.py",
            source,
            model or "",
            tier_note,
            total,
        )
    return Money(0, "0", UNPRICED), UNPRICED  # the basis doubles as the raw unit
