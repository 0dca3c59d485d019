"""Shared fixtures: real databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set) and
the Slack side (the recording fake Slack Web API, the demo org, the real HTTP app).

Storage tests take the ``engine`` fixture and run on both. The PostgreSQL database is created
once per session (migrated with Alembic) and truncated between tests; SQLite copies a migrated
template file, so every test starts from an empty, fully migrated schema.

A module overrides one of these by declaring a fixture of the same name that takes the shared
one (``def fake_slack(fake_slack): ...``); the helpers behind them are in tests/support/.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.db.engine import make_engine
from bot.db.migrate import upgrade
from bot.services.reports import medians
from bot.slack import commands
from tests.support.slack_app import add_team_users, seed_demo, slack_client
from tests.support.slack_fake import FakeSlack, start_fake_slack

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


def _normalise(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Real SLACK_* or vendor keys in the developer's shell must never leak into tests."""
    for name in list(os.environ):
        if name.startswith(
            ("SLACK_", "OPENAI_", "ANTHROPIC_", "CURSOR_", "GITHUB_", "OPENROUTER_", "WINDSURF_", "CODEX_")
        ) or (name.startswith("TOKENWISE_") or name in ("DATABASE_URL", "PORT")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no stray tokenwise.toml from the repo root


@pytest.fixture(autouse=True)
def _patient_ack(monkeypatch):
    """Tests read a command's answer in its ack. On a loaded machine an answer can miss the 2 s
    budget and go to the response_url as a late answer instead, which a test's dummy URL drops:
    the budget is generous here, and the tests of the late path (tests/slack/test_slack_latency.py,
    test_slack_commands.py) set their own."""
    monkeypatch.setattr(commands, "ACK_BUDGET_SECONDS", 60.0)


@pytest.fixture(autouse=True)
def _fresh_medians(monkeypatch):
    """Every test reads team medians afresh (tests change data between two views); the reuse
    itself is tested in tests/services/test_team_medians.py."""
    monkeypatch.setattr(medians, "CACHE_SECONDS", 0.0)
    medians.forget_cached_medians()


@pytest.fixture(autouse=True)
def _restore_logging():
    """CLI commands configure the root logger onto the runner's stream, which closes after the
    command: put the test's logging back so later log lines do not hit a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url():
    if not TEST_DATABASE_URL:
        yield None
        return
    admin_url = _normalise(TEST_DATABASE_URL)
    name = f"tokenwise_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(engine) -> None:
    with engine.begin() as conn:
        tables = (
            conn.execute(
                text(
                    "SELECT tablename FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path, sqlite_template) -> str:
    if request.param == "sqlite":
        path = tmp_path / "tokenwise.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    if url is None:
        pytest.skip("TEST_DATABASE_URL not set")
    engine = make_engine(url)
    _truncate_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    path = tmp_path / "tokenwise.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def vendor_server():
    """A vendor's own loopback server, for tests where the shared ``httpserver`` is the fake Slack
    (it answers every path)."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


# -- the Slack side ---------------------------------------------------------------------------
@pytest.fixture
def fake_slack(httpserver) -> FakeSlack:
    """The recording fake Slack Web API on loopback; its directory is fixtures/slack/users.json."""
    return start_fake_slack(httpserver)


@pytest.fixture
def slack_team(fake_slack) -> FakeSlack:
    """The fake Slack's directory holds the demo org's whole team too (fixtures/slack/team_users.json).
    Modules whose tests need them say ``pytestmark = pytest.mark.usefixtures("slack_team")``."""
    add_team_users(fake_slack)
    return fake_slack


@pytest.fixture
def seeded(engine):
    """The demo org: 70 days of the demo vendors synced into the test database."""
    seed_demo(engine)
    return engine


@pytest.fixture
def client(seeded, fake_slack):
    """The real Starlette+Bolt app over the demo org, talking to the fake Slack."""
    with slack_client(seeded, fake_slack) as test_client:
        yield test_client
