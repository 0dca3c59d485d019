"""The alert ledger: which threshold alerts, early warnings and floor nudges are due, claiming
their ``AlertSent`` rows before anything is sent, recording the outcome, and the peer pace a
floor nudge quotes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.db.models import AlertSent, Budget, Team, UsagePersonDaily
from bot.domain.clock import utcnow
from bot.domain.records import SEAT
from bot.services import access, teams
from bot.services.budgets.status import BudgetStatus, statuses, tightest
from bot.services.budgets.store import all_budgets, with_teams
from bot.services.budgets.visibility import statuses_for_person
from bot.services.budgets.vocabulary import FLOOR, FORECAST, THRESHOLD
from bot.services.reports import on_team  # the one definition of "counts for the team that day"


@dataclass(frozen=True)
class DueAlert:
    """One DM's worth of alert: the ledger keys it covers (kind, threshold)."""

    workspace_id: str
    status: BudgetStatus
    kind: str  # threshold | forecast | floor
    keys: tuple[tuple[str, int], ...]
    # A personal alert: the person's tightest budget when it is another one (a request for more
    # raises that one, as /tokens me shows it); None when it is this one, or on a tie.
    tightest: BudgetStatus | None = None

    @property
    def budget(self) -> Budget:
        return self.status.budget


def due_alerts(
    conn: Connection, *, workspace_id: str, today: date, min_group_size: int | None = None
) -> list[DueAlert]:
    """What should be sent now for the current periods, minus what the ledger already holds.

    A threshold DM covers every newly crossed threshold (it names the highest); a forecast
    warning that falls due with it is covered by the same DM, which carries the forecast. With
    ``min_group_size``, a personal threshold alert also carries the person's tightest budget
    when it is another one (``tightest_elsewhere``)."""
    budgets = all_budgets(conn, workspace_id=workspace_id)
    if not budgets:
        return []
    found = statuses(
        conn,
        workspace_id=workspace_id,
        budgets=with_teams(conn, workspace_id=workspace_id, budgets=budgets),
        today=today,
    )
    starts = {s.budget.id: s.period.start for s in found}
    ledger = {
        (bid, start, kind, threshold)
        for bid, start, kind, threshold in conn.execute(
            select(AlertSent.budget_id, AlertSent.period_start, AlertSent.kind, AlertSent.threshold).where(
                AlertSent.workspace_id == workspace_id,
                AlertSent.budget_id.in_(list(starts)),
                AlertSent.period_start >= min(starts.values()),
            )
        ).all()
    }
    due = []
    for status in found:
        budget, start = status.budget, status.period.start
        if status.ceiling_micros <= 0:
            continue
        new = tuple((THRESHOLD, t) for t in status.crossed if (budget.id, start, THRESHOLD, t) not in ledger)
        forecast = status.forecast_over and (budget.id, start, FORECAST, 100) not in ledger
        if new:
            keys = new + (((FORECAST, 100),) if forecast else ())
            tight = None
            if min_group_size is not None and budget.person_id is not None:
                tight = tightest_elsewhere(
                    conn, workspace_id=workspace_id, status=status, today=today, min_group_size=min_group_size
                )
            due.append(DueAlert(workspace_id, status, THRESHOLD, keys, tight))
        elif forecast:
            due.append(DueAlert(workspace_id, status, FORECAST, ((FORECAST, 100),)))
        if status.below_floor_pace and (budget.id, start, FLOOR, 0) not in ledger:
            due.append(DueAlert(workspace_id, status, FLOOR, ((FLOOR, 0),)))
    return due


def tightest_elsewhere(
    conn: Connection, *, workspace_id: str, status: BudgetStatus, today: date, min_group_size: int
) -> BudgetStatus | None:
    """The tightest budget of the person a personal budget is for, as they see it (the rule of
    every view, ``status.tightest``), when it is not ``status``'s own budget."""
    person_id = status.budget.person_id
    assert person_id is not None
    seen = statuses_for_person(
        conn,
        workspace_id=workspace_id,
        viewer=access.Viewer("", False, person_id),
        person_id=person_id,
        today=today,
        min_group_size=min_group_size,
    )
    found = tightest(seen)
    return found if found is not None and found.budget.id != status.budget.id else None


def _dialect_insert(conn: Connection, table):
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def claim_alert(
    conn: Connection,
    *,
    workspace_id: str,
    budget_id: int,
    period_start: date,
    keys: Sequence[tuple[str, int]],
) -> list[tuple[str, int]]:
    """Insert the ledger rows BEFORE anything is sent; only the keys this call inserted are
    returned (another replica, or an earlier run, owns the rest). Sorted, so two claimers
    wait on the unique index in the same order and never deadlock."""
    claimed = []
    for kind, threshold in sorted(keys):
        insert = _dialect_insert(conn, AlertSent.__table__).on_conflict_do_nothing(
            index_elements=["workspace_id", "budget_id", "period_start", "kind", "threshold"]
        )
        result = conn.execute(
            insert.values(
                workspace_id=workspace_id,
                budget_id=budget_id,
                period_start=period_start,
                kind=kind,
                threshold=threshold,
                status="claimed",
                claimed_at=utcnow(),
            ).returning(AlertSent.id)
        )
        # RETURNING, not rowcount: with implicit RETURNING PostgreSQL drivers report rowcount -1.
        if result.first() is not None:
            claimed.append((kind, threshold))
    return claimed


def finish_alert(
    conn: Connection,
    *,
    workspace_id: str,
    budget_id: int,
    period_start: date,
    keys: Sequence[tuple[str, int]],
    status: str,
    error: str | None = None,
) -> None:
    """Record what happened after the claim: sent | failed | expired."""
    for kind, threshold in keys:
        conn.execute(
            update(AlertSent)
            .where(
                AlertSent.workspace_id == workspace_id,
                AlertSent.budget_id == budget_id,
                AlertSent.period_start == period_start,
                AlertSent.kind == kind,
                AlertSent.threshold == threshold,
            )
            .values(status=status, error=error, sent_at=utcnow() if status == "sent" else None)
        )


@dataclass(frozen=True)
class PeerPace:
    """What comparable people spent so far this period (for a floor nudge)."""

    team: Team
    people: int
    average_micros: int


def peer_pace(
    conn: Connection, *, workspace_id: str, status: BudgetStatus, min_group_size: int
) -> PeerPace | None:
    """For a personal floor: the average spend so far of the person's teammates (in the largest
    of their teams with at least ``min_group_size`` others, so no one's number can be inferred).
    For a team floor: the team's own per-member average."""
    budget = status.budget
    period = status.period
    if budget.person_id is not None:
        candidates = teams.teams_of(conn, workspace_id=workspace_id, person_id=budget.person_id)
        exclude = budget.person_id
    elif status.team is not None:
        candidates, exclude = [status.team], None
    else:
        return None
    best = None
    for team in candidates:
        others = teams.member_count(conn, team_id=team.id) - (1 if exclude is not None else 0)
        if others >= min_group_size and (best is None or others > best[1]):
            best = (team, others)
    if best is None:
        return None
    team, others = best
    clauses = [
        UsagePersonDaily.workspace_id == workspace_id,
        on_team(UsagePersonDaily, team.id, within=(period.start, period.end)),
        UsagePersonDaily.day >= period.start,
        UsagePersonDaily.day < period.end,
    ]
    if budget.vendor:
        clauses.append(UsagePersonDaily.vendor == budget.vendor)
    if not budget.include_seats:
        clauses.append(UsagePersonDaily.kind != SEAT)
    if exclude is not None:
        clauses.append(UsagePersonDaily.person_id != exclude)
    total = conn.execute(
        select(func.coalesce(func.sum(UsagePersonDaily.cost_micros), 0)).where(*clauses)
    ).scalar_one()
    return PeerPace(team, others, int(total) // others)
