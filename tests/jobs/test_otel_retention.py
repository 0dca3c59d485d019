"""The daily sweep of raw OTLP points, run from the scheduler's own job table: every workspace's
old points go (a workspace that stopped sending too), the daily rows stay, and what a fold still
needs (days a late point may reach, a cumulative run still going) is kept."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from bot.db.models import ActivityDaily, OtelPoint
from bot.domain.clock import utc_today
from bot.jobs.scheduler import build_scheduler
from bot.services import otel
from bot.services.runtime import Runtime
from bot.settings import Settings
from bot.sources.otel.base import Person
from bot.sources.otel.otlp import NANOS, Decoded, Point

ANA = "email:ana@example.com"
TODAY = utc_today()


def _ns(day: date, hour: int = 12) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp()) * NANOS


def _point(ago: int, value: int, series: str, *, run_from: int | None = None) -> Point:
    """Active seconds ``ago`` days back: a delta, or a cumulative total of the run started
    ``run_from`` days back."""
    day = TODAY - timedelta(days=ago)
    start = _ns(TODAY - timedelta(days=run_from), 11) if run_from is not None else _ns(day)
    return Point(
        "claude_code", series, "claude_code.active_time.total", start, _ns(day), ANA, "active_seconds", "",
        run_from is not None, value,
    )  # fmt: skip


def _ingest(workspace_id: str, engine, *points: Point) -> None:
    decoded = Decoded(points=list(points), people={ANA: Person(ANA, "ana@example.com")})
    otel.ingest(engine, workspace_id=workspace_id, decoded=decoded)  # no retention: the intake prunes nothing


def _points(engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(OtelPoint.workspace_id, OtelPoint.day)).all()
    return sorted((w, (TODAY - day).days) for w, day in rows)


def _active(engine, workspace_id: str) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(ActivityDaily.day, ActivityDaily.active_seconds).where(
                ActivityDaily.workspace_id == workspace_id
            )
        ).all()
    return {(TODAY - day).days: seconds for day, seconds in rows}


def test_the_scheduled_sweep_prunes_every_workspace_and_keeps_what_a_fold_needs(engine):
    # W1 still sends: a cumulative run started 45 days ago goes on (20 days ago, then today).
    _ingest("W1", engine, _point(50, 60, "d1"), _point(20, 30, "d1"), _point(45, 100, "c1", run_from=45))
    _ingest("W1", engine, _point(20, 150, "c1", run_from=45))
    # W2 stopped sending 40 days ago: nothing of it is needed any more.
    _ingest("W2", engine, _point(60, 60, "d2"), _point(40, 70, "c2", run_from=41))
    rows_before = {w: _active(engine, w) for w in ("W1", "W2")}
    assert rows_before["W1"] == {50: 60, 45: 100, 20: 80} and rows_before["W2"] == {60: 60, 40: 70}

    # Retention 10 days, but points up to 30 days old are still accepted: 30 it is.
    settings = Settings(TOKENWISE_OTEL_RETENTION_DAYS=10, TOKENWISE_OTEL_MAX_AGE_DAYS=30)
    job = build_scheduler(Runtime(settings=settings, engine=engine)).get_job("otel_prune")
    assert job.func(*job.args) == 3  # guarded(what, otel_prune_job, runtime), as the scheduler calls it
    # Day 20 is within the accepted age; the run's day 45 is kept for its later points.
    assert _points(engine) == [("W1", 20), ("W1", 20), ("W1", 45)]
    assert {w: _active(engine, w) for w in ("W1", "W2")} == rows_before  # the daily rows stay
    assert job.func(*job.args) == 0  # idempotent: a second sweep (or replica) deletes nothing

    # The run goes on: today's point adds its growth only, and day 20 keeps its own.
    _ingest("W1", engine, _point(0, 170, "c1", run_from=45))
    assert _active(engine, "W1") == {50: 60, 45: 100, 20: 80, 0: 20}


def test_a_run_that_ended_before_the_cutoff_and_recent_points_are_not_held_back(engine):
    _ingest("W1", engine, _point(40, 70, "c1", run_from=41), _point(5, 9, "d1"))
    settings = Settings(TOKENWISE_OTEL_RETENTION_DAYS=30, TOKENWISE_OTEL_MAX_AGE_DAYS=30)
    job = build_scheduler(Runtime(settings=settings, engine=engine)).get_job("otel_prune")
    assert job.func(*job.args) == 1
    assert _points(engine) == [("W1", 5)]
