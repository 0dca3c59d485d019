"""Engine and session factory. SQLite is tuned for one process with concurrent readers (WAL);
PostgreSQL gets a pre-pinged pool so a restarted server is reconnected transparently."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str, *, echo: bool = False, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(
        url,
        echo=echo,
        # JIT compilation costs ~0.5 s per query and pays off only for queries that run for
        # seconds; the planner's cost estimate for a team's rollup scan crosses jit_above_cost and
        # the compile then took 550 of 850 ms (docs/benchmarks.md, B3). Our queries are short.
        connect_args={"options": "-c jit=off"},
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_recycle=1800,
    )


def read_connection(engine: Engine) -> Connection:
    """A connection for reads only. On PostgreSQL it runs in autocommit: no ``BEGIN`` before the
    first statement and no ``ROLLBACK`` when it goes back to the pool, two round trips fewer per
    use (half the server's CPU of a ``/tokens me``, docs/benchmarks.md B5). Nothing else changes:
    under READ COMMITTED every statement takes its own snapshot inside a transaction too. SQLite's
    driver begins no transaction for a ``SELECT`` anyway, so it is left as it is."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn
