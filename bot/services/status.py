"""Per-source health for ``/tokens status`` and ``/healthz``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from bot.db.models import SyncRun, SyncState, as_utc
from bot.services.people import UnlinkedActor, biggest_unlinked


@dataclass(frozen=True)
class SourceStatus:
    source: str
    enabled: bool
    lag: timedelta | None
    watermark: object
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    last_rows: int

    @property
    def healthy(self) -> bool:
        return self.last_error is None or (
            self.last_success_at is not None
            and self.last_error_at is not None
            and self.last_success_at >= self.last_error_at
        )


@dataclass(frozen=True)
class StatusReport:
    sources: list[SourceStatus]
    unlinked: list[UnlinkedActor]
    #: Weekly recaps that failed (or hang) in the last two weeks (bot.services.recap.ledger).
    recaps: list = field(default_factory=list)
    #: Coding agents reporting over OTLP (bot.services.otel.AgentStatus).
    agents: list = field(default_factory=list)


def source_statuses(
    conn: Connection, *, workspace_id: str, enabled: dict[str, timedelta]
) -> list[SourceStatus]:
    states = {
        row["source"]: SyncState(**row)
        for row in conn.execute(
            select(SyncState.__table__).where(SyncState.workspace_id == workspace_id)
        ).mappings()
    }
    result = []
    for name in sorted(set(enabled) | set(states)):
        state = states.get(name)
        last_run = conn.execute(
            select(SyncRun.usage_rows, SyncRun.activity_rows)
            .where(SyncRun.workspace_id == workspace_id, SyncRun.source == name, SyncRun.status != "running")
            .order_by(SyncRun.id.desc())
            .limit(1)
        ).first()
        rows = (last_run[0] + last_run[1]) if last_run else 0
        result.append(
            SourceStatus(
                source=name,
                enabled=name in enabled,
                lag=enabled.get(name),
                watermark=state.watermark if state else None,
                last_success_at=as_utc(state.last_success_at) if state else None,
                last_error=state.last_error if state else None,
                last_error_at=as_utc(state.last_error_at) if state else None,
                consecutive_failures=state.consecutive_failures if state else 0,
                last_rows=rows,
            )
        )
    return result


def status_report(conn: Connection, *, workspace_id: str, enabled: dict[str, timedelta]) -> StatusReport:
    from bot.services.otel import agent_statuses
    from bot.services.recap.ledger import delivery_problems

    return StatusReport(
        source_statuses(conn, workspace_id=workspace_id, enabled=enabled),
        biggest_unlinked(conn, workspace_id=workspace_id),
        delivery_problems(conn, workspace_id=workspace_id),
        agent_statuses(conn, workspace_id=workspace_id),
    )
