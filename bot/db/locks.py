"""Cross-replica mutual exclusion for jobs.

On PostgreSQL a transaction-scoped advisory lock (``pg_try_advisory_xact_lock``) is held for the
duration of the job on its own connection, so replicas never spend a vendor's rate limit on the
same work twice; it is released when the transaction ends, even if the process dies. The unique
ledger rows stay the guarantee of exactly-once effects; the lock only avoids wasted work.
SQLite serves a single process, so the lock is always granted there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


def lock_key(name: str) -> int:
    """A stable signed 64-bit key (Python's hash() differs between processes)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def job_lock(engine: Engine, name: str) -> Iterator[bool]:
    """Yields True when this process holds the lock for ``name`` until the block ends."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn, conn.begin():
        query = text("SELECT pg_try_advisory_xact_lock(:key)")
        granted = conn.execute(query, {"key": lock_key(name)}).scalar()
        yield bool(granted)


def hold_xact_lock(conn, name: str) -> None:
    """Wait for the transaction-scoped advisory lock ``name`` on PostgreSQL (released at commit or
    rollback). SQLite needs none: its single writer lock already serialises the transaction, as
    long as the transaction's first statement is a write."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
