"""``tokenwise run --workers N``: N uvicorn worker processes serve Slack, the scheduled jobs run
once (in the supervising process), and Socket Mode refuses workers."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from bot.db.engine import make_engine
from bot.db.models import SyncRun
from bot.settings import Settings
from bot.web import _Config
from tests.support.inbound import command_body
from tests.support.slack_fake import BOT_TOKEN, SIGNING_SECRET, signed_headers, start_fake_slack

DEMO_SOURCES = {"demo-openai", "demo-claude_code", "demo-cursor", "demo-github_copilot"}


def test_workers_default_to_one_and_come_from_the_environment(monkeypatch):
    assert Settings().workers == 1
    monkeypatch.setenv("TOKENWISE_WORKERS", "3")
    assert Settings().workers == 3
    monkeypatch.setenv("TOKENWISE_WORKERS", "0")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Settings()


def test_socket_mode_refuses_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENWISE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    result = CliRunner().invoke(app, ["run", "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers (TOKENWISE_WORKERS) is for HTTP mode" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_serve_slack_and_the_jobs_run_once(tmp_path, sqlite_url, httpserver):
    fake = start_fake_slack(httpserver)
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TOKENWISE_", "DATABASE_URL"))},
        "DATABASE_URL": sqlite_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        "TOKENWISE_DEMO": "1",
        "TOKENWISE_BACKFILL_DAYS": "20",
        "TOKENWISE_SYNC_INTERVAL_MINUTES": "1440",
        "TOKENWISE_DATA_DIR": str(tmp_path),
        "TOKENWISE_WORKERS": "2",
        # The job lines below are apscheduler's INFO, kept off the console unless a level is set.
        "TOKENWISE_LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        engine = make_engine(sqlite_url)

        def synced():
            with engine.connect() as conn:
                runs = conn.execute(select(SyncRun.source, SyncRun.status)).all()
            return {source for source, status in runs if status == "ok"} >= DEMO_SOURCES

        _wait_until(synced, 240, "the scheduled sync of the demo sources")

        def both_workers_up():
            return len(set(re.findall(r"Started server process \[(\d+)\]", log_path.read_text()))) == 2

        _wait_until(both_workers_up, 240, "two uvicorn workers")
        # Keep-alive requests on one connection are served (TCP_NODELAY on the workers' socket,
        # uvicorn issue #3149, is asserted directly by the socket test below, not by timing).
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(15):
            connection.request("GET", "/healthz/live")
            assert connection.getresponse().read() == b'{"status":"ok"}'
        connection.close()
        for _ in range(6):  # a new connection each time: the kernel spreads them over the workers
            body = command_body("me 30d")
            url = f"http://127.0.0.1:{port}/slack/events"
            response = httpx.post(url, content=body, headers=signed_headers(body), timeout=30)
            assert response.status_code == 200, response.text
            assert "Your AI spend" in json.dumps(response.json())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    output = log_path.read_text()
    assert process.returncode == 0, output[-3000:]
    # The jobs ran in one process only: each is started once per tick, not once per worker.
    sync_runs = [ln for ln in output.splitlines() if "Running job" in ln and "sync every source" in ln]
    assert len(sync_runs) == 1, output[-3000:]
    with engine.connect() as conn:
        assert {s for (s,) in conn.execute(select(SyncRun.source))} == DEMO_SOURCES
    engine.dispose()


async def test_the_workers_listening_socket_gives_connections_tcp_nodelay():
    sock = _Config("bot.web:create_app", host="127.0.0.1", port=0).bind_socket()
    assert sock.proto == socket.IPPROTO_TCP
    accepted = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            conn = transport.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        assert await asyncio.wait_for(accepted, 5) == 1
        writer.close()
    finally:
        server.close()
