"""Spend and value reports, aggregated in SQL (one grouped query per table per period).

Personal views sum every row attributed to the person (billed and estimated, labelled apart).
Org views sum rows with ``in_org_total`` so the same dollars are never counted twice, and show
how much of that is attributed to people.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Connection, case, func, select

from bot.db.models import ActivityDaily, UsageDaily
from bot.services.periods import Period
from bot.sources.base import ACTIVITY_FIELDS, ESTIMATED, SEAT

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
        return sum(v.tokens for v in self.vendors)

    @property
    def requests(self) -> int:
        return sum(v.requests for v in self.vendors)

    def value_total(self) -> Value:
        total = Value("all")
        for item in self.value:
            for name in VALUE_FIELDS:
                setattr(total, name, getattr(total, name) + getattr(item, name))
        return total

    @property
    def is_empty(self) -> bool:
        return not self.vendors and all(v.is_empty for v in self.value)


def _usage_columns(*, org: bool):
    """Per-vendor sums. In the org view, cost counts only ``in_org_total`` rows (each dollar
    once) and the rest is reported as ``covered_micros``; tokens always count every row."""
    cost = UsageDaily.cost_micros
    counted = case((UsageDaily.in_org_total.is_(True), cost), else_=0) if org else cost
    cols = [
        UsageDaily.vendor,
        func.sum(counted),
        func.sum(case((UsageDaily.cost_basis == ESTIMATED, counted), else_=0)),
        func.sum(case((UsageDaily.kind == SEAT, counted), else_=0)),
        func.sum(case((UsageDaily.person_id.is_(None), counted), else_=0)) if org else func.sum(0),
        func.sum(case((UsageDaily.in_org_total.is_(False), cost), else_=0)) if org else func.sum(0),
        func.sum(UsageDaily.input_tokens),
        func.sum(UsageDaily.output_tokens),
        func.sum(UsageDaily.cache_read_tokens),
        func.sum(UsageDaily.cache_write_tokens),
        func.sum(UsageDaily.requests),
    ]
    return cols


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


def person_report(
    conn: Connection, *, workspace_id: str, person_ids: list[int], period: Period
) -> SpendReport:
    """Spend and value of one person (or several identities' people) over ``period``."""
    scope = (UsageDaily.workspace_id == workspace_id, UsageDaily.person_id.in_(person_ids))
    rows = conn.execute(
        select(*_usage_columns(org=False))
        .where(*scope, *_in_period(UsageDaily, period))
        .group_by(UsageDaily.vendor)
    ).all()
    previous = period.previous()
    previous_total = conn.execute(
        select(func.coalesce(func.sum(UsageDaily.cost_micros), 0)).where(
            *scope, *_in_period(UsageDaily, previous)
        )
    ).scalar_one()
    value = conn.execute(
        select(*_value_columns())
        .where(
            ActivityDaily.workspace_id == workspace_id,
            ActivityDaily.person_id.in_(person_ids),
            *_in_period(ActivityDaily, period),
        )
        .group_by(ActivityDaily.vendor)
    ).all()
    return SpendReport(period, _vendor_rows(rows), _value_rows(value), int(previous_total), len(person_ids))


def org_report(conn: Connection, *, workspace_id: str, period: Period) -> SpendReport:
    """Org totals per vendor, counting only rows in the org total, unattributed spend included."""
    rows = conn.execute(
        select(*_usage_columns(org=True))
        .where(UsageDaily.workspace_id == workspace_id, *_in_period(UsageDaily, period))
        .group_by(UsageDaily.vendor)
    ).all()
    previous_total = conn.execute(
        select(func.coalesce(func.sum(UsageDaily.cost_micros), 0)).where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.in_org_total.is_(True),
            *_in_period(UsageDaily, period.previous()),
        )
    ).scalar_one()
    value = conn.execute(
        select(*_value_columns())
        .where(ActivityDaily.workspace_id == workspace_id, *_in_period(ActivityDaily, period))
        .group_by(ActivityDaily.vendor)
    ).all()
    active = conn.execute(
        select(func.count(func.distinct(UsageDaily.person_id))).where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.person_id.is_not(None),
            *_in_period(UsageDaily, period),
        )
    ).scalar_one()
    return SpendReport(period, _vendor_rows(rows), _value_rows(value), int(previous_total), int(active))


def model_breakdown(
    conn: Connection, *, workspace_id: str, person_ids: list[int] | None, period: Period, limit: int = 5
) -> list[tuple[str, str, int]]:
    """Top (vendor, model, cost) in the period, for a person set or (None) the whole org."""
    query = select(UsageDaily.vendor, UsageDaily.model, func.sum(UsageDaily.cost_micros).label("cost")).where(
        UsageDaily.workspace_id == workspace_id, *_in_period(UsageDaily, period), UsageDaily.model != ""
    )
    if person_ids is None:
        query = query.where(UsageDaily.in_org_total.is_(True))
    else:
        query = query.where(UsageDaily.person_id.in_(person_ids))
    rows = conn.execute(
        query.group_by(UsageDaily.vendor, UsageDaily.model)
        .order_by(func.sum(UsageDaily.cost_micros).desc())
        .limit(limit)
    ).all()
    return [(vendor, model, int(cost or 0)) for vendor, model, cost in rows]


def change_ratio(current: int, previous: int) -> float | None:
    """Relative change for display only (money itself stays integer)."""
    if previous == 0:
        return None
    return (current - previous) / previous


def today_in(tz) -> date:
    from datetime import datetime

    return datetime.now(tz).date()


# -- teams ---------------------------------------------------------------------------------
# A team's numbers are the sum of its members' personal numbers (billed and estimated, like
# ``/tokens me``), counted only on the days each person belonged to the team. The membership
# test is an EXISTS, so overlapping stretches could never count a row twice.


def _on_team(table, team_id: int):
    from sqlalchemy import or_

    from bot.db.models import TeamMembership as M

    return (
        select(M.id)
        .where(
            M.team_id == team_id,
            M.person_id == table.person_id,
            M.joined_on <= table.day,
            or_(M.left_on.is_(None), M.left_on > table.day),
        )
        .exists()
    )


def team_report(conn: Connection, *, workspace_id: str, team_id: int, period: Period) -> SpendReport:
    """Spend per vendor, value signals, active people and the previous period of one team."""
    scope = (UsageDaily.workspace_id == workspace_id, _on_team(UsageDaily, team_id))
    rows = conn.execute(
        select(*_usage_columns(False))
        .where(*scope, *_in_period(UsageDaily, period))
        .group_by(UsageDaily.vendor)
    ).all()
    previous_total = conn.execute(
        select(func.coalesce(func.sum(UsageDaily.cost_micros), 0)).where(
            *scope, *_in_period(UsageDaily, period.previous())
        )
    ).scalar_one()
    value = conn.execute(
        select(*_value_columns())
        .where(
            ActivityDaily.workspace_id == workspace_id,
            _on_team(ActivityDaily, team_id),
            *_in_period(ActivityDaily, period),
        )
        .group_by(ActivityDaily.vendor)
    ).all()
    active = conn.execute(
        select(func.count(func.distinct(UsageDaily.person_id))).where(*scope, *_in_period(UsageDaily, period))
    ).scalar_one()
    return SpendReport(period, _vendor_rows(rows), _value_rows(value), int(previous_total), int(active))


def team_models(
    conn: Connection, *, workspace_id: str, team_id: int, period: Period, limit: int = 5
) -> list[tuple[str, str, int]]:
    rows = conn.execute(
        select(UsageDaily.vendor, UsageDaily.model, func.sum(UsageDaily.cost_micros))
        .where(
            UsageDaily.workspace_id == workspace_id,
            _on_team(UsageDaily, team_id),
            *_in_period(UsageDaily, period),
            UsageDaily.model != "",
        )
        .group_by(UsageDaily.vendor, UsageDaily.model)
        .order_by(func.sum(UsageDaily.cost_micros).desc(), UsageDaily.model)
        .limit(limit)
    ).all()
    return [(vendor, model, int(cost or 0)) for vendor, model, cost in rows]


def team_member_spend(
    conn: Connection, *, workspace_id: str, team_id: int, period: Period
) -> list[tuple[int, int]]:
    """(person id, spend) of each member with spend on their team days, biggest first.
    Individual numbers: only for the team's managers and admins."""
    rows = conn.execute(
        select(UsageDaily.person_id, func.sum(UsageDaily.cost_micros))
        .where(
            UsageDaily.workspace_id == workspace_id,
            _on_team(UsageDaily, team_id),
            *_in_period(UsageDaily, period),
        )
        .group_by(UsageDaily.person_id)
        .order_by(func.sum(UsageDaily.cost_micros).desc(), UsageDaily.person_id)
    ).all()
    return [(int(person_id), int(cost or 0)) for person_id, cost in rows]


def weekly_spend(
    conn: Connection, *, workspace_id: str, person_ids: list[int], first_week: date, weeks: int
) -> list[tuple[date, int]]:
    """Spend per Monday-start week for ``weeks`` weeks from ``first_week`` (zeros included)."""
    from datetime import timedelta

    end = first_week + timedelta(days=7 * weeks)
    rows = conn.execute(
        select(UsageDaily.day, func.sum(UsageDaily.cost_micros))
        .where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.person_id.in_(person_ids),
            UsageDaily.day >= first_week,
            UsageDaily.day < end,
        )
        .group_by(UsageDaily.day)
    ).all()
    totals = [0] * weeks
    for day, cost in rows:
        totals[(day - first_week).days // 7] += int(cost or 0)
    return [(first_week + timedelta(days=7 * i), totals[i]) for i in range(weeks)]
