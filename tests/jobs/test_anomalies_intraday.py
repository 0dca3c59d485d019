"""The hours so far: a coding agent's OTLP points for today reach the daily rows as they arrive,
and the next anomaly check judges today's partial day against the person's usual full day:
a run-away caught within the hour, not the next day."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.metrics.export import MetricExportResult
from sqlalchemy import select

from bot.db import rollups
from bot.db.models import AnomalyIncident, Person, UsageDaily
from bot.jobs.anomalies import check_anomalies
from bot.services import otel
from bot.slack.app import make_web_client
from tests.support.otel import DELTA, ClaudeCode, claude_person, send, serve
from tests.support.slack_fake import start_fake_slack

USD = 1_000_000
W = "default"


@pytest.fixture
def fake_slack(httpserver):
    return start_fake_slack(httpserver)


def _usual_days(engine) -> int:
    """Ana: $20 a day on the vendor's API for the 20 days before today."""
    today = datetime.now(UTC).date()
    with engine.begin() as conn:
        conn.execute(
            Person.__table__.insert().values(workspace_id=W, email="ana@example.com", slack_user_id="UANA")
        )
        pid = conn.execute(select(Person.id).where(Person.email == "ana@example.com")).scalar_one()
        conn.execute(
            UsageDaily.__table__.insert(),
            [
                dict(
                    workspace_id=W, source="anthropic", vendor="anthropic", day=today - timedelta(days=n),
                    actor="anthropic_user:ana", person_id=pid, model="claude-sonnet-4-5", cost_basis="billed",
                    kind="usage", cost_micros=20 * USD, raw_amount="20", raw_unit="usd", in_org_total=True,
                )
                for n in range(1, 21)
            ],
        )  # fmt: skip
        rollups.rebuild(conn)
    return pid


def _check(runtime, now: datetime):
    return asyncio.run(check_anomalies(runtime, make_web_client(runtime), workspace_id=W, clock=lambda: now))


def test_todays_otel_points_are_judged_the_same_hour(engine, fake_slack):
    pid = _usual_days(engine)
    token = otel.create_token(engine, workspace_id=W, created_by="test")
    ana = claude_person("ana@example.com", account="acc-ana")
    with serve(engine, fake_slack) as app:
        agent = ClaudeCode(DELTA)
        agent.use(ana, input=10_000, output=2_000, usd=45.0, sessions=1)
        assert send(app.url, token, agent) is MetricExportResult.SUCCESS
        now = datetime.now(UTC)
        # $45 so far today: over the $20 habit but under the $60 limit of a full day. Not yet.
        assert _check(app.runtime, now).applied.opened == []
        agent.use(ana, input=20_000, output=4_000, usd=30.0)
        assert send(app.url, token, agent) is MetricExportResult.SUCCESS
        result = _check(app.runtime, now + timedelta(minutes=5))
    with engine.connect() as conn:
        [incident] = conn.execute(select(AnomalyIncident.__table__)).all()
    assert (incident.rule, incident.person_id, incident.day) == ("runaway", pid, now.date())
    assert incident.spend_micros == 75 * USD
    assert result.sent == [(incident.id, "person", "UANA")]
    assert incident.detect_seconds < 24 * 3600  # the same UTC day it happened
