"""HTTP surface besides Slack commands: health, metrics, limits, logs."""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest
from starlette.testclient import TestClient

from bot.db.engine import make_engine
from bot.observability import configure_logging
from bot.runtime import Runtime
from bot.services.sync import run_all
from bot.settings import Settings
from bot.slack.app import build_app
from bot.sources.demo import demo_connectors
from bot.web import build_web_app
from tests.slack_fake import BOT_TOKEN, SIGNING_SECRET, command_body, signed_headers, start_fake_slack


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
    assert lines[0]["message"] == "calling with ***" and lines[0]["request_id"] == "-"
    assert "topsecret" not in json.dumps(lines) and "RuntimeError" in lines[1]["message"]
    logging.getLogger().handlers.clear()
