"""The agent session id on OTel points: Claude Code's ``session.id`` and Codex's
``conversation.id`` reach ``otel_session_daily`` through the real web app, summed per session and
day (SQLite and PostgreSQL); a point without a session id makes no session row."""

from __future__ import annotations

import time

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.resources import Resource
from sqlalchemy import select

from bot.db.models import OtelPoint, OtelSessionDaily
from bot.services import otel
from tests.support.otel import DELTA, ClaudeCode, claude_person, send, serve


@pytest.fixture
def served(engine, fake_slack):
    with serve(engine, fake_slack) as app:
        yield app


def _sessions(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            select(
                OtelSessionDaily.source,
                OtelSessionDaily.actor,
                OtelSessionDaily.session,
                OtelSessionDaily.cost_micros,
                OtelSessionDaily.tokens,
            ).order_by(OtelSessionDaily.source, OtelSessionDaily.session)
        ).all()


def test_claude_code_sessions_are_summed_per_session_and_a_point_without_one_is_not(engine, served):
    token = otel.create_token(engine, workspace_id="default")
    agent = ClaudeCode(DELTA)
    agent.use(claude_person("ana@example.com", session="Sess-A"), input=100, output=20, usd=0.25)
    agent.use(claude_person("ana@example.com", session="sess-b"), input=5, usd=0.5)
    no_session = {k: v for k, v in claude_person("ana@example.com").items() if k != "session.id"}
    agent.use(no_session, input=7, usd=1.0)
    assert send(served.url, token, agent) is MetricExportResult.SUCCESS
    agent.use(claude_person("ana@example.com", session="Sess-A"), input=1, usd=0.125)
    assert send(served.url, token, agent) is MetricExportResult.SUCCESS

    assert _sessions(engine) == [
        ("otel_claude_code", "email:ana@example.com", "sess-a", 375_000, 121),  # ids lower-cased
        ("otel_claude_code", "email:ana@example.com", "sess-b", 500_000, 5),
    ]
    with engine.connect() as conn:
        unnamed = conn.execute(select(OtelPoint.value).where(OtelPoint.session == "")).scalars().all()
    assert sorted(unnamed) == [7, 1_000_000]  # stored and folded as before, in no session


def test_codex_conversation_id_is_the_session_with_tokens_and_no_cost(engine, served):
    token = otel.create_token(engine, workspace_id="default")
    provider = LoggerProvider(resource=Resource.create({"service.name": "codex_cli_rs"}))
    exporter = OTLPLogExporter(endpoint=f"{served.url}/v1/logs", headers={"Authorization": f"Bearer {token}"})
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    attributes = {
        "event.name": "codex.sse_event",
        "conversation.id": "c-7",
        "user.email": "ben@example.com",
        "model": "gpt-5-codex",
        "input_token_count": 12_000,
        "cached_token_count": 8_000,
        "output_token_count": 900,
    }
    provider.get_logger("codex_otel").emit(
        LogRecord(timestamp=time.time_ns(), event_name="codex.sse_event", attributes=attributes)
    )
    provider.shutdown()
    # 4,000 fresh input + 8,000 cached + 900 output; Codex sends no cost.
    assert _sessions(engine) == [("otel_codex", "email:ben@example.com", "c-7", 0, 12_900)]
