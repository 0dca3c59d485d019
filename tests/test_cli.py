"""The tokenwise CLI, in-process through typer's runner, on a real SQLite file."""

import json
from datetime import UTC, datetime

from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app
from bot.db.engine import make_engine
from bot.db.models import SyncRun, UsageDaily
from bot.jobs.sync import sync_job, tick_name
from bot.services.runtime import Runtime
from bot.settings import Settings

runner = CliRunner()


def test_demo_runs_the_real_engine_and_writes_block_kit(tmp_path):
    out = tmp_path / "blocks.json"
    result = runner.invoke(
        app, ["demo", "--database-url", f"sqlite:///{tmp_path}/demo.db", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "/tokens me 30d" in result.output and "Org AI spend" in result.output
    blocks = json.loads(out.read_text())
    assert blocks["/tokens me 30d"]["blocks"][0]["type"] == "header"
    engine = make_engine(f"sqlite:///{tmp_path}/demo.db")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(UsageDaily)).scalar() > 1000
        assert conn.execute(select(func.count()).where(SyncRun.status == "ok")).scalar() == 4


def test_bad_configuration_is_one_line_and_nonzero(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENWISE_TIMEZONE", "Mars/Olympus")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "unknown timezone 'Mars/Olympus'" in result.output
    monkeypatch.delenv("TOKENWISE_TIMEZONE")
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2 and "DATABASE_URL must be" in result.output


def test_unknown_source_and_no_source(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    result = runner.invoke(app, ["sync", "--source", "nosuch"])
    assert result.exit_code == 2 and "unknown source 'nosuch'" in result.output
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 2 and "no source is enabled" in result.output
    result = runner.invoke(app, ["sync", "--source", "demo", "--since", "yesterday"])
    assert result.exit_code == 2 and "--since must be a date" in result.output


def test_failed_source_exits_nonzero_without_leaking_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-supersecret")
    monkeypatch.setenv("OPENAI_ADMIN_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    monkeypatch.setenv("TOKENWISE_HTTP_MAX_RETRIES", "1")
    monkeypatch.setenv("TOKENWISE_HTTP_MAX_BACKOFF", "0.01")
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    assert "openai" in result.output and "connection error" in result.output
    assert "supersecret" not in result.output


def test_people_import(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email,slack_id,github,openrouter_key\nAna@Example.com,UANA,AnaS,k1;k2\n")
    result = runner.invoke(app, ["people", "import", str(csv_file)])
    assert result.exit_code == 0 and "imported 1 people and 3 identity links" in result.output
    csv_file.write_text("email\nnot-an-email\n")
    result = runner.invoke(app, ["people", "import", str(csv_file)])
    assert result.exit_code == 2 and "line 2" in result.output


def test_scheduled_ticks_run_each_source_once(sqlite_url):
    engine = make_engine(sqlite_url)
    runtime = Runtime(settings=Settings(TOKENWISE_DEMO=True, DATABASE_URL=sqlite_url), engine=engine)
    moment = datetime(2026, 11, 27, 10, 7, tzinfo=UTC)
    assert tick_name("sync", moment, 60) == "sync:2026-11-27T10:00"
    first = sync_job(runtime, now=moment)
    second = sync_job(runtime, now=moment.replace(minute=45))  # same hourly slot: another replica
    assert [o.status for o in first] == ["ok"] * 4
    assert [o.status for o in second] == ["skipped"] * 4
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SyncRun)).scalar() == 4


def test_malformed_key_refuses_to_start_before_touching_data(tmp_path, monkeypatch):
    db = tmp_path / "never.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-abc\nsecond-line")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "OPENAI_ADMIN_KEY is malformed" in result.output and "second-line" not in result.output
    assert not db.exists()


def test_run_without_slack_credentials_refuses_before_migrating(tmp_path, monkeypatch):
    db = tmp_path / "never.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2 and "SLACK_BOT_TOKEN is not set" in result.output
    assert len(result.output.strip().splitlines()) == 1
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2 and "SLACK_SIGNING_SECRET is not set" in result.output
    assert not db.exists() or db.stat().st_size == 0


def test_blank_key_means_not_set(monkeypatch):
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "   ")
    assert Settings().openai_admin_key is None


def test_scheduler_runs_every_job():
    from bot.jobs.scheduler import build_scheduler

    runtime = Runtime(settings=Settings(), engine=make_engine("sqlite://"))
    assert sorted(job.id for job in build_scheduler(runtime).get_jobs()) == [
        "anomalies",
        "budgets",
        "recaps",
        "sync",
        "teams",
    ]
