"""Requests for more budget: asking (``/tokens budget request``), the pending request, and the
one decision that counts (Approve for this period or from now on, or Deny), with its audit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, select, update

from bot.db.models import Budget, BudgetOverride, BudgetRequest
from bot.domain.clock import utcnow
from bot.domain.money import format_usd
from bot.domain.periods import Period, calendar_period
from bot.services import privacy
from bot.services.budgets.status import BudgetStatus, tightest, tightest_candidates
from bot.services.budgets.store import budget_by_id, describe, extras
from bot.services.budgets.vocabulary import (
    APPROVED,
    DENIED,
    MAX_AMOUNT_MICROS,
    MAX_REASON,
    PENDING,
    SCOPE_PERIOD,
    SCOPE_PERMANENT,
    BudgetError,
)


def _request(conn: Connection, query) -> BudgetRequest | None:
    row = conn.execute(query).first()
    return BudgetRequest(**row._mapping) if row else None


def get_request(conn: Connection, *, workspace_id: str, request_id: int) -> BudgetRequest | None:
    return _request(
        conn,
        select(BudgetRequest).where(
            BudgetRequest.workspace_id == workspace_id, BudgetRequest.id == request_id
        ),
    )


def pending_request(conn: Connection, *, workspace_id: str, person_id: int) -> BudgetRequest | None:
    return _request(
        conn,
        select(BudgetRequest)
        .where(
            BudgetRequest.workspace_id == workspace_id,
            BudgetRequest.person_id == person_id,
            BudgetRequest.status == PENDING,
        )
        .order_by(BudgetRequest.id.desc()),
    )


@dataclass(frozen=True)
class RequestAim:
    """Which budget a request for more raises: ``target``, or (None) the ``choices`` to ask the
    person to pick from; neither when no budget applies (or the one picked no longer does)."""

    target: BudgetStatus | None
    choices: tuple[BudgetStatus, ...] = ()


def aim_request(items: Sequence[BudgetStatus], *, budget_id: int | None = None) -> RequestAim:
    """The budget a request raises: the one the person picked (``budget_id``), else the tightest
    of those that apply (``status.tightest``, as every view shows it); when two tie, or none
    of them shows a status to the person, they choose."""
    if budget_id is not None:
        return RequestAim(next((s for s in items if s.budget.id == budget_id), None))
    if len(items) == 1:
        return RequestAim(items[0])
    if (target := tightest(items)) is not None:
        return RequestAim(target)
    return RequestAim(None, tuple(tightest_candidates(items) or items))


def create_request(
    conn: Connection,
    *,
    workspace_id: str,
    person_id: int,
    requester_user_id: str,
    budget: Budget,
    amount_micros: int,
    reason: str,
) -> BudgetRequest:
    result = conn.execute(
        BudgetRequest.__table__.insert().values(
            workspace_id=workspace_id,
            person_id=person_id,
            requester_user_id=requester_user_id[:32],
            budget_id=budget.id,
            amount_micros=amount_micros,
            reason=reason[:MAX_REASON],
            status=PENDING,
            decided_by="",
            scope="",
            notified=[],
            created_at=utcnow(),
        )
    )
    request_id = int(result.inserted_primary_key[0])
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=requester_user_id,
        action="budget.request",
        target=privacy.person_target(person_id),
        detail=f"request={request_id} +{format_usd(amount_micros)} budget={budget.id}: {describe(budget)}",
    )
    found = get_request(conn, workspace_id=workspace_id, request_id=request_id)
    assert found is not None
    return found


def set_notified(
    conn: Connection, *, workspace_id: str, request_id: int, refs: Sequence[tuple[str, str]]
) -> None:
    conn.execute(
        update(BudgetRequest)
        .where(BudgetRequest.workspace_id == workspace_id, BudgetRequest.id == request_id)
        .values(notified=list(refs))
    )


@dataclass(frozen=True)
class DecisionResult:
    request: BudgetRequest  # as stored after the call
    changed: bool  # False: it was already decided (or cancelled); nothing was written
    budget_before: Budget | None = None
    budget_after: Budget | None = None
    period: Period | None = None
    ceiling_before: int | None = None
    ceiling_after: int | None = None


def decide_request(
    conn: Connection,
    *,
    workspace_id: str,
    request_id: int,
    decider_user_id: str,
    approve: bool,
    amount_micros: int | None,
    scope: str,
    today: date,
) -> DecisionResult:
    """Approve (add ``amount_micros`` for the budget's current period, or from now on with
    ``scope=permanent``) or deny. Only the first decision counts: the status moves from pending
    in one conditional UPDATE, so a replay or a second manager's click changes nothing."""
    request = get_request(conn, workspace_id=workspace_id, request_id=request_id)
    if request is None:
        raise LookupError("no such request")
    if request.status != PENDING:
        return DecisionResult(request, False)
    budget = (
        budget_by_id(conn, workspace_id=workspace_id, budget_id=request.budget_id)
        if request.budget_id is not None
        else None
    )
    if scope not in (SCOPE_PERIOD, SCOPE_PERMANENT):
        raise BudgetError(f"unknown scope {scope!r}")
    granted = (amount_micros or request.amount_micros) if approve else None
    if approve and budget is None:
        raise BudgetError("The budget this request was for has been removed; there is nothing to raise.")
    period = calendar_period(budget.period, today) if budget else None
    if approve and scope == SCOPE_PERMANENT and budget.amount_micros + granted > MAX_AMOUNT_MICROS:
        raise BudgetError(
            f"That would take the budget over {format_usd(MAX_AMOUNT_MICROS, cents=False)}; nothing changed."
        )
    won = conn.execute(
        update(BudgetRequest)
        .where(
            BudgetRequest.workspace_id == workspace_id,
            BudgetRequest.id == request_id,
            BudgetRequest.status == PENDING,
        )
        .values(
            status=APPROVED if approve else DENIED,
            decided_by=decider_user_id[:32],
            decided_at=utcnow(),
            granted_micros=granted,
            scope=scope if approve else "",
            period_start=period.start if approve and scope == SCOPE_PERIOD and period else None,
        )
    ).rowcount
    if won != 1:
        return DecisionResult(get_request(conn, workspace_id=workspace_id, request_id=request_id), False)
    before_extra = 0
    after_budget = budget
    if budget is not None and period is not None:
        before_extra = extras(
            conn, workspace_id=workspace_id, budget_ids=[budget.id], since=period.start
        ).get((budget.id, period.start), 0)
    if approve and scope == SCOPE_PERIOD:
        conn.execute(
            BudgetOverride.__table__.insert().values(
                workspace_id=workspace_id,
                budget_id=budget.id,
                period_start=period.start,
                extra_micros=granted,
                request_id=request_id,
                created_by=decider_user_id[:32],
                created_at=utcnow(),
            )
        )
    elif approve:
        conn.execute(
            update(Budget)
            .where(Budget.id == budget.id)
            .values(amount_micros=Budget.amount_micros + granted, updated_at=utcnow())
        )
        after_budget = budget_by_id(conn, workspace_id=workspace_id, budget_id=budget.id)
    ceiling_before = budget.amount_micros + before_extra if budget else None
    ceiling_after = ceiling_before + granted if approve and ceiling_before is not None else ceiling_before
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=decider_user_id,
        action="budget.request.approve" if approve else "budget.request.deny",
        target=privacy.person_target(request.person_id),
        detail=(
            f"request={request_id} asked +{format_usd(request.amount_micros)}"
            + (f" granted +{format_usd(granted)} ({scope})" if approve else "")
            + (
                f"; ceiling {format_usd(ceiling_before)} -> {format_usd(ceiling_after)} for {period.start}"
                if ceiling_before is not None and period is not None
                else ""
            )
        ),
    )
    return DecisionResult(
        get_request(conn, workspace_id=workspace_id, request_id=request_id),
        True,
        budget,
        after_budget,
        period,
        ceiling_before,
        ceiling_after,
    )
