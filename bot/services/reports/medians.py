"""A team's median of each spend-beside-value measure: what a person's own figures are set
beside in ``/tokens me`` and the App Home (privacy: docs/privacy.md, "Team medians")."""

from __future__ import annotations

from sqlalchemy import Connection, and_, case, func, select

from bot.db.models import ActivityDaily, UsagePersonDaily
from bot.domain.periods import Period
from bot.services.reports.spend import _in_period, used_rows
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


MEASURES = ("per_accepted_line", "per_ai_commit", "per_merged_pr")


def team_median_ratios(
    conn: Connection,
    *,
    workspace_id: str,
    team_id: int,
    period: Period,
    min_group_size: int,
    viewer_person_id: int | None = None,
) -> ValueRatios | None:
    """The median over a team's active members (usage on a day they belonged) of each person's
    ``ValueRatios`` in ``period``; None when fewer than ``min_group_size`` of them, besides the
    viewer, had usage of their own (not only a seat).

    Each measure is the median of the people who have that measure, and is left out (None)
    unless at least ``min_group_size`` of them had usage of their own and are someone other than
    ``viewer_person_id``: seat-only colleagues do not pad the group, and the
    median of two figures, one of them the viewer's own, would give the other away. With the
    minimum group, the most the viewer (or anyone) learns is one colleague's figure, or the
    mean of two, without knowing whose (docs/privacy.md, "Team medians")."""
    spend: dict[int, int] = {}
    used: set[int] = set()  # people with usage of their own (a seat alone is a list price)
    for person, micros, own_use in conn.execute(
        select(
            UsagePersonDaily.person_id,
            func.sum(UsagePersonDaily.cost_micros),
            func.max(case((and_(*used_rows(UsagePersonDaily)), 1), else_=0)),
        )
        .where(
            UsagePersonDaily.workspace_id == workspace_id,
            on_team(UsagePersonDaily, team_id, within=(period.start, period.end)),
            *_in_period(UsagePersonDaily, period),
        )
        .group_by(UsagePersonDaily.person_id)
    ).all():
        if person is None:
            continue
        spend[int(person)] = int(micros or 0)
        if own_use:
            used.add(int(person))
    active = list(spend)
    if len(used - {viewer_person_id}) < min_group_size:
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
    per_person = {person: value_ratios(int(spend[person] or 0), values[person]) for person in active}

    def median_of(name: str) -> int | None:
        have = {person: getattr(r, name) for person, r in per_person.items() if getattr(r, name) is not None}
        # Counted in people with usage: seat-only colleagues' figures may sit around the middle,
        # but they never make up the group (docs/privacy.md, "Team medians").
        if len((set(have) & used) - {viewer_person_id}) < min_group_size:
            return None
        return _lower_median(list(have.values()))

    return ValueRatios(*(median_of(name) for name in MEASURES))
