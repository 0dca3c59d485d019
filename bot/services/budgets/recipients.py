"""Who is told about a budget: the people an alert goes to, and who decides a request for more
(Slack ids; the Slack layer sends the DMs)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from bot.db.models import Budget, Person, Team
from bot.services import access, teams
from bot.services.budgets.vocabulary import ORG
from bot.settings import Settings


def admin_user_ids(conn: Connection, *, workspace_id: str, settings: Settings) -> list[str]:
    """Slack ids of the admins named in TOKENWISE_ADMINS (ids as given; emails via their person
    record). Slack's own workspace admins cannot be listed without reading every user."""
    ids, emails = [], []
    for entry in sorted(settings.admin_entries):
        if "@" in entry:
            emails.append(entry)
        elif entry[:1] in ("u", "w"):
            ids.append(entry.upper())
    if emails:
        ids.extend(
            conn.execute(
                select(Person.slack_user_id).where(
                    Person.workspace_id == workspace_id,
                    Person.email.in_(emails),
                    Person.slack_user_id.is_not(None),
                    Person.forgotten_at.is_(None),
                )
            ).scalars()
        )
    return list(dict.fromkeys(ids))


def managers_of_person(conn: Connection, *, workspace_id: str, person_id: int) -> list[str]:
    """The managers whose grant reaches the person (docs/privacy.md, "Manager scope")."""
    return access.managers_of(conn, workspace_id, person_id)


def slack_id_of(conn: Connection, *, person_id: int) -> str | None:
    return conn.execute(
        select(Person.slack_user_id).where(Person.id == person_id, Person.forgotten_at.is_(None))
    ).scalar_one_or_none()


def alert_recipients(
    conn: Connection, *, workspace_id: str, budget: Budget, team: Team | None, settings: Settings
) -> list[str]:
    """Personal budgets tell the person; team budgets the team's managers (admins when it has
    none); the org budget the admins."""
    if budget.person_id is not None:
        slack_id = slack_id_of(conn, person_id=budget.person_id)
        return [slack_id] if slack_id else []
    if team is not None:
        managers = teams.team_managers(conn, workspace_id=workspace_id, team_id=team.id)
        # An alert carries the team's dollars: only to managers whose grant reaches every member
        # (a joiner not yet approved would be in the figure), else to the admins.
        reaching = [m for m in managers if not access.unapproved_members(conn, workspace_id, m, team.id)]
        if reaching:
            return reaching
    return admin_user_ids(conn, workspace_id=workspace_id, settings=settings)


def deciders(
    conn: Connection,
    *,
    workspace_id: str,
    person_id: int,
    budget: Budget,
    team: Team | None,
    settings: Settings,
) -> list[str]:
    """Who is asked about a request for more: the person's managers who may change that budget
    (admins when there are none); never the requester."""
    own = slack_id_of(conn, person_id=person_id)
    if budget.target_kind == ORG:
        found = []
    elif team is not None:
        found = teams.team_managers(conn, workspace_id=workspace_id, team_id=team.id)
    else:
        found = managers_of_person(conn, workspace_id=workspace_id, person_id=person_id)
    found = [u for u in found if u != own]
    if not found:
        found = [u for u in admin_user_ids(conn, workspace_id=workspace_id, settings=settings) if u != own]
    return found
