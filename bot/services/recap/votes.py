"""Votes on a posted recap: Worth it / Not sure / Not worth it, one per person, and the tally."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, func, select

from bot.db.models import RecapDelivery, RecapVote
from bot.db.upsert import insert_for
from bot.services.recap.ledger import POSTED, delivery_by_id
from bot.services.recap.model import CHOICES, Tally


def record_vote(
    conn: Connection, *, delivery_id: int, user_id: str, choice: str, now: datetime | None = None
) -> Tally | None:
    """One vote per person per recap; voting again replaces it. None when the recap is unknown."""
    if choice not in CHOICES:
        raise ValueError(f"unknown choice {choice!r}")
    delivery = delivery_by_id(conn, delivery_id)
    if delivery is None or delivery.status != POSTED:
        return None
    stmt = insert_for(conn, RecapVote.__table__).values(
        workspace_id=delivery.workspace_id,
        delivery_id=delivery_id,
        user_id=user_id,
        choice=choice,
        voted_at=now or datetime.now(UTC),
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["delivery_id", "user_id"],
            set_={"choice": stmt.excluded.choice, "voted_at": stmt.excluded.voted_at},
        )
    )
    return tally(conn, delivery_id)


def tally(conn: Connection, delivery_id: int) -> Tally:
    counts = dict(
        conn.execute(
            select(RecapVote.choice, func.count())
            .where(RecapVote.delivery_id == delivery_id)
            .group_by(RecapVote.choice)
        ).all()
    )
    return Tally(**{key: int(counts.get(key, 0)) for key in CHOICES})


def previous_tally(conn: Connection, *, subscription_id: int, week_start: date) -> Tally | None:
    """Last week's vote of the same subscription, when last week's recap was posted."""
    row = conn.execute(
        select(RecapDelivery.id).where(
            RecapDelivery.subscription_id == subscription_id,
            RecapDelivery.week_start == week_start - timedelta(days=7),
            RecapDelivery.status == POSTED,
        )
    ).first()
    return tally(conn, row.id) if row else None
