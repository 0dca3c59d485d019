"""Database faults through the real engine: a locked SQLite, a full disk, a restarted PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest
from sqlalchemy import event, func, select, text

from bot.db.engine import make_engine
from bot.db.models import SyncState, UsageDaily
from bot.services.sync import run_source
from bot.sources.demo import demo_connectors

TODAY = date(2026, 11, 20)
WINDOW = dict(since=date(2026, 10, 1), until=date(2026, 11, 21), today=TODAY)


def _usage(engine):
    with engine.connect() as conn:
        return conn.execute(select(func.count(), func.sum(UsageDaily.cost_micros))).one()


def test_sqlite_locked_by_another_writer_waits_then_reports(sqlite_url):
    engine = make_engine(sqlite_url, busy_timeout_ms=300)
    path = sqlite_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        outcome = run_source(engine, demo_connectors(TODAY)[0], workspace_id="W", **WINDOW)
    finally:
        blocker.rollback()
        blocker.close()
    assert outcome.status == "failed"
    assert "database error" in (outcome.error or "") and "locked" in (outcome.error or "")
    assert _usage(engine) == (0, None)
    again = run_source(engine, demo_connectors(TODAY)[0], workspace_id="W", **WINDOW)
    assert again.status == "ok" and _usage(engine)[0] > 0


def test_sqlite_disk_full_is_a_clear_error_without_corruption(sqlite_url):
    engine = make_engine(sqlite_url)
    first = run_source(engine, demo_connectors(TODAY)[0], workspace_id="W", **WINDOW)
    assert first.status == "ok"
    before = _usage(engine)
    with engine.connect() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar()

    full = make_engine(sqlite_url)

    @event.listens_for(full, "connect")
    def _cap(dbapi_connection, _record):  # the file may not grow: SQLite reports SQLITE_FULL
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + 2}")

    outcome = run_source(full, demo_connectors(TODAY)[1], workspace_id="W", **WINDOW)
    assert outcome.status == "failed" and "full" in (outcome.error or "")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    assert _usage(engine) == before


def test_postgres_restart_is_survived(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    engine = make_engine(db_url)
    assert run_source(engine, demo_connectors(TODAY)[0], workspace_id="W", **WINDOW).status == "ok"
    admin = make_engine(db_url)
    with admin.connect() as conn:
        # What a server restart does to every pooled connection of the bot.
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        conn.commit()
    admin.dispose()
    with engine.connect() as conn:  # pool_pre_ping replaces the dead connection
        state = conn.execute(select(SyncState.source)).scalars().all()
    assert state == ["demo-openai"]
    assert run_source(engine, demo_connectors(TODAY)[0], workspace_id="W", **WINDOW).status == "ok"
