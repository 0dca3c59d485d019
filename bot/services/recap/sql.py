"""The SQL dialect's INSERT the recap's writers share: ``ON CONFLICT`` is spoken by SQLite and
PostgreSQL alike, but SQLAlchemy builds it per dialect."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(conn: Connection, table):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
