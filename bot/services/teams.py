"""Teams and roles: a team is a Slack user group or a channel's members, kept as dated
membership stretches so a person's spend counts for a team only on the days they belonged.

No Slack SDK here: the Slack layer reads the member ids and hands over plain ``SlackMember``
records; this module maps them to people and records who joined and who left.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, and_, delete, func, select, update

from bot.db import store
from bot.db.models import ManagerScope, Person, RoleGrant, Team, TeamMembership
from bot.domain.clock import utcnow
from bot.services import people

USERGROUP = "usergroup"
CHANNEL = "channel"
MANAGER = "manager"
ROLES = (MANAGER,)

# Members present at a team's first refresh count for its whole stored history: we cannot know
# when they joined, and an empty history on install day would be wrong in the other direction.
EARLIEST = date(2000, 1, 1)


@dataclass(frozen=True)
class SlackMember:
    """A Slack user as the Slack layer read it (``email`` None when not visible to the bot)."""

    slack_user_id: str
    email: str | None
    name: str = ""


@dataclass(frozen=True)
class RefreshResult:
    members: int  # people counted as members now
    joined: int
    left: int
    not_counted: int  # Slack members with no email visible (cannot be matched to a person)


def _team(row) -> Team:
    return Team.model_validate(row._mapping)


def get_team(conn: Connection, *, workspace_id: str, kind: str, slack_id: str) -> Team | None:
    row = conn.execute(
        select(Team.__table__).where(
            Team.workspace_id == workspace_id, Team.kind == kind, Team.slack_id == slack_id
        )
    ).first()
    return _team(row) if row else None


def team_by_id(conn: Connection, team_id: int) -> Team | None:
    row = conn.execute(select(Team.__table__).where(Team.id == team_id)).first()
    return _team(row) if row else None


def ensure_team(conn: Connection, *, workspace_id: str, kind: str, slack_id: str, name: str = "") -> Team:
    if kind not in (USERGROUP, CHANNEL):
        raise ValueError(f"unknown team kind {kind!r}")
    store.insert_ignore(
        conn,
        Team.__table__,
        [{"workspace_id": workspace_id, "kind": kind, "slack_id": slack_id, "name": name[:200]}],
        ("workspace_id", "kind", "slack_id"),
    )
    team = get_team(conn, workspace_id=workspace_id, kind=kind, slack_id=slack_id)
    assert team is not None
    if name and name != team.name:  # groups get renamed; the mention carries the current handle
        conn.execute(update(Team).where(Team.id == team.id).values(name=name[:200]))
        team = get_team(conn, workspace_id=workspace_id, kind=kind, slack_id=slack_id)
    return team


def is_stale(team: Team, *, now: datetime, max_age: timedelta) -> bool:
    if team.refreshed_at is None:
        return True
    refreshed = team.refreshed_at
    if refreshed.tzinfo is None:  # SQLite returns naive UTC
        from datetime import UTC

        refreshed = refreshed.replace(tzinfo=UTC)
    return now - refreshed >= max_age


def known_people(conn: Connection, *, workspace_id: str, slack_user_ids: Sequence[str]) -> dict[str, int]:
    """Slack user id -> person id for the ids already matched (no Slack call needed for them)."""
    found: dict[str, int] = {}
    ids = list(dict.fromkeys(slack_user_ids))
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        found.update(
            conn.execute(
                select(Person.slack_user_id, Person.id).where(
                    Person.workspace_id == workspace_id,
                    Person.slack_user_id.in_(part),
                    Person.forgotten_at.is_(None),
                )
            ).all()
        )
    return found


def apply_refresh(
    conn: Connection,
    *,
    workspace_id: str,
    team_id: int,
    known: dict[str, int],
    new_members: Iterable[SlackMember],
    today: date,
) -> RefreshResult:
    """Record the team's current members: ``known`` (already matched people) plus
    ``new_members`` read from Slack. Only call this after a *successful* read of the member
    list, or everyone would be marked as having left."""
    person_ids = set(known.values())
    not_counted = 0
    for member in new_members:
        person = people.match_slack_user(
            conn,
            workspace_id=workspace_id,
            slack_user_id=member.slack_user_id,
            email=member.email,
            name=member.name,
        )
        if person is None:
            not_counted += 1
        else:
            person_ids.add(person.id)
    team = team_by_id(conn, team_id)
    assert team is not None
    first_refresh = team.refreshed_at is None
    open_rows = dict(
        conn.execute(
            select(TeamMembership.person_id, TeamMembership.id).where(
                TeamMembership.team_id == team_id, TeamMembership.left_on.is_(None)
            )
        ).all()
    )
    joining = sorted(person_ids - set(open_rows))
    leaving = [open_rows[p] for p in set(open_rows) - person_ids]
    if joining:
        conn.execute(
            TeamMembership.__table__.insert(),
            [
                {
                    "workspace_id": workspace_id,
                    "team_id": team_id,
                    "person_id": person_id,
                    "joined_on": EARLIEST if first_refresh else today,
                    "left_on": None,
                }
                for person_id in joining
            ],
        )
    if leaving:
        conn.execute(update(TeamMembership).where(TeamMembership.id.in_(leaving)).values(left_on=today))
    conn.execute(update(Team).where(Team.id == team_id).values(refreshed_at=utcnow()))
    return RefreshResult(len(person_ids), len(joining), len(leaving), not_counted)


def record_refresh(
    conn: Connection,
    *,
    workspace_id: str,
    kind: str,
    slack_id: str,
    name: str,
    known: dict[str, int],
    new_members: Iterable[SlackMember],
    today: date,
) -> tuple[Team, RefreshResult]:
    """Create the team on its first successful read (a failed read leaves no trace) and record
    its members."""
    team = ensure_team(conn, workspace_id=workspace_id, kind=kind, slack_id=slack_id, name=name)
    result = apply_refresh(
        conn, workspace_id=workspace_id, team_id=team.id, known=known, new_members=new_members, today=today
    )
    return team_by_id(conn, team.id), result


def member_count(conn: Connection, *, team_id: int) -> int:
    return int(
        conn.execute(
            select(func.count(func.distinct(TeamMembership.person_id))).where(
                TeamMembership.team_id == team_id, TeamMembership.left_on.is_(None)
            )
        ).scalar_one()
    )


def is_member(conn: Connection, *, team_id: int, person_id: int | None) -> bool:
    if person_id is None:
        return False
    return (
        conn.execute(
            select(TeamMembership.id).where(
                TeamMembership.team_id == team_id,
                TeamMembership.person_id == person_id,
                TeamMembership.left_on.is_(None),
            )
        ).first()
        is not None
    )


def teams_of(conn: Connection, *, workspace_id: str, person_id: int) -> list[Team]:
    rows = conn.execute(
        select(Team.__table__)
        .join(TeamMembership, TeamMembership.team_id == Team.id)
        .where(
            Team.workspace_id == workspace_id,
            TeamMembership.person_id == person_id,
            TeamMembership.left_on.is_(None),
        )
        .order_by(Team.name, Team.id)
    ).all()
    return [_team(r) for r in rows]


# -- roles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    role: str
    slack_user_id: str
    team: Team
    granted_by: str


def grant_role(
    conn: Connection, *, workspace_id: str, role: str, slack_user_id: str, team_id: int, granted_by: str
) -> bool:
    """True when the grant is new (granting twice is harmless)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    exists = conn.execute(
        select(RoleGrant.id).where(
            RoleGrant.workspace_id == workspace_id,
            RoleGrant.role == role,
            RoleGrant.slack_user_id == slack_user_id,
            RoleGrant.team_id == team_id,
        )
    ).first()
    if exists:
        return False
    store.insert_ignore(
        conn,
        RoleGrant.__table__,
        [
            {
                "workspace_id": workspace_id,
                "role": role,
                "slack_user_id": slack_user_id,
                "team_id": team_id,
                "granted_by": granted_by,
                "created_at": utcnow(),
            }
        ],
        ("workspace_id", "role", "slack_user_id", "team_id"),
    )
    # The grant reaches the members it was made over; later joiners need an admin's approval.
    cover_members(
        conn, workspace_id=workspace_id, slack_user_id=slack_user_id, team_id=team_id, by=granted_by
    )
    return True


def cover_members(conn: Connection, *, workspace_id: str, slack_user_id: str, team_id: int, by: str) -> int:
    """Bring the team's current members into the reach of ``slack_user_id``'s manager grant
    (an admin granting over the team as it is now). Returns how many were not covered yet."""
    grant_id = conn.execute(
        select(RoleGrant.id).where(
            RoleGrant.workspace_id == workspace_id,
            RoleGrant.role == MANAGER,
            RoleGrant.slack_user_id == slack_user_id,
            RoleGrant.team_id == team_id,
        )
    ).scalar_one()
    uncovered = list(
        conn.execute(
            select(TeamMembership.person_id)
            .where(
                TeamMembership.team_id == team_id,
                TeamMembership.left_on.is_(None),
                ~select(ManagerScope.id)
                .where(
                    ManagerScope.role_grant_id == grant_id, ManagerScope.person_id == TeamMembership.person_id
                )
                .exists(),
            )
            .distinct()
        ).scalars()
    )
    _add_scope(conn, workspace_id, [grant_id], uncovered, reason="grant", added_by=by)
    return len(uncovered)


def _add_scope(
    conn: Connection,
    workspace_id: str,
    grant_ids: list[int],
    person_ids: list[int],
    *,
    reason: str,
    added_by: str,
) -> None:
    rows = [
        {
            "workspace_id": workspace_id,
            "role_grant_id": grant_id,
            "person_id": person_id,
            "reason": reason,
            "added_by": added_by,
            "created_at": utcnow(),
        }
        for grant_id in grant_ids
        for person_id in person_ids
    ]
    store.insert_ignore(conn, ManagerScope.__table__, rows, ("role_grant_id", "person_id"))


def approve_member(
    conn: Connection, *, workspace_id: str, team_id: int, person_id: int, approved_by: str
) -> int:
    """An admin brings a current member into the reach of every manager grant of the team.
    Returns how many grants newly reach them (0: already in scope, or the team has no manager)."""
    grant_ids = list(
        conn.execute(
            select(RoleGrant.id).where(
                RoleGrant.workspace_id == workspace_id,
                RoleGrant.team_id == team_id,
                RoleGrant.role == MANAGER,
                ~select(ManagerScope.id)
                .where(ManagerScope.role_grant_id == RoleGrant.id, ManagerScope.person_id == person_id)
                .exists(),
            )
        ).scalars()
    )
    _add_scope(conn, workspace_id, grant_ids, [person_id], reason="approved", added_by=approved_by)
    return len(grant_ids)


def delete_scope(conn: Connection, grant_filter) -> None:
    """Drop the scope rows of the grants ``grant_filter`` selects (before deleting those grants)."""
    conn.execute(
        delete(ManagerScope).where(ManagerScope.role_grant_id.in_(select(RoleGrant.id).where(grant_filter)))
    )


def revoke_role(conn: Connection, *, workspace_id: str, role: str, slack_user_id: str, team_id: int) -> bool:
    grant = and_(
        RoleGrant.workspace_id == workspace_id,
        RoleGrant.role == role,
        RoleGrant.slack_user_id == slack_user_id,
        RoleGrant.team_id == team_id,
    )
    delete_scope(conn, grant)
    return bool(conn.execute(delete(RoleGrant).where(grant)).rowcount)


def list_grants(conn: Connection, *, workspace_id: str, slack_user_id: str | None = None) -> list[Grant]:
    query = (
        select(RoleGrant.role, RoleGrant.slack_user_id, RoleGrant.granted_by, Team.__table__)
        .join(Team, Team.id == RoleGrant.team_id)
        .where(RoleGrant.workspace_id == workspace_id)
        .order_by(Team.name, Team.id, RoleGrant.slack_user_id)
    )
    if slack_user_id is not None:
        query = query.where(RoleGrant.slack_user_id == slack_user_id)
    return [Grant(r.role, r.slack_user_id, _team(r), r.granted_by) for r in conn.execute(query).all()]


def managed_teams(conn: Connection, *, workspace_id: str, slack_user_id: str) -> list[Team]:
    return [
        g.team
        for g in list_grants(conn, workspace_id=workspace_id, slack_user_id=slack_user_id)
        if g.role == MANAGER
    ]


def all_teams(conn: Connection, *, workspace_id: str) -> list[Team]:
    rows = conn.execute(
        select(Team.__table__).where(Team.workspace_id == workspace_id).order_by(Team.id)
    ).all()
    return [_team(r) for r in rows]


def team_managers(conn: Connection, *, workspace_id: str, team_id: int) -> list[str]:
    """Slack ids of the team's managers, sorted (who gets a team's alerts and recap details)."""
    return list(
        conn.execute(
            select(RoleGrant.slack_user_id)
            .where(
                RoleGrant.workspace_id == workspace_id,
                RoleGrant.team_id == team_id,
                RoleGrant.role == MANAGER,
            )
            .distinct()
            .order_by(RoleGrant.slack_user_id)
        ).scalars()
    )
