"""A team's spend: the sum of its members' personal numbers (billed and estimated, like
``/tokens me``), counted only on the days each person belonged to the team."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Connection, and_, func, or_, select

from bot.db.models import ActivityDaily, TeamMembership, UsagePersonDaily
from bot.domain.periods import Period
from bot.services.reports.spend import (
    ModelTally,
    SpendReport,
    VendorSpend,
    _add_vendor,
    _in_period,
    _sorted_vendors,
    _usage_columns,
    comparison_for,
)
from bot.services.reports.value import _value_columns, _value_rows

# A team's numbers are the sum of its members' personal numbers (billed and estimated, like
# ``/tokens me``), counted only on the days each person belonged to the team. The membership
# test is an EXISTS, so overlapping stretches could never count a row twice.


def on_team(table, team_id: int, within: tuple[date, date] | None = None):
    """The one definition of "this row counts for the team": the person was a member that day.

    ``within``: the query reads only days in ``[start, end)``; members whose stretch covers all
    of it then count without the per-row test (most of a team, most of the time).
    """
    # The (uncorrelated) IN list lets the database walk the members' rows through the
    # (workspace, person, day) key instead of testing every row of the period, and workspace_id
    # lets the EXISTS use ix_team_membership_team: without them a 500-person team's report over
    # 10M rows took minutes (docs/benchmarks.md, B3).
    members = select(TeamMembership.person_id).where(TeamMembership.team_id == team_id)
    on_team_that_day = (
        select(TeamMembership.id)
        .where(
            TeamMembership.workspace_id == table.workspace_id,
            TeamMembership.team_id == team_id,
            TeamMembership.person_id == table.person_id,
            TeamMembership.joined_on <= table.day,
            or_(TeamMembership.left_on.is_(None), TeamMembership.left_on > table.day),
        )
        .exists()
    )
    if within is None:
        return and_(table.person_id.in_(members), on_team_that_day)
    start, end = within
    throughout = select(TeamMembership.person_id).where(
        TeamMembership.team_id == team_id,
        TeamMembership.joined_on <= start,
        or_(TeamMembership.left_on.is_(None), TeamMembership.left_on >= end),
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
