"""Bench databases: the real schema (Alembic migrations), filled with the synthetic org by bulk
loads straight into the tables (not through the connectors: that is what B1 measures), cached.

SQLite files live in ``bench/.cache/``; PostgreSQL databases are named after the same key. Both
are built under a temporary name and renamed when complete, so an interrupted build is never
reused. A JSON sidecar keeps the facts computed while generating (row counts, sums, per-person
month totals) so every run checks the database against them, cached or not.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import bot.db.models as models
from bench import synth
from bot.db import rollups
from bot.db.engine import make_engine
from bot.db.migrate import upgrade
from bot.domain.clock import utcnow

#: Bump when the generator or the load changes, so cached databases are rebuilt.
GEN_VERSION = 1
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
BULK_TABLES = ("usage_daily", "activity_daily")

Log = Callable[[str], None]


@dataclass
class BenchDb:
    kind: str  # sqlite | postgres
    url: str
    people: int
    seed: int
    facts: dict
    built_seconds: float | None  # None when it came from the cache
    schema_drift: list[str]

    @property
    def usage_rows(self) -> int:
        return self.facts["usage_rows"]


def cache_key(people: int, seed: int) -> str:
    return f"org-{people}p-seed{seed}-v{GEN_VERSION}"


def probe_people(seed: int, smallest_tier: int) -> list[int]:
    """People whose /tokens me answers are measured and checked: a seeded sample of the smallest
    tier (so they exist at every size) plus its heaviest spender (the tail drives p99)."""
    import random

    rng = random.Random(f"{seed}:probes")
    chosen = rng.sample(range(1, smallest_tier + 1), min(24, smallest_tier))
    heaviest = max(range(1, smallest_tier + 1), key=lambda i: synth.make_person(seed, i).intensity)
    return sorted({*chosen, heaviest})


def team_people(seed: int, people: int, size: int) -> list[int]:
    import random

    return sorted(random.Random(f"{seed}:team").sample(range(1, people + 1), min(size, people)))


def ensure_model_indexes(engine: Engine) -> list[str]:
    """Create indexes declared in bot/db/models.py that the migrations did not create; return
    their names (schema drift: a migration is missing)."""
    found = []
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in tables:
            continue
        existing = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in existing:
                index.create(engine)
                found.append(f"{table.name}.{index.name}")
    return found


def _secondary_indexes(conn, kind: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the non-unique indexes on the bulk tables."""
    if kind == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join(repr(t) for t in BULK_TABLES)})"
        ).all()
        return [(name, sql) for name, sql in rows if "UNIQUE" not in sql.upper()]
    rows = conn.exec_driver_sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        f"AND tablename IN ({', '.join(repr(t) for t in BULK_TABLES)})"
    ).all()
    return [(name, sql) for name, sql in rows if "UNIQUE" not in sql.upper()]


def _rollup_keys(conn) -> list[tuple[str, str]]:
    """PostgreSQL: (drop, create) statements of the rollup tables' primary keys and indexes, so
    that the rebuild inserts into bare tables and each index is built once, by a sort (at 30M
    usage rows, maintaining them row by row took most of the build)."""
    tables = ", ".join(repr(rollup.__tablename__) for rollup in rollups.ROLLUPS)
    keys = conn.exec_driver_sql(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        f"WHERE contype = 'p' AND conrelid::regclass::text IN ({tables})"
    ).all()
    statements = [
        (f"ALTER TABLE {table} DROP CONSTRAINT {name}", f"ALTER TABLE {table} ADD CONSTRAINT {name} {key}")
        for table, name, key in keys
    ]
    names = {name for _, name, _ in keys}
    indexes = conn.exec_driver_sql(
        f"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename IN ({tables})"
    ).all()
    return statements + [(f"DROP INDEX {name}", sql) for name, sql in indexes if name not in names]


def _insert_people(engine: Engine, people: int, seed: int) -> None:
    person_rows = [
        {**row, "show_name_in_channels": False, "created_at": utcnow()} for row in synth.people_rows(people)
    ]
    identities = [{**row, "label": "", "created_at": utcnow()} for row in synth.identity_rows(seed, people)]
    with engine.begin() as conn:
        conn.execute(models.Person.__table__.insert(), person_rows)
        conn.execute(models.Identity.__table__.insert(), identities)
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT setval('person_id_seq', {people})")


class Facts:
    """What the generator produced, to check the loaded database and the answers against."""

    def __init__(self, probes: list[int], team: list[int]) -> None:
        self.usage_rows = 0
        self.activity_rows = 0
        self.cost_micros = 0
        self.org_month_micros = 0  # rows in the org total, in the report month
        self.probe_month: dict[int, int] = dict.fromkeys(probes, 0)
        self.team = set(team)
        self.team_month_micros = 0
        self.team_daily: dict[str, int] = {}
        self.last_day = ""

    def add(self, day: synth.DayRows) -> None:
        self.usage_rows += len(day.usage)
        self.activity_rows += len(day.activity)
        in_month = synth.REPORT_MONTH_START <= day.day < synth.REPORT_MONTH_END
        probes, team = self.probe_month, self.team
        team_day = 0
        for row in day.usage:
            cost = row[14]
            self.cost_micros += cost
            if in_month:
                if row[17]:
                    self.org_month_micros += cost
                person = row[5]
                if person in probes:
                    probes[person] += cost
                if person in team:
                    self.team_month_micros += cost
            if row[5] in team:
                team_day += cost
        self.team_daily[day.day.isoformat()] = team_day
        self.last_day = day.day.isoformat()

    def as_json(self) -> dict:
        return {
            "usage_rows": self.usage_rows,
            "activity_rows": self.activity_rows,
            "cost_micros": self.cost_micros,
            "org_month_micros": self.org_month_micros,
            "probe_month_micros": {str(k): v for k, v in self.probe_month.items()},
            "team": sorted(self.team),
            "team_month_micros": self.team_month_micros,
            "team_daily_micros": self.team_daily,
            "last_day": self.last_day,
        }


def _load_rows(engine: Engine, kind: str, seed: int, people: int, facts: Facts, log: Log) -> None:
    usage_sql = (
        f"INSERT INTO usage_daily ({', '.join(synth.USAGE_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(synth.USAGE_COLUMNS))})"
    )
    activity_sql = (
        f"INSERT INTO activity_daily ({', '.join(synth.ACTIVITY_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(synth.ACTIVITY_COLUMNS))})"
    )
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if kind == "sqlite":
            # A one-off load of a throwaway file: no journal, no fsync, a large page cache.
            cursor.execute("PRAGMA journal_mode=OFF")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-1000000")
        started = time.perf_counter()
        for number, day in enumerate(synth.generate(seed, people), start=1):
            facts.add(day)
            if kind == "sqlite":
                cursor.executemany(usage_sql, day.usage)
                cursor.executemany(activity_sql, day.activity)
            else:
                with cursor.copy(f"COPY usage_daily ({', '.join(synth.USAGE_COLUMNS)}) FROM STDIN") as copy:
                    for row in day.usage:
                        copy.write_row(row)
                with cursor.copy(
                    f"COPY activity_daily ({', '.join(synth.ACTIVITY_COLUMNS)}) FROM STDIN"
                ) as copy:
                    for row in day.activity:
                        copy.write_row(row)
            if number % 30 == 0:
                raw.commit()
                rate = facts.usage_rows / (time.perf_counter() - started)
                done = f"day {number}/{synth.DAYS}, {facts.usage_rows:,} usage rows ({rate:,.0f}/s)"
                log(f"  {people} people: {done}")
        raw.commit()
        if kind == "sqlite":
            cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()


def _build_memory(conn, kind: str) -> None:
    """More sort and hash memory for this transaction's index builds and rollup aggregation
    (30M rows: the defaults spill to disk); the server's settings stay as they are."""
    if kind == "postgres":
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")


def _build(engine: Engine, kind: str, seed: int, people: int, probes: list[int], team: list[int], log: Log):
    upgrade(engine)
    drift = ensure_model_indexes(engine)
    _insert_people(engine, people, seed)
    with engine.begin() as conn:
        indexes = _secondary_indexes(conn, kind)
        for name, _ in indexes:
            conn.exec_driver_sql(f"DROP INDEX {name}")
    facts = Facts(probes, team)
    _load_rows(engine, kind, seed, people, facts, log)
    log(f"  {people} people: creating {len(indexes)} indexes")
    with engine.begin() as conn:
        _build_memory(conn, kind)
        for _, sql in indexes:
            conn.exec_driver_sql(sql)
    # The rows were bulk-loaded beside the sync engine, which keeps the rollups: compute them once.
    log(f"  {people} people: computing the daily rollups")
    with engine.begin() as conn:
        _build_memory(conn, kind)
        keys = _rollup_keys(conn) if kind == "postgres" else []
        for drop, _ in keys:
            conn.exec_driver_sql(drop)
        rollups.rebuild(conn)
        log(f"  {people} people: creating the rollups' {len(keys)} keys and indexes")
        for _, create in keys:
            conn.exec_driver_sql(create)
    if kind == "postgres":
        # A production database has been vacuumed and analysed by autovacuum long before it holds
        # a year of data; a fresh bulk load has not, so do it once here.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return facts, drift


def _pg_admin(admin_url: str) -> Engine:
    return create_engine(admin_url, isolation_level="AUTOCOMMIT")


def normalise_pg_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def pg_database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def fresh_database(kind: str, name: str, *, cache_dir: Path, pg_admin_url: str | None) -> str:
    """An empty, migrated database for a write benchmark (replaced if it exists)."""
    if kind == "sqlite":
        path = cache_dir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        admin = _pg_admin(pg_admin_url)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        url = pg_database_url(pg_admin_url, name)
    engine = make_engine(url)
    upgrade(engine)
    ensure_model_indexes(engine)
    engine.dispose()
    return url


def drop_database(kind: str, url: str, pg_admin_url: str | None) -> None:
    if kind == "sqlite":
        path = make_url(url).database
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    admin = _pg_admin(pg_admin_url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    admin.dispose()


def _current(facts: dict, probes: list[int], team: list[int]) -> bool:
    return facts.get("probes") == probes and facts.get("team") == team and "team_daily_micros" in facts


def get_db(
    kind: str,
    *,
    people: int,
    seed: int,
    probes: list[int],
    team: list[int],
    cache_dir: Path = CACHE_DIR,
    pg_admin_url: str | None = None,
    log: Log = print,
) -> BenchDb:
    """The cached database for (people, seed), built first if missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(people, seed)
    sidecar = cache_dir / f"{key}.{kind}.json"
    if kind == "sqlite":
        path = cache_dir / f"{key}.db"
        url = f"sqlite:///{path}"
        if path.exists() and sidecar.exists():
            facts = json.loads(sidecar.read_text())
            if _current(facts, probes, team):
                engine = make_engine(url)
                upgrade(engine)  # a cached file follows migrations added since it was built
                drift = ensure_model_indexes(engine)
                engine.dispose()
                return BenchDb(kind, url, people, seed, facts, None, drift)
        building = cache_dir / f"{key}.building.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{building}{suffix}").unlink(missing_ok=True)
        started = time.perf_counter()
        engine = make_engine(f"sqlite:///{building}")
        facts, drift = _build(engine, kind, seed, people, probes, team, log)
        engine.dispose()
        os.replace(building, path)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        name = f"tokenwise_bench_{people}p_s{seed}_v{GEN_VERSION}"
        url = pg_database_url(pg_admin_url, name)
        admin = _pg_admin(pg_admin_url)
        with admin.connect() as conn:
            exists = conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).first()
        if exists and sidecar.exists():
            facts = json.loads(sidecar.read_text())
            if _current(facts, probes, team):
                admin.dispose()
                engine = make_engine(url)
                upgrade(engine)
                drift = ensure_model_indexes(engine)
                engine.dispose()
                return BenchDb(kind, url, people, seed, facts, None, drift)
        building = f"{name}_building"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{building}"')
        started = time.perf_counter()
        engine = make_engine(pg_database_url(pg_admin_url, building))
        facts, drift = _build(engine, kind, seed, people, probes, team, log)
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        admin.dispose()
    data = {**facts.as_json(), "probes": probes}
    sidecar.write_text(json.dumps(data, indent=1))
    return BenchDb(kind, url, people, seed, data, time.perf_counter() - started, drift)


def check_db(db: BenchDb) -> dict:
    """Compare the stored rows with what the generator produced: the stored figures and a
    ``problems`` list of differences."""
    engine = make_engine(db.url)
    problems = []
    with engine.connect() as conn:
        count, cost = conn.execute(
            text("SELECT count(*), coalesce(sum(cost_micros), 0) FROM usage_daily")
        ).one()
        activity = conn.execute(text("SELECT count(*) FROM activity_daily")).scalar_one()
    engine.dispose()
    if count != db.facts["usage_rows"]:
        problems.append(f"usage rows: stored {count}, generated {db.facts['usage_rows']}")
    if int(cost) != db.facts["cost_micros"]:
        problems.append(f"cost: stored {cost}, generated {db.facts['cost_micros']}")
    if activity != db.facts["activity_rows"]:
        problems.append(f"activity rows: stored {activity}, generated {db.facts['activity_rows']}")
    return {"usage_rows": count, "cost_micros": int(cost), "activity_rows": activity, "problems": problems}
