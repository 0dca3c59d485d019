"""The outcome of a claimed effect on its ledger row (a DM or post claimed BEFORE it was sent):
its status, where the message went and, once sent, when."""

from __future__ import annotations

from sqlalchemy import Connection, update

from bot.domain.clock import utcnow

SENT = "sent"


def finish_effect(
    conn: Connection,
    table,
    *where,
    status: str,
    channel: str = "",
    ts: str = "",
    error: str | None = None,
) -> None:
    """Record how a claimed DM or post went on the rows of ``table`` that ``where`` picks."""
    conn.execute(
        update(table)
        .where(*where)
        .values(
            status=status,
            channel=channel,
            message_ts=ts,
            error=error,
            sent_at=utcnow() if status == SENT else None,
        )
    )
