"""Who may see and change what. The single place commands ask (later issues extend it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict, Unpack

from sqlalchemy import Connection, exists, func, or_, select

from bot.db.models import ManagerScope, RoleGrant, Team, TeamMembership
from bot.services import teams
from bot.settings import Settings


def is_admin(settings: Settings, *, user_id: str, email: str | None, slack_admin: bool) -> bool:
    """Workspace admins and owners, plus anyone listed in TOKENWISE_ADMINS (id or email)."""
    entries = settings.admin_entries
    return slack_admin or user_id.lower() in entries or bool(email and email.lower() in entries)


# -- who sees whose numbers ------------------------------------------------------------------
# Every command that shows someone else's data asks here, and only here. A refusal is the same
# whatever the target's state (no person record, no usage, unknown): it never tells a viewer
# whether there is anything to see.

PERSON_WHO_CAN = "them, their managers and admins"
TEAM_WHO_CAN = "its members (when it has at least {min} people), its managers and admins"


@dataclass(frozen=True)
class Viewer:
    user_id: str  # Slack user id
    is_admin: bool
    person_id: int | None  # None when the viewer has no person record (no visible email)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # self | admin | manager | member | denied | too_small
    who_can: str  # plain words for the refusal: who may see it

    @property
    def sees_individuals(self) -> bool:
        """Admins and managers see members one by one; members see aggregates only."""
        return self.allowed and self.reason in ("admin", "manager")


def _managed_team_ids(conn: Connection, workspace_id: str, user_id: str) -> list[int]:
    return list(
        conn.execute(
            select(RoleGrant.team_id).where(
                RoleGrant.workspace_id == workspace_id,
                RoleGrant.slack_user_id == user_id,
                RoleGrant.role == "manager",
            )
        ).scalars()
    )


# -- manager scope ---------------------------------------------------------------------------
# A manager's reach is what an admin granted, never whatever a channel holds today (docs/privacy.md,
# "Manager scope"). Through one grant a manager reaches a person who is a current member of the
# grant's team and either the team is a user group (its members are managed in Slack by admins),
# or the person was a member when the grant was made, or an admin approved them since
# (``/tokens team approve``). Inviting someone into a channel therefore gives no reach.


def _in_scope(grant_id, person_id):
    """SQL condition: ``person_id`` is within the reach of grant ``grant_id``."""
    return or_(
        Team.kind == "usergroup",
        exists().where(ManagerScope.role_grant_id == grant_id, ManagerScope.person_id == person_id),
    )


def _grants_reaching(workspace_id: str, person_id: int, *columns):
    """SELECT ``columns`` of the manager grants whose reach includes ``person_id``."""
    return (
        select(*columns)
        .join(Team, Team.id == RoleGrant.team_id)
        .join(TeamMembership, TeamMembership.team_id == RoleGrant.team_id)
        .where(
            RoleGrant.workspace_id == workspace_id,
            RoleGrant.role == "manager",
            TeamMembership.person_id == person_id,
            TeamMembership.left_on.is_(None),
            _in_scope(RoleGrant.id, person_id),
        )
    )


def manages_person(conn: Connection, workspace_id: str, user_id: str, person_id: int) -> bool:
    """True when ``person_id`` is within the scope of one of ``user_id``'s manager grants."""
    query = _grants_reaching(workspace_id, person_id, RoleGrant.id).where(RoleGrant.slack_user_id == user_id)
    return conn.execute(query.limit(1)).first() is not None


def managers_of(conn: Connection, workspace_id: str, person_id: int) -> list[str]:
    """Slack ids of the managers whose grant reaches ``person_id``, sorted."""
    query = _grants_reaching(workspace_id, person_id, RoleGrant.slack_user_id).distinct()
    return list(conn.execute(query.order_by(RoleGrant.slack_user_id)).scalars())


def unapproved_members(conn: Connection, workspace_id: str, user_id: str, team_id: int) -> list[int]:
    """Current members of ``team_id`` outside ``user_id``'s manager grant (joined a channel
    after the grant, not approved by an admin); empty when they manage it all (or not at all)."""
    grant = (
        select(RoleGrant.id)
        .where(
            RoleGrant.workspace_id == workspace_id,
            RoleGrant.slack_user_id == user_id,
            RoleGrant.role == "manager",
            RoleGrant.team_id == team_id,
        )
        .scalar_subquery()
    )
    return list(
        conn.execute(
            select(TeamMembership.person_id)
            .join(Team, Team.id == TeamMembership.team_id)
            .where(
                TeamMembership.team_id == team_id,
                TeamMembership.left_on.is_(None),
                exists().where(RoleGrant.id == grant),
                ~_in_scope(grant, TeamMembership.person_id),
            )
            .distinct()
            .order_by(TeamMembership.person_id)
        ).scalars()
    )


def can_view_person(
    conn: Connection, workspace_id: str, viewer: Viewer, target_person_id: int | None
) -> Decision:
    """The person themself, managers whose grant reaches them (``manages_person``), and admins."""
    if target_person_id is not None and viewer.person_id == target_person_id:
        return Decision(True, "self", PERSON_WHO_CAN)
    if viewer.is_admin:
        return Decision(True, "admin", PERSON_WHO_CAN)
    if target_person_id is not None and manages_person(conn, workspace_id, viewer.user_id, target_person_id):
        return Decision(True, "manager", PERSON_WHO_CAN)
    return Decision(False, "denied", PERSON_WHO_CAN)


def can_view_team(
    conn: Connection, workspace_id: str, viewer: Viewer, team_id: int, *, min_group_size: int
) -> Decision:
    """Admins and the team's managers see it with its members; a current member sees the
    aggregate when the team is at least ``min_group_size`` people (smaller aggregates would
    all but name the others)."""
    who = TEAM_WHO_CAN.format(min=min_group_size)
    if viewer.is_admin:
        return Decision(True, "admin", who)
    # A manager sees members one by one only when the grant reaches every current member;
    # otherwise they see the team as its members do, until an admin approves the joiners.
    if team_id in _managed_team_ids(conn, workspace_id, viewer.user_id) and not unapproved_members(
        conn, workspace_id, viewer.user_id, team_id
    ):
        return Decision(True, "manager", who)
    if teams.is_member(conn, team_id=team_id, person_id=viewer.person_id):
        size = conn.execute(
            select(func.count(func.distinct(TeamMembership.person_id))).where(
                TeamMembership.team_id == team_id, TeamMembership.left_on.is_(None)
            )
        ).scalar_one()
        if size >= min_group_size:
            return Decision(True, "member", who)
        return Decision(False, "too_small", who)
    return Decision(False, "denied", who)


def can_manage_roles(viewer: Viewer) -> bool:
    return viewer.is_admin


def can_read_audit(viewer: Viewer, *, own: bool) -> bool:
    """Everyone may see who looked at their own numbers; the whole log is for admins."""
    return own or viewer.is_admin


def can_export(viewer: Viewer) -> bool:
    return viewer.is_admin


# -- budgets ---------------------------------------------------------------------------------
# Budget targets as access sees them: "person" (person_id), "team" (team_id: a user group or a
# channel) and "org".

BUDGET_WHO_CAN_SET = "admins (any budget) and managers (their teams and their teams' members)"


class BudgetTarget(TypedDict):
    """Which budget a question is about: ``kind`` "person", "team" or "org", with its id."""

    kind: str
    team_id: NotRequired[int | None]
    person_id: NotRequired[int | None]


def _target(target: BudgetTarget) -> tuple[str, int | None, int | None]:
    return target["kind"], target.get("team_id"), target.get("person_id")


def can_manage_budget(
    conn: Connection, workspace_id: str, viewer: Viewer, **target: Unpack[BudgetTarget]
) -> Decision:
    """Set or clear a budget: admins anything; managers their teams and the people their grant
    reaches (``manages_person``)."""
    kind, team_id, person_id = _target(target)
    if viewer.is_admin:
        return Decision(True, "admin", BUDGET_WHO_CAN_SET)
    if (
        kind == "team"
        and team_id is not None
        and team_id in _managed_team_ids(conn, workspace_id, viewer.user_id)
    ):
        return Decision(True, "manager", BUDGET_WHO_CAN_SET)
    if (
        kind == "person"
        and person_id is not None
        and manages_person(conn, workspace_id, viewer.user_id, person_id)
    ):
        return Decision(True, "manager", BUDGET_WHO_CAN_SET)
    return Decision(False, "denied", BUDGET_WHO_CAN_SET)


def can_view_budget(
    conn: Connection, workspace_id: str, viewer: Viewer, **target: Unpack[BudgetTarget]
) -> Decision:
    """See a budget: whoever may set it, plus everyone it applies to (the person; the team's
    current members; everyone for the org budget). ``member`` means "applies to you": callers
    still apply the team-size rule (``can_view_team``) before showing a team's spend."""
    who = "the people it applies to, their managers and admins"
    kind, team_id, person_id = _target(target)
    if kind == "person" and person_id is not None and viewer.person_id == person_id:
        return Decision(True, "self", who)
    manage = can_manage_budget(conn, workspace_id, viewer, **target)
    if manage.allowed:
        return Decision(True, manage.reason, who)
    if kind == "org":
        return Decision(True, "member", who)
    on_team = kind == "team" and team_id is not None
    if on_team and teams.is_member(conn, team_id=team_id, person_id=viewer.person_id):
        return Decision(True, "member", who)
    return Decision(False, "denied", who)


def can_decide_budget_request(
    conn: Connection,
    workspace_id: str,
    viewer: Viewer,
    *,
    person_id: int,
    kind: str,
    team_id: int | None = None,
) -> Decision:
    """Approve or deny someone's request for more: an admin, or a manager of that person who
    may also change the budget being raised. Nobody decides their own request but an admin."""
    who = "their managers and admins"
    if viewer.is_admin:
        return Decision(True, "admin", who)
    if viewer.person_id == person_id or not manages_person(conn, workspace_id, viewer.user_id, person_id):
        return Decision(False, "denied", who)
    manage = can_manage_budget(conn, workspace_id, viewer, kind=kind, team_id=team_id, person_id=person_id)
    return Decision(manage.allowed, manage.reason if manage.allowed else "denied", who)
