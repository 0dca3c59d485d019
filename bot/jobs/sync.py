"""The sync job: every source of every served workspace, then the budget check on the fresh numbers.

Each tick has a name (``sync:<UTC minute>``) and a sync run claims ``(source, tick)`` through a
unique key, so any number of replicas running this job produce one run per source per tick.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.jobs.anomalies import anomaly_job
from bot.jobs.budget_alerts import budget_check_job
from bot.jobs.guard import guarded
from bot.services.runtime import Runtime
from bot.services.sync import SyncOutcome
from bot.services.workspaces import sync_every_workspace

log = logging.getLogger(__name__)


def tick_name(kind: str, moment: datetime, interval_minutes: int) -> str:
    """The same name on every replica for the same schedule slot."""
    epoch_minutes = int(moment.timestamp() // 60)
    slot = epoch_minutes - epoch_minutes % interval_minutes
    return f"{kind}:{datetime.fromtimestamp(slot * 60, UTC):%Y-%m-%dT%H:%M}"


def sync_sources(runtime: Runtime, *, now: datetime | None = None) -> list[SyncOutcome]:
    """One sync pass for the current tick, without the budget check that follows it."""
    settings = runtime.settings
    tick = tick_name("sync", now or datetime.now(UTC), settings.sync_interval_minutes)
    # Each workspace syncs with its own connectors: its stored keys over the environment's.
    by_workspace = sync_every_workspace(
        settings,
        runtime.engine,
        backfill_days=settings.backfill_days,
        trailing_days=settings.trailing_days,
        tick=tick,
    )
    outcomes = [outcome for found in by_workspace.values() for outcome in found]
    for outcome in outcomes:
        log.info(
            "sync %s %s: %d usage rows, %d activity rows",
            outcome.source,
            outcome.status,
            outcome.usage_rows,
            outcome.activity_rows,
        )
    return outcomes


def sync_job(runtime: Runtime, *, now: datetime | None = None) -> list[SyncOutcome]:
    outcomes = sync_sources(runtime, now=now)
    guarded("budget check", budget_check_job, runtime)  # fresh numbers: a threshold crossed now is told now
    guarded("anomaly check", anomaly_job, runtime)  # and so is a run-away day
    return outcomes
