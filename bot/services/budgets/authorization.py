"""Who may set, clear, show or ask about a budget, and why not: the rule as a typed decision.

The Slack layer gathers the facts (the caller, the teams they manage, the named person or team
as stored or as Slack shows them) and words the refusal; the rule itself lives here, beside
``bot.services.access`` which answers the per-target questions (``can_manage_budget``,
``can_view_budget``, ``can_decide_budget_request``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.db.models import Team
from bot.services import access, teams
from bot.services.budgets.grammar import TargetRef
from bot.services.budgets.vocabulary import ORG, PERSON


class Refused(StrEnum):
    """Why a budget command cannot go on; nothing was changed."""

    ORG_BY_ADMINS = "org_by_admins"  # the org budget is set by admins only
    MANAGES_NO_TEAM = "manages_no_team"  # not an admin and no team of theirs to budget
    PERSON_OUTSIDE_TEAMS = "person_outside_teams"  # not in a managed team, or joined since and not approved
    TEAM_NOT_MANAGED = "team_not_managed"
    UNKNOWN_USER = "unknown_user"  # Slack does not know the person named
    INACTIVE_USER = "inactive_user"  # a deactivated account or a bot
    NO_EMAIL = "no_email"  # no visible email: a budget could not be tied to their usage
    TEAM_UNREADABLE = "team_unreadable"  # Slack's members could not be read and none are stored


@dataclass(frozen=True)
class BudgetDecision:
    refused: Refused | None = None

    @property
    def allowed(self) -> bool:
        return self.refused is None


ALLOWED = BudgetDecision()


def viewer(user_id: str, *, is_admin: bool, person_id: int | None) -> access.Viewer:
    """The caller as the access rules see them (no person record: they see no one's own rows)."""
    return access.Viewer(user_id, is_admin, person_id)


def may_manage(target: TargetRef, *, is_admin: bool, managed: Sequence[Team]) -> BudgetDecision:
    """Before any lookup: admins change any budget; anyone else only budgets within the teams
    they manage (``managed``), never the org's. ``access.can_manage_budget`` then decides the
    named target."""
    if is_admin:
        return ALLOWED
    if target.kind == ORG or not managed:
        return manage_refusal(target, managed)
    return ALLOWED


def manage_refusal(target: TargetRef, managed: Sequence[Team]) -> BudgetDecision:
    """Why a non-admin may not change ``target``'s budget."""
    if target.kind == ORG:
        return BudgetDecision(Refused.ORG_BY_ADMINS)
    if not managed:
        return BudgetDecision(Refused.MANAGES_NO_TEAM)
    if target.kind == PERSON:
        return BudgetDecision(Refused.PERSON_OUTSIDE_TEAMS)
    return BudgetDecision(Refused.TEAM_NOT_MANAGED)


def new_person(*, found: bool, deleted: bool = False, is_bot: bool = False) -> BudgetDecision:
    """A budget for someone without a person record: only for a live human Slack knows."""
    if not found:
        return BudgetDecision(Refused.UNKNOWN_USER)
    if deleted or is_bot:
        return BudgetDecision(Refused.INACTIVE_USER)
    return ALLOWED


def matched_person(matched: bool) -> BudgetDecision:
    """The person must match by email, else their usage could never count against the budget."""
    return ALLOWED if matched else BudgetDecision(Refused.NO_EMAIL)


def team_needs_reading(team: Team | None, *, now: datetime, max_age: timedelta) -> bool:
    """A budget is set against current members: re-read them when unknown or older than ``max_age``."""
    return team is None or teams.is_stale(team, now=now, max_age=max_age)


def unreadable_team(stored: Team | None) -> BudgetDecision:
    """Slack's members could not be read: keep the stored members if there are any."""
    return ALLOWED if stored is not None else BudgetDecision(Refused.TEAM_UNREADABLE)
