"""Why a person sees no spend (``services.no_usage.explain_no_usage``): no email, an email that
matches no vendor account, linked but quiet in the period; and the connected sources' health.
Rows stored through the real sync engine, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from bot.db.models import Person
from bot.services import people
from bot.services.no_usage import NO_EMAIL, NO_MATCH, NONE_IN_PERIOD, explain_no_usage
from bot.services.sync import run_all
from tests.services.support import DAY, Scripted

ENABLED = {"cursor": timedelta(0), "openai": timedelta(hours=1)}


class Broken(Scripted):
    """A source whose vendor answers nothing usable: its sync fails."""

    name = "openai"
    vendor = "openai"

    def fetch(self, window_start: date, window_end: date) -> Iterator:
        raise RuntimeError("vendor down")


def _explain(engine, *, email, person_id):
    with engine.connect() as conn:
        return explain_no_usage(conn, workspace_id="w", email=email, person_id=person_id, enabled=ENABLED)


def test_no_email_no_match_and_none_in_the_period_are_told_apart(engine):
    run_all(
        engine,
        [Scripted({"ana@x.io": ("3", 10, 1)}), Broken({})],
        workspace_id="w",
        since=DAY,
        today=DAY + timedelta(days=1),
    )
    with engine.begin() as conn:
        ana = people.find_by_email(conn, workspace_id="w", email="ana@x.io")
        # Slack shows lena's email, which no vendor row uses: matching creates her person only.
        lena = people.match_slack_user(conn, workspace_id="w", slack_user_id="ULENA", email="lena@x.io")

    no_email = _explain(engine, email=None, person_id=None)
    assert no_email.reason == NO_EMAIL and no_email.identities == []

    no_match = _explain(engine, email="lena@x.io", person_id=lena.id)
    assert no_match.reason == NO_MATCH and no_match.email == "lena@x.io"
    assert no_match.identities == ["email:lena@x.io"] and no_match.last_day is None

    quiet = _explain(engine, email="ana@x.io", person_id=ana.id)
    assert quiet.reason == NONE_IN_PERIOD and quiet.last_day == DAY
    # Both enabled sources are listed; the one whose sync failed is named as failing.
    assert [(s.name, s.healthy) for s in quiet.sources] == [("cursor", True), ("openai", False)]
    assert quiet.failing == ["openai"]


def test_a_person_linked_by_slack_id_without_an_email_is_a_match_not_no_email(engine):
    run_all(engine, [Scripted({"ana@x.io": ("3", 10, 1)})], workspace_id="w", since=DAY, today=DAY)
    with engine.begin() as conn:
        ana = people.find_by_email(conn, workspace_id="w", email="ana@x.io")
        conn.execute(Person.__table__.update().where(Person.id == ana.id).values(email=None))
        bare = conn.execute(
            Person.__table__.insert().values(workspace_id="w", slack_user_id="UBARE", email=None)
        ).inserted_primary_key[0]
    # Linked, no email on record, nothing attributed: no match (an admin links them), never NO_EMAIL.
    nothing = _explain(engine, email=None, person_id=bare)
    assert nothing.reason == NO_MATCH and nothing.email is None and nothing.identities == []
    # Linked, no email on record, usage before the period: quiet, with the identities and last day.
    quiet = _explain(engine, email=None, person_id=ana.id)
    assert quiet.reason == NONE_IN_PERIOD and quiet.last_day == DAY and quiet.identities == ["email:ana@x.io"]
