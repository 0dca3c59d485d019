"""The outcome of a claimed effect on its ledger row (a DM or post claimed BEFORE it was sent):
its status, where the message went and, once sent, when."""

from __future__ import annotations

from typing import Required, TypedDict, Unpack

from sqlalchemy import Connection, update

from bot.domain.clock import utcnow

SENT = "sent"


class Outcome(TypedDict, total=False):
    """How a claimed DM or post went: ``status`` ("sent", "failed", ...), the channel and
    message ``ts`` it went to, or the error that stopped it."""

    status: Required[str]
    channel: str
    ts: str
    error: str | None


def finish_effect(conn: Connection, table, *where, **outcome: Unpack[Outcome]) -> None:
    """Record ``outcome`` on the rows of ``table`` that ``where`` picks."""
    status = outcome["status"]
    conn.execute(
        update(table)
        .where(*where)
        .values(
            status=status,
            channel=outcome.get("channel", ""),
            message_ts=outcome.get("ts", ""),
            error=outcome.get("error"),
            sent_at=utcnow() if status == SENT else None,
        )
    )
