"""People and identities: match Slack users to people, link vendor actors, list what is unlinked."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, func, select, update

from bot.db import store
from bot.db.models import Identity, Person, UsageDaily
from bot.sources.base import email_actor

# Vendor word in "/tokens link <vendor> <id> @user" -> actor namespace.
LINK_NAMESPACES = {
    "openai": "openai_user",
    "openai-key": "openai_key",
    "anthropic": "anthropic_account",
    "anthropic-key": "anthropic_key",
    "claude-code-key": "claude_code_key",
    "github": "github",
    "openrouter": "openrouter_key",
    "windsurf": "windsurf_key",
    "email": "email",
}


class LinkError(ValueError):
    pass


def load_person(conn: Connection, *where) -> Person | None:
    row = conn.execute(select(Person.__table__).where(*where)).mappings().first()
    return Person(**row) if row else None


def find_by_slack_id(conn: Connection, *, workspace_id: str, slack_user_id: str) -> Person | None:
    return load_person(
        conn,
        Person.workspace_id == workspace_id,
        Person.slack_user_id == slack_user_id,
        Person.forgotten_at.is_(None),
    )


def find_by_email(conn: Connection, *, workspace_id: str, email: str) -> Person | None:
    return load_person(conn, Person.workspace_id == workspace_id, Person.email == email.strip().lower())


def match_slack_user(
    conn: Connection, *, workspace_id: str, slack_user_id: str, email: str | None, name: str = ""
) -> Person | None:
    """Remember the Slack id on the person with this email (creating the person if new)."""
    if not email:
        return None
    email = email.strip().lower()
    people = store.ensure_people(conn, workspace_id, {email: name})
    person_id = people[email]
    conn.execute(update(Person).where(Person.id == person_id).values(slack_user_id=slack_user_id))
    store.insert_ignore(
        conn,
        Identity.__table__,
        [
            {
                "workspace_id": workspace_id,
                "actor": email_actor(email),
                "person_id": person_id,
                "origin": "auto",
            }
        ],
        ("workspace_id", "actor"),
    )
    return load_person(conn, Person.id == person_id)


def actor_for(vendor_word: str, external_id: str) -> str:
    namespace = LINK_NAMESPACES.get(vendor_word.lower())
    if namespace is None:
        raise LinkError(f"`{vendor_word}` is not a linkable vendor; use one of: {', '.join(LINK_NAMESPACES)}")
    external_id = external_id.strip()
    if not external_id or len(external_id) > 300:
        raise LinkError("the external id is empty or too long")
    if namespace in ("github", "email"):
        external_id = external_id.lower().removeprefix("@")
    return f"{namespace}:{external_id}"


def link_actor(conn: Connection, *, workspace_id: str, actor: str, person_id: int, origin: str) -> int:
    """Point ``actor`` at the person (replacing an earlier link) and re-attribute its history."""
    existing = conn.execute(
        select(Identity).where(Identity.workspace_id == workspace_id, Identity.actor == actor)
    ).first()
    if existing:
        conn.execute(
            update(Identity).where(Identity.id == existing[0].id).values(person_id=person_id, origin=origin)
        )
    else:
        conn.execute(
            Identity.__table__.insert().values(
                workspace_id=workspace_id, actor=actor, person_id=person_id, origin=origin
            )
        )
    return store.reattribute(conn, workspace_id=workspace_id, actor=actor, person_id=person_id)


@dataclass(frozen=True)
class UnlinkedActor:
    source: str
    actor: str
    cost_micros: int


def biggest_unlinked(conn: Connection, *, workspace_id: str, limit: int = 5) -> list[UnlinkedActor]:
    rows = conn.execute(
        select(UsageDaily.source, UsageDaily.actor, func.sum(UsageDaily.cost_micros).label("cost"))
        .where(UsageDaily.workspace_id == workspace_id, UsageDaily.person_id.is_(None))
        .group_by(UsageDaily.source, UsageDaily.actor)
        .order_by(func.sum(UsageDaily.cost_micros).desc())
        .limit(limit)
    ).all()
    return [UnlinkedActor(source, actor, int(cost or 0)) for source, actor, cost in rows]


@dataclass(frozen=True)
class ImportResult:
    people: int
    links: int


def import_csv(conn: Connection, *, workspace_id: str, path: Path) -> ImportResult:
    """Columns: email (required), slack_id, github, and any ``<namespace>`` column of extra ids
    (e.g. ``openrouter_key``), several ids separated by ``;``."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
            raise LinkError(f"{path.name}: the first row must name the columns and include `email`")
        rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]
    people = links = 0
    for number, row in enumerate(rows, start=2):
        email = row.get("email", "").lower()
        if "@" not in email:
            raise LinkError(f"{path.name}: line {number}: `{email or '(empty)'}` is not an email")
    for row in rows:
        email = row["email"].lower()
        person_id = store.ensure_people(conn, workspace_id, {email: row.get("name", "")})[email]
        people += 1
        if row.get("slack_id"):
            conn.execute(update(Person).where(Person.id == person_id).values(slack_user_id=row["slack_id"]))
        for column, value in row.items():
            if column in ("email", "name", "slack_id") or not value:
                continue
            namespace = "github" if column in ("github", "github_login") else column
            for external in value.split(";"):
                if external.strip():
                    external = external.strip().lower() if namespace == "github" else external.strip()
                    actor = f"{namespace}:{external}"
                    link_actor(
                        conn, workspace_id=workspace_id, actor=actor, person_id=person_id, origin="import"
                    )
                    links += 1
    return ImportResult(people, links)
