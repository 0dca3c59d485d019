"""Spend and value reports, aggregated in SQL (one grouped query per table per period).

They read the daily rollups (``usage_person_daily``, ``usage_org_daily``, ``activity_org_daily``,
kept in step with the daily tables by ``bot.db.rollups``): the same sums, a fraction of the rows.

Personal views sum every row attributed to the person (billed and estimated, labelled apart).
Org views sum rows with ``in_org_total`` so the same dollars are never counted twice, and show
how much of that is attributed to people.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date

from sqlalchemy import Connection, and_, case, func, literal_column, or_, select

from bot.db.models import (
    ActivityDaily,
    ActivityOrgDaily,
    Person,
    UsageDaily,
    UsageOrgDaily,
    UsagePersonDaily,
)
from bot.domain.ai_rules import DELIVERY_VENDORS
from bot.domain.models import canonical_model
from bot.domain.periods import Comparison, Period, compare_span
from bot.domain.records import ACTIVITY_FIELDS, ESTIMATED, SEAT, UNPRICED

VALUE_FIELDS = ACTIVITY_FIELDS


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
class Value:
    vendor: str
    lines_suggested: int = 0
    lines_accepted: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    suggestions_shown: int = 0
    acceptances: int = 0
    rejections: int = 0
    commits: int = 0
    pull_requests: int = 0
    prs_opened: int = 0
    prs_merged: int = 0
    ai_prs_merged: int = 0
    reviews: int = 0
    sessions: int = 0
    requests: int = 0
    active_seconds: int = 0

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted out of decided (accept or reject) where the vendor reports rejections,
        else accepted out of suggestions shown (Copilot, Cursor tabs)."""
        if self.rejections:
            return self.acceptances / (self.acceptances + self.rejections)
        if self.suggestions_shown:
            return min(1.0, self.acceptances / self.suggestions_shown)
        return None

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in VALUE_FIELDS)


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


def _value_rows(rows: Iterable) -> list[Value]:
    found = [Value(vendor, *(int(x or 0) for x in rest)) for vendor, *rest in rows]
    return sorted([v for v in found if not v.is_empty], key=lambda v: v.vendor)


def _value_columns():
    return [ActivityDaily.vendor, *(func.sum(getattr(ActivityDaily, name)) for name in VALUE_FIELDS)]


def _in_period(table, period: Period):
    return (table.day >= period.start, table.day < period.end)


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


def history_start(conn: Connection, workspace_id: str) -> date | None:
    """The earliest day any source stored for the workspace (None: nothing stored yet)."""
    return conn.execute(
        select(func.min(UsageOrgDaily.day)).where(UsageOrgDaily.workspace_id == workspace_id)
    ).scalar_one_or_none()


def comparison_for(conn: Connection, workspace_id: str, period: Period, today: date | None) -> Comparison:
    """The fair comparison of ``period`` on ``today``; without ``today`` the whole previous period
    (callers that compare closed periods, the benchmarks)."""
    if today is None:
        return Comparison(period, period, period.previous())
    return compare_span(period, today, history_start(conn, workspace_id))


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
    table = UsagePersonDaily
    comparison = comparison_for(conn, workspace_id, period, today)
    previous = comparison.previous
    current = case((table.day >= period.start, 1), else_=0).label("current")
    # One range scan over both periods per (vendor, model): the vendors, the models and the
    # previous total that took three queries (docs/benchmarks.md, B2/B5). Rows between the
    # comparison span's end and the period's start belong to neither.
    in_either = or_(
        and_(table.day >= period.start, table.day < period.end),
        and_(table.day >= previous.start, table.day < previous.end),
    )
    rows = conn.execute(
        select(current, table.model, *_usage_columns(table))
        .where(
            table.workspace_id == workspace_id,
            table.person_id.in_(person_ids),
            table.day >= min(previous.start, period.start),
            table.day < period.end,
            in_either,
        )
        .group_by(literal_column("current"), table.vendor, table.model)
    ).all()
    vendors: dict[str, VendorSpend] = {}
    models = ModelTally()
    previous_total = 0
    for in_period, model, vendor, *sums in rows:
        sums = [int(x or 0) for x in sums]
        if not in_period:
            previous_total += sums[0]
            continue
        if model:
            models.add(vendor, model, sums[0])
        _add_vendor(vendors, vendor, sums)
    value = conn.execute(
        select(*_value_columns())
        .where(
            ActivityDaily.workspace_id == workspace_id,
            ActivityDaily.person_id.in_(person_ids),
            *_in_period(ActivityDaily, period),
        )
        .group_by(ActivityDaily.vendor)
    ).all()
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


# -- teams ---------------------------------------------------------------------------------
# A team's numbers are the sum of its members' personal numbers (billed and estimated, like
# ``/tokens me``), counted only on the days each person belonged to the team. The membership
# test is an EXISTS, so overlapping stretches could never count a row twice.


def on_team(table, team_id: int, within: tuple[date, date] | None = None):
    """The one definition of "this row counts for the team": the person was a member that day.

    ``within``: the query reads only days in ``[start, end)``; members whose stretch covers all
    of it then count without the per-row test (most of a team, most of the time).
    """
    from sqlalchemy import and_, or_

    from bot.db.models import TeamMembership as M

    # The (uncorrelated) IN list lets the database walk the members' rows through the
    # (workspace, person, day) key instead of testing every row of the period, and workspace_id
    # lets the EXISTS use ix_team_membership_team: without them a 500-person team's report over
    # 10M rows took minutes (docs/benchmarks.md, B3).
    members = select(M.person_id).where(M.team_id == team_id)
    on_team_that_day = (
        select(M.id)
        .where(
            M.workspace_id == table.workspace_id,
            M.team_id == team_id,
            M.person_id == table.person_id,
            M.joined_on <= table.day,
            or_(M.left_on.is_(None), M.left_on > table.day),
        )
        .exists()
    )
    if within is None:
        return and_(table.person_id.in_(members), on_team_that_day)
    start, end = within
    throughout = select(M.person_id).where(
        M.team_id == team_id, M.joined_on <= start, or_(M.left_on.is_(None), M.left_on >= end)
    )
    return and_(table.person_id.in_(members), or_(table.person_id.in_(throughout), on_team_that_day))


@dataclass
class TeamReport(SpendReport):
    #: (person id, spend) biggest first: individual numbers, for the team's managers and admins.
    member_spend: list[tuple[int, int]] = field(default_factory=list)
    #: Who is behind each vendor line and each model (vendor, model): what a member's view must
    #: know to fold lines from too few people (``aggregates.fold_for_member``).
    vendor_people: dict[str, frozenset[int]] = field(default_factory=dict)
    model_people: dict[tuple[str, str], frozenset[int]] = field(default_factory=dict)


def team_report(
    conn: Connection,
    *,
    workspace_id: str,
    team_id: int,
    period: Period,
    top_models: int = 5,
    today: date | None = None,
) -> TeamReport:
    """Spend per vendor and model, value signals, active people, each member's spend and the
    previous period's total of one team."""
    table = UsagePersonDaily
    # One pass over the period, grouped per person, vendor and model (a few thousand rows for 500
    # people) and folded below: five scans of the team's rows became one (docs/benchmarks.md, B3).
    rows = conn.execute(
        select(table.person_id, table.model, *_usage_columns(table))
        .where(
            table.workspace_id == workspace_id,
            on_team(table, team_id, within=(period.start, period.end)),
            *_in_period(table, period),
        )
        .group_by(table.person_id, table.vendor, table.model)
    ).all()
    vendors: dict[str, VendorSpend] = {}
    models = ModelTally()
    member_spend: dict[int, int] = {}
    vendor_people: dict[str, set[int]] = {}
    for person_id, model, vendor, *sums in rows:
        sums = [int(x or 0) for x in sums]
        member_spend[int(person_id)] = member_spend.get(int(person_id), 0) + sums[0]
        vendor_people.setdefault(vendor, set()).add(int(person_id))
        if model:
            models.add(vendor, model, sums[0], int(person_id))
        _add_vendor(vendors, vendor, sums)
    comparison = comparison_for(conn, workspace_id, period, today)
    previous = comparison.previous
    previous_total = conn.execute(
        select(func.coalesce(func.sum(table.cost_micros), 0)).where(
            table.workspace_id == workspace_id,
            on_team(table, team_id, within=(previous.start, previous.end)),
            *_in_period(table, previous),
        )
    ).scalar_one()
    value = conn.execute(
        select(*_value_columns())
        .where(
            ActivityDaily.workspace_id == workspace_id,
            on_team(ActivityDaily, team_id, within=(period.start, period.end)),
            *_in_period(ActivityDaily, period),
        )
        .group_by(ActivityDaily.vendor)
    ).all()
    return TeamReport(
        period,
        _sorted_vendors(vendors),
        _value_rows(value),
        int(previous_total),
        len(member_spend),
        models=models.top(top_models),
        member_spend=sorted(member_spend.items(), key=lambda item: (-item[1], item[0])),
        vendor_people={vendor: frozenset(people) for vendor, people in vendor_people.items()},
        model_people=models.people_per_line(),
        comparison=comparison,
    )


def weekly_spend(
    conn: Connection, *, workspace_id: str, person_ids: list[int], first_week: date, weeks: int
) -> list[tuple[date, int]]:
    """Spend per Monday-start week for ``weeks`` weeks from ``first_week`` (zeros included)."""
    from datetime import timedelta

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


# -- delivery (github_delivery) ------------------------------------------------------------
# Merged pull requests next to spend. "AI-assisted" is high (a mark on the PR itself, stored at
# sync) or low (no mark, but the author used an AI tool while the PR was worked on): low is
# decided here, at query time, because vendor data lands later than GitHub's. Spend is the
# people's personal spend, as in ``/tokens me`` (every row attributed to them, seats included).


@dataclass(frozen=True)
class IdleWeek:
    """A person's spend in one Monday-start week with no PR of theirs merged from that week's
    first day in the period until ``idle_days`` after the week ended."""

    person_id: int
    week_start: date
    spend_micros: int


@dataclass
class DeliveryMeasures:
    period: Period
    idle_days: int
    spend_micros: int = 0
    merged_prs: int = 0
    ai_high: int = 0
    ai_low: int = 0
    idle_weeks: list[IdleWeek] = field(default_factory=list)
    #: Spend in weeks whose ``idle_days`` have not all passed yet and had no merge so far.
    undecided_micros: int = 0

    @property
    def ai_assisted(self) -> int:
        return self.ai_high + self.ai_low

    @property
    def ai_share(self) -> float | None:
        """For display only (counts stay integers)."""
        return self.ai_assisted / self.merged_prs if self.merged_prs else None

    @property
    def spend_per_merged_micros(self) -> int | None:
        return per_item_micros(self.spend_micros, self.merged_prs)

    @property
    def spend_per_ai_pr_micros(self) -> int | None:
        return per_item_micros(self.spend_micros, self.ai_assisted)

    @property
    def idle_spend_micros(self) -> int:
        return sum(week.spend_micros for week in self.idle_weeks)


@dataclass(frozen=True, slots=True)
class ValueRatios:
    """Spend beside three value signals, never folded into one score. Each is None when there is
    nothing to divide by (no accepted lines, no AI commits, no merged PRs)."""

    per_accepted_line: int | None = None
    per_ai_commit: int | None = None
    per_merged_pr: int | None = None

    @property
    def is_empty(self) -> bool:
        return self.per_accepted_line is None and self.per_ai_commit is None and self.per_merged_pr is None


def value_ratios(spend_micros: int, value: Iterable[Value]) -> ValueRatios:
    """``spend_micros`` per accepted line and per commit reported by AI tools (the code host's
    commits are not AI commits), and per PR merged on the code host."""
    lines = commits = merged = 0
    for item in value:
        lines += item.lines_accepted
        merged += item.prs_merged
        if item.vendor not in DELIVERY_VENDORS:
            commits += item.commits
    if spend_micros <= 0:
        return ValueRatios()
    return ValueRatios(
        per_item_micros(spend_micros, lines),
        per_item_micros(spend_micros, commits),
        per_item_micros(spend_micros, merged),
    )


def _lower_median(values: list[int]) -> int | None:
    """The median in whole micro-USD (the mean of the middle two, rounded down, when even)."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) // 2


def team_median_ratios(
    conn: Connection, *, workspace_id: str, team_id: int, period: Period, min_group_size: int
) -> ValueRatios | None:
    """The median over a team's active members of each person's ``ValueRatios`` in ``period``, or
    None when fewer than ``min_group_size`` members had usage: a median of too few people is
    nearly one person's figure. Members without a signal are left out of that measure's median."""
    spend = dict(
        conn.execute(
            select(UsagePersonDaily.person_id, func.sum(UsagePersonDaily.cost_micros))
            .where(
                UsagePersonDaily.workspace_id == workspace_id,
                on_team(UsagePersonDaily, team_id, within=(period.start, period.end)),
                *_in_period(UsagePersonDaily, period),
            )
            .group_by(UsagePersonDaily.person_id)
        ).all()
    )
    active = [int(person) for person, micros in spend.items() if person is not None]
    if len(active) < min_group_size:
        return None
    values: dict[int, list[Value]] = {person: [] for person in active}
    for person_id, *row in conn.execute(
        select(ActivityDaily.person_id, *_value_columns())
        .where(
            ActivityDaily.workspace_id == workspace_id,
            ActivityDaily.person_id.in_(active),
            on_team(ActivityDaily, team_id, within=(period.start, period.end)),
            *_in_period(ActivityDaily, period),
        )
        .group_by(ActivityDaily.person_id, ActivityDaily.vendor)
    ).all():
        values[int(person_id)].extend(_value_rows([row]))
    per_person = [value_ratios(int(spend[person] or 0), values[person]) for person in active]
    return ValueRatios(
        *(
            _lower_median([getattr(r, name) for r in per_person if getattr(r, name) is not None])
            for name in ("per_accepted_line", "per_ai_commit", "per_merged_pr")
        )
    )


def per_item_micros(total_micros: int, items: int) -> int | None:
    """Spend per item in whole micro-USD (rounded half up); None when there is nothing to divide by."""
    if items <= 0:
        return None
    return (total_micros + items // 2) // items


def _utc_day_start(day: date):
    from datetime import UTC, datetime

    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _as_utc(moment):
    from datetime import UTC

    # SQLite hands timestamps back without their offset; they were stored as UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def ai_tool_days(
    conn: Connection, *, workspace_id: str, person_ids: list[int], start: date, end: date
) -> dict[int, set[date]]:
    """UTC days on which each person used an AI tool per another vendor's data: usage rows with
    spend, tokens or requests (seats are not use) or activity rows with any signal."""
    from sqlalchemy import or_

    from bot.domain.ai_rules import DELIVERY_VENDORS

    used = or_(
        UsageDaily.cost_micros != 0,
        UsageDaily.input_tokens > 0,
        UsageDaily.output_tokens > 0,
        UsageDaily.cache_read_tokens > 0,
        UsageDaily.cache_write_tokens > 0,
        UsageDaily.requests > 0,
    )
    active = or_(*(getattr(ActivityDaily, name) > 0 for name in ACTIVITY_FIELDS))
    found: dict[int, set[date]] = {}
    for table, condition in ((UsageDaily, used), (ActivityDaily, active)):
        query = select(table.person_id, table.day).where(
            table.workspace_id == workspace_id,
            table.person_id.in_(person_ids),
            table.day >= start,
            table.day < end,
            table.vendor.not_in(sorted(DELIVERY_VENDORS)),
            condition,
        )
        if table is UsageDaily:
            query = query.where(UsageDaily.kind != SEAT)
        for person_id, day in conn.execute(query.distinct()).all():
            found.setdefault(int(person_id), set()).add(day)
    return found


def delivery_measures(
    conn: Connection,
    workspace_id: str,
    person_ids: list[int],
    period: Period,
    idle_days: int,
    *,
    today: date | None = None,
) -> DeliveryMeasures:
    """Merged PRs, AI-assisted share, spend per merged / AI-assisted PR and idle spend of a set of
    people over ``period`` (merge days and usage days are UTC days, like the other reports).

    Idle spend is judged per person and week: a week's spend is idle when none of that person's
    PRs merged from the week's first day (in the period) until ``idle_days`` after the week's
    end; until that deadline has passed (``today``, default the UTC date) it is "undecided".
    """
    from datetime import UTC, datetime, timedelta

    from bot.db.models import PullRequest
    from bot.domain.ai_rules import HIGH, LOW, Detection, with_usage
    from bot.domain.periods import week_start

    result = DeliveryMeasures(period, idle_days)
    if not person_ids:
        return result
    today = today or datetime.now(UTC).date()
    horizon = period.end + timedelta(days=7 + idle_days)  # the last merge that can clear a week
    rows = conn.execute(
        select(
            PullRequest.person_id,
            PullRequest.opened_at,
            PullRequest.first_commit_at,
            PullRequest.merged_at,
            PullRequest.ai_confidence,
            PullRequest.ai_rule,
        ).where(
            PullRequest.workspace_id == workspace_id,
            PullRequest.person_id.in_(person_ids),
            PullRequest.merged_at >= _utc_day_start(period.start),
            PullRequest.merged_at < _utc_day_start(horizon),
        )
    ).all()
    merges: dict[int, list[date]] = {}
    in_period = []
    for row in rows:
        merged_day = _as_utc(row.merged_at).date()
        merges.setdefault(int(row.person_id), []).append(merged_day)
        if merged_day < period.end:
            worked_from = _as_utc(row.first_commit_at or row.opened_at).date()
            in_period.append((row, min(worked_from, merged_day), merged_day))

    unmarked = [item for item in in_period if item[0].ai_confidence != HIGH]
    ai_days: dict[int, set[date]] = {}
    if unmarked:
        ai_days = ai_tool_days(
            conn,
            workspace_id=workspace_id,
            person_ids=person_ids,
            start=min(first for _, first, _ in unmarked),
            end=max(last for _, _, last in unmarked) + timedelta(days=1),
        )
    for row, first, last in in_period:
        result.merged_prs += 1
        detection = with_usage(
            Detection(row.ai_confidence, row.ai_rule), first, last, ai_days.get(int(row.person_id), ())
        )
        result.ai_high += detection.confidence == HIGH
        result.ai_low += detection.confidence == LOW

    spend: dict[int, dict[date, int]] = {}
    for person_id, day, cost in conn.execute(
        select(UsagePersonDaily.person_id, UsagePersonDaily.day, func.sum(UsagePersonDaily.cost_micros))
        .where(
            UsagePersonDaily.workspace_id == workspace_id,
            UsagePersonDaily.person_id.in_(person_ids),
            *_in_period(UsagePersonDaily, period),
        )
        .group_by(UsagePersonDaily.person_id, UsagePersonDaily.day)
    ).all():
        spend.setdefault(int(person_id), {})[day] = int(cost or 0)
        result.spend_micros += int(cost or 0)

    for person_id in sorted(spend):
        days = spend[person_id]
        week = week_start(period.start)
        while week < period.end:
            low, high = max(week, period.start), min(week + timedelta(days=7), period.end)
            spent = sum(cost for day, cost in days.items() if low <= day < high)
            deadline = week + timedelta(days=7 + idle_days)
            if spent > 0 and not any(low <= day < deadline for day in merges.get(person_id, ())):
                if today >= deadline:
                    result.idle_weeks.append(IdleWeek(person_id, week, spent))
                else:
                    result.undecided_micros += spent
            week += timedelta(days=7)
    return result


# -- unpriced models ---------------------------------------------------------------------------


def usage_tokens():
    """Every token of a usage row (input, output, cache reads and writes), as a SQL expression."""
    return (
        UsageDaily.input_tokens
        + UsageDaily.output_tokens
        + UsageDaily.cache_read_tokens
        + UsageDaily.cache_write_tokens
    )


@dataclass(frozen=True, slots=True)
class UnpricedModel:
    """Tokens of a model with no price (``cost_basis == "unpriced"``): counted, never $0."""

    source: str
    model: str
    tokens: int


def unpriced_models(
    conn: Connection, *, workspace_id: str, start: date, end: date, person_ids: list[int] | None = None
) -> list[UnpricedModel]:
    """Models whose usage in ``[start, end)`` has no price (``cost_basis == "unpriced"``), with
    their tokens, per source; optionally only the rows of ``person_ids``."""
    query = (
        select(UsageDaily.source, UsageDaily.model, func.sum(usage_tokens()))
        .where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.cost_basis == UNPRICED,
            UsageDaily.day >= start,
            UsageDaily.day < end,
        )
        .group_by(UsageDaily.source, UsageDaily.model)
        .order_by(UsageDaily.source, UsageDaily.model)
    )
    if person_ids is not None:
        query = query.where(UsageDaily.person_id.in_(person_ids))
    return [UnpricedModel(source, model, int(tokens or 0)) for source, model, tokens in conn.execute(query)]


def team_unpriced_models(
    conn: Connection, *, workspace_id: str, team_id: int, period: Period, min_people: int
) -> list[UnpricedModel]:
    """The team's unpriced models in ``period`` (rows of the days each person was a member),
    each only when at least ``min_people`` people used it: the line must not show one person's
    figure to the team (privacy rules)."""
    rows = conn.execute(
        select(UsageDaily.source, UsageDaily.model, func.sum(usage_tokens()))
        .where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.cost_basis == UNPRICED,
            on_team(UsageDaily, team_id, within=(period.start, period.end)),
            UsageDaily.day >= period.start,
            UsageDaily.day < period.end,
        )
        .group_by(UsageDaily.source, UsageDaily.model)
        .having(func.count(func.distinct(UsageDaily.person_id)) >= min_people)
        .order_by(UsageDaily.source, UsageDaily.model)
    )
    return [UnpricedModel(source, model, int(tokens or 0)) for source, model, tokens in rows]
