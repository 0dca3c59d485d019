"""Demo mode in Slack (``TOKENWISE_DEMO=1``): who a caller is in the synthetic org, and which
sources are the demo's.

A Slack user of a demo workspace has no vendor usage of their own, so ``/tokens me`` would show
nothing. In demo mode only, a caller who matches no person (neither by Slack id nor by an email
someone already has) takes the first demo person, in ``bot.sources.demo.PEOPLE`` order, that no
Slack user has claimed yet. The claim is the person row's Slack id, so it is stable: the same
Slack user is the same demo person on every later request, in every process. Outside demo mode
nothing here is called (``bot.slack.context.resolve_person``).
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from bot.db.locks import hold_xact_lock
from bot.db.models import Person
from bot.services import people, privacy
from bot.sources.demo import PEOPLE

DEMO_SOURCE_PREFIX = "demo-"
DEMO_EMAILS = tuple(p.email for p in PEOPLE)
DEMO_PEOPLE = len(PEOPLE)


def is_demo_source(name: str) -> bool:
    """A source of the synthetic org (``demo-openai``, ...), whose rows no vendor sent."""
    return name.startswith(DEMO_SOURCE_PREFIX)


def claim_demo_person(conn: Connection, *, workspace_id: str, slack_user_id: str) -> Person | None:
    """Link ``slack_user_id`` to the first unclaimed demo person (a write: call it in a
    transaction); None when every demo person is taken or the demo was never synced. Serialised
    per workspace, so two first requests never take the same person or one user two people."""
    hold_xact_lock(conn, f"demo-claim:{workspace_id}")
    mine = people.find_by_slack_id(conn, workspace_id=workspace_id, slack_user_id=slack_user_id)
    if mine is not None:
        return mine  # claimed by a request that held the lock first
    free = dict(
        conn.execute(
            select(Person.email, Person.id).where(
                Person.workspace_id == workspace_id,
                Person.email.in_(DEMO_EMAILS),
                Person.slack_user_id.is_(None),
                Person.forgotten_at.is_(None),
            )
        ).all()
    )
    for email in DEMO_EMAILS:
        if email not in free:
            continue
        taken = conn.execute(
            update(Person)
            .where(Person.id == free[email], Person.slack_user_id.is_(None))
            .values(slack_user_id=slack_user_id)
        )
        if taken.rowcount == 1:
            privacy.record(
                conn,
                workspace_id=workspace_id,
                actor_user_id=slack_user_id,
                action="demo.claim",
                target=f"person:{free[email]}",
                detail="demo mode: a Slack user with no person of their own",
            )
            return people.load_person(conn, Person.id == free[email])
    return None


def resolve_demo_caller(
    conn: Connection, *, workspace_id: str, slack_user_id: str, email: str | None, name: str = ""
) -> Person | None:
    """The caller's person in demo mode: linked by Slack id; else the person who already has
    their email (real usage wins over the demo), unless that is a demo person another Slack user
    has claimed (a claim is never taken away); else a demo person; else, with an email, a new
    person (every demo person is taken). A write: call it in a transaction."""
    found = people.find_by_slack_id(conn, workspace_id=workspace_id, slack_user_id=slack_user_id)
    if found is not None:
        return found
    owner = people.find_by_email(conn, workspace_id=workspace_id, email=email) if email else None
    if owner is not None and not (owner.email in DEMO_EMAILS and owner.slack_user_id):
        return people.resolve_slack_user(
            conn, workspace_id=workspace_id, slack_user_id=slack_user_id, email=email, name=name
        )
    claimed = claim_demo_person(conn, workspace_id=workspace_id, slack_user_id=slack_user_id)
    if claimed is not None or not email or owner is not None:
        return claimed  # never a second person for an email, nor a claimed one taken away
    return people.resolve_slack_user(
        conn, workspace_id=workspace_id, slack_user_id=slack_user_id, email=email, name=name
    )
