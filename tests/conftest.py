"""Shared fixtures: real databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set).

Storage tests take the ``engine`` fixture and run on both. The PostgreSQL database is created
once per session (migrated with Alembic) and truncated between tests; SQLite copies a migrated
template file, so every test starts from an empty, fully migrated schema.
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

FIXTURES = Path(__file__).parent / "fixtures"
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
            ("SLACK_", "OPENAI_", "ANTHROPIC_", "CURSOR_", "GITHUB_", "OPENROUTER_", "WINDSURF_")
        ) or (name.startswith("TOKENWISE_") or name in ("DATABASE_URL", "PORT")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no stray tokenwise.toml from the repo root


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


def fixture_path(*parts: str) -> Path:
    return FIXTURES.joinpath(*parts)
