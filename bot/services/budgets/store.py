"""Budgets as stored: read, set and clear the ``Budget`` rows (with their audit entries), the
budgets that apply to a person, and the approved extras per period (``BudgetOverride``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from bot.db import store
from bot.db.models import AlertSent, Budget, BudgetOverride, BudgetRequest, Team
from bot.domain.clock import utcnow
from bot.domain.money import format_usd
from bot.services import privacy, teams
from bot.services.budgets.grammar import BudgetSpec, format_thresholds
from bot.services.budgets.vocabulary import (
    CANCELLED,
    CHANNEL,
    DEFAULT_THRESHOLDS,
    GROUP,
    ORG,
    PENDING,
    PERSON,
    TEAM_KINDS,
    BudgetError,
)


def describe(budget: Budget) -> str:
    """Plain words for the audit log and confirmations."""
    parts = [f"{format_usd(budget.amount_micros)}/{budget.period}", budget.vendor or "all vendors"]
    if budget.floor_micros is not None:
        parts.append(f"floor {format_usd(budget.floor_micros)}")
    parts.append("seats included" if budget.include_seats else "seats excluded")
    parts.append(f"alerts at {format_thresholds(budget.thresholds)}%")
    return ", ".join(parts)


def _budgets(conn: Connection, query) -> list[Budget]:
    return [Budget(**row._mapping) for row in conn.execute(query)]


def _budget(conn: Connection, query) -> Budget | None:
    row = conn.execute(query).first()
    return Budget(**row._mapping) if row else None


def _key(workspace_id: str, kind: str, target_id: str, vendor: str | None = None):
    clauses = [Budget.workspace_id == workspace_id, Budget.target_kind == kind, Budget.target_id == target_id]
    if vendor is not None:
        clauses.append(Budget.vendor == vendor)
    return clauses


def get_budget(
    conn: Connection, *, workspace_id: str, kind: str, target_id: str, vendor: str
) -> Budget | None:
    return _budget(conn, select(Budget).where(*_key(workspace_id, kind, target_id, vendor)))


def budget_by_id(conn: Connection, *, workspace_id: str, budget_id: int) -> Budget | None:
    return _budget(conn, select(Budget).where(Budget.workspace_id == workspace_id, Budget.id == budget_id))


def budgets_of_target(conn: Connection, *, workspace_id: str, kind: str, target_id: str) -> list[Budget]:
    return _budgets(conn, select(Budget).where(*_key(workspace_id, kind, target_id)).order_by(Budget.vendor))


def all_budgets(conn: Connection, *, workspace_id: str) -> list[Budget]:
    return _budgets(
        conn,
        select(Budget)
        .where(Budget.workspace_id == workspace_id)
        .order_by(Budget.target_kind, Budget.target_id, Budget.vendor),
    )


def audit_target(kind: str, target_id: str, team: Team | None = None) -> str:
    """Audit targets match the rest of the log: ``person:<id>``, ``team:<id>``, ``org``."""
    if kind == PERSON:
        return privacy.person_target(int(target_id))
    if kind in TEAM_KINDS:
        return f"team:{team.id}" if team else f"{kind}:{target_id}"
    return ORG


def set_budget(
    conn: Connection,
    *,
    workspace_id: str,
    kind: str,
    target_id: str,
    spec: BudgetSpec,
    actor_user_id: str,
    team: Team | None = None,
) -> tuple[Budget | None, Budget]:
    """Create or change the budget of (target, vendor); options the spec leaves out keep their
    current value. Returns (before, after) and writes the audit row; when the budget already
    has exactly these values nothing is written and ``after is before`` (see ``unchanged``)."""
    before = get_budget(conn, workspace_id=workspace_id, kind=kind, target_id=target_id, vendor=spec.vendor)
    floor = spec.floor_micros if spec.floor_given else (before.floor_micros if before else None)
    if floor is not None and floor >= spec.amount_micros:
        raise BudgetError(
            f"The floor ({format_usd(floor)}) must be below the ceiling ({format_usd(spec.amount_micros)}): "
            "lower it with `floor <amount>` or remove it with `floor off`."
        )
    values = {
        "period": spec.period,
        "amount_micros": spec.amount_micros,
        "floor_micros": floor,
        "thresholds": spec.thresholds
        if spec.thresholds is not None
        else (before.thresholds if before else DEFAULT_THRESHOLDS),
        "include_seats": spec.include_seats
        if spec.include_seats is not None
        else (before.include_seats if before else False),
    }
    if before is not None and all(getattr(before, name) == value for name, value in values.items()):
        return before, before  # the same budget: no write, no audit row
    now = utcnow()
    # Insert-if-absent then update: two admins setting the same budget at once both succeed.
    store.insert_ignore(
        conn,
        Budget.__table__,
        [
            {
                "workspace_id": workspace_id,
                "target_kind": kind,
                "target_id": target_id,
                "vendor": spec.vendor,
                "created_by": actor_user_id[:32],
                "created_at": now,
                "updated_at": now,
                **values,
            }
        ],
        ("workspace_id", "target_kind", "target_id", "vendor"),
    )
    conn.execute(
        update(Budget)
        .where(*_key(workspace_id, kind, target_id, spec.vendor))
        .values(updated_at=now, **values)
    )
    after = get_budget(conn, workspace_id=workspace_id, kind=kind, target_id=target_id, vendor=spec.vendor)
    assert after is not None
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="budget.set",
        target=audit_target(kind, target_id, team),
        detail=f"{describe(before) if before else 'none'} -> {describe(after)}",
    )
    return before, after


def unchanged(before: Budget | None, after: Budget) -> bool:
    """Whether ``set_budget`` found the budget already as asked (and wrote nothing)."""
    return after is before


def clear_budgets(
    conn: Connection,
    *,
    workspace_id: str,
    kind: str,
    target_id: str,
    vendor: str | None,
    actor_user_id: str,
    team: Team | None = None,
) -> list[Budget]:
    """Remove the target's budget for ``vendor`` (None: every budget of the target), with its
    alert ledger and overrides; pending requests against it are cancelled."""
    removed = (
        budgets_of_target(conn, workspace_id=workspace_id, kind=kind, target_id=target_id)
        if vendor is None
        else [
            b
            for b in [
                get_budget(conn, workspace_id=workspace_id, kind=kind, target_id=target_id, vendor=vendor)
            ]
            if b
        ]
    )
    if not removed:
        return []
    ids = [b.id for b in removed]
    conn.execute(
        delete(AlertSent).where(AlertSent.workspace_id == workspace_id, AlertSent.budget_id.in_(ids))
    )
    conn.execute(
        delete(BudgetOverride).where(
            BudgetOverride.workspace_id == workspace_id, BudgetOverride.budget_id.in_(ids)
        )
    )
    conn.execute(
        update(BudgetRequest)
        .where(
            BudgetRequest.workspace_id == workspace_id,
            BudgetRequest.budget_id.in_(ids),
            BudgetRequest.status == PENDING,
        )
        .values(status=CANCELLED, decided_by=actor_user_id[:32], decided_at=utcnow())
    )
    conn.execute(delete(Budget).where(Budget.workspace_id == workspace_id, Budget.id.in_(ids)))
    for budget in removed:
        privacy.record(
            conn,
            workspace_id=workspace_id,
            actor_user_id=actor_user_id,
            action="budget.clear",
            target=audit_target(kind, target_id, team),
            detail=f"{describe(budget)} -> none",
        )
    return removed


def team_of_budget(conn: Connection, *, workspace_id: str, budget: Budget) -> Team | None:
    if budget.target_kind not in TEAM_KINDS:
        return None
    return teams.get_team(
        conn, workspace_id=workspace_id, kind=TEAM_KINDS[budget.target_kind], slack_id=budget.target_id
    )


def budgets_for_person(
    conn: Connection, *, workspace_id: str, person_id: int, member_of: Sequence[Team] | None = None
) -> list[tuple[Budget, Team | None]]:
    """Every budget that applies to the person: their own, their current teams' and the org's.
    ``member_of``: their current teams (``teams.teams_of``) when the caller has read them."""
    if member_of is None:
        member_of = teams.teams_of(conn, workspace_id=workspace_id, person_id=person_id)
    by_key = {(t.kind, t.slack_id): t for t in member_of}
    clauses = [
        and_(Budget.target_kind == PERSON, Budget.target_id == str(person_id)),
        Budget.target_kind == ORG,
    ]
    for kind, team_kind in TEAM_KINDS.items():
        ids = [t.slack_id for t in member_of if t.kind == team_kind]
        if ids:
            clauses.append(and_(Budget.target_kind == kind, Budget.target_id.in_(ids)))
    found = []
    for budget in _budgets(
        conn, select(Budget).where(Budget.workspace_id == workspace_id, or_(*clauses)).order_by(Budget.id)
    ):
        team = (
            by_key.get((TEAM_KINDS[budget.target_kind], budget.target_id))
            if budget.target_kind in TEAM_KINDS
            else None
        )
        found.append((budget, team))
    order = {PERSON: 0, GROUP: 1, CHANNEL: 1, ORG: 2}
    return sorted(found, key=lambda item: (order[item[0].target_kind], item[0].vendor, item[0].id))


def with_teams(
    conn: Connection, *, workspace_id: str, budgets: Iterable[Budget]
) -> list[tuple[Budget, Team | None]]:
    return [(b, team_of_budget(conn, workspace_id=workspace_id, budget=b)) for b in budgets]


def extras(
    conn: Connection, *, workspace_id: str, budget_ids: Sequence[int], since: date
) -> dict[tuple[int, date], int]:
    if not budget_ids:
        return {}
    rows = conn.execute(
        select(BudgetOverride.budget_id, BudgetOverride.period_start, func.sum(BudgetOverride.extra_micros))
        .where(
            BudgetOverride.workspace_id == workspace_id,
            BudgetOverride.budget_id.in_(list(budget_ids)),
            BudgetOverride.period_start >= since,
        )
        .group_by(BudgetOverride.budget_id, BudgetOverride.period_start)
    ).all()
    return {(bid, start): int(total or 0) for bid, start, total in rows}
