"""Migrations: from empty to head, down to every earlier revision and back, on SQLite and
PostgreSQL, and the migrated schema matches the models (nothing left to autogenerate)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import bot.db.models  # noqa: F401  (registers the tables)
from bot.db.engine import make_engine
from bot.db.migrate import alembic_config, downgrade, upgrade

SLACK_SDK_TABLES = {"slack_bots", "slack_installations", "slack_oauth_states"}


@pytest.fixture
def empty_engine(db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:  # the fixture hands out a migrated database: start from nothing
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            for table in inspect(conn).get_table_names():
                conn.execute(text(f'DROP TABLE "{table}"'))
    yield engine
    engine.dispose()


def _revisions(engine) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(engine))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_single_head_and_linear_history(empty_engine):
    script = ScriptDirectory.from_config(alembic_config(empty_engine))
    assert len(script.get_heads()) == 1, "migrations must form one line"


def test_upgrade_from_every_earlier_revision(empty_engine):
    revisions = _revisions(empty_engine)
    upgrade(empty_engine)
    for revision in reversed(revisions[:-1]):
        downgrade(empty_engine, revision)
        upgrade(empty_engine)
    downgrade(empty_engine, "base")
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    upgrade(empty_engine)


def test_migrated_schema_matches_the_models(empty_engine):
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, SQLModel.metadata)
    assert [d for d in diff if not _slack_sdk_owned(d)] == []


def _slack_sdk_owned(item) -> bool:
    """slack_sdk's installation tables live in its own metadata (checked in tests/test_oauth.py)."""
    kind, thing = item[0], item[1]
    table = thing if kind.endswith("_table") else getattr(thing, "table", None)
    return table is not None and table.name in SLACK_SDK_TABLES
