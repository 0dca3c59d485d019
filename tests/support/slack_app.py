"""The real Starlette+Bolt app against the fake Slack, for the end-to-end tests: a demo-seeded
database, the runtime and test client, and signed commands, events and button clicks (their
bodies from tests/support/inbound.py)."""

from __future__ import annotations

import contextlib
import json
from datetime import date, timedelta

from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.db.models import Person, UsageDaily
from bot.services.runtime import Runtime
from bot.services.sync import run_all
from bot.settings import Settings
from bot.slack.app import build_app
from bot.slack.blocks.privacy import FORGET_CANCEL
from bot.sources.demo import demo_connectors
from bot.web import build_web_app
from tests.support.files import fixture_path
from tests.support.inbound import button_click, command_body, event_body, form_body
from tests.support.slack_fake import BOT_TOKEN, SIGNING_SECRET, signed_headers

TODAY = date.today()
PLATFORM = "<!subteam^SPLATFORM|@platform>"
PAIR = "<!subteam^SPAIR|@pair>"
PAYMENTS = "<#CPAYMENTS|payments>"


def seed_demo(engine) -> None:
    run_all(
        engine, demo_connectors(TODAY), workspace_id="default", since=TODAY - timedelta(days=70), today=TODAY
    )


def add_team_users(fake) -> None:
    fake.users.update(json.loads(fixture_path("slack", "team_users.json").read_text()))


def make_runtime(engine, fake, **settings) -> Runtime:
    values = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        "TOKENWISE_ADMINS": "ULISTED",
        **settings,
    }
    return Runtime(settings=Settings(**values), engine=engine, source_lags={"demo-openai": timedelta(0)})


@contextlib.contextmanager
def slack_client(engine, fake, **settings):
    runtime = make_runtime(engine, fake, **settings)
    with TestClient(build_web_app(runtime, build_app(runtime))) as client:
        yield client


def send(client, text: str, **kw) -> dict:
    body = command_body(text, **kw)
    response = client.post("/slack/events", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    return response.json()


def post_event(client, event: dict, *, event_id: str) -> None:
    body = event_body(event, event_id=event_id)
    headers = {**signed_headers(body), "content-type": "application/json"}
    response = client.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 200, response.text


def post_action(client, *, user_id: str, action_id: str, value: str, response_url: str) -> None:
    """``user_id`` clicks a button in an ephemeral message in C1."""
    body = form_body(button_click(action_id, value, user_id=user_id, response_url=response_url))
    response = client.post("/slack/events", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text


def cancel_forget(client, fake, user_id: str = "UBEN") -> None:
    """``user_id`` clicks Cancel under the forget-me question; Slack answers on the response URL."""
    post_action(
        client,
        user_id=user_id,
        action_id=FORGET_CANCEL,
        value="cancel",
        response_url=fake.server.url_for("/response_url/cancel"),
    )


def all_text(reply: dict) -> str:
    parts = [reply.get("text", "")]
    for block in reply.get("blocks", []):
        if "text" in block and isinstance(block["text"], dict):
            parts.append(block["text"]["text"])
        for item in block.get("fields", []) + block.get("elements", []):
            if isinstance(item, dict) and "text" in item:
                parts.append(item["text"] if isinstance(item["text"], str) else item["text"].get("text", ""))
    return "\n".join(parts)


def person_id(conn, email: str) -> int:
    return conn.execute(select(Person.id).where(Person.email == email)).scalar_one()


def spend_of(conn, emails: list[str], start: date, end: date) -> int:
    """Personal spend of these people in [start, end), straight from the table."""
    return int(
        conn.execute(
            select(func.coalesce(func.sum(UsageDaily.cost_micros), 0))
            .join(Person, Person.id == UsageDaily.person_id)
            .where(Person.email.in_(emails), UsageDaily.day >= start, UsageDaily.day < end)
        ).scalar_one()
    )
