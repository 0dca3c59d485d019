"""The tokenwise CLI, in-process through typer's runner, on a real SQLite file."""

import json
import logging
from datetime import UTC, datetime
from importlib.metadata import version

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app
from bot.db.engine import make_engine
from bot.db.models import Identity, Person, SyncRun, UsageDaily
from bot.jobs.sync import sync_job, tick_name
from bot.services.runtime import Runtime
from bot.settings import Settings
from tests.support.files import fixture_path
from tests.support.slack_fake import BOT_TOKEN, CLIENT_ID, CLIENT_SECRET, SIGNING_SECRET, start_fake_slack

runner = CliRunner()


def test_demo_runs_the_real_engine_and_writes_block_kit(tmp_path):
    out = tmp_path / "blocks.json"
    result = runner.invoke(
        app, ["demo", "--database-url", f"sqlite:///{tmp_path}/demo.db", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "/tokens me 30d" in result.output and "Org AI spend" in result.output
    messages = {m["name"]: m["message"] for m in json.loads(out.read_text())}
    assert messages["/tokens me 30d  (as Ana Souza)"]["blocks"][0]["type"] == "header"
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


def _people(db_url: str) -> list[tuple]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        people = conn.execute(
            select(Person.email, Person.display_name, Person.slack_user_id).order_by(Person.email)
        ).all()
        links = conn.execute(select(Identity.actor).where(Identity.origin == "import")).scalars().all()
    engine.dispose()
    return [tuple(p) for p in people] + [("links", *sorted(links))]


def test_people_import_counts_created_updated_and_unchanged(db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    first = runner.invoke(app, ["people", "import", str(fixture_path("people", "people.csv"))])
    assert first.exit_code == 0, first.output
    assert (
        first.output.strip() == "people.csv: people 2 created, 0 updated, 0 unchanged; 3 identity links added"
    )
    again = runner.invoke(app, ["people", "import", str(fixture_path("people", "people.csv"))])
    assert (
        again.output.strip() == "people.csv: people 0 created, 0 updated, 2 unchanged; 0 identity links added"
    )
    # Ana's row repeats what is stored (her GitHub login in another case); Ben gets a new name,
    # Slack id and login; Cara is new.
    changed = runner.invoke(app, ["people", "import", str(fixture_path("people", "people_changed.csv"))])
    assert changed.exit_code == 0, changed.output
    assert changed.output.strip() == (
        "people_changed.csv: people 1 created, 1 updated, 1 unchanged; 1 identity links added"
    )
    assert _people(db_url) == [
        ("ana@example.com", "Ana Silva", "UANA"),
        ("ben@example.com", "Ben Odé", "UBEN"),
        ("cara@example.com", "Cara", None),
        ("links", "github:anas", "github:ben-o", "openrouter_key:k1", "openrouter_key:k2"),
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("duplicate_email.csv", "duplicate_email.csv: line 5: ana@example.com is already on line 3"),
        ("unknown_column.csv", "unknown_column.csv: line 1: unknown column `githb`; the columns are email,"),
        ("malformed_email.csv", "malformed_email.csv: line 3: `ben.example.com` is not an email"),
        (
            "latin1.csv",
            'latin1.csv is not UTF-8 text (line 3 has the byte 0xe9): save it as "CSV UTF-8" and '
            "import it again",
        ),
    ],
)
def test_people_import_refuses_a_bad_file_whole(db_url, monkeypatch, name, message):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert runner.invoke(app, ["people", "import", str(fixture_path("people", "people.csv"))]).exit_code == 0
    before = _people(db_url)
    result = runner.invoke(app, ["people", "import", str(fixture_path("people", name))])
    assert result.exit_code == 2
    assert result.output.strip().startswith(f"error: {message}"), result.output
    assert result.output.strip().endswith("nothing imported") and len(result.output.strip().splitlines()) == 1
    assert _people(db_url) == before  # the valid lines before the bad one left no trace


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
        "otel_prune",
        "recaps",
        "saved_time",
        "sync",
        "teams",
    ]


def test_sync_line_names_the_days_covered_never_a_future_one(tmp_path, monkeypatch):
    from datetime import timedelta

    from bot.domain.clock import utc_today

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    past = runner.invoke(app, ["sync", "--source", "demo", "--since", "2026-11-01", "--until", "2026-11-08"])
    assert past.exit_code == 0, past.output
    assert "✓ demo-openai: ok, 2026-11-01 to 2026-11-07 (7 days): " in past.output, past.output
    today = utc_today()
    # The default end is tomorrow (exclusive) and --until may be later still: shown up to today.
    until = (today + timedelta(days=10)).isoformat()
    recent = runner.invoke(
        app,
        ["sync", "--source", "demo", "--since", (today - timedelta(days=2)).isoformat(), "--until", until],
    )
    assert recent.exit_code == 0, recent.output
    lines = recent.output.strip().splitlines()
    assert len(lines) == 4 and all(
        line.startswith("✓ demo-")
        and f", {today - timedelta(days=2)} to {today} (3 days, today so far): " in line
        for line in lines
    ), recent.output
    assert ".." not in recent.output


@pytest.mark.parametrize(
    ("base_url", "tried", "reason"),
    [
        (
            "http://tokenwise-test.invalid/v1",
            "http://tokenwise-test.invalid/v1",
            "its host name does not resolve (DNS)",
        ),
        ("ftp://127.0.0.1:9/v1", "ftp://127.0.0.1:9/v1", "the URL must start with https:// or http://"),
        ("api.openai.com/v1", "api.openai.com/v1", "the URL must start with https:// or http://"),
        ("https://", "https:", "the URL has no host name"),
    ],
)
def test_sync_against_a_bad_base_url_names_it_and_does_not_retry(
    tmp_path, monkeypatch, base_url, tried, reason
):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-supersecret")
    monkeypatch.setenv("OPENAI_ADMIN_BASE_URL", base_url)
    monkeypatch.setenv("TOKENWISE_HTTP_MAX_BACKOFF", "30")  # a retry would make the test hang
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"✗ openai: organization/users: cannot reach {tried}/organization/users: {reason}; not retried"
    )


def test_sync_names_a_key_of_the_wrong_kind_once_per_source(tmp_path, monkeypatch, httpserver):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-proj-0123456789abcdef")
    monkeypatch.setenv("OPENAI_ADMIN_BASE_URL", httpserver.url_for("/v1"))
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", "sk-ant-api03-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_ADMIN_BASE_URL", httpserver.url_for("/"))
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    anthropic_needs = (
        "the Admin API needs an Anthropic Admin key (sk-ant-admin…, created by an organization admin "
        "in the Console)"
    )
    assert result.output.strip().splitlines() == [
        "✗ openai: the key is an OpenAI project key (sk-proj-…): usage and costs need an OpenAI Admin key "
        "(sk-admin-…, Organization settings → Admin keys)",
        f"✗ anthropic: the key is an Anthropic API key (sk-ant-api…): {anthropic_needs}",
        f"✗ claude_code: the key is an Anthropic API key (sk-ant-api…): {anthropic_needs}",
    ]
    assert httpserver.log == []  # refused before anything was sent
    assert "0123456789abcdef" not in result.output


def printed(output: str) -> list[str]:
    """What the command printed itself: log records (JSON lines, as stderr is no terminal here;
    the fake Slack's werkzeug lines among them) left out."""
    return [line for line in output.splitlines() if not line.startswith('{"time"')]


def _slack_env(monkeypatch, fake, db_url: str, token: str = BOT_TOKEN) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", token)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_API_URL", fake.api_url)


def test_run_refuses_a_bot_token_slack_rejects_before_migrating(tmp_path, monkeypatch, httpserver):
    fake = start_fake_slack(httpserver)
    db = tmp_path / "never.db"
    _slack_env(monkeypatch, fake, f"sqlite:///{db}", token="xoxb-revoked-0123456789")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert printed(result.output) == [
        "error: Slack refused SLACK_BOT_TOKEN (invalid_auth): copy the Bot User OAuth Token (xoxb-…) "
        "from OAuth & Permissions, or reinstall the app to the workspace"
    ]
    assert len(fake.calls_to("auth.test")) == 1
    assert not db.exists() or db.stat().st_size == 0


def test_run_check_prints_one_banner_without_touching_the_database(monkeypatch, httpserver):
    fake = start_fake_slack(httpserver)
    # Never connected to: --check stops before the migrations.
    _slack_env(monkeypatch, fake, "postgresql://tokenwise:hunter2-db-password@db.invalid:5432/tokenwise")
    monkeypatch.setenv("TOKENWISE_DEMO", "1")
    monkeypatch.setenv("SLACK_REDIRECT_URI", "https://tokens.example.com/slack/oauth_redirect")
    result = runner.invoke(app, ["run", "--check"])
    assert result.exit_code == 0, result.output
    assert printed(result.output) == [
        f"Tokenwise {version('tokenwise')}",
        "  workspace  Test (T1), as bot UBOT",
        "  sources    demo-claude_code, demo-cursor, demo-github_copilot, demo-openai",
        "  database   postgresql+psycopg://tokenwise:***@db.invalid:5432/tokenwise",
        "  Slack      HTTP on 0.0.0.0:3000; Request URL to paste into Slack (slash command, Event "
        "Subscriptions, Interactivity): https://tokens.example.com/slack/events",
        "  jobs       sync every 60 min, budget check every 30 min, anomaly check every 60 min, recap "
        "delivery every 5 min, team refresh every 360 min, saved-time questions every 60 min, OTLP points "
        "pruning every 1440 min",
    ]
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-test")
    socket = runner.invoke(app, ["run", "--check", "--no-scheduler"])
    assert socket.exit_code == 0, socket.output
    assert "  Slack      Socket Mode: no Request URL needed (manifest.dev.yml)" in printed(socket.output)
    assert "  jobs       off (--no-scheduler): run `tokenwise scheduler` next to it" in socket.output
    assert "hunter2" not in result.output + socket.output and BOT_TOKEN not in result.output
    # Bolt's "`token` will be unused" (it reads SLACK_BOT_TOKEN itself) does not greet the newcomer.
    assert not any(" will be unused" in line for line in (result.output + socket.output).splitlines())


@pytest.mark.parametrize("asked", [None, ["-v"], "TOKENWISE_LOG_LEVEL"])
def test_run_keeps_library_info_off_the_console_unless_asked(tmp_path, monkeypatch, httpserver, asked):
    import uvicorn

    fake = start_fake_slack(httpserver)
    _slack_env(monkeypatch, fake, f"sqlite:///{tmp_path}/fresh.db")
    if asked == "TOKENWISE_LOG_LEVEL":
        monkeypatch.setenv("TOKENWISE_LOG_LEVEL", "info")
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda web_app, **options: served.append(options["port"]))
    # The scheduler is built (its jobs added: apscheduler logs that at INFO), the server not started.
    result = runner.invoke(app, ["run", *(asked if isinstance(asked, list) else [])])
    assert result.exit_code == 0, result.output
    assert served == [3000]  # migrated (fresh database), then served
    assert printed(result.output)[:2] == [
        f"Tokenwise {version('tokenwise')}",
        "  workspace  Test (T1), as bot UBOT",
    ]
    libraries = ("alembic.runtime.migration", "apscheduler")
    if asked is None:
        assert not any(f'"logger": "{name}' in result.output for name in libraries), result.output
        assert "Running upgrade" not in result.output
    else:
        assert all(f'"logger": "{name}' in result.output for name in libraries), result.output
        assert "Running upgrade" in result.output


def test_the_console_drops_library_info_but_keeps_their_warnings(monkeypatch):
    import io
    import sys

    from bot.observability import configure_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        configure_logging(level="INFO", json_logs=False, quiet_libraries=True)
        logging.getLogger("matplotlib.font_manager").info("generated new fontManager")
        logging.getLogger("apscheduler.scheduler").info("Adding job tentatively")
        logging.getLogger("alembic.runtime.migration").warning("a library warning")
        logging.getLogger("bot.services.sync").info("our own info")
    finally:
        root.handlers[:], root.level = handlers, level
    lines = stream.getvalue().splitlines()
    assert [line.split(" [-] ")[1] for line in lines] == ["a library warning", "our own info"]


def test_version_and_help_without_placeholders_for_flags():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"tokenwise {version('tokenwise')}\n"
    groups = ("sync", "demo", "recap", "run", "scheduler", "db", "people", "secrets", "otel")
    paths = [[], *([name] for name in groups)]
    paths += [["db", "upgrade"], ["people", "import"], ["people", "forget"], ["secrets", "rotate"]]
    paths += [["otel", "token"], ["otel", "token", "create"], ["otel", "token", "rotate"]]
    for path in paths:
        shown = runner.invoke(app, [*path, "--help"])
        assert shown.exit_code == 0 and "--help" in shown.output, path
        assert "<bool>" not in shown.output, (path, shown.output)
    assert "--no-scheduler " in runner.invoke(app, ["run", "--help"]).output


def test_run_check_for_a_multi_workspace_install_names_the_install_page(tmp_path, monkeypatch, httpserver):
    fake = start_fake_slack(httpserver)
    db = tmp_path / "never.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("SLACK_API_URL", fake.api_url)
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SLACK_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_REDIRECT_URI", "https://tokens.example.com/slack/oauth_redirect")
    result = runner.invoke(app, ["run", "--check"])
    assert result.exit_code == 0, result.output
    assert printed(result.output)[1:3] == [
        "  workspace  every workspace that installs the app (OAuth): send admins to "
        "https://tokens.example.com/slack/install",
        "  sources    none yet: set a vendor key (README, Sources) or TOKENWISE_DEMO=1",
    ]
    assert fake.calls == []  # no bot token to check: each installation brings its own
    assert not db.exists() or db.stat().st_size == 0


def test_sync_against_a_base_url_httpx_cannot_parse_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-supersecret")
    monkeypatch.setenv("OPENAI_ADMIN_BASE_URL", "http://[::1/v1")
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 1
    assert result.output.strip() == "✗ openai: invalid base URL 'http://[::1/v1': Invalid port: ':1'"


def test_run_with_slack_unreachable_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/never.db")
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")  # discard port: nothing listens
    result = runner.invoke(app, ["run", "--check"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach Slack at http://127.0.0.1:9/api/: ")
    assert not (tmp_path / "never.db").exists()
