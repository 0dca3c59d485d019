"""``INSERT ... ON CONFLICT`` for both databases Tokenwise runs on (SQLite and PostgreSQL).

SQLAlchemy has no dialect-neutral ``on_conflict``: each dialect's ``insert`` carries its own
``on_conflict_do_nothing`` / ``on_conflict_do_update``, with the same arguments on both. So every
writer that claims a row (ledgers, links) or upserts a window asks :func:`insert_for` for the
connection's own ``insert`` instead of branching on the dialect itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(conn: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """The connection's dialect ``insert(table)``, which has ``on_conflict_do_*``."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict], key: Sequence[str]) -> None:
    """Insert the rows whose ``key`` is not taken yet; the others are left as they are."""
    if not rows:
        return
    conn.execute(insert_for(conn, table).on_conflict_do_nothing(index_elements=list(key)), list(rows))


_PROCESSORS: dict[tuple[str, str, tuple[str, ...]], list] = {}


def insert_ignore_driver(conn: Connection, table: Table, rows: Sequence[dict], key: Sequence[str]) -> None:
    """:func:`insert_ignore` as one driver ``executemany`` of tuples: each value converted by its
    column type's own bind processor (what SQLAlchemy would do), without SQLAlchemy's per-row
    parameter handling (a fifth of an OTLP request's time, B7). Every row has the first row's keys."""
    if not rows:
        return
    columns = tuple(rows[0])
    cache_key = (conn.dialect.name, table.name, columns)
    processors = _PROCESSORS.get(cache_key)
    if processors is None:
        processors = _PROCESSORS[cache_key] = [
            table.c[name].type.bind_processor(conn.dialect) for name in columns
        ]
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
    )
    converting = [(at, process) for at, process in enumerate(processors) if process is not None]
    tuples = []
    for row in rows:
        values = [row[name] for name in columns]  # by name: a row's keys may come in another order
        for at, process in converting:
            values[at] = process(values[at])
        tuples.append(tuple(values))
    conn.exec_driver_sql(sql, tuples)


def upsert(
    conn: Connection, table: Table, rows: Sequence[dict], key: Sequence[str], values: Sequence[str]
) -> None:
    """Insert the rows, or set ``values`` on the row with the same ``key``. One compiled statement
    run as executemany: the statement is cached, the driver loops in C."""
    if not rows:
        return
    stmt = insert_for(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key), set_={name: stmt.excluded[name] for name in values}
    )
    conn.execute(stmt, list(rows))


def upsert_sql(
    conn: Connection,
    table_name: str,
    columns: Sequence[str],
    key: Sequence[str],
    values: Sequence[str],
    *,
    adding: bool = False,
) -> str:
    """:func:`upsert`'s statement as driver SQL with positional markers, for ``exec_driver_sql``
    of plain tuples in ``columns`` order (the same text on SQLite and PostgreSQL). With
    ``adding``, an existing row's ``values`` grow by the new ones instead (rollup deltas)."""
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    grown = f"{table_name}.{{name}} + " if adding else ""
    return (
        f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
        + ", ".join(f"{name} = {grown.format(name=name)}excluded.{name}" for name in values)
    )
