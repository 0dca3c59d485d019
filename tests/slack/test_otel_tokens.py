"""``/tokens sources otel token create|rotate`` through the real Bolt app (signed commands, the
recording fake Slack Web API), checked against the real OTLP route of the same web app; and an
export reaching ``/tokens me`` at once, with no scheduled job in between (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import select

from bot.db.models import AuditLog, OtelToken
from tests.support.inbound import command_body
from tests.support.otel import ClaudeCode, claude_person
from tests.support.slack_app import all_text, slack_client
from tests.support.slack_fake import signed_headers, start_fake_slack

TOKEN = re.compile(r"twotel_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def client(engine, httpserver):
    fake_slack = start_fake_slack(httpserver)
    with slack_client(engine, fake_slack) as test_client:
        yield test_client


def command(client, text: str, user_id: str) -> dict:
    body = command_body(text, user_id=user_id)
    response = client.post("/slack/events", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    return response.json()


def text_of(reply: dict) -> str:
    return all_text(reply)  # section texts, fields and button labels alike


def token_of(reply: dict) -> str:
    found = set(TOKEN.findall(text_of(reply)))
    assert len(found) == 1, text_of(reply)
    return found.pop()


def export(client, token: str, email: str = "ana@example.com", active: float = 0, **use) -> int:
    agent = ClaudeCode()
    agent.use(claude_person(email), **(use or {"input": 10}))
    if active:
        agent.active.add(active, claude_person(email))
    response = client.post(
        "/v1/metrics",
        content=agent.protobuf(),
        headers={"content-type": "application/x-protobuf", "authorization": f"Bearer {token}"},
    )
    return response.status_code


def test_admins_create_and_rotate_the_ingest_token_shown_once_to_them_only(client, engine, caplog):
    caplog.set_level(logging.DEBUG)
    refused = command(client, "sources otel token create", "UANA")
    assert refused["response_type"] == "ephemeral" and "managed by admins" in text_of(refused)
    assert not TOKEN.search(text_of(refused))
    with engine.connect() as conn:
        assert conn.execute(select(OtelToken.id)).all() == []

    created = command(client, "sources otel token create", "UADMIN")
    assert created["response_type"] == "ephemeral"
    first = token_of(created)
    assert export(client, first) == 200

    again = command(client, "sources otel token create", "UADMIN")
    assert "already has an ingest token" in text_of(again) and not TOKEN.search(text_of(again))

    rotated = command(client, "sources otel token rotate", "ULISTED")
    assert rotated["response_type"] == "ephemeral" and "old token no longer works" in text_of(rotated)
    second = token_of(rotated)
    assert second != first
    assert export(client, first) == 401
    assert export(client, second) == 200

    assert "Say `create` or `rotate`" in text_of(command(client, "sources otel token renew", "UADMIN"))
    with engine.connect() as conn:
        audit = conn.execute(
            select(AuditLog.actor_user_id, AuditLog.action, AuditLog.detail).order_by(AuditLog.id)
        ).all()
        (stored,) = conn.execute(select(OtelToken.token_hash)).scalars().all()
    assert [(a, b) for a, b, _ in audit] == [
        ("UADMIN", "otel_token_create"),
        ("ULISTED", "otel_token_rotate"),
    ]
    # Only the hash is stored; neither token is in a log line or an audit row.
    for token in (first, second):
        assert token not in stored
        assert token not in caplog.text
        assert all(token not in detail for _, _, detail in audit)


def test_rotating_before_any_token_exists_says_to_create_one(client):
    reply = command(client, "sources otel token rotate", "UADMIN")
    assert "no ingest token yet" in text_of(reply) and "otel token create" in text_of(reply)
    assert not TOKEN.search(text_of(reply))


def test_an_export_shows_in_tokens_me_at_once_without_a_scheduled_job(client):
    token = token_of(command(client, "sources otel token create", "UADMIN"))
    before = text_of(command(client, "me", "UANA"))
    assert "Claude Code" not in before

    assert export(client, token, input=1200, output=300, usd=0.75, sessions=1, active=1800) == 200
    after = text_of(command(client, "me", "UANA"))
    assert "Claude Code" in after and "$0.75" in after and "(est.)" in after
    assert "1 sessions, 30 min active" in after  # use counts as a value signal
    # Someone else's export is not Ana's.
    assert export(client, token, email="ben@example.com", input=5, usd=2.5) == 200
    assert "$2.50" not in text_of(command(client, "me", "UANA"))
