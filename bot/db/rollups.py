"""Keep the daily rollups (``usage_person_daily``, ``usage_org_daily``, ``activity_org_daily``)
equal to what summing ``usage_daily`` / ``activity_daily`` would give.

The rollups are derived data: every writer of the daily tables calls in here inside its own
transaction, so a reader never sees one without the other.

- A sync batch replaces a (source, day window) slice: :func:`refresh_window` recomputes exactly
  that slice of each rollup from the daily rows (a grouped ``INSERT ... SELECT``).
- A batch that names its actors (an OTLP request: a few people of a day that may hold thousands)
  changes only those actors' rows: :func:`actor_sums` before the write and
  :func:`apply_actor_change` after it add the difference to the rollup rows, instead of
  re-aggregating the whole slice (docs/benchmarks.md, B7).
- Re-pointing rows at another person (a link, a forget) goes through :func:`repoint_usage`,
  which moves the people's rows in ``usage_person_daily`` and the unattributed part of
  ``usage_org_daily`` without re-reading the whole org.
- :func:`rebuild` recomputes everything (the migration that adds them, bulk loads, tests that
  write daily rows directly).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Connection, and_, bindparam, case, delete, func, select, update

from bot.db.models import (
    USAGE_ROLLUP_KEY,
    ActivityDaily,
    ActivityOrgDaily,
    UsageDaily,
    UsageOrgDaily,
    UsagePersonDaily,
)
from bot.db.upsert import upsert_sql
from bot.domain.records import ACTIVITY_FIELDS, TOKENS_ONLY, USAGE_COUNTS

#: The usage rollups' key columns read as they are from usage_daily (``tokens_only`` is computed).
USAGE_GROUP = USAGE_ROLLUP_KEY[:-1]
USAGE_SUMS = ("cost_micros", *USAGE_COUNTS)
ROLLUPS = (UsagePersonDaily, UsageOrgDaily, ActivityOrgDaily)


def _tokens_only():
    return case((UsageDaily.raw_unit == TOKENS_ONLY, True), else_=False)


def _usage_group():
    return [getattr(UsageDaily, name) for name in USAGE_GROUP]


def _sums(table, names):
    return [func.sum(getattr(table, name)) for name in names]


def _insert_person_rows(conn: Connection, *where) -> None:
    tokens_only = _tokens_only()
    rows = (
        select(UsageDaily.workspace_id, UsageDaily.person_id, UsageDaily.day, *_usage_group(), tokens_only)
        .add_columns(*_sums(UsageDaily, USAGE_SUMS))
        .where(UsageDaily.person_id.is_not(None), *where)
        .group_by(UsageDaily.workspace_id, UsageDaily.person_id, UsageDaily.day, *_usage_group(), tokens_only)
    )
    columns = ["workspace_id", "person_id", "day", *USAGE_GROUP, "tokens_only", *USAGE_SUMS]
    conn.execute(UsagePersonDaily.__table__.insert().from_select(columns, rows))


def _insert_org_rows(conn: Connection, *where) -> None:
    tokens_only = _tokens_only()
    unattributed = func.sum(case((UsageDaily.person_id.is_(None), UsageDaily.cost_micros), else_=0))
    rows = (
        select(UsageDaily.workspace_id, UsageDaily.day, *_usage_group(), tokens_only)
        .add_columns(*_sums(UsageDaily, USAGE_SUMS), unattributed)
        .where(*where)
        .group_by(UsageDaily.workspace_id, UsageDaily.day, *_usage_group(), tokens_only)
    )
    columns = ["workspace_id", "day", *USAGE_GROUP, "tokens_only", *USAGE_SUMS, "unattributed_micros"]
    conn.execute(UsageOrgDaily.__table__.insert().from_select(columns, rows))


def _insert_activity_rows(conn: Connection, *where) -> None:
    group = (ActivityDaily.workspace_id, ActivityDaily.day, ActivityDaily.source, ActivityDaily.vendor)
    rows = select(*group, *_sums(ActivityDaily, ACTIVITY_FIELDS)).where(*where).group_by(*group)
    columns = ["workspace_id", "day", "source", "vendor", *ACTIVITY_FIELDS]
    conn.execute(ActivityOrgDaily.__table__.insert().from_select(columns, rows))


def _slice(table, workspace_id: str, source: str, start: date, end: date):
    return (table.workspace_id == workspace_id, table.source == source, table.day >= start, table.day < end)


def refresh_window(conn: Connection, *, workspace_id: str, source: str, start: date, end: date) -> None:
    """Recompute the rollups for one source's days ``[start, end)`` (after a sync batch wrote them)."""
    for rollup in ROLLUPS:
        conn.execute(delete(rollup).where(*_slice(rollup, workspace_id, source, start, end)))
    usage = _slice(UsageDaily, workspace_id, source, start, end)
    _insert_person_rows(conn, *usage)
    _insert_org_rows(conn, *usage)
    _insert_activity_rows(conn, *_slice(ActivityDaily, workspace_id, source, start, end))


# -- a batch of named actors: deltas -------------------------------------------------------------


def _of_actors(table):
    return (
        table.workspace_id == bindparam("workspace_id"),
        table.source == bindparam("source"),
        table.day >= bindparam("start"),
        table.day < bindparam("end"),
        table.actor.in_(bindparam("actors", expanding=True)),
    )


def _usage_by_person():
    key = (UsageDaily.person_id, UsageDaily.day, *_usage_group(), _tokens_only())
    return select(*key, *_sums(UsageDaily, USAGE_SUMS)).where(*_of_actors(UsageDaily)).group_by(*key)


def _activity_by_day():
    key = (ActivityDaily.day, ActivityDaily.vendor)
    sums = _sums(ActivityDaily, ACTIVITY_FIELDS)
    return select(*key, *sums).where(*_of_actors(ActivityDaily)).group_by(*key)


# Built once: a request runs them twice, and building the expressions cost as much as running them.
_USAGE_BY_PERSON = _usage_by_person()
_ACTIVITY_BY_DAY = _activity_by_day()


@dataclass(frozen=True)
class ActorSums:
    """Some actors' daily rows of a window, summed as the rollups group them: usage per
    (person or None, day, *USAGE_GROUP, tokens_only), activity per (day, vendor)."""

    usage: dict[tuple, list[int]]
    activity: dict[tuple, list[int]]


def _summed(rows, width: int) -> dict[tuple, list[int]]:
    return {tuple(row[:-width]): [int(value or 0) for value in row[-width:]] for row in rows}


def actor_sums(
    conn: Connection, *, workspace_id: str, source: str, start: date, end: date, actors: Sequence[str]
) -> ActorSums:
    params = dict(workspace_id=workspace_id, source=source, start=start, end=end, actors=list(actors))
    return ActorSums(
        _summed(conn.execute(_USAGE_BY_PERSON, params), len(USAGE_SUMS)),
        _summed(conn.execute(_ACTIVITY_BY_DAY, params), len(ACTIVITY_FIELDS)),
    )


def batch_sums(
    usage: Iterable,
    activity: Iterable,
    *,
    people: dict[str, int],
    source: str,
    vendor: str,
    start: date,
    end: date,
) -> ActorSums:
    """What :func:`actor_sums` reads after a batch of named actors is written, from the batch
    itself (their rows of the window are exactly its records then): two statements less."""
    rows = {(r.day, r.actor, r.model, r.cost_basis, r.kind): r for r in usage if start <= r.day < end}
    summed: dict[tuple, list[int]] = {}
    for r in rows.values():  # a repeated key: the last record wins, as in the upsert
        key = (people.get(r.actor), r.day, source, vendor, r.model, r.cost_basis, r.kind, r.in_org_total)
        sums = summed.setdefault((*key, r.cost.raw_unit == TOKENS_ONLY), [0] * len(USAGE_SUMS))
        for at, name in enumerate(USAGE_SUMS):
            sums[at] += (r.cost.micros if name == "cost_micros" else getattr(r, name)) or 0
    signals = {(r.day, r.actor): r for r in activity if start <= r.day < end}
    by_day: dict[tuple, list[int]] = {}
    for r in signals.values():
        sums = by_day.setdefault((r.day, vendor), [0] * len(ACTIVITY_FIELDS))
        for at, name in enumerate(ACTIVITY_FIELDS):
            sums[at] += getattr(r, name) or 0
    return ActorSums(summed, by_day)


def _deltas(before: dict[tuple, list[int]], after: dict[tuple, list[int]]) -> dict[tuple, list[int]]:
    # A group new to these actors counts even when its sums are zero: a rebuild would have its row.
    out = {}
    for key, sums in after.items():
        old = before.get(key)
        delta = sums if old is None else [new - was for new, was in zip(sums, old, strict=True)]
        if old is None or any(delta):
            out[key] = delta
    return out


def _add(conn: Connection, table, columns: Sequence[str], key: Sequence[str], rows: list[tuple]) -> None:
    if rows:
        sums = [name for name in columns if name not in key]
        conn.exec_driver_sql(upsert_sql(conn, table.__tablename__, columns, key, sums, adding=True), rows)


def apply_actor_change(
    conn: Connection,
    before: ActorSums,
    *,
    workspace_id: str,
    source: str,
    start: date,
    end: date,
    actors: Sequence[str],
    after: ActorSums | None = None,
) -> None:
    """After a batch rewrote ``actors``' rows of ``[start, end)``: add the change since
    ``before`` (their :func:`actor_sums` taken before the write) to the rollup rows; ``after``
    when the caller knows them (:func:`batch_sums`), else they are read. When a group of theirs
    is gone, whether its rollup row stays depends on the other actors' rows: then the window is
    refreshed whole (:func:`refresh_window`; rare: a forget, a shadowed day)."""
    if after is None:
        window = dict(workspace_id=workspace_id, source=source, start=start, end=end)
        after = actor_sums(conn, **window, actors=actors)
    if not (before.usage.keys() <= after.usage.keys() and before.activity.keys() <= after.activity.keys()):
        refresh_window(conn, workspace_id=workspace_id, source=source, start=start, end=end)
        return
    day = date.isoformat if conn.dialect.name == "sqlite" else (lambda value: value)
    person_rows, org = [], {}
    cost = USAGE_SUMS.index("cost_micros")
    for (person_id, on, *group), delta in _deltas(before.usage, after.usage).items():
        if person_id is not None:
            person_rows.append((workspace_id, person_id, day(on), *group, *delta))
        row = org.setdefault((day(on), *group), [0] * (len(USAGE_SUMS) + 1))
        for at, value in enumerate(delta):
            row[at] += value
        if person_id is None:
            row[-1] += delta[cost]
    usage_key = ("day", *USAGE_GROUP, "tokens_only")
    _add(
        conn,
        UsagePersonDaily,
        ("workspace_id", "person_id", *usage_key, *USAGE_SUMS),
        ("workspace_id", "person_id", *usage_key),
        person_rows,
    )
    _add(
        conn,
        UsageOrgDaily,
        ("workspace_id", *usage_key, *USAGE_SUMS, "unattributed_micros"),
        ("workspace_id", *usage_key),
        [(workspace_id, *key, *sums) for key, sums in org.items()],
    )
    _add(
        conn,
        ActivityOrgDaily,
        ("workspace_id", "day", "source", "vendor", *ACTIVITY_FIELDS),
        ("workspace_id", "day", "source", "vendor"),
        [
            (workspace_id, day(on), source, vendor, *delta)
            for (on, vendor), delta in _deltas(before.activity, after.activity).items()
        ],
    )


def rebuild(conn: Connection, workspace_id: str | None = None) -> None:
    """Recompute every rollup row (of one workspace, or all) from the daily tables."""
    for rollup in ROLLUPS:
        query = delete(rollup)
        conn.execute(query if workspace_id is None else query.where(rollup.workspace_id == workspace_id))
    usage = () if workspace_id is None else (UsageDaily.workspace_id == workspace_id,)
    activity = () if workspace_id is None else (ActivityDaily.workspace_id == workspace_id,)
    _insert_person_rows(conn, *usage)
    _insert_org_rows(conn, *usage)
    _insert_activity_rows(conn, *activity)


def repoint_usage(conn: Connection, *, workspace_id: str, where: Iterable, values: dict) -> int:
    """``UPDATE usage_daily SET <values> WHERE <where>`` (``values`` holds the new ``person_id``
    and maybe a new actor), keeping the rollups in step. Returns the number of rows changed.

    Only attribution moves: the org's totals stay, its unattributed part changes where rows go
    from nobody to somebody or back, and the people involved get their rows recomputed.
    """
    where = (UsageDaily.workspace_id == workspace_id, *where)
    new_person = values["person_id"]
    spans = conn.execute(
        select(UsageDaily.source, UsageDaily.person_id, func.min(UsageDaily.day), func.max(UsageDaily.day))
        .where(*where)
        .group_by(UsageDaily.source, UsageDaily.person_id)
    ).all()
    if not spans:
        return 0
    _move_unattributed(conn, workspace_id, where, new_person)
    changed = conn.execute(update(UsageDaily).where(*where).values(**values)).rowcount or 0
    people = {person for _, person, _, _ in spans if person is not None}
    if new_person is not None:
        people.add(new_person)
    by_source: dict[str, tuple[date, date]] = {}
    for source, _, first, last in spans:
        low, high = by_source.get(source, (first, last))
        by_source[source] = (min(low, first), max(high, last))
    ids = sorted(people)
    for source, (first, last) in sorted(by_source.items()):
        end = last + timedelta(days=1)
        conn.execute(
            delete(UsagePersonDaily).where(
                *_slice(UsagePersonDaily, workspace_id, source, first, end),
                UsagePersonDaily.person_id.in_(ids),
            )
        )
        _insert_person_rows(
            conn, *_slice(UsageDaily, workspace_id, source, first, end), UsageDaily.person_id.in_(ids)
        )
    return changed


def _move_unattributed(conn: Connection, workspace_id: str, where, new_person: int | None) -> None:
    # Per org rollup row touched: the cost that was unattributed before, and what will be after.
    tokens_only = _tokens_only()
    was = func.sum(case((UsageDaily.person_id.is_(None), UsageDaily.cost_micros), else_=0))
    will_be = func.sum(UsageDaily.cost_micros) if new_person is None else func.sum(0)
    rows = conn.execute(
        select(UsageDaily.day, *_usage_group(), tokens_only, will_be - was)
        .where(*where)
        .group_by(UsageDaily.day, *_usage_group(), tokens_only)
    ).all()
    key = ("day", *USAGE_GROUP, "tokens_only")
    moves = [{**{f"k_{k}": v for k, v in zip(key, row[:-1], strict=True)}, "delta": row[-1]} for row in rows]
    moves = [move for move in moves if move["delta"]]
    if not moves:
        return
    table = UsageOrgDaily.__table__
    conn.execute(
        update(table)
        .where(
            and_(
                table.c.workspace_id == workspace_id,
                *(table.c[k] == bindparam(f"k_{k}") for k in key),
            )
        )
        .values(unattributed_micros=table.c.unattributed_micros + bindparam("delta")),
        moves,
    )
