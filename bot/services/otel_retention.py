"""Raw OTLP points past the retention, pruned for every workspace (docs/sources/otel.md).

The intake prunes a workspace's points when that workspace sends; this is the daily sweep for
the ones that stopped sending. It deletes through ``otel.prune`` (whole days, the daily rows
kept) under the intake's own lock per workspace and agent, so it never runs between a request's
insert and its fold. Deleting is idempotent: replicas may sweep at once.

What a fold still needs is kept:

- every day a late point may still arrive for: the retention is never shorter than
  ``TOKENWISE_OTEL_MAX_AGE_DAYS`` (a late point refolds its whole day);
- every point of a cumulative run that goes on past the cutoff: a new point of the run
  recomputes each point's growth from the one before it, and with the run's start gone its first
  kept point would count its whole running total again. ``otel.prune`` stops at that run's first
  day, for this sweep and the intake's own pruning alike.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine, select

from bot.db.locks import hold_xact_lock
from bot.db.models import OtelPoint
from bot.services import otel
from bot.settings import Settings


def retention_days(settings: Settings) -> int:
    """Days of raw points kept: the setting, never less than the age of points still accepted."""
    return max(settings.otel_retention_days, settings.otel_max_age_days)


def prune_everywhere(engine: Engine, *, settings: Settings, today: date) -> int:
    """Delete every workspace's raw points older than the retention; the points deleted."""
    cutoff = today - timedelta(days=retention_days(settings))
    with engine.connect() as conn:
        keys = conn.execute(
            select(OtelPoint.workspace_id, OtelPoint.source).where(OtelPoint.day < cutoff).distinct()
        ).all()
    deleted = 0
    for workspace_id, source in sorted(keys):
        with engine.begin() as conn:  # one transaction per agent: a sweep never holds every lock
            hold_xact_lock(conn, f"otel:{workspace_id}:{source}")
            deleted += otel.prune(conn, workspace_id=workspace_id, source=source, before=cutoff)
    return deleted
