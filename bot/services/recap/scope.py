"""Whose numbers a recap covers: a Slack team with dated membership, or a fixed set of people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, or_, select

from bot.db.models import Person, Team, TeamMembership
from bot.services import reports, teams


@dataclass(frozen=True)
class Scope:
    """Whose numbers a recap covers: a team (dated membership, like ``/tokens team``) or a fixed
    set of people (the command line's demo, when no Slack membership is known)."""

    name: str  # a people scope's plain name ("#demo (everyone)"); a team's is drawn from ``team``
    team: Team | None = None  # the team row, drawn by slack/blocks (its mention and label)
    team_id: int | None = None
    person_ids: tuple[int, ...] | None = None
    budget_target: tuple[str, str] | None = None  # (budget.target_kind, budget.target_id)

    def clause(self, table, within: tuple[date, date] | None = None):
        """Rows of the scope's people; ``within`` as in ``reports.on_team``."""
        if self.team_id is not None:
            return reports.on_team(table, self.team_id, within)
        return table.person_id.in_(list(self.person_ids or ()))


def team_scope(team: Team) -> Scope:
    target_kind = "group" if team.kind == teams.USERGROUP else "channel"
    return Scope(team.name, team, team_id=team.id, budget_target=(target_kind, team.slack_id))


def people_scope(conn: Connection, *, workspace_id: str, label: str) -> Scope:
    """Everyone in the database (the command line's demo, where no Slack membership is known)."""
    ids = conn.execute(
        select(Person.id)
        .where(Person.workspace_id == workspace_id, Person.forgotten_at.is_(None))
        .order_by(Person.id)
    ).scalars()
    return Scope(label, person_ids=tuple(ids))


def scope_people(conn: Connection, scope: Scope, start: date, end: date) -> list[int]:
    """The people a scope covers on some day of ``[start, end)``."""
    if scope.team_id is None:
        return list(scope.person_ids or ())
    return sorted(
        conn.execute(
            select(TeamMembership.person_id)
            .where(
                TeamMembership.team_id == scope.team_id,
                TeamMembership.joined_on < end,
                or_(TeamMembership.left_on.is_(None), TeamMembership.left_on > start),
            )
            .distinct()
        ).scalars()
    )
