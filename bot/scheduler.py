"""Scheduled jobs (APScheduler 3.11). The sync job runs every ``sync_interval_minutes``.

Each tick has a name (``sync:<UTC minute>``) and a sync run claims ``(source, tick)`` through a
unique key, so any number of replicas running this scheduler produce one run per source per tick.
"""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.services.runtime import Runtime
from bot.services.sync import SyncOutcome
from bot.services.workspaces import sync_every_workspace

log = logging.getLogger(__name__)


def tick_name(kind: str, moment: datetime, interval_minutes: int) -> str:
    """The same name on every replica for the same schedule slot."""
    epoch_minutes = int(moment.timestamp() // 60)
    slot = epoch_minutes - epoch_minutes % interval_minutes
    return f"{kind}:{datetime.fromtimestamp(slot * 60, UTC):%Y-%m-%dT%H:%M}"


def sync_job(runtime: Runtime, *, now: datetime | None = None) -> list[SyncOutcome]:
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
    budget_job(runtime)  # fresh numbers: a threshold crossed by this sync is told now
    anomaly_job(runtime)  # and so is a run-away day
    return outcomes


RECAP_CHECK_MINUTES = 5


def _slack_job(module: str, function: str, runtime: Runtime, what: str) -> None:
    """Jobs that talk to Slack are imported late (a sync-only process never loads Bolt) and never
    raise into the scheduler or into the sync that called them."""
    try:
        getattr(importlib.import_module(module), function)(runtime)
    except Exception:
        log.exception("%s failed", what)


def budget_job(runtime: Runtime) -> None:
    """Budget alerts, early warnings and floor nudges."""
    _slack_job("bot.slack.handlers.budgets", "budget_check_job", runtime, "budget check")


def anomaly_job(runtime: Runtime) -> None:
    """Same-day anomalies: incidents opened, updated and closed; the person told first."""
    _slack_job("bot.jobs.anomalies", "anomaly_job", runtime, "anomaly check")


def team_refresh_job(runtime: Runtime) -> None:
    """Re-read team memberships from Slack so leavers stop counting from the day they left."""
    _slack_job("bot.slack.handlers.teams", "team_refresh_job", runtime, "team refresh")


def recap_job(runtime: Runtime) -> None:
    """Post the weekly recaps that are due; the ledger makes a catch-up after downtime safe."""
    _slack_job("bot.slack.handlers.recap", "recap_job", runtime, "recap delivery")


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 15 * 60},
    )
    scheduler.add_job(
        sync_job,
        IntervalTrigger(minutes=runtime.settings.sync_interval_minutes, timezone=UTC),
        args=[runtime],
        id="sync",
        name="sync every source",
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        budget_job,
        IntervalTrigger(minutes=runtime.settings.budget_check_minutes, timezone=UTC),
        args=[runtime],
        id="budgets",
        name="budget alerts, forecasts and floor nudges",
    )
    scheduler.add_job(
        anomaly_job,
        IntervalTrigger(minutes=runtime.settings.anomaly_check_minutes, timezone=UTC),
        args=[runtime],
        id="anomalies",
        name="same-day anomalies (each DM claimed once per incident and recipient)",
    )
    scheduler.add_job(
        recap_job,
        IntervalTrigger(minutes=RECAP_CHECK_MINUTES, timezone=UTC),
        args=[runtime],
        id="recaps",
        name="weekly recaps due (each posted once per subscription and week)",
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        team_refresh_job,
        IntervalTrigger(minutes=runtime.settings.team_refresh_minutes, timezone=UTC),
        args=[runtime],
        id="teams",
        name="re-read stale team memberships from Slack",
    )
    return scheduler
