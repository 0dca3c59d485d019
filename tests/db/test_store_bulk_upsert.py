"""``store.bulk_upsert``, the ingest hot path: an executemany on SQLite, ``COPY`` into a staged
table and one ``INSERT ... SELECT ... ON CONFLICT`` on PostgreSQL; the same rows either way.
Real databases."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from bot.db import store
from bot.db.models import UsageDaily
from bot.domain.money import Money
from bot.domain.records import UsageRecord

DAY = date(2026, 11, 3)


def _write(engine, records, run_id):
    with engine.begin() as conn:
        common = dict(workspace_id="W", source="openrouter", vendor="openrouter", run_id=run_id, people={})
        rows = store.usage_tuples(conn, records, **common)
        return store.bulk_upsert(
            conn, "usage_daily", rows, store.USAGE_COLUMNS, store.USAGE_KEY, store.USAGE_VALUES
        )


STORED = (UsageDaily.actor, UsageDaily.cost_micros, UsageDaily.raw_amount, UsageDaily.input_tokens)


def _stored(engine):
    with engine.connect() as conn:
        rows = conn.execute(select(*STORED, UsageDaily.sync_run_id).order_by(UsageDaily.actor))
        return [tuple(row) for row in rows]


def test_rows_are_inserted_then_updated_and_a_repeated_key_keeps_its_last_row(engine):
    first = [
        UsageRecord(DAY, "openrouter_key:a", model="m", cost=Money.from_usd("1.25"), input_tokens=10),
        UsageRecord(DAY, "openrouter_key:b", model="m", cost=Money.from_usd("2"), input_tokens=20),
    ]
    assert _write(engine, first, run_id=1) == 2
    assert _stored(engine) == [
        ("openrouter_key:a", 1_250_000, "1.25", 10, 1),
        ("openrouter_key:b", 2_000_000, "2", 20, 1),
    ]
    again = [
        UsageRecord(DAY, "openrouter_key:a", model="m", cost=Money.from_usd("3"), input_tokens=30),
        UsageRecord(DAY, "openrouter_key:a", model="m", cost=Money.from_usd("0.000001"), input_tokens=1),
    ]
    assert _write(engine, again, run_id=2) == 2
    assert _stored(engine) == [
        ("openrouter_key:a", 1, "0.000001", 1, 2),  # the last of the two rows, as an executemany
        ("openrouter_key:b", 2_000_000, "2", 20, 1),
    ]
    assert _write(engine, [], run_id=3) == 0
