"""Who sees how much of a budget's status: in full, as a percentage only, or not at all (the
privacy rules of docs/privacy.md applied to budgets), and the statuses a viewer may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from sqlalchemy import Connection

from bot.db.models import Budget, Team
from bot.domain.periods import calendar_period
from bot.services import access, aggregates, privacy
from bot.services.budgets.status import BudgetStatus, statuses
from bot.services.budgets.store import budgets_for_person
from bot.services.budgets.vocabulary import FULL, HIDDEN, ORG, PERCENT


def visibility(
    conn: Connection,
    workspace_id: str,
    viewer: access.Viewer,
    budget: Budget,
    team: Team | None,
    *,
    min_group_size: int,
    today: date,
) -> str | None:
    """How much of the budget's status ``viewer`` may see, or None (not at all)."""
    decision = access.can_view_budget(
        conn,
        workspace_id,
        viewer,
        kind=budget.access_kind,
        team_id=team.id if team else None,
        person_id=budget.person_id,
    )
    if not decision.allowed:
        return None
    # A manager whose grant does not reach every current member (someone joined the channel
    # since) sees the team's budget as its members do: its dollars would include the joiner's.
    partly_managed = (
        decision.reason == "manager"
        and team is not None
        and budget.person_id is None
        and bool(access.unapproved_members(conn, workspace_id, viewer.user_id, team.id))
    )
    if decision.reason in ("self", "admin", "manager") and not partly_managed:
        return FULL
    if budget.target_kind == ORG:
        return PERCENT  # org dollars are for admins (/tokens org); everyone may see how close it is
    if team is not None:
        size_rule = access.can_view_team(conn, workspace_id, viewer, team.id, min_group_size=min_group_size)
        if not size_rule.allowed:
            return HIDDEN
        if size_rule.reason != "member":
            return FULL
        # A member sees how close the team is, never its dollars, and only while the team's
        # aggregate passes the rules of the team view (active people, differencing, org totals).
        check = aggregates.check_member_view(
            conn,
            workspace_id=workspace_id,
            team_id=team.id,
            period=calendar_period(budget.period, today),
            caller_person_id=viewer.person_id,
            min_group_size=min_group_size,
        )
        return PERCENT if check.allowed else HIDDEN
    return HIDDEN


def visible_statuses(
    conn: Connection,
    *,
    workspace_id: str,
    viewer: access.Viewer,
    budgets: Sequence[tuple[Budget, Team | None]],
    today: date,
    min_group_size: int,
) -> list[BudgetStatus]:
    """Statuses of the budgets ``viewer`` may see, each marked with how much of it they see."""
    allowed = []
    for budget, team in budgets:
        level = visibility(
            conn, workspace_id, viewer, budget, team, min_group_size=min_group_size, today=today
        )
        if level is not None:
            allowed.append((budget, team, level))
    found = statuses(conn, workspace_id=workspace_id, budgets=[(b, t) for b, t, _ in allowed], today=today)
    labels = privacy.people_labels(
        conn, person_ids=[b.person_id for b, _, _ in allowed if b.person_id is not None]
    )
    result = []
    for status, (budget, _, level) in zip(found, allowed, strict=True):
        slack_id, name = None, ""
        if budget.person_id is not None:
            slack_id, name = labels.get(budget.person_id, (None, f"person {budget.person_id}"))
        own = budget.person_id is not None and budget.person_id == viewer.person_id
        result.append(replace(status, visibility=level, person_slack_id=slack_id, person_name=name, own=own))
    return result


def statuses_for_person(
    conn: Connection,
    *,
    workspace_id: str,
    viewer: access.Viewer,
    person_id: int,
    today: date,
    min_group_size: int,
    member_of: Sequence[Team] | None = None,
) -> list[BudgetStatus]:
    """The budgets that apply to ``person_id`` as ``viewer`` may see them (``/tokens me``);
    ``member_of``: the person's current teams, when the caller has read them already."""
    return visible_statuses(
        conn,
        workspace_id=workspace_id,
        viewer=viewer,
        budgets=budgets_for_person(conn, workspace_id=workspace_id, person_id=person_id, member_of=member_of),
        today=today,
        min_group_size=min_group_size,
    )
