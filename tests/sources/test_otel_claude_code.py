"""Claude Code over OTLP next to the Claude Code analytics source: a person and day both report
counts once, the vendor's figure wins, whichever arrives first (SQLite and PostgreSQL). And the
cumulative edge the SDK cannot produce on demand: a value that drops without a new start time."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import func, select

from bot.db.models import OtelPoint, Person, UsageDaily
from bot.domain.periods import Period
from bot.services import otel
from bot.services.reports import person_report
from bot.services.sync import run_source
from tests.support.anthropic_admin import FakeAdminApi, claude_code_connector
from tests.support.otel import CUMULATIVE, DELTA, ClaudeCode, claude_person, serve
from tests.support.slack_fake import start_fake_slack

DAY = date(2025, 8, 1)  # the analytics fixtures' day
NOON = int(datetime(2025, 8, 1, 12, tzinfo=UTC).timestamp()) * 1_000_000_000
ALICE = claude_person("alice@example.com")  # in the analytics fixtures
ZED = claude_person("zed@example.com", session="s9")  # a seat user the analytics API cannot see


@pytest.fixture
def served(engine, httpserver):
    FakeAdminApi(httpserver)  # before the fake Slack's catch-all: the first matching handler answers
    with serve(engine, start_fake_slack(httpserver), TOKENWISE_OTEL_MAX_AGE_DAYS=100_000) as app:
        yield app


def _at(request, time_ns: int, start_ns: int | None = None):
    """The SDK's request with its points moved to the analytics day (fields of the official message)."""
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.sum.data_points:
                    point.time_unix_nano = time_ns
                    point.start_time_unix_nano = time_ns - 60_000_000_000 if start_ns is None else start_ns
    return request.SerializeToString()


def _post(url: str, token: str, body: bytes) -> httpx.Response:
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {token}"}
    response = httpx.post(f"{url}/v1/metrics", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


def _otel_usage(engine) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(UsageDaily.actor, func.sum(UsageDaily.input_tokens), func.sum(UsageDaily.cost_micros))
            .where(UsageDaily.source == "otel_claude_code")
            .group_by(UsageDaily.actor)
        ).all()
    return {actor: (int(tokens), int(cost)) for actor, tokens, cost in rows}


def _alice_report(engine):
    with engine.connect() as conn:
        alice = conn.execute(select(Person.id).where(Person.email == "alice@example.com")).scalar_one()
        vendor = conn.execute(
            select(func.sum(UsageDaily.cost_micros)).where(
                UsageDaily.source == "claude_code", UsageDaily.actor == "email:alice@example.com"
            )
        ).scalar_one()
        report = person_report(
            conn, workspace_id="default", person_ids=[alice], period=Period(DAY, date(2025, 8, 2), "day")
        )
    return report, int(vendor)


def test_the_vendor_figure_wins_whichever_arrives_first(engine, served, httpserver):
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

    token = otel.create_token(engine, workspace_id="default")
    agent = ClaudeCode(DELTA)
    agent.use(ALICE, input=700, usd=2.5, commits=1)
    agent.use(ZED, input=300, usd=0.75)
    _post(served.url, token, _at(encode_metrics(agent.collect()), NOON))
    assert _otel_usage(engine) == {
        "email:alice@example.com": (700, 2_500_000),
        "email:zed@example.com": (300, 750_000),
    }

    # The analytics source syncs the day later (its usual lag): Alice's OTel rows step aside.
    outcome = run_source(
        engine, claude_code_connector(httpserver), workspace_id="default", since=DAY, until=date(2025, 8, 2)
    )
    assert outcome.ok, outcome.error
    assert _otel_usage(engine) == {"email:zed@example.com": (300, 750_000)}
    report, vendor = _alice_report(engine)
    assert report.total_micros == vendor and report.total_micros > 0
    [value] = report.value
    assert value.commits == 2  # the analytics figure (2), not 2 + the OTel commit

    # More OTel for Alice on that day arrives after the analytics: still counted once.
    agent.use(ALICE, input=50, usd=0.5)
    _post(served.url, token, _at(encode_metrics(agent.collect()), NOON + 60_000_000_000))
    assert _otel_usage(engine) == {"email:zed@example.com": (300, 750_000)}
    assert _alice_report(engine)[0].total_micros == vendor
    with engine.connect() as conn:  # the raw points stay: were the vendor's rows gone, they count
        kept = conn.execute(
            select(func.sum(OtelPoint.value)).where(
                OtelPoint.actor == "email:alice@example.com", OtelPoint.measure == "input_tokens"
            )
        ).scalar_one()
    assert kept == 750


def test_a_cumulative_value_that_drops_is_a_restart(engine, served):
    """Some clients restart a counter but keep its start time: a drop is a new count from zero."""
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

    token = otel.create_token(engine, workspace_id="default")
    start = NOON - 3_600_000_000_000
    agent = ClaudeCode(CUMULATIVE)
    agent.use(ZED, input=1000)
    _post(served.url, token, _at(encode_metrics(agent.collect()), NOON, start))  # 1000
    agent.use(ZED, input=500)
    _post(served.url, token, _at(encode_metrics(agent.collect()), NOON + 60_000_000_000, start))  # 1500
    restarted = ClaudeCode(CUMULATIVE)
    restarted.use(ZED, input=200)
    _post(served.url, token, _at(encode_metrics(restarted.collect()), NOON + 120_000_000_000, start))  # 200
    assert _otel_usage(engine) == {"email:zed@example.com": (1700, 0)}
    # A late retry of the middle export changes nothing: stored once, increments unchanged.
    agent_again = ClaudeCode(CUMULATIVE)
    agent_again.use(ZED, input=1500)
    _post(served.url, token, _at(encode_metrics(agent_again.collect()), NOON + 60_000_000_000, start))
    assert _otel_usage(engine) == {"email:zed@example.com": (1700, 0)}
    # A point that arrives out of order (before the others) is placed in its run by time.
    early = ClaudeCode(CUMULATIVE)
    early.use(ZED, input=400)
    _post(served.url, token, _at(encode_metrics(early.collect()), NOON - 60_000_000_000, start))
    # 400, then 1000 (+600), 1500 (+500), 200 (restart: +200)
    assert _otel_usage(engine) == {"email:zed@example.com": (1700, 0)}
