"""Reading back what a sync stored."""

from __future__ import annotations

from sqlalchemy import func, select


def count_and_sums(engine, table, *columns: str) -> tuple:
    """(row count, the sum of each column) over ``table`` (a model such as UsageDaily)."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count(), *(func.sum(getattr(table, c)) for c in columns))).one()
        )
