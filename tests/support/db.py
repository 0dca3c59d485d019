"""Reading back what a sync stored."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.db.models import Person, UsageDaily


def count_and_sums(engine, table, *columns: str) -> tuple:
    """(row count, the sum of each column) over ``table`` (a model such as UsageDaily)."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count(), *(func.sum(getattr(table, c)) for c in columns))).one()
        )


#: The figures of a usage row the source tests compare, in this order.
USAGE_FIGURES = (
    UsageDaily.day,
    UsageDaily.actor,
    UsageDaily.model,
    UsageDaily.input_tokens,
    UsageDaily.cache_read_tokens,
    UsageDaily.cache_write_tokens,
    UsageDaily.output_tokens,
    UsageDaily.requests,
    UsageDaily.cost_micros,
    UsageDaily.raw_amount,
)

#: Micro-USD, the input, output, cache read and cache write tokens and the count of usage rows.
USAGE_SUMS = (
    func.sum(UsageDaily.cost_micros),
    func.sum(UsageDaily.input_tokens),
    func.sum(UsageDaily.output_tokens),
    func.sum(UsageDaily.cache_read_tokens),
    func.sum(UsageDaily.cache_write_tokens),
    func.count(),
)


def usage_rows(engine, workspace_id: str, *columns) -> list[tuple]:
    """``columns`` of each of the workspace's usage rows; ``Person.email`` is the linked person's."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(*columns)
            .select_from(UsageDaily)
            .outerjoin(Person, Person.id == UsageDaily.person_id)
            .where(UsageDaily.workspace_id == workspace_id)
        ).all()
    return [tuple(row) for row in rows]


def sum_by_email(engine, column) -> dict[str, int]:
    """``column`` of a daily table (``ActivityDaily.lines_accepted``, say) summed per linked
    person's email (rows of no one left out)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Person.email, func.sum(column))
            .join(Person, Person.id == column.class_.person_id)
            .group_by(Person.email)
        ).all()
    return {email: int(total) for email, total in rows}


def usage_by_email(engine) -> dict[str, int]:
    """Micro-USD per linked person's email (unlinked usage left out)."""
    return sum_by_email(engine, UsageDaily.cost_micros)
