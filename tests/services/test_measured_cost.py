"""Measured cost per PR end to end: Claude Code-shaped metrics carrying ``session.id``, encoded by
the real OpenTelemetry SDK, sent to the real web app on loopback; the GitHub delivery source
against a loopback fake of GitHub's documented REST endpoints; ``load_pr_costs`` read back
(SQLite and PostgreSQL).

Fixtures (tests/fixtures/github_delivery/sessions/), all ana's, repository lab/app:

  #11 Nov 2-3  a commit trailer "Entire-Session: 2026-11-02-<S1>"     -> measured (S1 is ana's)
  #12 Nov 3    "Claude-Session: https://claude.ai/code/session_01..."  -> apportioned (no telemetry)
  #13 Nov 3    "Claude-Session-Id: <S3>", but S3 is ben's session     -> apportioned
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from sqlalchemy import select

from bot.db import rollups
from bot.db.models import OtelSessionDaily, PullRequest
from bot.services import otel
from bot.services.value.cost_per_pr import APPORTIONED, MEASURED, load_pr_costs
from tests.factories import link_github_person
from tests.support.files import fixture_path
from tests.support.github import run_delivery
from tests.support.otel import DELTA, ClaudeCode, claude_person, serve
from tests.support.value import W, add_usage

S1 = "6f1c2a8e-4b3d-4e5f-9a0b-1c2d3e4f5a6b"  # ana's, named by #11
S2 = "0a0a0a0a-2222-4333-8444-555566667777"  # ana's, named by no PR
S3 = "b0b0b0b0-1111-4222-8333-444455556666"  # ben's, named by ana's #13
NOV_3 = date(2026, 11, 3)
AT = int(datetime(2026, 11, 3, 12, tzinfo=UTC).timestamp()) * 1_000_000_000


def _encoded(agent: ClaudeCode) -> bytes:
    """The SDK's own protobuf encoding of the agent's metrics, its points moved to Nov 3 noon
    (the PRs' day)."""
    request = ExportMetricsServiceRequest.FromString(agent.protobuf())
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.sum.data_points:
                    point.start_time_unix_nano, point.time_unix_nano = AT - 60_000_000_000, AT
    return request.SerializeToString()


def _export(url: str, token: str, body: bytes) -> None:
    """Posted as the OTLP/HTTP exporter posts it, twice (a retry: stored once)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf"}
    for _ in range(2):
        response = httpx.post(f"{url}/v1/metrics", content=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text


def _github(httpserver) -> None:
    def serve_json(path: str, name: str) -> None:
        body = fixture_path("github_delivery", "sessions", name).read_bytes()
        httpserver.expect_request(path).respond_with_data(body, content_type="application/json")

    app = "/repos/lab/app"
    serve_json("/orgs/lab/repos", "repos.json")
    serve_json(f"{app}/pulls", "pulls.json")
    serve_json(f"{app}/commits", "empty.json")
    for n in (11, 12, 13):
        serve_json(f"{app}/pulls/{n}", f"pull-{n}.json")
        serve_json(f"{app}/pulls/{n}/commits", f"commits-{n}.json")
        for tail in (f"pulls/{n}/files", f"issues/{n}/timeline", f"pulls/{n}/reviews"):
            serve_json(f"{app}/{tail}", "empty.json")


def _sync(engine, httpserver) -> None:
    outcome = run_delivery(
        engine,
        httpserver,
        token="ghp_sessions_test",
        since=date(2026, 11, 1),
        today=date(2026, 11, 6),
        workspace_id=W,
    )
    assert outcome.status == "ok", outcome.error


@pytest.fixture
def github(vendor_server):
    """GitHub's own loopback server: the shared ``httpserver`` answers everything as Slack."""
    return vendor_server


@pytest.fixture
def served(engine, fake_slack):
    # The points are dated Nov 3 2026 whatever today is: the intake's age limit is widened.
    with serve(engine, fake_slack, TOKENWISE_OTEL_MAX_AGE_DAYS=3650) as app:
        yield app


def test_a_pr_naming_its_authors_session_shows_the_sessions_measured_cost(engine, served, github):
    ana = link_github_person(engine, "ana", "ana@lab.test", workspace_id=W)
    link_github_person(engine, "ben", "ben@lab.test", workspace_id=W)
    token = otel.create_token(engine, workspace_id=W, created_by="test")
    agent = ClaudeCode(DELTA)
    agent.use(claude_person("ana@lab.test", session=S1), input=900, output=300, usd=1.25)
    agent.use(claude_person("ana@lab.test", session=S2), input=100, usd=0.5)
    agent.use(claude_person("ben@lab.test", session=S3), input=400, usd=2.0)
    body = _encoded(agent)
    _export(served.url, token, body)
    with engine.begin() as conn:
        add_usage(conn, ana, NOV_3, 4_000_000)  # ana's billed spend of the day
        rollups.rebuild(conn)
    _github(github)
    _sync(engine, github)

    with engine.connect() as conn:
        named = dict(conn.execute(select(PullRequest.number, PullRequest.session_ids)).all())
        sessions = conn.execute(
            select(OtelSessionDaily.session, OtelSessionDaily.cost_micros, OtelSessionDaily.tokens).order_by(
                OtelSessionDaily.session
            )
        ).all()
        costs = load_pr_costs(
            conn, workspace_id=W, person_ids=[ana], start=date(2026, 11, 1), end=date(2026, 11, 6)
        )
    assert named == {11: S1, 12: "session_01sbzqph11q7zsha5qeggtu5", 13: S3}
    # Each session once, though the export was sent twice.
    assert sorted(sessions) == sorted([(S1, 1_250_000, 1200), (S2, 500_000, 100), (S3, 2_000_000, 400)])
    by_number = {c.number: (c.micros, c.basis) for c in costs}
    # #11: S1's cost. The day's 4.00 less the 1.25 #11 took is shared by #12 and #13.
    assert by_number == {
        11: (1_250_000, MEASURED),
        12: (1_375_000, APPORTIONED),
        13: (1_375_000, APPORTIONED),
    }
    assert sum(micros for micros, _ in by_number.values()) == 4_000_000

    # A re-sync and a re-sent export change nothing.
    _sync(engine, github)
    _export(served.url, token, body)
    with engine.connect() as conn:
        again = load_pr_costs(
            conn, workspace_id=W, person_ids=[ana], start=date(2026, 11, 1), end=date(2026, 11, 6)
        )
    assert again == costs
