"""The OTLP intake's rules: ingest tokens, storing agents' points once, and folding them into the
daily usage and activity rows (docs/sources/otel.md).

- **Tokens.** One ingest token per workspace; only its SHA-256 is stored. The token alone selects
  the workspace, so the web app looks it up before it reads the body.
- **Points.** ``otel_point`` keeps every mapped point once (keyed by series and time window: a
  resent point is ignored). For cumulative series each point's ``increment`` is its growth since
  the previous point of the same run (start time); the first point of a run, and a point whose
  value dropped (a counter reset without a new start time), add their whole value. Deltas add
  their value. A client restart therefore never double counts.
- **Daily rows.** After every request the days it touched are folded again from the raw points
  into a ``Batch`` per agent (source ``otel_<agent>``), stored through the same path as a vendor
  source (``bot.db.store.write_batch``): people, rollups, budgets and recaps see them as any
  other source's rows. The web app stores the requests that arrive together in one transaction
  (``otel_group_commit.GroupCommit``, ``ingest_group``): the same rows as one request at a time, one commit.
- **Retention.** Raw points of days older than the retention are deleted on intake (whole days,
  once a UTC day per workspace, agent and process); the daily rows they made stay, and a vendor
  batch's refold starts at the first day that still has points.
- **The double-count rule.** A person and day that the agent's admin-API source (the vendor's
  own figure, e.g. ``claude_code`` analytics) reports are left out of the OTel rows: the vendor
  figure wins. It is applied whenever either side is stored (``refold_shadowed`` runs after each
  vendor batch), so the order in which the two arrive does not matter.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import Connection, Engine, bindparam, delete, exists, func, select, union, update

from bot.db import store
from bot.db.locks import hold_xact_lock
from bot.db.models import ActivityDaily, Identity, OtelPoint, OtelSessionDaily, OtelToken, UsageDaily, as_utc
from bot.db.upsert import insert_for, insert_ignore_driver
from bot.domain.clock import utcnow
from bot.domain.money import Money, micros_to_usd
from bot.domain.records import ESTIMATED, UNPRICED, ActivityRecord, Batch, IdentityHint, UsageRecord
from bot.observability import remember_secrets
from bot.services import privacy
from bot.sources.otel import AGENTS, source_of
from bot.sources.otel.base import ACTIVITY_MEASURES, COST, USAGE_MEASURES, AgentMapping, Person
from bot.sources.otel.otlp import Decoded, Point

TOKEN_PREFIX = "twotel_"
OTEL_SOURCE_PREFIX = "otel_"
TOKEN_MEASURES = tuple(m for m in USAGE_MEASURES if m.endswith("_tokens"))


class TokenError(ValueError):
    pass


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def issue_token(conn: Connection, *, workspace_id: str, rotate: bool, by: str = "") -> str:
    """Create (``rotate=False``) or rotate the workspace's ingest token in ``conn``'s transaction
    and audit it (never the value); the new token, shown once: only its hash is kept. Rotating
    makes the old token fail at once. ``TokenError`` when there is none to rotate, or already one."""
    token = _new_token()
    remember_secrets(token)  # masked from every log line from now on (Bolt logs replies at DEBUG)
    now = utcnow()
    if rotate:
        changed = conn.execute(
            update(OtelToken)
            .where(OtelToken.workspace_id == workspace_id)
            .values(token_hash=token_hash(token), rotated_at=now, created_by=by)
        ).rowcount
        if not changed:
            raise TokenError(f"workspace {workspace_id} has no ingest token yet: create one")
    else:
        row = dict(workspace_id=workspace_id, token_hash=token_hash(token), created_by=by, created_at=now)
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING.
        added = conn.execute(
            insert_for(conn, OtelToken.__table__)
            .on_conflict_do_nothing(index_elements=["workspace_id"])
            .returning(OtelToken.__table__.c.id),
            row,
        ).first()
        if not added:
            raise TokenError(f"workspace {workspace_id} already has an ingest token: rotate it instead")
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=by,
        action="otel_token_rotate" if rotate else "otel_token_create",
        target="otel_token",
    )
    return token


def create_token(engine: Engine, *, workspace_id: str, created_by: str = "") -> str:
    """A new ingest token for the workspace (shown once; only its hash is kept)."""
    with engine.begin() as conn:
        return issue_token(conn, workspace_id=workspace_id, rotate=False, by=created_by)


def rotate_token(engine: Engine, *, workspace_id: str, rotated_by: str = "") -> str:
    """Replace the workspace's token: the old one stops working at once."""
    with engine.begin() as conn:
        return issue_token(conn, workspace_id=workspace_id, rotate=True, by=rotated_by)


def workspace_for_token(engine: Engine, token: str) -> str | None:
    if not token or len(token) > 200:
        return None
    with engine.connect() as conn:
        return conn.execute(
            select(OtelToken.workspace_id).where(OtelToken.token_hash == token_hash(token))
        ).scalar()


# -- storing points -------------------------------------------------------------------------


def _point_rows(workspace_id: str, points: Sequence[Point], now: datetime) -> dict[tuple, dict]:
    """One request's points as ``otel_point`` rows by key (a point repeated in it: the last wins)."""
    rows: dict[tuple, dict] = {}
    days: dict[int, date] = {}  # a request's points share a few timestamps
    for p in points:
        source = source_of(p.agent)
        day = days.get(p.time_ns)
        if day is None:
            day = days[p.time_ns] = p.day
        rows[(source, p.series, p.start_ns, p.time_ns)] = {
            "workspace_id": workspace_id,
            "source": source,
            "series": p.series,
            "metric": p.metric,
            "start_ns": p.start_ns,
            "time_ns": p.time_ns,
            "day": day,
            "actor": p.actor,
            "measure": p.measure,
            "model": p.model,
            "cumulative": p.cumulative,
            "value": p.value,
            "increment": 0 if p.cumulative else p.value,
            "received_at": now,
            "session": p.session,
        }
    return rows


def _recompute_runs(
    conn: Connection, workspace_id: str, source: str, runs: set[tuple[str, int]]
) -> set[date]:
    """Set ``increment`` of every point of the given cumulative runs; the days whose sums changed
    (a series is one person's, so only the request's people can change)."""
    touched: set[date] = set()
    series = sorted({s for s, _ in runs})
    starts = sorted({start for _, start in runs})
    for at in range(0, len(series), 500):
        found = conn.execute(
            select(
                OtelPoint.id,
                OtelPoint.series,
                OtelPoint.start_ns,
                OtelPoint.value,
                OtelPoint.increment,
                OtelPoint.day,
            )
            .where(
                OtelPoint.workspace_id == workspace_id,
                OtelPoint.source == source,
                OtelPoint.cumulative.is_(True),
                OtelPoint.series.in_(series[at : at + 500]),
                # Only the runs at hand: a long-lived series need not be read from its first day.
                *([OtelPoint.start_ns.in_(starts)] if len(starts) <= 500 else []),
            )
            .order_by(OtelPoint.series, OtelPoint.start_ns, OtelPoint.time_ns)
        ).all()
        previous: dict[tuple[str, int], int] = {}
        changes = []
        for point_id, key_series, start_ns, value, increment, day in found:
            run = (key_series, start_ns)
            if run not in runs:
                continue
            before = previous.get(run)
            # First point of a run: all of it accrued since the start. A drop: the counter restarted.
            grown = value if before is None or value < before else value - before
            previous[run] = value
            if grown != increment:
                changes.append({"point_id": point_id, "grown": grown})
                touched.add(day)
        if changes:
            table = OtelPoint.__table__
            conn.execute(
                table.update()
                .where(table.c.id == bindparam("point_id"))
                .values(increment=bindparam("grown")),
                changes,
            )
    return touched


def _anonymise(
    conn: Connection, workspace_id: str, rows: list[dict], hints: list[IdentityHint]
) -> list[IdentityHint]:
    """A forgotten person's points are stored under their alias, never their email or account
    (docs/privacy.md); hints that would name them again are dropped."""
    holders = [SimpleNamespace(actor=row["actor"]) for row in rows]
    kept = store.anonymise_forgotten(conn, workspace_id, holders, hints)
    for row, holder in zip(rows, holders, strict=True):
        row["actor"] = holder.actor
    return kept


def ingest(engine: Engine, *, workspace_id: str, decoded: Decoded, retention_days: int | None = None) -> int:
    """Store the request's points once each and refold the days they touch, in a transaction of
    its own; the points written. With ``retention_days``, raw points of older days are pruned too
    (at most daily: ``PRUNED``)."""
    return ingest_group(engine, [(workspace_id, decoded)], retention_days=retention_days)[0]


def ingest_group(
    engine: Engine, requests: Sequence[tuple[str, Decoded]], *, retention_days: int | None = None
) -> list[int]:
    """Several requests ((workspace, decoded) pairs) in one transaction, as if each were stored
    in turn: the same points kept (a point two requests carry is stored once, the first one's),
    the same days refolded; each request's points written. All or nothing: an error rolls back
    every request of the group (``otel_group_commit.GroupCommit`` then stores each alone)."""
    now = utcnow()
    counts: list[int] = []
    workspaces: dict[str, tuple[dict[tuple, dict], dict[str, Person]]] = {}
    for workspace_id, decoded in requests:
        rows = _point_rows(workspace_id, decoded.points, now)
        counts.append(len(rows))
        if not rows:
            continue
        kept, people = workspaces.setdefault(workspace_id, ({}, {}))
        for key, row in rows.items():
            kept.setdefault(key, row)  # already stored by an earlier request: ignored, as alone
        for actor, person in decoded.people.items():
            people.setdefault(actor, person)
    if not workspaces:
        return counts
    with engine.begin() as conn:
        # Locks in one global order (workspace, then source): groups of two processes never deadlock.
        for workspace_id in sorted(workspaces):
            rows, people = workspaces[workspace_id]
            _store(conn, workspace_id, list(rows.values()), people, now, retention_days)
    return counts


def _store(
    conn: Connection,
    workspace_id: str,
    rows: list[dict],
    people: dict[str, Person],
    now: datetime,
    retention_days: int | None,
) -> None:
    by_agent: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_agent[row["source"]].append(row)
    hints = [IdentityHint(p.account_actor, p.email) for p in people.values() if p.email and p.account_actor]
    hints = _anonymise(conn, workspace_id, rows, hints)
    for source, part in sorted(by_agent.items()):
        hold_xact_lock(conn, f"otel:{workspace_id}:{source}")
        insert_ignore_driver(conn, OtelPoint.__table__, part, _POINT_KEY)  # a resent point: ignored
        runs = {(row["series"], row["start_ns"]) for row in part if row["cumulative"]}
        days = {row["day"] for row in part} | _recompute_runs(conn, workspace_id, source, runs)
        actors = sorted({row["actor"] for row in part})
        agent = AGENTS[source.removeprefix(OTEL_SOURCE_PREFIX)]
        fold_window(
            conn,
            workspace_id=workspace_id,
            agent=agent,
            start=min(days),
            end=max(days) + timedelta(days=1),
            hints=hints,
            actors=actors,
            sessions=True,
        )
        if retention_days is not None and PRUNED.due(workspace_id, source, now.date()):
            prune(
                conn, workspace_id=workspace_id, source=source, before=now.date() - timedelta(retention_days)
            )


_POINT_KEY = ("workspace_id", "source", "series", "start_ns", "time_ns")


_DELETE_SESSIONS = delete(OtelSessionDaily).where(
    OtelSessionDaily.workspace_id == bindparam("workspace_id"),
    OtelSessionDaily.source == bindparam("source"),
    OtelSessionDaily.day >= bindparam("start"),
    OtelSessionDaily.day < bindparam("end"),
    OtelSessionDaily.actor.in_(bindparam("actors", expanding=True)),
)


def _fold_sessions(conn: Connection, scope: dict, sums: Iterable[tuple]) -> None:
    """Rebuild ``otel_session_daily`` of the fold's days and actors from its sums of the raw
    points (``increment``, so a point sent twice counts once): each session's cost and tokens
    per day. ``sums``: (day, actor, measure, model, session, amount)."""
    found: dict[tuple, list[int]] = {}
    for day, actor, measure, _, session, amount in sums:
        if session and (measure == COST or measure in TOKEN_MEASURES):
            row = found.setdefault((day, actor, session), [0, 0])
            row[measure != COST] += int(amount or 0)
    conn.execute(_DELETE_SESSIONS, scope)
    rows = [
        {
            "workspace_id": scope["workspace_id"],
            "source": scope["source"],
            "day": day,
            "actor": actor,
            "session": session,
            "cost_micros": micros,
            "tokens": tokens,
        }
        for (day, actor, session), (micros, tokens) in found.items()
        if micros or tokens
    ]
    if rows:
        conn.execute(OtelSessionDaily.__table__.insert(), rows)


# -- retention --------------------------------------------------------------------------------


class PruneLedger:
    """When each (workspace, source) was last pruned by this process: at most once a UTC day, so
    a request pays for it once a day, not every minute. Bounded: past ``limit`` keys it starts over
    (the worst case is one extra prune per key)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self.days: dict[tuple[str, str], date] = {}

    def due(self, workspace_id: str, source: str, today: date) -> bool:
        key = (workspace_id, source)
        if self.days.get(key) == today:
            return False
        if len(self.days) >= self.limit:
            self.days.clear()
        self.days[key] = today
        return True


PRUNED = PruneLedger()


def _safe_cutoff(conn: Connection, *, workspace_id: str, source: str, cutoff: date) -> date:
    """``cutoff``, or the first day of a cumulative run that still has points on or after it."""
    later = OtelPoint.__table__.alias("later")
    point = OtelPoint
    first = conn.execute(
        select(func.min(point.day)).where(
            point.workspace_id == workspace_id,
            point.source == source,
            point.cumulative.is_(True),
            point.day < cutoff,
            exists().where(
                later.c.workspace_id == point.workspace_id,
                later.c.source == point.source,
                later.c.series == point.series,
                later.c.start_ns == point.start_ns,
                later.c.day >= cutoff,
            ),
        )
    ).scalar()
    return min(first, cutoff) if first is not None else cutoff


def prune(conn: Connection, *, workspace_id: str, source: str, before: date) -> int:
    """Delete the raw points of days before ``before``; the daily rows they made stay. Whole days
    go, so a day keeps all of its points or none (``refold_shadowed`` relies on it), and a
    cumulative run that goes on past ``before`` keeps all of its points (``_safe_cutoff``)."""
    before = _safe_cutoff(conn, workspace_id=workspace_id, source=source, cutoff=before)
    return conn.execute(
        delete(OtelPoint).where(
            OtelPoint.workspace_id == workspace_id, OtelPoint.source == source, OtelPoint.day < before
        )
    ).rowcount


# -- folding into daily rows ----------------------------------------------------------------


def _records(
    agent: AgentMapping, sums: Iterable[tuple]
) -> tuple[dict[tuple, UsageRecord], dict[tuple, ActivityRecord]]:
    usage: dict[tuple, UsageRecord] = {}
    activity: dict[tuple, ActivityRecord] = {}
    unit = f"otel:{agent.agent}"
    for day, actor, measure, model, *_, amount in sums:  # (a session column in between: summed over)
        amount = int(amount or 0)
        if measure in USAGE_MEASURES or measure == COST:
            record = usage.get((day, actor, model))
            if record is None:
                record = usage[(day, actor, model)] = UsageRecord(
                    day=day,
                    actor=actor,
                    model=model,
                    cost=Money(0, "0", unit),
                    cost_basis=ESTIMATED if agent.priced else UNPRICED,
                    # A client-side estimate, not a bill: personal views show it, org totals
                    # count billed dollars only (as for the claude_code analytics estimates).
                    in_org_total=False,
                )
            if measure == COST:
                micros = record.cost.micros + amount
                record.cost = Money(micros, str(micros_to_usd(micros)), unit)
            else:
                setattr(record, measure, getattr(record, measure) + amount)
        elif measure in ACTIVITY_MEASURES:
            record = activity.get((day, actor)) or activity.setdefault(
                (day, actor), ActivityRecord(day, actor)
            )
            setattr(record, measure, getattr(record, measure) + amount)
    return usage, activity


def _shadowed_query():
    reported = [
        select(table.day, table.person_id).where(
            table.workspace_id == bindparam("workspace_id"),
            table.vendor == bindparam("vendor"),
            table.source.not_like(f"{OTEL_SOURCE_PREFIX}%"),
            table.day >= bindparam("start"),
            table.day < bindparam("end"),
            table.person_id.in_(bindparam("people", expanding=True)),
        )
        for table in (UsageDaily, ActivityDaily)
    ]
    # One statement for both tables (a UNION is distinct): a request pays per statement (B7).
    return union(*reported)


_SHADOWED = _shadowed_query()
_IDENTITIES = select(Identity.actor, Identity.person_id).where(
    Identity.workspace_id == bindparam("workspace_id"),
    Identity.actor.in_(bindparam("actors", expanding=True)),
)


def _shadowed(
    conn: Connection, workspace_id: str, vendor: str, start: date, end: date, people: set[int]
) -> set[tuple[date, int]]:
    """(day, person) pairs the vendor's own (non-OTel) source reports in ``[start, end)``."""
    if not vendor or not people:
        return set()
    found: set[tuple[date, int]] = set()
    ids = sorted(people)
    scope = dict(workspace_id=workspace_id, vendor=vendor, start=start, end=end)
    for at in range(0, len(ids), 500):
        found.update(conn.execute(_SHADOWED, {**scope, "people": ids[at : at + 500]}).all())
    return found


def _identities(conn: Connection, workspace_id: str, actors: set[str]) -> dict[str, int]:
    """The links of these actors only (a request names a few people; the workspace may have
    thousands)."""
    found: dict[str, int] = {}
    ordered = sorted(actors)
    for at in range(0, len(ordered), 500):
        found.update(
            conn.execute(_IDENTITIES, {"workspace_id": workspace_id, "actors": ordered[at : at + 500]}).all()
        )
    return found


def _fold_sums(of_actors: bool, sessions: bool):
    group = [OtelPoint.day, OtelPoint.actor, OtelPoint.measure, OtelPoint.model]
    if sessions:
        group.append(OtelPoint.session)
    only = [OtelPoint.actor.in_(bindparam("actors", expanding=True))] if of_actors else []
    return (
        select(*group, func.sum(OtelPoint.increment))
        .where(
            OtelPoint.workspace_id == bindparam("workspace_id"),
            OtelPoint.source == bindparam("source"),
            OtelPoint.day >= bindparam("start"),
            OtelPoint.day < bindparam("end"),
            *only,
        )
        .group_by(*group)
    )


_FOLD_SUMS = {(of_actors, False): _fold_sums(of_actors, False) for of_actors in (False, True)}
_FOLD_SUMS[(True, True)] = _fold_sums(True, True)


def fold_window(
    conn: Connection,
    *,
    workspace_id: str,
    agent: AgentMapping,
    start: date,
    end: date,
    hints: Sequence[IdentityHint] = (),
    actors: Sequence[str] | None = None,
    sessions: bool = False,
) -> tuple[int, int]:
    """Rebuild the agent's daily rows of ``[start, end)`` from its raw points, in ``conn``'s
    transaction: the usage and activity rows written. With ``actors``, only theirs (what one
    request touched: a request names a few people, the day may hold thousands); with
    ``sessions`` (and ``actors``), their ``otel_session_daily`` rows too, from the same read of
    the points (one scan for both: B7)."""
    source = source_of(agent.agent)
    scope = dict(workspace_id=workspace_id, source=source, start=start, end=end)
    if actors is not None:
        scope["actors"] = sorted(actors)
    sessions = sessions and actors is not None
    sums = conn.execute(_FOLD_SUMS[(actors is not None, sessions)], scope).all()
    if sessions:
        _fold_sessions(conn, scope, sums)
    usage, activity = _records(agent, sums)
    found = {actor for _, actor, *_ in usage} | {actor for _, actor in activity}
    identity_map = _identities(conn, workspace_id, found)
    people = store.resolve_actors(conn, workspace_id, found, list(hints), identity_map)
    shadowed = _shadowed(
        conn, workspace_id, agent.shadowed_by, start, end, {people[a] for a in found if a in people}
    )
    kept_usage = [r for r in usage.values() if (r.day, people.get(r.actor)) not in shadowed]
    kept_activity = [r for r in activity.values() if (r.day, people.get(r.actor)) not in shadowed]
    batch = Batch(start, end, kept_usage, kept_activity, identities=list(hints))
    store.write_batch(
        conn,
        batch,
        usage=kept_usage,
        activity=kept_activity,
        workspace_id=workspace_id,
        source=source,
        vendor=agent.vendor,
        # No sync_run row per request: a negative, ever-growing id (microseconds) can never be a
        # sync run's id and differs from every earlier fold's, which is all delete_stale needs.
        run_id=-int(utcnow().timestamp() * 1_000_000),
        identity_map=identity_map,
        actors=actors,
    )
    return len(kept_usage), len(kept_activity)


def refold_shadowed(
    conn: Connection, *, workspace_id: str, vendor: str, source: str, start: date, end: date
) -> None:
    """After a vendor source stored ``[start, end)``: refold the OTel rows its figures may now
    cover (or, when it no longer reports someone, uncover)."""
    if source.startswith(OTEL_SOURCE_PREFIX):
        return
    for agent in AGENTS.values():
        if agent.shadowed_by != vendor:
            continue
        # The first day that still has points: older days were pruned (whole days), and
        # refolding them from nothing would erase the daily rows their points made.
        first = conn.execute(
            select(func.min(OtelPoint.day)).where(
                OtelPoint.workspace_id == workspace_id,
                OtelPoint.source == source_of(agent.agent),
                OtelPoint.day >= start,
                OtelPoint.day < end,
            )
        ).scalar()
        if first is not None:
            hold_xact_lock(conn, f"otel:{workspace_id}:{source_of(agent.agent)}")
            fold_window(conn, workspace_id=workspace_id, agent=agent, start=first, end=end)


# -- status -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentStatus:
    agent: str
    people_last_day: int
    last_received_at: datetime | None


def agent_statuses(conn: Connection, *, workspace_id: str, now: datetime | None = None) -> list[AgentStatus]:
    """Per agent that ever reported: who reported in the last 24 hours and when data last arrived."""
    now = now or utcnow()
    since = now - timedelta(days=1)
    recent = func.count(func.distinct(OtelPoint.actor)).filter(OtelPoint.received_at >= since)
    rows = conn.execute(
        select(OtelPoint.source, recent, func.max(OtelPoint.received_at))
        .where(OtelPoint.workspace_id == workspace_id)
        .group_by(OtelPoint.source)
        .order_by(OtelPoint.source)
    ).all()
    return [
        AgentStatus(source.removeprefix(OTEL_SOURCE_PREFIX), int(people or 0), as_utc(last))
        for source, people, last in rows
    ]
