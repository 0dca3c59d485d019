"""The recap delivery ledger: exactly one post per subscription and week.

The ``recap_delivery`` row ``(subscription_id, week_start)`` is claimed (inserted, committed)
*before* anything is posted, so a second replica or a restarted process finds it and stays away.
A failed post is marked ``failed`` and claimed again by a later tick of the same week (bounded
attempts, growing pause); a claim left ``claimed`` by a process that died while posting is taken
over only after ``STALE_CLAIM``, and the taker first checks the channel for the post (see the
Slack side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, and_, func, select, update

from bot.db.models import RecapDelivery, RecapSubscription, as_utc
from bot.db.upsert import insert_for

# Ledger statuses (recap_delivery.status)
CLAIMED = "claimed"
POSTED = "posted"
FAILED = "failed"
SKIPPED = "skipped"  # nothing to post and the subscription asked for silence

MAX_ATTEMPTS = 5
RETRY_PAUSE = timedelta(minutes=5)  # times the attempts made so far
STALE_CLAIM = timedelta(minutes=15)  # a post takes seconds; a claim this old lost its process


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    subscription: RecapSubscription
    week_start: date
    attempt: int
    #: The previous holder died mid-post: look for its message before posting again.
    took_over_since: datetime | None = None


def claim(conn: Connection, sub: RecapSubscription, week_start: date, now: datetime) -> Claim | None:
    """Take the week's delivery of ``sub``, or None when another process has it, it is done, or
    it failed too often. Commit right after: the committed row is what keeps others away."""
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT that SQLAlchemy sends with it.
    inserted = conn.execute(
        insert_for(conn, RecapDelivery.__table__)
        .values(
            workspace_id=sub.workspace_id,
            subscription_id=sub.id,
            week_start=week_start,
            status=CLAIMED,
            channel_id=sub.channel_id,
            attempts=1,
            claimed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["subscription_id", "week_start"])
        .returning(RecapDelivery.__table__.c.id)
    ).first()
    if inserted is not None:
        return Claim(inserted.id, sub, week_start, 1)
    row = conn.execute(
        select(RecapDelivery.__table__).where(
            RecapDelivery.subscription_id == sub.id, RecapDelivery.week_start == week_start
        )
    ).one()
    claimed_at = as_utc(row.claimed_at)
    if row.attempts >= MAX_ATTEMPTS:
        return None
    if row.status == FAILED and now - claimed_at >= RETRY_PAUSE * row.attempts:
        took_over_since = None
    elif row.status == CLAIMED and now - claimed_at >= STALE_CLAIM:
        took_over_since = claimed_at
    else:
        return None
    # Optimistic: the attempt count is the row's version, so exactly one contender wins.
    won = conn.execute(
        update(RecapDelivery)
        .where(
            RecapDelivery.id == row.id,
            RecapDelivery.status == row.status,
            RecapDelivery.attempts == row.attempts,
        )
        .values(status=CLAIMED, attempts=row.attempts + 1, claimed_at=now)
    ).rowcount
    if won != 1:
        return None
    return Claim(row.id, sub, week_start, row.attempts + 1, took_over_since)


def mark_posted(conn: Connection, delivery_id: int, *, message_ts: str | None, now: datetime) -> None:
    conn.execute(
        update(RecapDelivery)
        .where(RecapDelivery.id == delivery_id)
        .values(status=POSTED, message_ts=message_ts, posted_at=now, error=None)
    )


def mark_failed(conn: Connection, delivery_id: int, *, error: str, final: bool = False) -> None:
    """``final``: no more attempts (a person has to look), e.g. when a retry might double-post."""
    values = {"status": FAILED, "error": error[:2000]}
    if final:
        values["attempts"] = MAX_ATTEMPTS
    conn.execute(update(RecapDelivery).where(RecapDelivery.id == delivery_id).values(**values))


def mark_skipped(conn: Connection, delivery_id: int, *, reason: str) -> None:
    conn.execute(
        update(RecapDelivery).where(RecapDelivery.id == delivery_id).values(status=SKIPPED, error=reason)
    )


def _delivery(row) -> RecapDelivery:
    # SQLite hands back naive datetimes: the builders convert them to the org's timezone.
    return RecapDelivery.model_validate(
        {**row._mapping, "claimed_at": as_utc(row.claimed_at), "posted_at": as_utc(row.posted_at)}
    )


def delivery_by_id(conn: Connection, delivery_id: int) -> RecapDelivery | None:
    row = conn.execute(select(RecapDelivery).where(RecapDelivery.id == delivery_id)).first()
    return _delivery(row) if row else None


def latest_deliveries(conn: Connection, subscription_ids: Sequence[int]) -> dict[int, RecapDelivery]:
    if not subscription_ids:
        return {}
    latest = (
        select(RecapDelivery.subscription_id, func.max(RecapDelivery.week_start).label("week"))
        .where(RecapDelivery.subscription_id.in_(list(subscription_ids)))
        .group_by(RecapDelivery.subscription_id)
        .subquery()
    )
    rows = conn.execute(
        select(RecapDelivery).join(
            latest,
            and_(
                RecapDelivery.subscription_id == latest.c.subscription_id,
                RecapDelivery.week_start == latest.c.week,
            ),
        )
    ).all()
    return {row.subscription_id: _delivery(row) for row in rows}


@dataclass(frozen=True)
class DeliveryProblem:
    """A recap that is not (yet) posted: for ``/tokens status``."""

    channel_id: str
    group_id: str
    week_start: date
    status: str
    attempts: int
    error: str | None
    retrying: bool


def delivery_problems(
    conn: Connection, *, workspace_id: str, now: datetime | None = None
) -> list[DeliveryProblem]:
    """Failed deliveries of the last two weeks, and claims stuck past ``STALE_CLAIM``."""
    now = now or datetime.now(UTC)
    since = (now - timedelta(days=14)).date()
    rows = conn.execute(
        select(RecapDelivery.__table__, RecapSubscription.group_id)
        .join(RecapSubscription, RecapSubscription.id == RecapDelivery.subscription_id)
        .where(
            RecapDelivery.workspace_id == workspace_id,
            RecapDelivery.week_start >= since,
            RecapDelivery.status.in_([FAILED, CLAIMED]),
        )
        .order_by(RecapDelivery.week_start.desc(), RecapDelivery.id)
    ).all()
    found = []
    for row in rows:
        if row.status == CLAIMED and now - as_utc(row.claimed_at) < STALE_CLAIM:
            continue  # being posted right now
        found.append(
            DeliveryProblem(
                row.channel_id,
                row.group_id,
                row.week_start,
                row.status,
                row.attempts,
                row.error,
                row.attempts < MAX_ATTEMPTS,
            )
        )
    return found
