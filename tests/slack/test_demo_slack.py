"""The demo in Slack, through the real Starlette+Bolt app with signed requests and the fake Slack
Web API: with TOKENWISE_DEMO=1 a caller without a person is shown as a demo person (the first
unclaimed one, kept), never without it; /tokens status explains the demo's sources. SQLite and
PostgreSQL."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.db.models import Person
from bot.domain.money import format_usd
from bot.services.runtime import build_runtime
from bot.settings import Settings
from bot.slack.app import build_app
from bot.slack.blocks.common import validate
from bot.sources.demo import PEOPLE
from bot.web import build_web_app
from tests.support.slack_app import TODAY, all_text, post_event, seed_demo, send, spend_of
from tests.support.slack_fake import BOT_TOKEN, SIGNING_SECRET, start_fake_slack


@pytest.fixture
def fake(httpserver):
    return start_fake_slack(httpserver)


@pytest.fixture
def seeded(engine):
    seed_demo(engine)
    return engine


@contextlib.contextmanager
def served(engine, fake, *, demo: bool):
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
        TOKENWISE_ADMINS="ULISTED",
        TOKENWISE_DEMO="1" if demo else "0",
    )
    runtime = build_runtime(settings, engine)  # the enabled sources as `tokenwise run` finds them
    with TestClient(build_web_app(runtime, build_app(runtime))) as client:
        yield client


def slack_ids(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                select(Person.slack_user_id, Person.email).where(Person.slack_user_id.isnot(None))
            ).all()
        )


def test_demo_mode_shows_a_caller_the_first_unclaimed_demo_person_and_keeps_them(seeded, fake):
    with served(seeded, fake, demo=True) as client:
        first = send(client, "me 7d", user_id="UNOMAIL")  # a Slack user with no email, no person
        assert first["response_type"] == "ephemeral" and validate(first["blocks"]) == []
        text = all_text(first)
        with seeded.connect() as conn:
            spent = spend_of(conn, [PEOPLE[0].email], TODAY - timedelta(days=6), TODAY + timedelta(days=1))
        assert spent > 0 and f"*{format_usd(spent)}*" in text
        assert f"Demo mode: you are shown as *{PEOPLE[0].name}*" in text
        # Listed Admin's email (lead@example.com) has no person: the next demo person, Ben.
        assert f"shown as *{PEOPLE[1].name}*" in all_text(send(client, "me", user_id="ULISTED"))
        # Slack cannot tell who UGHOST is (users.info fails): no demo person until it can.
        ghost = all_text(send(client, "me", user_id="UGHOST"))
        assert "I have no AI usage linked to you" in ghost and "Demo mode" not in ghost
        # Stable: the same Slack user is the same demo person on every later request.
        assert f"shown as *{PEOPLE[0].name}*" in all_text(send(client, "me", user_id="UNOMAIL"))
    assert slack_ids(seeded) == {"UNOMAIL": PEOPLE[0].email, "ULISTED": PEOPLE[1].email}
    # A restart (a new process) finds the same link: it is the person row, not a cache.
    with served(seeded, fake, demo=True) as client:
        assert f"shown as *{PEOPLE[0].name}*" in all_text(send(client, "me", user_id="UNOMAIL"))


def test_the_app_home_of_a_caller_without_a_person_is_a_demo_persons_dashboard(seeded, fake):
    with served(seeded, fake, demo=True) as client:
        post_event(client, {"type": "app_home_opened", "user": "UNOMAIL", "tab": "home"}, event_id="EvDemo")
        view = fake.wait_for("views.publish")[0].params["view"]
    assert "$" in json.dumps(view) and "no AI usage linked to you" not in json.dumps(view)
    assert slack_ids(seeded) == {"UNOMAIL": PEOPLE[0].email}


def test_without_demo_mode_nobody_is_mapped_to_a_demo_person(seeded, fake):
    with served(seeded, fake, demo=False) as client:
        reply = all_text(send(client, "me", user_id="UNOMAIL"))
        # The unlinked caller's explanation, and no demo person's numbers.
        assert "I have no AI usage linked to you" in reply and "Demo mode" not in reply
        assert all(person.name not in reply for person in PEOPLE)
        # An email with no person gets a person of their own (empty), not a demo person.
        listed = all_text(send(client, "me", user_id="ULISTED"))
        assert "Demo mode" not in listed and PEOPLE[0].name not in listed
    assert slack_ids(seeded) == {"ULISTED": "lead@example.com"}


def test_status_in_demo_mode_explains_the_synthetic_sources(seeded, fake):
    with served(seeded, fake, demo=True) as client:
        reply = send(client, "status", user_id="UADMIN")
    assert validate(reply["blocks"]) == []
    text = all_text(reply)
    assert reply["text"] == "Tokenwise sources: demo mode, 4 synthetic sources (no vendor connected)"
    assert "healthy" not in text
    assert "*Demo mode* (`TOKENWISE_DEMO=1`)" in text and "synthetic org of 25 people" in text
    for source in ("demo-openai", "demo-claude_code", "demo-cursor", "demo-github_copilot"):
        assert f":white_check_mark: `{source}`: last success" in text


def test_status_without_demo_mode_says_the_demo_data_is_not_refreshed(seeded, fake):
    with served(seeded, fake, demo=False) as client:
        text = all_text(send(client, "status", user_id="UADMIN"))
    assert "Tokenwise sources: no vendor connected; demo data from `tokenwise demo` only" in text
    assert "0 of 4 healthy" not in text and "(disabled)" not in text
    assert "demo mode is off, so it is no longer refreshed. Set `TOKENWISE_DEMO=1`" in text
