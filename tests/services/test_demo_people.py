"""Demo mode's caller mapping (bot.services.demo) on SQLite and PostgreSQL: the first unclaimed
demo person, recorded on the person row so it is stable, never a claim taken away."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from bot.db.models import AuditLog, Person
from bot.services.demo import DEMO_EMAILS, claim_demo_person, resolve_demo_caller
from bot.services.sync import run_all
from bot.sources.demo import PEOPLE, demo_connectors

TODAY = date(2026, 11, 30)


@pytest.fixture
def demo_db(engine):
    run_all(
        engine, demo_connectors(TODAY), workspace_id="default", since=TODAY - timedelta(days=3), today=TODAY
    )
    return engine


def claim(engine, user: str, email: str | None = None, workspace_id: str = "default") -> Person | None:
    with engine.begin() as conn:
        return resolve_demo_caller(conn, workspace_id=workspace_id, slack_user_id=user, email=email)


def test_callers_take_demo_people_in_order_and_keep_them(demo_db):
    first = claim(demo_db, "UONE")
    second = claim(demo_db, "UTWO", "two@corp.test")  # an email no person has: still a demo person
    assert (first.email, second.email) == (PEOPLE[0].email, PEOPLE[1].email)
    assert claim(demo_db, "UONE").id == first.id  # stable: found by the Slack id from now on
    with demo_db.connect() as conn:
        claimed = dict(
            conn.execute(
                select(Person.slack_user_id, Person.email).where(Person.slack_user_id.isnot(None))
            ).all()
        )
        audits = conn.execute(
            select(AuditLog.actor_user_id, AuditLog.target).where(AuditLog.action == "demo.claim")
        ).all()
    assert claimed == {"UONE": PEOPLE[0].email, "UTWO": PEOPLE[1].email}
    assert audits == [("UONE", f"person:{first.id}"), ("UTWO", f"person:{second.id}")]
    # No person was made for the unknown email: the demo person is the caller.
    with demo_db.connect() as conn:
        assert conn.execute(select(Person.id).where(Person.email == "two@corp.test")).first() is None


def test_an_email_with_a_person_wins_but_never_takes_a_claimed_demo_person(demo_db):
    ana = claim(demo_db, "UNOMAIL")  # the first demo person, Ana, claimed by a user without email
    assert ana.email == PEOPLE[0].email
    # The Slack user whose email is Ana's does not take her away: they get the next free one.
    real_ana = claim(demo_db, "UANA", PEOPLE[0].email)
    assert real_ana.email == PEOPLE[1].email
    assert claim(demo_db, "UNOMAIL").email == PEOPLE[0].email
    # A free demo person whose email the caller has is theirs (Chen, say), not the next in line.
    chen = claim(demo_db, "UCHEN", PEOPLE[2].email)
    assert chen.email == PEOPLE[2].email
    with demo_db.begin() as conn:
        conn.execute(
            Person.__table__.insert().values(
                workspace_id="default", email="boss@corp.test", display_name="Boss"
            )
        )
    assert claim(demo_db, "UBOSS", "boss@corp.test").email == "boss@corp.test"  # real person: theirs


def test_none_once_every_demo_person_is_taken_or_forgotten_or_in_another_workspace(demo_db):
    with demo_db.begin() as conn:
        conn.execute(update(Person).where(Person.email == PEOPLE[0].email).values(forgotten_at=TODAY))
        for n, email in enumerate(DEMO_EMAILS[1:]):
            conn.execute(update(Person).where(Person.email == email).values(slack_user_id=f"UTAKEN{n}"))
    with demo_db.begin() as conn:
        assert claim_demo_person(conn, workspace_id="default", slack_user_id="ULATE") is None
    assert claim(demo_db, "ULATE") is None  # no email: nobody
    assert claim(demo_db, "ULATE2", "late@corp.test").email == "late@corp.test"  # a person of their own
    assert claim(demo_db, "UOTHER", workspace_id="T2") is None  # the demo synced into "default" only
