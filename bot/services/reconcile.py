"""Reconciliation: what each vendor bills against what Tokenwise attributes.

Connectors that know the vendor's own total for a span report it as ``VendorTotal`` records; the
sync engine stores them in ``vendor_total`` (bot.db.store.upsert_vendor_totals). This module puts
them beside the stored usage rows of the same source and span:

- a vendor total with ``what == "billed"`` is compared with the source's billed rows, one with
  ``what == "billed_and_estimated"`` with its billed and estimated rows together (usage only:
  seat rows, Tokenwise's own estimate of the seat price, are never part of a vendor's spend);
- a difference above ``MISMATCH_TOLERANCE`` (1%) of the vendor's figure is a mismatch: it is logged
  after each sync and shown in ``/tokens status`` and ``/tokens reconcile``;
- per source and period: billed, estimated, unattributed (no person) dollars and unpriced tokens;
- estimates beside bills where both exist (Claude Code's estimates vs Anthropic's billed cost).

Only the latest observation of a span is used: Cursor's cycle-to-date spend is stored once a day
as ``[cycle start, tomorrow)``, and the newest of those is the one to compare.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import Connection, Engine, and_, case, func, select

from bot.db.models import UsageDaily, VendorTotalRow
from bot.domain.money import format_usd
from bot.domain.periods import Period, days_covered
from bot.domain.records import BILLED, ESTIMATED, SEAT, TOTAL_BILLED, TOTAL_BILLED_AND_ESTIMATED, UNPRICED
from bot.services.reports import UnpricedModel, unpriced_models, usage_tokens

log = logging.getLogger(__name__)

#: A vendor total and the stored rows may differ by this fraction of the vendor's figure.
MISMATCH_TOLERANCE = Decimal("0.01")

#: Which stored cost bases each kind of vendor total is compared with.
COMPARED_BASES: dict[str, tuple[str, ...]] = {
    TOTAL_BILLED: (BILLED,),
    TOTAL_BILLED_AND_ESTIMATED: (BILLED, ESTIMATED),
}

#: (estimating vendor, billing vendor, what the line says): estimates shown beside the bill.
DRIFT_PAIRS = (("claude_code", "anthropic", "Claude Code estimates vs Anthropic's billed cost"),)


def percent_of(part: int, whole: int) -> Decimal | None:
    """``part`` as a percentage of ``whole``, to 0.1 (None when ``whole`` is 0)."""
    if whole == 0:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class TotalCheck:
    """One vendor total against the stored rows of the same source and span."""

    source: str
    what: str
    start: date
    end: date  # exclusive
    vendor_micros: int
    attributed_micros: int

    @property
    def difference_micros(self) -> int:
        return self.attributed_micros - self.vendor_micros

    @property
    def difference_percent(self) -> Decimal | None:
        return percent_of(self.difference_micros, self.vendor_micros)

    @property
    def mismatched(self) -> bool:
        if self.vendor_micros == 0:
            return self.attributed_micros != 0
        return abs(Decimal(self.difference_micros)) > abs(Decimal(self.vendor_micros)) * MISMATCH_TOLERANCE


@dataclass(frozen=True, slots=True)
class SourceFigures:
    """What Tokenwise attributes to one source over the period, and the vendor's totals."""

    source: str
    vendor: str
    billed_micros: int
    estimated_micros: int
    unattributed_micros: int  # dollars on rows that belong to no person (billed or estimated)
    unpriced_tokens: int
    checks: tuple[TotalCheck, ...]


@dataclass(frozen=True, slots=True)
class Drift:
    label: str
    estimate_micros: int
    billed_micros: int

    @property
    def difference_percent(self) -> Decimal | None:
        return percent_of(self.estimate_micros - self.billed_micros, self.billed_micros)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    period: Period
    sources: tuple[SourceFigures, ...]
    unpriced: tuple[UnpricedModel, ...]
    drift: tuple[Drift, ...]

    @property
    def mismatches(self) -> list[TotalCheck]:
        return [check for figures in self.sources for check in figures.checks if check.mismatched]


def latest_vendor_totals(
    conn: Connection, *, workspace_id: str, start: date, end: date, source: str | None = None
) -> list[VendorTotalRow]:
    """Vendor totals whose span overlaps ``[start, end)``: for each (source, span start, what)
    the one observed up to the latest day."""
    table = VendorTotalRow.__table__
    query = select(table).where(
        VendorTotalRow.workspace_id == workspace_id,
        VendorTotalRow.start < end,
        VendorTotalRow.end > start,
    )
    if source is not None:
        query = query.where(VendorTotalRow.source == source)
    latest: dict[tuple[str, date, str], VendorTotalRow] = {}
    for values in conn.execute(query.order_by(table.c.end)).mappings():
        row = VendorTotalRow(**values)
        latest[(row.source, row.start, row.what)] = row
    return sorted(latest.values(), key=lambda r: (r.source, r.start, r.what))


def _stored_micros(conn: Connection, workspace_id: str, total: VendorTotalRow) -> int:
    bases = COMPARED_BASES.get(total.what)
    if bases is None:
        raise ValueError(f"unknown vendor total kind {total.what!r}")
    value = conn.execute(
        select(func.coalesce(func.sum(UsageDaily.cost_micros), 0)).where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.source == total.source,
            UsageDaily.cost_basis.in_(bases),
            UsageDaily.kind != SEAT,  # a vendor's spend is its usage; seat estimates are not in it
            UsageDaily.day >= total.start,
            UsageDaily.day < total.end,
        )
    ).scalar_one()
    return int(value)


def checks(
    conn: Connection, *, workspace_id: str, start: date, end: date, source: str | None = None
) -> list[TotalCheck]:
    return [
        TotalCheck(
            total.source,
            total.what,
            total.start,
            total.end,
            total.amount_micros,
            _stored_micros(conn, workspace_id, total),
        )
        for total in latest_vendor_totals(
            conn, workspace_id=workspace_id, start=start, end=end, source=source
        )
        if total.what in COMPARED_BASES
    ]


def reconcile(conn: Connection, *, workspace_id: str, period: Period) -> Reconciliation:
    """Every source with usage or a vendor total in ``period``, side by side."""
    unattributed = UsageDaily.person_id.is_(None)
    rows = conn.execute(
        select(
            UsageDaily.source,
            func.min(UsageDaily.vendor),
            func.sum(case((UsageDaily.cost_basis == BILLED, UsageDaily.cost_micros), else_=0)),
            func.sum(case((UsageDaily.cost_basis == ESTIMATED, UsageDaily.cost_micros), else_=0)),
            func.sum(case((unattributed, UsageDaily.cost_micros), else_=0)),
            func.sum(case((UsageDaily.cost_basis == UNPRICED, usage_tokens(UsageDaily)), else_=0)),
        )
        .where(
            and_(
                UsageDaily.workspace_id == workspace_id,
                UsageDaily.day >= period.start,
                UsageDaily.day < period.end,
            )
        )
        .group_by(UsageDaily.source)
    ).all()
    figures = {
        source: (vendor, int(b or 0), int(e or 0), int(u or 0), int(t or 0))
        for source, vendor, b, e, u, t in rows
    }
    by_source: dict[str, list[TotalCheck]] = {}
    vendors: dict[str, str] = {}
    for check in checks(conn, workspace_id=workspace_id, start=period.start, end=period.end):
        by_source.setdefault(check.source, []).append(check)
    for row in latest_vendor_totals(conn, workspace_id=workspace_id, start=period.start, end=period.end):
        vendors[row.source] = row.vendor
    sources = tuple(
        SourceFigures(
            source,
            figures[source][0] if source in figures else vendors[source],
            *(figures[source][1:] if source in figures else (0, 0, 0, 0)),
            checks=tuple(by_source.get(source, ())),
        )
        for source in sorted(set(figures) | set(by_source))
    )
    return Reconciliation(
        period,
        sources,
        tuple(unpriced_models(conn, workspace_id=workspace_id, start=period.start, end=period.end)),
        tuple(_drift(sources)),
    )


def _drift(sources: tuple[SourceFigures, ...]) -> list[Drift]:
    found = []
    for estimating, billing, label in DRIFT_PAIRS:
        estimate = sum(s.estimated_micros for s in sources if s.vendor == estimating)
        billed = sum(s.billed_micros for s in sources if s.vendor == billing)
        if estimate and billed:
            found.append(Drift(label, estimate, billed))
    return found


def log_mismatches(engine: Engine, *, workspace_id: str, source: str, today: date) -> list[TotalCheck]:
    """After a good sync: warn about each of the source's current vendor totals (spans that reach
    past ``today``) that the stored rows miss by more than 1% (``/tokens status`` shows the same)."""
    with engine.connect() as conn:
        found = checks(conn, workspace_id=workspace_id, start=today, end=date.max, source=source)
    for check in found:
        if check.mismatched:
            log.warning(
                "%s: %s total for %s differs: the vendor reports %s, stored rows sum to %s",
                source,
                check.what.replace("_", " "),
                days_covered(check.start, check.end, today),
                format_usd(check.vendor_micros),
                format_usd(check.attributed_micros),
            )
    return found
