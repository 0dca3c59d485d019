"""A team's median of each spend-beside-value measure: what a person's own figures are set
beside in ``/tokens me`` and the App Home (privacy: docs/privacy.md, "Team medians")."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from bot.db.models import ActivityDaily, UsagePersonDaily
from bot.domain.periods import Period
from bot.services.reports.spend import _in_period
from bot.services.reports.team import on_team
from bot.services.reports.value import Value, ValueRatios, _value_columns, _value_rows, value_ratios


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
