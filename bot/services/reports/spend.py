"""Spend reports of a person and of the org, aggregated in SQL (one grouped query per table per
period).

They read the daily rollups (``usage_person_daily``, ``usage_org_daily``, ``activity_org_daily``,
kept in step with the daily tables by ``bot.db.rollups``): the same sums, a fraction of the rows.

Personal views sum every row attributed to the person (billed and estimated, labelled apart).
Org views sum rows with ``in_org_total`` so the same dollars are never counted twice, and show
how much of that is attributed to people.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date, timedelta

from sqlalchemy import Connection, and_, bindparam, case, func, literal_column, or_, select

from bot.db.models import ActivityDaily, ActivityOrgDaily, Person, UsageOrgDaily, UsagePersonDaily
from bot.domain.models import canonical_model
from bot.domain.periods import Comparison, Period, compare_span
from bot.domain.records import ESTIMATED, SEAT
from bot.services.reports.value import (
    VALUE_FIELDS,
    Value,
    ValueRatios,
    _value_columns,
    _value_rows,
    value_ratios,
)


@dataclass
class VendorSpend:
    vendor: str
    cost_micros: int = 0
    estimated_micros: int = 0  # part of cost_micros that is an estimate
    seat_micros: int = 0  # seat costs (not usage); part of cost_micros
    unattributed_micros: int = 0  # org view: part of cost_micros with no person
    covered_micros: int = 0  # org view: estimates left out because another row bills them
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    requests: int = 0
    #: Tokens another source also reports (rows with the ``tokens_only`` unit, e.g. Anthropic usage
    #: that Claude Code covers): shown under this vendor, counted once in the total.
    overlap_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens


@dataclass
class SpendReport:
    period: Period
    vendors: list[VendorSpend] = field(default_factory=list)
    value: list[Value] = field(default_factory=list)
    previous_total_micros: int = 0
    active_people: int = 0
    #: Top (vendor, model, cost) of the period (personal and team reports).
    models: list[tuple[str, str, int]] = field(default_factory=list)
    #: What ``previous_total_micros`` covers (the same elapsed span of the previous period, or why
    #: there is nothing fair to compare with). None: the whole previous period, no "today" given.
    comparison: Comparison | None = None

    @property
    def total_micros(self) -> int:
        return sum(v.cost_micros for v in self.vendors)

    @property
    def estimated_micros(self) -> int:
        return sum(v.estimated_micros for v in self.vendors)

    @property
    def unattributed_micros(self) -> int:
        return sum(v.unattributed_micros for v in self.vendors)

    @property
    def tokens(self) -> int:
        """Distinct tokens: a token two sources report (see ``overlap_tokens``) counts once."""
        return sum(v.tokens - v.overlap_tokens for v in self.vendors)

    @property
    def requests(self) -> int:
        return sum(v.requests for v in self.vendors)

    def ratios(self) -> ValueRatios:
        """Spend per accepted line, per AI commit and per merged PR of this report (side by side)."""
        return value_ratios(self.total_micros, self.value)

    def value_total(self) -> Value:
        total = Value("all")
        for item in self.value:
            for name in VALUE_FIELDS:
                setattr(total, name, getattr(total, name) + getattr(item, name))
        return total

    @property
    def is_empty(self) -> bool:
        return not self.vendors and all(v.is_empty for v in self.value)


def _usage_columns(table):
    """Per-vendor sums from a usage rollup. From the org rollup, cost counts only
    ``in_org_total`` rows (each dollar once) and the rest is reported as ``covered_micros``;
    personal and team views count every row of their people. Tokens always count every row."""
    org = table is UsageOrgDaily
    cost = table.cost_micros
    counted = case((table.in_org_total.is_(True), cost), else_=0) if org else cost
    tokens = table.input_tokens + table.output_tokens + table.cache_read_tokens + table.cache_write_tokens
    return [
        table.vendor,
        func.sum(counted),
        func.sum(case((table.cost_basis == ESTIMATED, counted), else_=0)),
        func.sum(case((table.kind == SEAT, counted), else_=0)),
        func.sum(case((table.in_org_total.is_(True), table.unattributed_micros), else_=0))
        if org
        else func.sum(0),
        func.sum(case((table.in_org_total.is_(False), cost), else_=0)) if org else func.sum(0),
        func.sum(table.input_tokens),
        func.sum(table.output_tokens),
        func.sum(table.cache_read_tokens),
        func.sum(table.cache_write_tokens),
        func.sum(table.requests),
        func.sum(case((table.tokens_only.is_(True), tokens), else_=0)),
    ]


#: VendorSpend's summed fields, in ``_usage_columns`` order (after the vendor).
VENDOR_SUMS = [f.name for f in fields(VendorSpend)][1:]


def _vendor_rows(rows: Iterable) -> list[VendorSpend]:
    found = [VendorSpend(vendor, *(int(x or 0) for x in rest)) for vendor, *rest in rows]
    return sorted(found, key=lambda v: (-v.cost_micros, v.vendor))


def _in_period(table, period: Period):
    return (table.day >= period.start, table.day < period.end)


def used_rows(table=UsagePersonDaily):
    """A rollup row that shows the person's own use (not a seat's fixed price): who counts towards
    a minimum group shown to members (docs/privacy.md, "Aggregates")."""
    return (
        table.kind != SEAT,
        or_(
            table.cost_micros > 0,
            table.input_tokens > 0,
            table.output_tokens > 0,
            table.requests > 0,
        ),
    )


class ModelTally:
    """Spend per model across vendors, under one name per model (``canonical_model``): Cursor's
    ``claude-4-sonnet`` and Anthropic's ``claude-sonnet-4-20250514`` are one line. A line's key is
    (the vendors it came through, comma-joined; the canonical name)."""

    def __init__(self) -> None:
        self.cost: dict[str, int] = {}
        self.vendors: dict[str, set[str]] = {}
        self.people: dict[str, set[int]] = {}

    def add(self, vendor: str, model: str, cost: int, person_id: int | None = None) -> None:
        name = canonical_model(model)
        self.cost[name] = self.cost.get(name, 0) + cost
        self.vendors.setdefault(name, set()).add(vendor)
        if person_id is not None:
            self.people.setdefault(name, set()).add(person_id)

    def key(self, name: str) -> tuple[str, str]:
        return ",".join(sorted(self.vendors[name])), name

    def top(self, limit: int) -> list[tuple[str, str, int]]:
        ranked = sorted(self.cost.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [(*self.key(name), cost) for name, cost in ranked]

    def people_per_line(self) -> dict[tuple[str, str], frozenset[int]]:
        return {self.key(name): frozenset(people) for name, people in self.people.items()}


def _add_vendor(vendors: dict[str, VendorSpend], vendor: str, sums: list[int]) -> None:
    total = vendors.setdefault(vendor, VendorSpend(vendor))
    for name, amount in zip(VENDOR_SUMS, sums, strict=True):
        setattr(total, name, getattr(total, name) + amount)


def _sorted_vendors(vendors: dict[str, VendorSpend]) -> list[VendorSpend]:
    return sorted(vendors.values(), key=lambda v: (-v.cost_micros, v.vendor))


def _history_start(workspace_id):
    return (
        select(func.min(UsageOrgDaily.day))
        .where(UsageOrgDaily.workspace_id == workspace_id)
        .scalar_subquery()
    )


def history_start(conn: Connection, workspace_id: str) -> date | None:
    """The earliest day any source stored for the workspace (None: nothing stored yet)."""
    return conn.execute(select(_history_start(workspace_id))).scalar_one_or_none()


def comparison_for(
    conn: Connection, workspace_id: str, period: Period, today: date | None, *, history: bool = True
) -> Comparison:
    """The fair comparison of ``period`` on ``today``; without ``today`` the whole previous period
    (callers that compare closed periods, the benchmarks). ``history=False``: without reading
    the history's start (the same span; the status as if the history reached back far enough)."""
    if today is None:
        return Comparison(period, period, period.previous())
    return compare_span(period, today, history_start(conn, workspace_id) if history else None)


def _person_spend():
    """One range scan over both periods per (vendor, model): the vendors, the models and the
    previous total that took three queries (docs/benchmarks.md, B2/B5), and the history's start.
    Rows between the comparison span's end and the period's start belong to neither. Built once
    with bind parameters: building and keying this statement per request cost ~1 ms of CPU."""
    table = UsagePersonDaily
    start, end = bindparam("start"), bindparam("end")
    current = case((table.day >= start, 1), else_=0).label("current")
    in_either = or_(
        and_(table.day >= start, table.day < end),
        and_(table.day >= bindparam("previous_start"), table.day < bindparam("previous_end")),
    )
    history = _history_start(bindparam("workspace_id")).label("history")
    return (
        select(current, table.model, *_usage_columns(table), history)
        .where(
            table.workspace_id == bindparam("workspace_id"),
            table.person_id.in_(bindparam("person_ids", expanding=True)),
            table.day >= bindparam("low"),
            table.day < end,
            in_either,
        )
        .group_by(literal_column("current"), table.vendor, table.model)
    )


_PERSON_SPEND = _person_spend()
_PERSON_VALUE = (
    select(*_value_columns())
    .where(
        ActivityDaily.workspace_id == bindparam("workspace_id"),
        ActivityDaily.person_id.in_(bindparam("person_ids", expanding=True)),
        ActivityDaily.day >= bindparam("start"),
        ActivityDaily.day < bindparam("end"),
    )
    .group_by(ActivityDaily.vendor)
)


def person_report(
    conn: Connection,
    *,
    workspace_id: str,
    person_ids: list[int],
    period: Period,
    top_models: int = 5,
    today: date | None = None,
) -> SpendReport:
    """Spend, top models and value of one person (or several identities' people) over ``period``,
    and the total of its fair comparison span (``comparison_for``)."""
    # The comparison's span does not depend on the history's start, only its status does: the
    # start is read in the same statement as the spend (a statement fewer per /tokens me, B5).
    comparison = comparison_for(conn, workspace_id, period, today, history=False)
    previous = comparison.previous
    whose = {"workspace_id": workspace_id, "person_ids": list(person_ids)}
    rows = conn.execute(
        _PERSON_SPEND,
        {
            **whose,
            "start": period.start,
            "end": period.end,
            "previous_start": previous.start,
            "previous_end": previous.end,
            "low": min(previous.start, period.start),
        },
    ).all()
    vendors: dict[str, VendorSpend] = {}
    models = ModelTally()
    previous_total = 0
    if today is not None:
        history = rows[0].history if rows else history_start(conn, workspace_id)
        comparison = compare_span(period, today, history)
    for in_period, model, vendor, *sums, _ in rows:
        sums = [int(x or 0) for x in sums]
        if not in_period:
            previous_total += sums[0]
            continue
        if model:
            models.add(vendor, model, sums[0])
        _add_vendor(vendors, vendor, sums)
    value = conn.execute(_PERSON_VALUE, {**whose, "start": period.start, "end": period.end}).all()
    return SpendReport(
        period,
        _sorted_vendors(vendors),
        _value_rows(value),
        previous_total,
        len(person_ids),
        models=models.top(top_models),
        comparison=comparison,
    )


def org_report(
    conn: Connection, *, workspace_id: str, period: Period, today: date | None = None
) -> SpendReport:
    """Org totals per vendor, counting only rows in the org total, unattributed spend included."""
    comparison = comparison_for(conn, workspace_id, period, today)
    rows = conn.execute(
        select(*_usage_columns(UsageOrgDaily))
        .where(UsageOrgDaily.workspace_id == workspace_id, *_in_period(UsageOrgDaily, period))
        .group_by(UsageOrgDaily.vendor)
    ).all()
    previous_total = conn.execute(
        select(func.coalesce(func.sum(UsageOrgDaily.cost_micros), 0)).where(
            UsageOrgDaily.workspace_id == workspace_id,
            UsageOrgDaily.in_org_total.is_(True),
            *_in_period(UsageOrgDaily, comparison.previous),
        )
    ).scalar_one()
    value = conn.execute(
        select(ActivityOrgDaily.vendor, *(func.sum(getattr(ActivityOrgDaily, name)) for name in VALUE_FIELDS))
        .where(ActivityOrgDaily.workspace_id == workspace_id, *_in_period(ActivityOrgDaily, period))
        .group_by(ActivityOrgDaily.vendor)
    ).all()
    # People with a row in the period: one primary-key probe per person, not a DISTINCT over the
    # month's ~600,000 rollup rows (70 ms instead of 350 ms at 5,000 people).
    has_usage = (
        select(UsagePersonDaily.person_id)
        .where(
            UsagePersonDaily.workspace_id == workspace_id,
            UsagePersonDaily.person_id == Person.id,
            *_in_period(UsagePersonDaily, period),
        )
        .exists()
    )
    active = conn.execute(
        select(func.count()).select_from(Person).where(Person.workspace_id == workspace_id, has_usage)
    ).scalar_one()
    return SpendReport(
        period,
        _vendor_rows(rows),
        _value_rows(value),
        int(previous_total),
        int(active),
        comparison=comparison,
    )


def org_models(
    conn: Connection, *, workspace_id: str, period: Period, limit: int = 5
) -> list[tuple[str, str, int]]:
    """Top (vendors, model, cost) of the whole org in the period, each dollar once, one line per
    model across vendors (``ModelTally``)."""
    cost = func.sum(UsageOrgDaily.cost_micros)
    rows = conn.execute(
        select(UsageOrgDaily.vendor, UsageOrgDaily.model, cost)
        .where(
            UsageOrgDaily.workspace_id == workspace_id,
            *_in_period(UsageOrgDaily, period),
            UsageOrgDaily.model != "",
            UsageOrgDaily.in_org_total.is_(True),
        )
        .group_by(UsageOrgDaily.vendor, UsageOrgDaily.model)
    ).all()
    models = ModelTally()
    for vendor, model, spent in rows:
        models.add(vendor, model, int(spent or 0))
    return models.top(limit)


def weekly_spend(
    conn: Connection, *, workspace_id: str, person_ids: list[int], first_week: date, weeks: int
) -> list[tuple[date, int]]:
    """Spend per Monday-start week for ``weeks`` weeks from ``first_week`` (zeros included)."""
    end = first_week + timedelta(days=7 * weeks)
    rows = conn.execute(
        select(UsagePersonDaily.day, func.sum(UsagePersonDaily.cost_micros))
        .where(
            UsagePersonDaily.workspace_id == workspace_id,
            UsagePersonDaily.person_id.in_(person_ids),
            UsagePersonDaily.day >= first_week,
            UsagePersonDaily.day < end,
        )
        .group_by(UsagePersonDaily.day)
    ).all()
    totals = [0] * weeks
    for day, cost in rows:
        totals[(day - first_week).days // 7] += int(cost or 0)
    return [(first_week + timedelta(days=7 * i), totals[i]) for i in range(weeks)]
