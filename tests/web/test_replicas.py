"""Several real processes against one PostgreSQL: each scheduled effect happens exactly once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from bot.db.engine import make_engine
from bot.db.locks import job_lock
from bot.db.models import SyncRun, UsageDaily


def _spawn(db_url: str, tmp_path) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TOKENWISE_", "DATABASE_URL"))},
        "DATABASE_URL": db_url,
        "TOKENWISE_DEMO": "1",
        "TOKENWISE_BACKFILL_DAYS": "20",
        # One slot per day, so both processes see the same tick whenever they start.
        "TOKENWISE_SYNC_INTERVAL_MINUTES": "1440",
        "TOKENWISE_DATA_DIR": str(tmp_path),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "scheduler", "--once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_schedulers_produce_one_sync_run_per_source(db_url, tmp_path):
    if not db_url.startswith("postgresql"):
        pytest.skip("the multi-replica guarantee is for PostgreSQL; SQLite serves one process")
    first, second = _spawn(db_url, tmp_path), _spawn(db_url, tmp_path)
    outputs = [p.communicate(timeout=120)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    engine = make_engine(db_url)
    with engine.connect() as conn:
        runs = conn.execute(select(SyncRun.source, SyncRun.status)).all()
        rows = conn.execute(select(func.count()).select_from(UsageDaily)).scalar()
    assert sorted(runs) == sorted(
        (f"demo-{v}", "ok") for v in ("openai", "claude_code", "cursor", "github_copilot")
    )
    combined = "\n".join(outputs)
    assert combined.count(": ok") == 4 and combined.count(": skipped") == 4
    assert rows > 0


def test_advisory_lock_is_exclusive(db_url):
    engine = make_engine(db_url)
    expected = engine.dialect.name != "postgresql"  # SQLite: one process, always granted
    with (
        job_lock(engine, "job-a") as first,
        job_lock(engine, "job-a") as second,
        job_lock(engine, "job-b") as other,
    ):
        assert first is True and second is expected and other is True
    with job_lock(engine, "job-a") as again:
        assert again is True
