"""HTTP surface besides Slack commands: health, metrics, limits, logs."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import date

import pytest
from starlette.testclient import TestClient

from bot.db.engine import make_engine
from bot.observability import configure_logging
from bot.services.runtime import Runtime
from bot.services.sync import run_all
from bot.settings import Settings
from bot.slack.app import build_app
from bot.sources.demo import demo_connectors
from bot.web import build_web_app
from tests.support.inbound import command_body
from tests.support.slack_fake import BOT_TOKEN, SIGNING_SECRET, signed_headers, start_fake_slack


@pytest.fixture
def client(sqlite_url, httpserver):
    fake = start_fake_slack(httpserver)
    engine = make_engine(sqlite_url)
    today = date(2026, 11, 20)
    run_all(engine, demo_connectors(today)[:1], workspace_id="default", since=date(2026, 11, 1), today=today)
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url
    )
    runtime = Runtime(settings=settings, engine=engine)
    with TestClient(build_web_app(runtime, build_app(runtime))) as test_client:
        yield test_client


def test_live_ready_and_metrics(client):
    assert client.get("/healthz/live").json() == {"status": "ok"}
    ready = client.get("/healthz/ready")
    assert ready.status_code == 200 and ready.json()["sources"]["demo-openai"]["healthy"] is True
    body = command_body("help")
    assert client.post("/slack/events", content=body, headers=signed_headers(body)).status_code == 200
    metrics = client.get("/metrics").text
    assert 'tokenwise_sync_runs_total{source="demo-openai",status="ok"}' in metrics
    assert 'tokenwise_source_lag_seconds{source="demo-openai"}' in metrics
    assert 'tokenwise_slack_request_seconds_count{kind="events"}' in metrics
    assert BOT_TOKEN not in metrics and SIGNING_SECRET not in metrics


def test_request_ids_and_body_limit(client):
    response = client.get("/healthz/live", headers={"x-request-id": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
    huge = "x" * 1_100_000
    assert client.post("/slack/events", content=huge).status_code == 413


def test_ready_is_503_when_the_database_is_gone(tmp_path, httpserver):
    fake = start_fake_slack(httpserver)
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url
    )
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
    runtime = Runtime(settings=settings, engine=engine)
    with TestClient(build_web_app(runtime, build_app(runtime))) as test_client:
        response = test_client.get("/healthz")
        assert response.status_code == 503 and response.json()["database"].startswith("unreachable")
        assert test_client.get("/healthz/live").status_code == 200


def test_json_logs_carry_request_id_and_mask_secrets(capsys):
    configure_logging(level="INFO", secrets=["sk-admin-topsecret"], json_logs=True)
    log = logging.getLogger("tokenwise.test")
    log.info("calling with %s", "sk-admin-topsecret")
    try:
        raise RuntimeError("bad key sk-admin-topsecret")
    except RuntimeError:
        log.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert lines[0]["message"] == "calling with [redacted]" and lines[0]["request_id"] == "-"
    assert "topsecret" not in json.dumps(lines) and "RuntimeError" in lines[1]["message"]
    logging.getLogger().handlers.clear()


# -- the request path: nothing unsigned or oversized is parsed (docs/reliability.md) ----------
def no_tracebacks(caplog) -> None:
    for record in caplog.records:
        assert record.exc_info is None and "Traceback" not in record.getMessage(), record.getMessage()


FORM = "application/x-www-form-urlencoded"
HELP = command_body("help")


def signed_for(body: str, **options) -> Callable[[], dict]:
    return lambda: signed_headers(body, **options)


def raw_headers(**headers: str) -> Callable[[], dict]:
    return lambda: {"content-type": FORM, **headers}


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(
            "{not json", raw_headers(**{"content-type": "application/json"}), id="json-typed-non-json"
        ),
        pytest.param("payload=notjson", raw_headers(), id="payload-notjson"),
        pytest.param(
            "payload=notjson",
            raw_headers(**{"x-slack-request-timestamp": "soon", "x-slack-signature": "v0=00"}),
            id="non-numeric-timestamp",
        ),
        pytest.param(
            "payload=notjson",
            raw_headers(**{"x-slack-request-timestamp": "-1700000000", "x-slack-signature": "v0=00"}),
            id="negative-timestamp",
        ),
        pytest.param(HELP, raw_headers(**{"x-slack-request-timestamp": "1"}), id="no-signature"),
        pytest.param(
            HELP,
            lambda: {**signed_headers(HELP), "x-slack-signature": "v0=\xff".encode("latin-1")},
            id="non-ascii-signature",
        ),
        pytest.param(HELP.replace("help", "export"), signed_for(HELP), id="body-not-the-signed-one"),
        pytest.param(HELP, signed_for(HELP, secret="someone-elses-secret"), id="wrong-secret"),
        pytest.param(HELP, signed_for(HELP, timestamp=1_000_000_000), id="stale-timestamp"),
        pytest.param(b"payload=\xff\xfe", signed_for("payload=\xff\xfe"), id="not-utf8"),
    ],
)
def test_unsigned_requests_are_401_before_any_parsing(client, caplog, body, headers):
    caplog.set_level(logging.DEBUG)
    response = client.post("/slack/events", content=body, headers=headers())
    assert response.status_code == 401
    no_tracebacks(caplog)


def test_a_signed_body_that_is_not_json_is_400_without_a_traceback(client, caplog):
    caplog.set_level(logging.DEBUG)
    for body, content_type in (("payload=notjson", FORM), ("{not json", "application/json")):
        headers = {**signed_headers(body), "content-type": content_type}
        assert client.post("/slack/events", content=body, headers=headers).status_code == 400
    no_tracebacks(caplog)


def test_bodies_over_the_limit_are_413_declared_or_chunked(client, caplog):
    caplog.set_level(logging.DEBUG)

    def chunks():  # no content-length: the server only learns the size by reading
        for _ in range(11):
            yield b"x" * 100_000

    assert client.post("/slack/events", content=chunks(), headers=raw_headers()()).status_code == 413
    declared = {**raw_headers()(), "content-length": "1000001"}
    assert client.post("/slack/events", content=b"x", headers=declared).status_code == 413
    assert client.post("/slack/events", content=b"x", headers={"content-length": "-1"}).status_code == 413
    no_tracebacks(caplog)
    body = command_body("help")  # a chunked body under the limit still reaches Bolt whole
    small = (part.encode() for part in (body[:10], body[10:]))
    assert client.post("/slack/events", content=small, headers=signed_headers(body)).status_code == 200


def test_random_slack_paths_share_one_metrics_label(client):
    before = len(client.get("/metrics").content)
    paths = [secrets.token_hex(12) for _ in range(2_000)]
    for path in paths:
        assert client.post(f"/slack/{path}", content=b"").status_code in (404, 405)
    metrics = client.get("/metrics").text
    assert len(metrics) < before + 2_000  # one new "other" series, not one per path
    assert 'tokenwise_slack_request_seconds_count{kind="other"}' in metrics
    assert not any(path in metrics for path in paths)
