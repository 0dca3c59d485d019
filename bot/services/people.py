"""People and identities: match Slack users to people, link vendor actors, list what is unlinked."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, func, select, update

from bot.db import store
from bot.db.models import Identity, IdentityClaim, Person, UsageDaily
from bot.domain.clock import utcnow
from bot.domain.records import email_actor

# Vendor word in "/tokens link <vendor> <id> @user" -> actor namespace: the namespaces the
# connectors attribute rows by (tests/services/test_link_namespaces.py holds the two together).
LINK_NAMESPACES = {
    "openai": "openai_user",
    "openai-key": "openai_key",
    "anthropic": "anthropic_user",
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


def resolve_slack_user(
    conn: Connection, *, workspace_id: str, slack_user_id: str, email: str | None = None, name: str = ""
) -> Person | None:
    """The person behind a Slack user: the one already linked to the Slack id; else, given the
    email Slack shows for them, the person with that email, linked to the id from now on (a
    write, so call it in a transaction when ``email`` is given). None when neither finds one."""
    person = find_by_slack_id(conn, workspace_id=workspace_id, slack_user_id=slack_user_id)
    if person is None and email:
        person = match_slack_user(
            conn, workspace_id=workspace_id, slack_user_id=slack_user_id, email=email, name=name
        )
    return person


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


class IdentityOwned(LinkError):
    """The actor is linked to another person; moving it (and its history) must be asked for."""

    def __init__(self, actor: str, owner: Person, *, line: int | None = None) -> None:
        self.actor, self.owner = actor, owner
        where = f"line {line}: " if line else ""
        super().__init__(f"{where}`{actor}` already belongs to {owner_label(owner)}")


def owner_label(person: Person) -> str:
    """Who holds an identity, in plain text (the CLI's errors): email and Slack user id. Slack
    draws the user as a mention instead (``slack/blocks/format.owner_mention``)."""
    user = person.slack_user_id
    parts = [person.email or "", f"(Slack {user})" if user else ""]
    return " ".join(p for p in parts if p) or f"person {person.id}"


def identity_owner(conn: Connection, *, workspace_id: str, actor: str) -> int | None:
    return conn.execute(
        select(Identity.person_id).where(Identity.workspace_id == workspace_id, Identity.actor == actor)
    ).scalar_one_or_none()


def link_actor(
    conn: Connection, *, workspace_id: str, actor: str, person_id: int, origin: str, move: bool = False
) -> int:
    """Point ``actor`` at the person and re-attribute its history. An actor that belongs to
    someone else moves only with ``move`` (an admin's explicit decision); otherwise
    ``IdentityOwned`` names the owner and nothing changes."""
    owner = identity_owner(conn, workspace_id=workspace_id, actor=actor)
    if owner is not None and owner != person_id and not move:
        raise IdentityOwned(actor, load_person(conn, Person.id == owner))
    if owner is not None:
        conn.execute(
            update(Identity)
            .where(Identity.workspace_id == workspace_id, Identity.actor == actor)
            .values(person_id=person_id, origin=origin)
        )
    else:
        conn.execute(
            Identity.__table__.insert().values(
                workspace_id=workspace_id, actor=actor, person_id=person_id, origin=origin
            )
        )
    return store.reattribute(conn, workspace_id=workspace_id, actor=actor, person_id=person_id)


# -- self-claims -----------------------------------------------------------------------------
# A person may claim a vendor identity for themself, but a claim moves history only once it is
# verified (the vendor shows the claimer's own email for it) or an admin approves it. Unverified
# claims wait in ``identity_claim``; each is decided exactly once (docs/privacy.md, "Identity claims").

LINKED, PENDING, ALREADY_YOURS, ALREADY_PENDING = "linked", "pending", "already yours", "already pending"


@dataclass(frozen=True)
class ClaimOutcome:
    status: str  # LINKED | PENDING | ALREADY_YOURS | ALREADY_PENDING
    changed: int = 0  # stored rows re-attributed
    claim_id: int | None = None


def claim_identity(
    conn: Connection,
    *,
    workspace_id: str,
    actor: str,
    person_id: int,
    claimer_user_id: str,
    verified_by: str | None,
    why_pending: str = "",
) -> ClaimOutcome:
    """A self-claim. ``verified_by`` names the check that proved it (e.g. "github public email"),
    None when unproven. A verified claim of an unlinked actor links at once; anything else (unproven,
    or the actor is someone else's) waits for an admin and moves nothing."""
    owner = identity_owner(conn, workspace_id=workspace_id, actor=actor)
    if owner == person_id:
        return ClaimOutcome(ALREADY_YOURS)
    if verified_by and owner is None:
        changed = link_actor(
            conn, workspace_id=workspace_id, actor=actor, person_id=person_id, origin="verified"
        )
        return ClaimOutcome(LINKED, changed)
    pending = conn.execute(
        select(IdentityClaim.id).where(
            IdentityClaim.workspace_id == workspace_id,
            IdentityClaim.actor == actor,
            IdentityClaim.person_id == person_id,
            IdentityClaim.status == PENDING,
        )
    ).scalar()
    if pending is not None:
        return ClaimOutcome(ALREADY_PENDING, claim_id=pending)
    if owner is not None:
        why_pending = "it is linked to someone else"
    claim_id = conn.execute(
        IdentityClaim.__table__.insert().values(
            workspace_id=workspace_id,
            actor=actor,
            person_id=person_id,
            claimer_user_id=claimer_user_id,
            status=PENDING,
            why_pending=why_pending[:200],
            decided_by="",
            created_at=utcnow(),
        )
    ).inserted_primary_key[0]
    return ClaimOutcome(PENDING, claim_id=claim_id)


@dataclass(frozen=True)
class PendingClaim:
    id: int
    actor: str
    claimer_user_id: str
    why_pending: str
    owner: Person | None  # who holds the actor now, None when unlinked
    stored_rows: int  # usage rows an approval would re-attribute


def pending_claims(conn: Connection, *, workspace_id: str, limit: int = 20) -> tuple[list[PendingClaim], int]:
    """The oldest pending claims (at most ``limit``) and how many are pending in all."""
    where = (IdentityClaim.workspace_id == workspace_id, IdentityClaim.status == PENDING)
    total = conn.execute(select(func.count()).select_from(IdentityClaim).where(*where)).scalar_one()
    rows = conn.execute(
        select(IdentityClaim.__table__).where(*where).order_by(IdentityClaim.id).limit(limit)
    ).all()
    found = []
    for claim in rows:
        owner = identity_owner(conn, workspace_id=workspace_id, actor=claim.actor)
        stored = conn.execute(
            select(func.count())
            .select_from(UsageDaily)
            .where(UsageDaily.workspace_id == workspace_id, UsageDaily.actor == claim.actor)
        ).scalar_one()
        found.append(
            PendingClaim(
                claim.id,
                claim.actor,
                claim.claimer_user_id,
                claim.why_pending,
                load_person(conn, Person.id == owner) if owner is not None else None,
                int(stored),
            )
        )
    return found, int(total)


@dataclass(frozen=True)
class ClaimDecision:
    actor: str
    claimer_user_id: str
    person_id: int
    approved: bool
    changed: int  # stored rows re-attributed (approvals)


def decide_claim(
    conn: Connection, *, workspace_id: str, claim_id: int, approve: bool, decided_by: str
) -> ClaimDecision | None:
    """Approve (link, moving the actor from anyone who holds it) or deny a pending claim.
    ``UPDATE ... WHERE status = 'pending'``: exactly one decision wins; None when the claim is
    unknown or already decided."""
    won = conn.execute(
        update(IdentityClaim)
        .where(
            IdentityClaim.workspace_id == workspace_id,
            IdentityClaim.id == claim_id,
            IdentityClaim.status == PENDING,
        )
        .values(status="approved" if approve else "denied", decided_by=decided_by, decided_at=utcnow())
    ).rowcount
    if won != 1:
        return None
    claim = conn.execute(select(IdentityClaim.__table__).where(IdentityClaim.id == claim_id)).one()
    changed = 0
    if approve:
        changed = link_actor(
            conn,
            workspace_id=workspace_id,
            actor=claim.actor,
            person_id=claim.person_id,
            origin="admin",
            move=True,
        )
    return ClaimDecision(claim.actor, claim.claimer_user_id, claim.person_id, approve, changed)


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
    created: int  # people new to the workspace
    updated: int  # people whose name, Slack id or identities changed
    unchanged: int
    links: int  # identities linked or moved to someone

    @property
    def people(self) -> int:
        return self.created + self.updated + self.unchanged


#: Columns of a people CSV besides the identity ones: email (required), name, slack_id.
PERSON_COLUMNS = ("email", "name", "slack_id")
#: Identity columns -> actor namespace: the namespaces the connectors attribute rows by (besides
#: ``email``, which is the person), ``github_login`` as an alias of ``github``.
IDENTITY_COLUMNS = {
    **{
        namespace: namespace
        for namespace in (
            "openai_user",
            "openai_key",
            "openai_project",
            "anthropic_user",
            "anthropic_key",
            "claude_code_key",
            "github",
            "openrouter_key",
            "windsurf_key",
        )
    },
    "github_login": "github",
}
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>.]+")


@dataclass(frozen=True)
class _Row:
    line: int
    email: str
    name: str
    slack_id: str
    actors: tuple[str, ...]


def read_people_csv(path: Path) -> list[_Row]:
    """Every row of a people CSV, checked whole before anything is written: known columns, a
    well-formed email on every line, no email twice. Errors name the file and the line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise LinkError(
            f"{path.name} is not UTF-8 text (line {line} has the byte 0x{data[error.start]:02x}): "
            'save it as "CSV UTF-8" and import it again'
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [column.strip().lower() for column in next(reader, [])]
    if "email" not in header:
        raise LinkError(f"{path.name}: line 1 must name the columns and include `email`")
    unknown = [c or "(blank)" for c in header if c not in PERSON_COLUMNS and c not in IDENTITY_COLUMNS]
    if unknown:
        known = ", ".join([*PERSON_COLUMNS, *IDENTITY_COLUMNS])
        raise LinkError(f"{path.name}: line 1: unknown column `{unknown[0]}`; the columns are {known}")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise LinkError(f"{path.name}: line 1: the column `{repeated[0]}` appears twice")
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            raise LinkError(f"{path.name}: line {line}: {len(cells)} values for {len(header)} columns")
        row = dict(zip(header, (cell.strip() for cell in cells), strict=False))
        email = row.get("email", "").lower()
        if not _EMAIL.fullmatch(email):
            raise LinkError(f"{path.name}: line {line}: `{email or '(empty)'}` is not an email")
        if email in seen:
            raise LinkError(f"{path.name}: line {line}: {email} is already on line {seen[email]}")
        seen[email] = line
        actors = []
        for column, value in row.items():
            namespace = IDENTITY_COLUMNS.get(column)
            for external in value.split(";") if namespace else ():
                if external.strip():
                    external = external.strip().lower() if namespace == "github" else external.strip()
                    actors.append(f"{namespace}:{external}")
        rows.append(_Row(line, email, row.get("name", ""), row.get("slack_id", ""), tuple(actors)))
    return rows


def import_csv(conn: Connection, *, workspace_id: str, path: Path, move: bool = False) -> ImportResult:
    """Columns: email (required), name, slack_id, github, and the identity columns of
    ``IDENTITY_COLUMNS`` (e.g. ``openrouter_key``), several ids separated by ``;``. The file is
    checked whole first (``read_people_csv``); an id that belongs to someone else stops the
    import (``IdentityOwned``) unless ``move``. Run it in one transaction: on any error, the
    caller's rollback leaves nothing written."""
    rows = read_people_csv(path)
    created = updated = unchanged = links = 0
    for row in rows:
        before = find_by_email(conn, workspace_id=workspace_id, email=row.email)
        person_id = store.ensure_people(conn, workspace_id, {row.email: row.name})[row.email]
        changes = {}
        if before is not None and row.name and row.name != before.display_name:
            changes["display_name"] = row.name
        if row.slack_id and (before is None or row.slack_id != before.slack_user_id):
            changes["slack_user_id"] = row.slack_id
        if changes:
            conn.execute(update(Person).where(Person.id == person_id).values(**changes))
        linked = 0
        for actor in row.actors:
            if identity_owner(conn, workspace_id=workspace_id, actor=actor) == person_id:
                continue
            try:
                link_actor(
                    conn,
                    workspace_id=workspace_id,
                    actor=actor,
                    person_id=person_id,
                    origin="import",
                    move=move,
                )
            except IdentityOwned as owned:
                raise IdentityOwned(owned.actor, owned.owner, line=row.line) from None
            linked += 1
        links += linked
        if before is None:
            created += 1
        elif changes or linked:
            updated += 1
        else:
            unchanged += 1
    return ImportResult(created, updated, unchanged, links)
