"""Builders for the rows tests write straight into the database: people, usage and activity days,
teams and budgets. A module binds the ones it uses to its own world once, e.g.
``_usage = partial(add_usage, workspace_id=W, model="gpt-4.1")``.

Rows written directly skip the sync that keeps the rollups (bot/db/rollups.py) in step, so the
usage and activity builders rebuild them; ``rebuild=False`` leaves that to the caller, once after
many rows. ``actor`` is a template filled from the row's columns (``"p:{person_id}:{day}"``): each
row needs an actor unique within its day, source, model, basis and kind.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from bot.db import rollups
from bot.db.models import ActivityDaily, Identity, Person, Team, UsageDaily
from bot.services import budgets, teams


def add_person(
    conn,
    name: str,
    slack_user_id: str | None = None,
    *,
    workspace_id: str,
    domain: str = "example.com",
    display_name: str | None = None,
    **columns,
) -> int:
    """A person, returning its id. ``name`` is an email, or the part before ``@domain``; the
    display name defaults to that part capitalised ("ana" -> "Ana")."""
    email = name if "@" in name else f"{name}@{domain}"
    if display_name is None:
        display_name = email.split("@")[0].title()
    conn.execute(
        Person.__table__.insert().values(
            workspace_id=workspace_id,
            email=email,
            slack_user_id=slack_user_id,
            display_name=display_name,
            **columns,
        )
    )
    return conn.execute(
        select(Person.id).where(Person.workspace_id == workspace_id, Person.email == email)
    ).scalar_one()


def usage_values(
    person_id: int | None,
    day: date,
    micros: int,
    *,
    workspace_id: str,
    vendor: str = "openai",
    model: str = "",
    kind: str = "usage",
    cost_basis: str = "billed",
    in_org_total: bool = True,
    actor: str = "p:{person_id}:{vendor}:{kind}:{in_org_total}",
    **columns,
) -> dict:
    """One usage_daily row (the vendor's raw amount left at "0 usd": only micro-USD is summed)."""
    return _daily_row(
        person_id,
        day,
        workspace_id=workspace_id,
        vendor=vendor,
        actor=actor,
        model=model,
        cost_basis=cost_basis,
        kind=kind,
        cost_micros=micros,
        raw_amount="0",
        raw_unit="usd",
        in_org_total=in_org_total,
        **columns,
    )


def add_usage(conn, person_id: int | None, day: date, micros: int, *, rebuild: bool = True, **values) -> None:
    conn.execute(UsageDaily.__table__.insert().values(usage_values(person_id, day, micros, **values)))
    if rebuild:
        rollups.rebuild(conn)


def activity_values(
    person_id: int | None,
    day: date,
    *,
    workspace_id: str,
    vendor: str,
    actor: str = "p:{person_id}",
    **signals,
) -> dict:
    """One activity_daily row: the signals given (lines_accepted=..., commits=...), the rest 0."""
    return _daily_row(person_id, day, workspace_id=workspace_id, vendor=vendor, actor=actor, **signals)


def _daily_row(
    person_id: int | None, day: date, *, workspace_id: str, vendor: str, actor: str, **columns
) -> dict:
    """A daily row of one vendor (its source named the same), ``actor`` formatted from the row."""
    row = {
        "workspace_id": workspace_id,
        "source": vendor,
        "vendor": vendor,
        "day": day,
        "person_id": person_id,
        **columns,
    }
    return {**row, "actor": actor.format(**row)}


def add_activity(conn, person_id: int | None, day: date, *, rebuild: bool = True, **values) -> None:
    conn.execute(ActivityDaily.__table__.insert().values(activity_values(person_id, day, **values)))
    if rebuild:
        rollups.rebuild(conn)


def add_team(
    conn,
    slack_id: str,
    members: dict[str, int],
    *,
    workspace_id: str,
    today: date,
    kind: str = teams.USERGROUP,
    name: str | None = None,
) -> Team:
    """A team (user group by default) whose membership was read on ``today``: Slack user id ->
    person id."""
    team = teams.ensure_team(
        conn,
        workspace_id=workspace_id,
        kind=kind,
        slack_id=slack_id,
        name=slack_id.lower() if name is None else name,
    )
    teams.apply_refresh(
        conn, workspace_id=workspace_id, team_id=team.id, known=members, new_members=[], today=today
    )
    return teams.team_by_id(conn, team.id)


def set_budget(conn, kind: str, target_id: str, *words: str, workspace_id: str, team=None):
    """A budget set by UADMIN as ``/tokens budget set <target> <words>`` would; returns
    (before, after). ``kind`` and ``target_id`` name the target directly (person id, group or
    channel id, or "org")."""
    spec = budgets.parse_set(["org", *words])
    spec = budgets.BudgetSpec(**{**spec.__dict__, "target": budgets.TargetRef(kind, target_id)})
    return budgets.set_budget(
        conn,
        workspace_id=workspace_id,
        kind=kind,
        target_id=target_id,
        spec=spec,
        actor_user_id="UADMIN",
        team=team,
    )


def link_github_person(engine, login: str, email: str, *, workspace_id: str = "W") -> int:
    """A person with ``email`` whose GitHub login an admin has linked; their id."""
    with engine.begin() as conn:
        person_id = conn.execute(
            Person.__table__.insert().values(workspace_id=workspace_id, email=email, display_name=login)
        ).inserted_primary_key[0]
        conn.execute(
            Identity.__table__.insert().values(
                workspace_id=workspace_id, actor=f"github:{login}", person_id=person_id, origin="admin"
            )
        )
    return person_id
