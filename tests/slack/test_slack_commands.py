"""End to end: signed slash commands into the real HTTP app; Slack Web API faked on loopback."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.db import rollups
from bot.db.models import AuditLog, Identity, UsageDaily
from bot.services.runtime import Runtime
from bot.settings import Settings
from bot.slack.app import build_app
from tests.support.inbound import command_body
from tests.support.slack_app import TODAY, all_text, send
from tests.support.slack_fake import BOT_TOKEN, signed_headers


def test_me_answers_ephemerally_with_the_callers_numbers(client, fake_slack, seeded):
    reply = send(client, "me 30d")
    assert reply["response_type"] == "ephemeral"
    text = all_text(reply)
    assert "Your AI spend" in text
    with seeded.connect() as conn:
        ana_total = conn.execute(
            select(func.sum(UsageDaily.cost_micros)).where(
                UsageDaily.actor == "email:ana@example.com", UsageDaily.day > TODAY - timedelta(days=30)
            )
        ).scalar()
    from bot.domain.money import format_usd

    assert format_usd(ana_total) in text
    assert "Claude Code" in text and "(est.)" in text
    assert [c.params["user"] for c in fake_slack.calls_to("users.info")] == ["UANA"]


def test_unmatched_user_is_told_how_to_get_linked(client):
    text = all_text(send(client, "me", user_id="UNOMAIL"))
    assert "link" in text and "admin" in text


def test_org_is_for_admins_only(client):
    refused = all_text(send(client, "org"))
    assert "for admins" in refused and "$" not in refused
    allowed = all_text(send(client, "org 30d", user_id="UADMIN"))
    assert "Org AI spend" in allowed and "Unattributed" in allowed
    listed = all_text(send(client, "org", user_id="ULISTED"))  # TOKENWISE_ADMINS
    assert "Org AI spend" in listed


def test_bad_input_gets_specific_ephemeral_errors(client, seeded):
    with seeded.connect() as conn:
        before = conn.execute(select(func.count()).select_from(UsageDaily)).scalar()
    assert "Did you mean `/tokens me`" in all_text(send(client, "mee"))
    assert "not a period" in all_text(send(client, "me lastyear"))
    assert "ends before it starts" in all_text(send(client, "me 2026-03-10..2026-03-01"))
    assert "characters long" in all_text(send(client, "x" * 3000))
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(UsageDaily)).scalar() == before


def test_help_lists_commands(client):
    text = all_text(send(client, ""))
    for word in ("/tokens me", "/tokens org", "/tokens status", "/tokens link"):
        assert word in text


def test_status_lists_sources(client):
    text = all_text(send(client, "status", user_id="UADMIN"))
    assert "demo-openai" in text and "last success" in text


def test_admin_links_identity_and_history_is_reattributed(client, seeded):
    with seeded.begin() as conn:
        conn.execute(
            UsageDaily.__table__.insert().values(
                workspace_id="default",
                source="openrouter",
                vendor="openrouter",
                day=TODAY,
                actor="openrouter_key:abc",
                model="m",
                cost_basis="billed",
                kind="usage",
                cost_micros=5_000_000,
                raw_amount="5",
                raw_unit="usd",
                in_org_total=True,
            )
        )
        rollups.rebuild(conn)  # written directly: bring the rollups in step
    refused = all_text(send(client, "link openrouter abc <@UBEN|ben>"))
    assert "Only admins" in refused
    done = all_text(send(client, "link openrouter abc <@UBEN|ben>", user_id="UADMIN"))
    assert "1 stored rows re-attributed" in done
    with seeded.connect() as conn:
        person_id = conn.execute(
            select(Identity.person_id).where(Identity.actor == "openrouter_key:abc")
        ).scalar()
        row_person = conn.execute(
            select(UsageDaily.person_id).where(UsageDaily.actor == "openrouter_key:abc")
        ).scalar()
        audit = conn.execute(select(AuditLog.action, AuditLog.actor_user_id)).all()
    assert row_person == person_id is not None
    assert ("link.admin", "UADMIN") in audit


def test_viewing_someone_else_is_refused_or_audited(client, seeded):
    refused = all_text(send(client, "<@UBEN|ben> month"))
    assert "visible to them" in refused and "$" not in refused
    allowed = all_text(send(client, "<@UBEN|ben> month", user_id="UADMIN"))
    assert "AI spend of <@UBEN>" in allowed
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).where(AuditLog.action == "view.person")).scalar() == 1


def test_unsigned_or_stale_requests_are_rejected(client, fake_slack):
    body = command_body("me")
    assert (
        client.post(
            "/slack/events", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
        ).status_code
        == 401
    )
    bad = signed_headers(body, secret="wrong")
    assert client.post("/slack/events", content=body, headers=bad).status_code == 401
    stale = signed_headers(body, timestamp=1_600_000_000)
    assert client.post("/slack/events", content=body, headers=stale).status_code == 401
    assert fake_slack.calls_to("users.info") == []


def test_healthz_reports_database_and_sources(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok" and "demo-openai" in body["sources"]


def test_slow_answers_ack_first_then_follow_through_the_response_url(client, fake_slack, monkeypatch):
    from bot.slack import commands

    monkeypatch.setattr(commands, "ACK_BUDGET_SECONDS", 0.0)
    reply = send(client, "me 30d", response_url=fake_slack.server.url_for("/response_url/1"))
    assert "Working on it" in reply["text"] and reply["response_type"] == "ephemeral"
    followed = fake_slack.wait_for("response_url")[0].params
    assert followed["response_type"] == "ephemeral" and "Your AI spend" in followed["text"]


def test_expired_response_url_does_not_break_the_bot(client, fake_slack, monkeypatch, caplog):
    from bot.slack import commands

    monkeypatch.setattr(commands, "ACK_BUDGET_SECONDS", 0.0)
    send(client, "me", response_url="http://127.0.0.1:9/expired")  # nothing listens: the URL is dead
    monkeypatch.setattr(commands, "ACK_BUDGET_SECONDS", 2.0)
    assert "Your AI spend" in all_text(send(client, "me 30d"))


def test_socket_mode_needs_no_signing_secret(seeded, fake_slack):
    settings = Settings(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN="xapp-1", SLACK_API_URL=fake_slack.api_url)
    runtime = Runtime(settings=settings, engine=seeded)
    app = build_app(runtime, socket_mode=True)
    assert app.client.base_url == fake_slack.api_url
