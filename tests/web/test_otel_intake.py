"""The OTLP intake end to end: the real OpenTelemetry SDK and its OTLP/HTTP exporter send Claude
Code-shaped metrics for several people to the real web app on loopback (SQLite and PostgreSQL);
``/tokens me`` and the org totals then hold exactly what was used, each point counted once."""

from __future__ import annotations

import gzip
import json
import logging
from datetime import timedelta

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.sdk.metrics.export import MetricExportResult
from sqlalchemy import func, select

from bot.db.models import Identity, OtelPoint, OtelToken, Person, UsageDaily
from bot.domain.clock import utc_today
from bot.domain.money import format_usd
from bot.domain.periods import Period
from bot.services import otel
from bot.services.reports import org_report, person_report
from bot.services.status import status_report
from bot.slack.blocks.reports import build_status
from tests.support.inbound import command_body
from tests.support.otel import CUMULATIVE, DELTA, ClaudeCode, claude_person, exporter, send, serve
from tests.support.slack_app import all_text
from tests.support.slack_fake import signed_headers

ANA = claude_person("ana@example.com", account="acc-ana")
BEN = claude_person("Ben@Example.com", session="s2")
NOBODY = claude_person(None, account="acc-9")
LEAD = claude_person("lead@example.com")
LIMIT = 64 * 1024


@pytest.fixture
def served(engine, fake_slack):
    with serve(engine, fake_slack, TOKENWISE_OTEL_MAX_BODY_BYTES=LIMIT) as app:
        yield app


def _points(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(OtelPoint)).scalar_one()


def _today() -> Period:
    today = utc_today()
    return Period(today, today + timedelta(days=1), "today")


def _slash(served, text: str, user_id: str) -> str:
    body = command_body(text, user_id=user_id)
    response = httpx.post(f"{served.url}/slack/events", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    return all_text(response.json())


def test_seat_plan_usage_reaches_tokens_me_and_the_org_exactly_once(engine, served):
    token = otel.create_token(engine, workspace_id="default", created_by="test")
    url = served.url

    # Ana, cumulative: two exports of one process, then the client restarts (new start time).
    first = ClaudeCode(CUMULATIVE)
    first.use(ANA, input=1000, output=200, usd=0.25, added=10, removed=2, sessions=1)
    assert send(url, token, first) is MetricExportResult.SUCCESS
    first.use(ANA, input=500, usd=0.125)
    assert send(url, token, first) is MetricExportResult.SUCCESS
    restarted = ClaudeCode(CUMULATIVE)
    restarted.use(ANA, input=300, usd=0.5, sessions=1)
    assert send(url, token, restarted) is MetricExportResult.SUCCESS
    assert send(url, token, restarted) is MetricExportResult.SUCCESS  # cumulative, unchanged

    # Ben, delta: the same export sent twice (a retry) is stored once.
    ben = ClaudeCode(DELTA)
    ben.use(BEN, input=2000, output=100, cache_read=5000, cache_creation=700, usd=1.5, commits=2, prs=1)
    data = ben.collect()
    assert exporter(url, token).export(data) is MetricExportResult.SUCCESS
    assert exporter(url, token, gzip=False).export(data) is MetricExportResult.SUCCESS
    ben.use(BEN, output=50, usd=0.25)
    assert send(url, token, ben) is MetricExportResult.SUCCESS

    # Someone whose Claude Code sends no email: kept under the account id, to be linked.
    nobody = ClaudeCode(DELTA)
    nobody.use(NOBODY, input=10, usd=0.0625)
    assert send(url, token, nobody) is MetricExportResult.SUCCESS

    # JSON encoding (the OTLP/HTTP JSON mapping of the SDK's own request message), with a metric
    # no agent claims: accepted, reported back as a partial success, not stored.
    lead = ClaudeCode(DELTA)
    lead.use(LEAD, input=42, output=8, usd=0.5)
    lead.unknown.add(3, {"user.email": "lead@example.com"})
    body = json_format.MessageToJson(encode_metrics(lead.collect()))
    answer = httpx.post(
        f"{url}/v1/metrics",
        content=body,
        headers={"content-type": "application/json", "x-tokenwise-token": token},
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    parsed = json_format.Parse(answer.text, ExportMetricsServiceResponse())
    assert parsed.partial_success.rejected_data_points == 1
    assert "some_other_app.requests" in parsed.partial_success.error_message

    period = _today()
    with engine.connect() as conn:
        people = dict(conn.execute(select(Person.email, Person.id)).all())
        ana = person_report(
            conn, workspace_id="default", person_ids=[people["ana@example.com"]], period=period
        )
        ben_report = person_report(
            conn, workspace_id="default", person_ids=[people["ben@example.com"]], period=period
        )
        org = org_report(conn, workspace_id="default", period=period)
        links = dict(conn.execute(select(Identity.actor, Identity.person_id)).all())
        unlinked = conn.execute(
            select(UsageDaily.input_tokens).where(UsageDaily.actor == "claude_code:unattributed")
        ).all()
        account_row = conn.execute(
            select(
                UsageDaily.person_id, UsageDaily.cost_micros, UsageDaily.source, UsageDaily.cost_basis
            ).where(UsageDaily.actor == "claude_code_account:acc-9")
        ).one()

    [spend] = ana.vendors
    assert (spend.vendor, spend.input_tokens, spend.output_tokens) == ("claude_code", 1800, 200)
    assert (spend.cost_micros, spend.estimated_micros) == (875_000, 875_000)
    [value] = ana.value
    assert (value.lines_added, value.lines_removed, value.sessions) == (10, 2, 2)
    [spend] = ben_report.vendors
    assert (spend.input_tokens, spend.output_tokens, spend.cache_read_tokens, spend.cache_write_tokens) == (
        2000,
        150,
        5000,
        700,
    )
    assert spend.cost_micros == 1_750_000
    [value] = ben_report.value
    assert (value.commits, value.pull_requests) == (2, 1)
    # The email identifies the account id: later points with only the account land on Ana.
    assert links["claude_code_account:acc-ana"] == people["ana@example.com"]
    assert unlinked == [] and account_row == (None, 62_500, "otel_claude_code", "estimated")

    # Org: every token once; the client-side estimates are not billed dollars, so they are shown
    # as covered and the org's billed total stays $0 (as for the claude_code analytics source).
    [org_spend] = org.vendors
    assert org_spend.input_tokens == 1800 + 2000 + 10 + 42
    assert org_spend.output_tokens == 200 + 150 + 8
    assert (org_spend.cost_micros, org_spend.covered_micros) == (0, 875_000 + 1_750_000 + 62_500 + 500_000)
    assert org.active_people == 3  # Ana, Ben, Lead (the account id is unlinked)

    me = _slash(served, "me 7d", "UANA")
    assert format_usd(875_000) in me and "Claude Code" in me and "(est.)" in me
    assert "2,000" in me  # 1,800 input + 200 output tokens
    assert format_usd(1_750_000) in _slash(served, "me 7d", "UBEN")

    # /tokens status: per agent, who reported in the last day and when data last arrived.
    with engine.connect() as conn:
        report = status_report(conn, workspace_id="default", enabled={})
    [agent] = report.agents
    assert (agent.agent, agent.people_last_day) == ("claude_code", 4)
    text = build_status(report, tz=served.runtime.settings.tz).text + json.dumps(
        build_status(report, tz=served.runtime.settings.tz).blocks
    )
    assert "4 people in the last day" in text


def test_refused_requests_store_nothing(engine, served):
    token = otel.create_token(engine, workspace_id="default")
    url = served.url
    agent = ClaudeCode(DELTA)
    agent.use(ANA, input=100, usd=0.5)
    data = agent.collect()
    body = encode_metrics(data).SerializeToString()
    protobuf = {"content-type": "application/x-protobuf"}

    # No token, a wrong token, a rotated-out token: 401, before the body is read.
    assert exporter(url, "twotel_wrong").export(data) is MetricExportResult.FAILURE
    assert httpx.post(f"{url}/v1/metrics", content=body, headers=protobuf).status_code == 401
    wrong = {**protobuf, "authorization": "Bearer twotel_wrong"}
    assert httpx.post(f"{url}/v1/metrics", content=body, headers=wrong).status_code == 401
    rotated = otel.rotate_token(engine, workspace_id="default")
    assert exporter(url, token).export(data) is MetricExportResult.FAILURE
    token = rotated
    auth = {**protobuf, "authorization": f"Bearer {token}"}

    # Oversized: a body over the ceiling, and a small gzip body that inflates past it.
    big = httpx.post(f"{url}/v1/metrics", content=b"\0" * (LIMIT + 1), headers=auth)
    assert big.status_code == 413
    bomb = gzip.compress(b"\0" * (LIMIT * 40))
    assert len(bomb) < LIMIT
    inflated = httpx.post(f"{url}/v1/metrics", content=bomb, headers={**auth, "content-encoding": "gzip"})
    assert inflated.status_code == 413 and "inflates" in inflated.text

    # Malformed: 400 with the reason.
    garbage = httpx.post(f"{url}/v1/metrics", content=b"\x0a\xff\xff\xff\xff", headers=auth)
    assert garbage.status_code == 400 and "malformed OTLP metrics body" in garbage.text
    bad_json = httpx.post(
        f"{url}/v1/metrics",
        content=b'{"resourceMetrics": [{"resource": 7}]}',
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    assert bad_json.status_code == 400 and "malformed" in bad_json.text
    not_gzip = httpx.post(f"{url}/v1/metrics", content=body, headers={**auth, "content-encoding": "gzip"})
    assert not_gzip.status_code == 400 and "gzip" in not_gzip.text
    text_plain = httpx.post(f"{url}/v1/metrics", content=body, headers={**auth, "content-type": "text/plain"})
    assert text_plain.status_code == 415
    brotli = httpx.post(f"{url}/v1/metrics", content=body, headers={**auth, "content-encoding": "br"})
    assert brotli.status_code == 415
    assert _points(engine) == 0

    # A request naming more people than allowed is refused whole, not cut.
    crowd = ClaudeCode(DELTA)
    for n in range(201):
        crowd.use(claude_person(f"p{n}@example.com"), input=1)
    refused = httpx.post(f"{url}/v1/metrics", content=crowd.protobuf(), headers=auth)
    assert refused.status_code == 400 and "more than 200 people" in refused.text
    assert _points(engine) == 0

    # The right token and the same bytes: stored.
    assert httpx.post(f"{url}/v1/metrics", content=body, headers=auth).status_code == 200
    assert _points(engine) == 2
    with engine.connect() as conn:
        stored = conn.execute(select(OtelToken.token_hash)).scalars().all()
    assert stored == [otel.token_hash(token)] and token not in json.dumps(stored)


def test_rate_limit_is_per_token(engine, fake_slack):
    token = otel.create_token(engine, workspace_id="default")
    agent = ClaudeCode(DELTA)
    agent.use(ANA, input=1)
    body = agent.protobuf()
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {token}"}
    with serve(engine, fake_slack, TOKENWISE_OTEL_REQUESTS_PER_MINUTE=2) as app:
        codes = [
            httpx.post(f"{app.url}/v1/metrics", content=body, headers=headers).status_code for _ in range(5)
        ]
    # Two per minute: even if a minute turns over during the five, one of them is refused.
    assert codes[:2] == [200, 200] and 429 in codes and set(codes) == {200, 429}
    assert _points(engine) == 1  # the same point twice is stored once


def test_cli_creates_and_rotates_the_ingest_token(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bot.cli import app
    from bot.db.engine import make_engine

    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("DATABASE_URL", url)
    runner = CliRunner()
    created = runner.invoke(app, ["otel", "token", "create"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith(otel.TOKEN_PREFIX)
    again = runner.invoke(app, ["otel", "token", "create"])
    assert again.exit_code == 2 and "rotate it instead" in again.output
    engine = make_engine(url)
    assert otel.workspace_for_token(engine, token) == "default"
    rotated = runner.invoke(app, ["otel", "token", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip().splitlines()[-1]
    assert new != token and otel.workspace_for_token(engine, token) is None
    assert otel.workspace_for_token(engine, new) == "default"
    other = runner.invoke(app, ["otel", "token", "rotate", "--workspace", "T9"])
    assert other.exit_code == 2 and "has no ingest token yet" in other.output


def test_a_forgotten_person_stays_forgotten_in_raw_points_and_later_exports(engine, served):
    from bot.services.privacy import forget_person

    token = otel.create_token(engine, workspace_id="default")
    agent = ClaudeCode(DELTA)
    agent.use(ANA, input=100, usd=0.5)
    assert send(served.url, token, agent) is MetricExportResult.SUCCESS
    with engine.begin() as conn:
        ana = conn.execute(select(Person.id).where(Person.email == "ana@example.com")).scalar_one()
        forget_person(conn, workspace_id="default", person_id=ana, actor_user_id="UADMIN")
    agent.use(ANA, input=50, usd=0.25)  # Ana's Claude Code keeps exporting
    assert send(served.url, token, agent) is MetricExportResult.SUCCESS
    with engine.connect() as conn:
        raw = set(conn.execute(select(OtelPoint.actor)).scalars())
        usage = conn.execute(select(UsageDaily.actor, UsageDaily.person_id, UsageDaily.input_tokens)).all()
        emails = set(conn.execute(select(Person.email)).scalars())
        links = set(conn.execute(select(Identity.actor)).scalars())
    [alias] = raw
    assert alias.startswith("forgotten:")
    assert usage == [(alias, None, 150)]  # the org keeps the tokens, nobody's name on them
    assert "ana@example.com" not in emails and not any("acc-ana" in link for link in links)


SECRET = "sk-ant-admin01-" + "Q" * 40  # a key pasted where a header or a number belongs
POINT = {"name": "claude_code.token.usage", "sum": {"dataPoints": [{"asInt": SECRET}]}}
BAD_JSON = json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [POINT]}]}]}).encode()


def test_a_refused_body_never_echoes_what_was_sent(engine, served, caplog):
    caplog.set_level(logging.INFO)
    token = otel.create_token(engine, workspace_id="default")
    auth = {"authorization": f"Bearer {token}"}
    url = f"{served.url}/v1/metrics"
    refused = [
        httpx.post(url, content=b"{}", headers={**auth, "content-type": f"text/{SECRET}"}),
        httpx.post(
            url,
            content=b"{}",
            headers={**auth, "content-type": "application/json", "content-encoding": SECRET},
        ),
        httpx.post(
            url,
            content=BAD_JSON,
            headers={**auth, "content-type": "application/json"},
        ),
    ]
    for answer in refused:
        assert answer.status_code in (400, 415)
        assert SECRET not in answer.text and "sk-ant" not in answer.text
    assert "sk-ant" not in caplog.text
