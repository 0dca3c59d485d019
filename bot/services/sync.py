"""The sync engine: runs each enabled source in isolation over its window and stores complete
batches atomically.

Window: from ``--since`` (backfill), else the watermark minus the source's trailing re-fetch
window, else ``backfill_days`` ago; up to ``--until`` or tomorrow (today's partial data is
fetched and replaced on the next run). A batch is written in one transaction together with the
watermark, so a crash between batches loses nothing and a rerun converges to the same totals.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.db import store
from bot.db.locks import job_lock
from bot.db.models import SyncRun, SyncState
from bot.db.upsert import upsert
from bot.domain.clock import utc_today, utcnow
from bot.domain.records import Batch, fold
from bot.observability import SYNC_ROWS, SYNC_RUNS
from bot.services import otel
from bot.services.reconcile import log_mismatches
from bot.sources.base import Connector, SourceError

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, date, date, date], None]  # source, window start, window end, done up to


@dataclass(frozen=True)
class SyncOutcome:
    source: str
    status: str  # ok | failed | skipped
    window_start: date | None = None
    window_end: date | None = None
    usage_rows: int = 0
    activity_rows: int = 0
    error: str | None = None
    run_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def plan_window(
    state: SyncState | None,
    connector: Connector,
    *,
    since: date | None,
    until: date | None,
    backfill_days: int,
    trailing_days: int | None,
    today: date,
) -> tuple[date, date]:
    end = until or today + timedelta(days=1)
    if since is not None:
        start = since
    elif state is not None and state.watermark is not None:
        trailing = connector.trailing_days if trailing_days is None else trailing_days
        start = state.watermark - timedelta(days=trailing)
    else:
        start = today - timedelta(days=backfill_days)
    return min(start, end), end


def _claim_run(
    engine: Engine, *, workspace_id: str, source: str, tick: str | None, start: date, end: date
) -> int | None:
    """Insert the run row; with a tick, a unique key makes exactly one replica win."""
    try:
        with engine.begin() as conn:
            result = conn.execute(
                SyncRun.__table__.insert().values(
                    workspace_id=workspace_id,
                    source=source,
                    tick=tick,
                    window_start=start,
                    window_end=end,
                    started_at=utcnow(),
                    status="running",
                )
            )
            return int(result.inserted_primary_key[0])
    except IntegrityError:
        return None


def _store_batch(
    engine: Engine,
    batch: Batch,
    *,
    workspace_id: str,
    connector: Connector,
    run_id: int,
    identity_map: dict[str, int],
    today: date,
) -> tuple[int, int]:
    usage = fold(batch.usage)
    activity = fold(batch.activity)
    pull_requests = batch.pull_requests
    for record in [*usage, *activity, *(pull_requests or [])]:
        if not (batch.window_start <= record.day < batch.window_end):
            raise SourceError(
                connector.name, "batch", f"record for {record.day} outside {batch.window_start}.."
            )
    with engine.begin() as conn:
        store.write_batch(
            conn,
            batch,
            usage=usage,
            activity=activity,
            workspace_id=workspace_id,
            source=connector.name,
            vendor=connector.vendor,
            run_id=run_id,
            identity_map=identity_map,
        )
        # OTel rows that a vendor's own figures cover count once: refold them (docs/sources/otel.md).
        otel.refold_shadowed(
            conn,
            workspace_id=workspace_id,
            vendor=connector.vendor,
            source=connector.name,
            start=batch.window_start,
            end=batch.window_end,
        )
        if not batch.incomplete:  # a part failed: the next run fetches this window again
            _upsert_state(conn, workspace_id, connector.name, watermark=min(batch.window_end, today))
    return len(usage), len(activity)


def _upsert_state(conn, workspace_id: str, source: str, **values) -> None:
    row = {"workspace_id": workspace_id, "source": source, **values}
    upsert(conn, SyncState.__table__, [row], ("workspace_id", "source"), list(values))


def _finish(engine: Engine, run_id: int, workspace_id: str, source: str, outcome: SyncOutcome) -> None:
    SYNC_RUNS.labels(source=source, status=outcome.status).inc()
    SYNC_ROWS.labels(source=source, table="usage").inc(outcome.usage_rows)
    SYNC_ROWS.labels(source=source, table="activity").inc(outcome.activity_rows)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(SyncRun.__table__)
            .where(SyncRun.__table__.c.id == run_id)
            .values(
                finished_at=now,
                status=outcome.status,
                usage_rows=outcome.usage_rows,
                activity_rows=outcome.activity_rows,
                error=outcome.error,
            )
        )
        if outcome.status == "ok":
            _upsert_state(
                conn, workspace_id, source, last_success_at=now, consecutive_failures=0, last_error=None
            )
        else:
            current = conn.execute(
                select(SyncState.__table__.c.consecutive_failures).where(
                    SyncState.__table__.c.workspace_id == workspace_id, SyncState.__table__.c.source == source
                )
            ).scalar()
            _upsert_state(
                conn,
                workspace_id,
                source,
                last_error=outcome.error,
                last_error_at=now,
                consecutive_failures=(current or 0) + 1,
            )


@contextmanager
def startup_heap_frozen() -> Iterator[None]:
    """For a process that runs a sync pass and exits (``tokenwise sync``, B1's children): once
    start-up is done (modules, settings, the engine, the connectors), every object alive is moved
    out of the cyclic collector's reach (``gc.freeze``) until the block ends. A year's backfill
    allocates millions of objects, and each full collection would otherwise scan the start-up
    heap again (hundreds of thousands of objects that live as long as the process). Not for the
    server: a frozen object that became cyclic garbage meanwhile is only freed after the block."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_source(engine: Engine, connector: Connector, *, workspace_id: str, **kwargs) -> SyncOutcome:
    """Sync one source, unless another process is syncing it right now (PostgreSQL lock)."""
    with job_lock(engine, f"sync:{workspace_id}:{connector.name}") as granted:
        if not granted:
            return SyncOutcome(connector.name, "skipped", error="another process is syncing this source")
        try:
            return _run_source(engine, connector, workspace_id=workspace_id, **kwargs)
        except DBAPIError as error:  # even the run's own row could not be written
            message = f"{connector.name}: database error: {database_reason(error)}"
            log.error("sync %s", message)
            return SyncOutcome(connector.name, "failed", error=message)


def database_reason(error: DBAPIError) -> str:
    return str(error.orig).splitlines()[0] if error.orig else type(error).__name__


def _run_source(
    engine: Engine,
    connector: Connector,
    *,
    workspace_id: str,
    since: date | None = None,
    until: date | None = None,
    backfill_days: int = 30,
    trailing_days: int | None = None,
    tick: str | None = None,
    progress: ProgressFn | None = None,
    today: date | None = None,
) -> SyncOutcome:
    today = today or utc_today()
    with engine.connect() as conn:
        row = conn.execute(
            select(SyncState).where(
                SyncState.workspace_id == workspace_id, SyncState.source == connector.name
            )
        ).first()
    state = SyncState(**row._mapping) if row else None
    start, end = plan_window(
        state,
        connector,
        since=since,
        until=until,
        backfill_days=backfill_days,
        trailing_days=trailing_days,
        today=today,
    )
    run_id = _claim_run(
        engine, workspace_id=workspace_id, source=connector.name, tick=tick, start=start, end=end
    )
    if run_id is None:
        return SyncOutcome(connector.name, "skipped", start, end, error="another replica ran this tick")
    usage_rows = activity_rows = 0
    with engine.connect() as conn:
        identity_map = store.load_identity_map(conn, workspace_id)
    try:
        for batch in connector.fetch(start, end):
            used, active = _store_batch(
                engine,
                batch,
                workspace_id=workspace_id,
                connector=connector,
                run_id=run_id,
                identity_map=identity_map,
                today=today,
            )
            usage_rows += used
            activity_rows += active
            if progress:
                progress(connector.name, start, end, batch.window_end)
        outcome = SyncOutcome(connector.name, "ok", start, end, usage_rows, activity_rows, run_id=run_id)
    except DBAPIError as error:
        # Locked by another writer after the busy timeout, disk full, server gone: the batch's
        # transaction rolled back, so nothing partial is stored; say what the database said.
        reason = database_reason(error)
        log.error("sync %s: database error: %s", connector.name, reason)
        outcome = SyncOutcome(
            connector.name,
            "failed",
            start,
            end,
            usage_rows,
            activity_rows,
            f"{connector.name}: database error: {reason}",
            run_id,
        )
    except SourceError as error:
        # The error names the source already; ``sync_outcome`` lets the CLI, which prints every
        # outcome itself, keep this line off its console.
        log.warning("sync failed: %s", error, extra={"sync_outcome": True})
        outcome = SyncOutcome(
            connector.name, "failed", start, end, usage_rows, activity_rows, str(error), run_id
        )
    except Exception as error:  # one source's bug must not stop the others
        log.exception("sync %s crashed", connector.name)
        message = f"{connector.name}: unexpected {type(error).__name__}"
        outcome = SyncOutcome(
            connector.name, "failed", start, end, usage_rows, activity_rows, message, run_id
        )
    try:
        _finish(engine, run_id, workspace_id, connector.name, outcome)
    except DBAPIError as error:  # the database that failed the batch may fail the bookkeeping too
        log.error("sync %s: could not record the run's outcome: %s", connector.name, type(error).__name__)
    return outcome


def run_all(
    engine: Engine,
    connectors: Sequence[Connector],
    *,
    workspace_id: str,
    **kwargs,
) -> list[SyncOutcome]:
    """Run every source in isolation: one failing never stops the others."""
    outcomes = []
    for connector in connectors:
        try:
            outcome = run_source(engine, connector, workspace_id=workspace_id, **kwargs)
            outcomes.append(outcome)
            if outcome.status == "ok":
                _reconcile(engine, connector, workspace_id, kwargs.get("today") or utc_today())
        finally:
            connector.close()
    return outcomes


def _reconcile(engine: Engine, connector: Connector, workspace_id: str, today: date) -> None:
    """After a good run, log the source's vendor totals (Cursor's cycle-to-date spend) that the
    stored rows miss by more than 1% (bot.services.reconcile). A failed check is a warning, never
    a failed sync."""
    try:
        log_mismatches(engine, workspace_id=workspace_id, source=connector.name, today=today)
    except Exception as error:
        log.warning("%s: reconciliation skipped: %s", connector.name, type(error).__name__)
