"""The scheduler (APScheduler 3.11): every job on its interval, in one background thread pool.

Each job is safe to run in any number of replicas at once (the sync claims its tick, alerts and
recaps claim their ledger rows before the effect), so a scheduler per replica is allowed.
``run_once`` is ``tokenwise scheduler --once``: every job once, then return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.domain.clock import utcnow
from bot.jobs.anomalies import anomaly_job
from bot.jobs.budget_alerts import budget_check_job
from bot.jobs.guard import guarded
from bot.jobs.otel_retention import PRUNE_MINUTES, otel_prune_job
from bot.jobs.recaps import RECAP_CHECK_MINUTES, Outcome, recap_job
from bot.jobs.saved_time import SAVED_TIME_CHECK_MINUTES, saved_time_job
from bot.jobs.sync import sync_job, sync_sources
from bot.jobs.team_refresh import team_refresh_job
from bot.services.runtime import Runtime
from bot.services.sync import SyncOutcome
from bot.settings import Settings

BUDGET_CHECK = "budget check"
ANOMALY_CHECK = "anomaly check"
RECAP_DELIVERY = "recap delivery"
TEAM_REFRESH = "team refresh"
SAVED_TIME = "saved-time questions"
OTEL_PRUNE = "OTLP points pruning"


SYNC = "sync"


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """One row of the scheduler's table. ``what`` names the job in a failure's log line and in
    the start banner; ``at_once`` runs it at start too, not only after its first interval."""

    id: str
    what: str
    job: Callable[[Runtime], object]
    minutes: int
    at_once: bool
    name: str


def scheduled_jobs(settings: Settings) -> tuple[ScheduledJob, ...]:
    """Every job the scheduler runs, in this order; the sync first (unguarded: it logs its own)."""
    return tuple(
        ScheduledJob(*row)
        for row in (
            ("sync", SYNC, sync_job, settings.sync_interval_minutes, True, "sync every source"),
            ("budgets", BUDGET_CHECK, budget_check_job, settings.budget_check_minutes, False,
             "budget alerts, forecasts and floor nudges"),
            ("anomalies", ANOMALY_CHECK, anomaly_job, settings.anomaly_check_minutes, False,
             "same-day anomalies (each DM claimed once per incident and recipient)"),
            ("recaps", RECAP_DELIVERY, recap_job, RECAP_CHECK_MINUTES, True,
             "weekly recaps due (each posted once per subscription and week)"),
            ("teams", TEAM_REFRESH, team_refresh_job, settings.team_refresh_minutes, False,
             "re-read stale team memberships from Slack"),
            ("saved_time", SAVED_TIME, saved_time_job, SAVED_TIME_CHECK_MINUTES, False,
             "what AI saved: one question a day after an AI-assisted PR merges (opt-in)"),
            # At once too: a replica restarted more often than daily would otherwise never sweep.
            ("otel_prune", OTEL_PRUNE, otel_prune_job, PRUNE_MINUTES, True,
             "delete raw OTLP points past TOKENWISE_OTEL_RETENTION_DAYS, every workspace"),
        )
    )  # fmt: skip


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 15 * 60},
    )
    now = utcnow()
    for row in scheduled_jobs(runtime.settings):
        func, args = (row.job, [runtime]) if row.what == SYNC else (guarded, [row.what, row.job, runtime])
        scheduler.add_job(
            func,
            IntervalTrigger(minutes=row.minutes, timezone=UTC),
            args=args,
            id=row.id,
            name=row.name,
            **({"next_run_time": now} if row.at_once else {}),
        )
    return scheduler


@dataclass(frozen=True)
class RunOnce:
    """What one pass of every job did; None where that job failed (its traceback is in the log)."""

    syncs: list[SyncOutcome]
    alerts_sent: int | None
    recaps: list[Outcome] | None
    teams_refreshed: int | None
    anomaly_dms: int | None
    saved_time_asks: int | None = 0
    otel_points_pruned: int | None = 0

    @property
    def failed(self) -> bool:
        return any(o.status == "failed" for o in self.syncs) or None in (
            self.alerts_sent,
            self.recaps,
            self.teams_refreshed,
            self.anomaly_dms,
            self.saved_time_asks,
            self.otel_points_pruned,
        )


def run_once(runtime: Runtime) -> RunOnce:
    """Every job once for the current tick: the sync first, so the budget check, the recaps and
    the refresh after it see the fresh numbers (the sync's own budget check is this one)."""
    return RunOnce(
        syncs=sync_sources(runtime),
        alerts_sent=guarded(BUDGET_CHECK, budget_check_job, runtime),
        recaps=guarded(RECAP_DELIVERY, recap_job, runtime),
        teams_refreshed=guarded(TEAM_REFRESH, team_refresh_job, runtime),
        anomaly_dms=guarded(ANOMALY_CHECK, anomaly_job, runtime),
        saved_time_asks=guarded(SAVED_TIME, saved_time_job, runtime),
        otel_points_pruned=guarded(OTEL_PRUNE, otel_prune_job, runtime),
    )
