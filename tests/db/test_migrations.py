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
    """slack_sdk's installation tables live in its own metadata (checked in tests/web/test_oauth.py)."""
    kind, thing = item[0], item[1]
    table = thing if kind.endswith("_table") else getattr(thing, "table", None)
    return table is not None and table.name in SLACK_SDK_TABLES


def test_the_rollup_migration_fills_the_rollups_from_stored_rows(empty_engine):
    """A database upgraded from before the rollups answers exactly as the daily rows say."""
    from datetime import date

    from sqlalchemy import MetaData, Table, insert, select

    from bot.db import rollups
    from bot.db.models import ActivityDaily, UsageDaily, UsageOrgDaily, UsagePersonDaily

    upgrade(empty_engine, "0007_forget")

    def row(day, actor, person_id, cost_micros, input_tokens=0, raw_unit="usd"):
        return dict(
            workspace_id="W",
            source="anthropic",
            vendor="anthropic",
            model="claude",
            raw_amount="0",
            day=date(2026, 3, day),
            actor=actor,
            person_id=person_id,
            cost_micros=cost_micros,
            input_tokens=input_tokens,
            raw_unit=raw_unit,
        )

    # usage_daily as it was at 0007: without the columns later revisions added.
    later = {"cache_write_1h_tokens"}
    usage_0007 = Table(
        "usage_daily", MetaData(), *(c._copy() for c in UsageDaily.__table__.columns if c.name not in later)
    )
    activity_0007 = Table(
        "activity_daily",
        MetaData(),
        *(c._copy() for c in ActivityDaily.__table__.columns if c.name != "active_seconds"),
    )
    with empty_engine.begin() as conn:
        conn.execute(
            insert(usage_0007),
            [
                row(2, "a", 1, 5),
                row(2, "b", 1, 7),
                row(2, "c", None, 11),
                row(3, "a", 1, 0, 9, "tokens_only"),
            ],
        )
        conn.execute(
            insert(activity_0007),
            [
                dict(
                    workspace_id="W",
                    source="cursor",
                    vendor="cursor",
                    day=date(2026, 3, 2),
                    actor="a",
                    commits=3,
                )
            ],
        )
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        migrated = {
            t.__tablename__: sorted(map(tuple, conn.execute(select(t.__table__)))) for t in rollups.ROLLUPS
        }
        rollups.rebuild(conn)
        rebuilt = {
            t.__tablename__: sorted(map(tuple, conn.execute(select(t.__table__)))) for t in rollups.ROLLUPS
        }
        conn.rollback()
    assert migrated == rebuilt
    with empty_engine.connect() as conn:
        person = conn.execute(
            select(
                UsagePersonDaily.day, UsagePersonDaily.cost_micros, UsagePersonDaily.input_tokens
            ).order_by(UsagePersonDaily.day)
        ).all()
        org = conn.execute(
            select(
                UsageOrgDaily.tokens_only, UsageOrgDaily.cost_micros, UsageOrgDaily.unattributed_micros
            ).order_by(UsageOrgDaily.day)
        ).all()
    assert [tuple(r) for r in person] == [(date(2026, 3, 2), 12, 0), (date(2026, 3, 3), 0, 9)]
    assert [tuple(r) for r in org] == [(False, 23, 11), (True, 0, 0)]
