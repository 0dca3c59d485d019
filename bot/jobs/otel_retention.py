"""The daily sweep of raw OTLP points past the retention, for workspaces that stopped sending
(the intake prunes the ones that send). An idempotent delete: no ledger, any replica may run it."""

from __future__ import annotations

from bot.domain.clock import utc_today
from bot.services import otel_retention
from bot.services.runtime import Runtime

PRUNE_MINUTES = 24 * 60


def otel_prune_job(runtime: Runtime) -> int:
    """Scheduler entry point (a worker thread): the points deleted."""
    return otel_retention.prune_everywhere(runtime.engine, settings=runtime.settings, today=utc_today())
