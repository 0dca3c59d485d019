"""The Codex CLI's OTel events (log records) through ``/v1/logs``, sent by the real OpenTelemetry
SDK's OTLP/HTTP log exporter to the real web app (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import httpx
import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from sqlalchemy import select

from bot.db.models import ActivityDaily, Identity, UsageDaily
from bot.services import otel
from tests.support.otel import serve
from tests.support.slack_fake import start_fake_slack

COMMON = {"conversation.id": "c-1", "app.version": "0.46.0", "auth_mode": "chatgpt", "terminal.type": "iterm"}


@pytest.fixture
def served(engine, httpserver):
    with serve(engine, start_fake_slack(httpserver)) as app:
        yield app


def _codex(url: str, token: str) -> LoggerProvider:
    provider = LoggerProvider(resource=Resource.create({"service.name": "codex_cli_rs"}))
    exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", headers={"Authorization": f"Bearer {token}"})
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider


def test_codex_events_fold_into_tokens_and_decisions(engine, served):
    token = otel.create_token(engine, workspace_id="default")
    provider = _codex(served.url, token)
    logger = provider.get_logger("codex_otel")
    now = time.time_ns()
    mine = {**COMMON, "user.account_id": "acct-7", "user.email": "ana@example.com", "model": "gpt-5-codex"}
    logger.emit(
        LogRecord(
            timestamp=now,
            event_name="codex.sse_event",
            attributes={
                **mine,
                "event.name": "codex.sse_event",
                "event.kind": "response.completed",
                "input_token_count": 12_000,
                "cached_token_count": 8_000,
                "output_token_count": 900,
                "reasoning_token_count": 300,
                "tool_token_count": 0,
            },
        )
    )
    logger.emit(
        LogRecord(
            timestamp=now + 1,
            attributes={**mine, "event.name": "codex.sse_event", "event.kind": "response.created"},
        )
    )
    for n, decision in enumerate(("approved", "approved_for_session", "denied")):
        logger.emit(
            LogRecord(
                timestamp=now + 10 + n,
                attributes={
                    **mine,
                    "event.name": "codex.tool_decision",
                    "decision": decision,
                    "tool_name": "shell",
                },
            )
        )
    # Account only (no email): kept under the account id; the email above links it to Ana.
    logger.emit(
        LogRecord(
            timestamp=now + 20,
            attributes={
                **COMMON,
                "user.account_id": "acct-7",
                "model": "gpt-5-codex",
                "event.name": "codex.sse_event",
                "input_token_count": 100,
                "output_token_count": 10,
            },
        )
    )
    provider.shutdown()

    with engine.connect() as conn:
        usage = conn.execute(
            select(
                UsageDaily.actor,
                UsageDaily.source,
                UsageDaily.vendor,
                UsageDaily.cost_basis,
                UsageDaily.input_tokens,
                UsageDaily.cache_read_tokens,
                UsageDaily.output_tokens,
                UsageDaily.requests,
            ).order_by(UsageDaily.actor)
        ).all()
        activity = conn.execute(
            select(ActivityDaily.actor, ActivityDaily.acceptances, ActivityDaily.rejections)
        ).all()
        links = dict(conn.execute(select(Identity.actor, Identity.person_id)).all())
    assert usage == [
        ("codex_account:acct-7", "otel_codex", "codex", "unpriced", 100, 0, 10, 1),
        ("email:ana@example.com", "otel_codex", "codex", "unpriced", 4_000, 8_000, 900, 1),
    ]
    assert activity == [("email:ana@example.com", 2, 1)]
    assert links["codex_account:acct-7"] == links["email:ana@example.com"]


def test_events_of_no_supported_agent_are_rejected_in_the_answer(engine, served):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    token = otel.create_token(engine, workspace_id="default")
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.time_unix_nano = time.time_ns()
    record.attributes.append(KeyValue(key="event.name", value=AnyValue(string_value="someapp.click")))
    answer = httpx.post(
        f"{served.url}/v1/logs",
        content=request.SerializeToString(),
        headers={"content-type": "application/x-protobuf", "authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200
    parsed = ExportLogsServiceResponse.FromString(answer.content)
    assert parsed.partial_success.rejected_log_records == 1
    assert "someapp.click" in parsed.partial_success.error_message
