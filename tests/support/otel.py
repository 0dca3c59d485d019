"""The OTLP intake under test: the real web app served by uvicorn on loopback, and a Claude
Code-shaped agent built on the real OpenTelemetry SDK whose OTLP/HTTP exporter sends to it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource

from bot.services.runtime import Runtime
from bot.slack.app import build_app
from bot.web import build_web_app
from tests.support.slack_app import make_runtime

DELTA = AggregationTemporality.DELTA
CUMULATIVE = AggregationTemporality.CUMULATIVE


@dataclass
class Served:
    url: str
    runtime: Runtime


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(engine, fake_slack, **settings) -> Iterator[Served]:
    """The real Starlette app (Slack and OTLP routes) under uvicorn in a thread on loopback."""
    runtime = make_runtime(engine, fake_slack, **settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            build_web_app(runtime, build_app(runtime)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the web app did not start")
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", runtime)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class ClaudeCode:
    """One Claude Code process: a MeterProvider with Claude Code's instruments and resource. A new
    instance is a restarted client (its cumulative counters start again from zero, with a new
    start time)."""

    def __init__(self, temporality: AggregationTemporality = DELTA) -> None:
        self.reader = InMemoryMetricReader(preferred_temporality={Counter: temporality})
        self.provider = MeterProvider(
            metric_readers=[self.reader],
            resource=Resource.create({"service.name": "claude-code", "service.version": "2.0.14"}),
        )
        meter = self.provider.get_meter("com.anthropic.claude_code", "2.0.14")
        self.tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
        self.cost = meter.create_counter("claude_code.cost.usage", unit="USD")
        self.lines = meter.create_counter("claude_code.lines_of_code.count")
        self.commits = meter.create_counter("claude_code.commit.count")
        self.prs = meter.create_counter("claude_code.pull_request.count")
        self.sessions = meter.create_counter("claude_code.session.count")
        self.active = meter.create_counter("claude_code.active_time.total", unit="s")
        self.unknown = meter.create_counter("some_other_app.requests")

    def use(
        self,
        person: dict,
        *,
        model: str = "claude-sonnet-4-5",
        input: int = 0,
        output: int = 0,
        cache_read: int = 0,
        cache_creation: int = 0,
        usd: float = 0.0,
        added: int = 0,
        removed: int = 0,
        commits: int = 0,
        prs: int = 0,
        sessions: int = 0,
    ) -> None:
        for kind, amount in (
            ("input", input),
            ("output", output),
            ("cacheRead", cache_read),
            ("cacheCreation", cache_creation),
        ):
            if amount:
                self.tokens.add(amount, {**person, "model": model, "type": kind})
        if usd:
            self.cost.add(usd, {**person, "model": model})
        for kind, amount in (("added", added), ("removed", removed)):
            if amount:
                self.lines.add(amount, {**person, "type": kind})
        for counter, amount in ((self.commits, commits), (self.prs, prs), (self.sessions, sessions)):
            if amount:
                counter.add(amount, person)

    def collect(self):
        return self.reader.get_metrics_data()

    def protobuf(self) -> bytes:
        """What the OTLP exporter would send, encoded by the SDK's own encoder."""
        return encode_metrics(self.collect()).SerializeToString()


def claude_person(email: str | None, account: str = "", session: str = "s1") -> dict:
    attributes = {"session.id": session, "organization.id": "org-1", "terminal.type": "vscode"}
    if email:
        attributes["user.email"] = email
    if account:
        attributes["user.account_uuid"] = account
    return attributes


def exporter(url: str, token: str, *, temporality=DELTA, gzip: bool = True) -> OTLPMetricExporter:
    return OTLPMetricExporter(
        endpoint=f"{url}/v1/metrics",
        headers={"Authorization": f"Bearer {token}"},
        compression=Compression.Gzip if gzip else Compression.NoCompression,
        preferred_temporality={Counter: temporality},
        timeout=10,
    )


def send(url: str, token: str, agent: ClaudeCode, *, gzip: bool = True) -> MetricExportResult:
    """Collect the agent's metrics once and export them with the SDK's OTLP/HTTP exporter."""
    data = agent.collect()
    return exporter(url, token, gzip=gzip).export(data)
