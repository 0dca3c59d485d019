"""A team's median of each spend-beside-value measure: what a person's own figures are set
beside in ``/tokens me`` and the App Home (privacy: docs/privacy.md, "Team medians")."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class MedianBasis:
    """What a team's medians are computed from, the same for every viewer: each active member's
    ``ValueRatios`` in the period and who among them had usage of their own."""

    per_person: Mapping[int, ValueRatios]
    used: frozenset[int]


#: How long a team's ``MedianBasis`` is reused in this process (``team_median_ratios(cached=True)``).
#: Every member's ``/tokens me`` and App Home asks for the same team medians, and computing them
#: reads the whole team's period (56% of a ``/tokens me`` in a 500-person team, docs/benchmarks.md
#: B5); figures at most this old are shown. A forget in this process clears them
#: (``forget_cached_medians``); docs/privacy.md, "Team medians".
CACHE_SECONDS = 60.0
_CACHE_MAX = 2048
_cache: dict[tuple, tuple[float, MedianBasis]] = {}
_cache_lock = threading.Lock()


def forget_cached_medians() -> None:
    with _cache_lock:
        _cache.clear()


def team_ratio_basis(conn: Connection, *, workspace_id: str, team_id: int, period: Period) -> MedianBasis:
    """Each active member's (usage on a day they belonged) ``ValueRatios`` in ``period``."""
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
    values: dict[int, list[Value]] = {person: [] for person in active}
    if active:
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
    return MedianBasis(per_person, frozenset(used))


def _cached_basis(conn: Connection, *, workspace_id: str, team_id: int, period: Period) -> MedianBasis:
    key = (str(conn.engine.url), workspace_id, team_id, period.start, period.end)
    now = time.monotonic()
    with _cache_lock:
        found = _cache.get(key)
    if found is not None and found[0] > now:
        return found[1]
    basis = team_ratio_basis(conn, workspace_id=workspace_id, team_id=team_id, period=period)
    if CACHE_SECONDS > 0:
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = (now + CACHE_SECONDS, basis)
    return basis


def medians_of(
    basis: MedianBasis, *, min_group_size: int, viewer_person_id: int | None
) -> ValueRatios | None:
    """The median of each measure over ``basis``; None when fewer than ``min_group_size`` people,
    besides the viewer, had usage of their own (the rule: ``team_median_ratios``)."""
    if len(basis.used - {viewer_person_id}) < min_group_size:
        return None

    def median_of(name: str) -> int | None:
        have = {p: getattr(r, name) for p, r in basis.per_person.items() if getattr(r, name) is not None}
        # Counted in people with usage: seat-only colleagues' figures may sit around the middle,
        # but they never make up the group (docs/privacy.md, "Team medians").
        if len((set(have) & basis.used) - {viewer_person_id}) < min_group_size:
            return None
        return _lower_median(list(have.values()))

    return ValueRatios(*(median_of(name) for name in MEASURES))


def team_median_ratios(
    conn: Connection,
    *,
    workspace_id: str,
    team_id: int,
    period: Period,
    min_group_size: int,
    viewer_person_id: int | None = None,
    cached: bool = False,
) -> ValueRatios | None:
    """The median over a team's active members (usage on a day they belonged) of each person's
    ``ValueRatios`` in ``period``; None when fewer than ``min_group_size`` of them, besides the
    viewer, had usage of their own (not only a seat).

    Each measure is the median of the people who have that measure, and is left out (None)
    unless at least ``min_group_size`` of them had usage of their own and are someone other than
    ``viewer_person_id``: seat-only colleagues do not pad the group, and the
    median of two figures, one of them the viewer's own, would give the other away. With the
    minimum group, the most the viewer (or anyone) learns is one colleague's figure, or the
    mean of two, without knowing whose (docs/privacy.md, "Team medians").

    ``cached``: reuse this process's basis of the team and period for up to ``CACHE_SECONDS``
    (the viewer's exclusion is applied to it afresh)."""
    read = _cached_basis if cached else team_ratio_basis
    basis = read(conn, workspace_id=workspace_id, team_id=team_id, period=period)
    return medians_of(basis, min_group_size=min_group_size, viewer_person_id=viewer_person_id)
