"""Logs, metrics and request ids.

- Logs are JSON lines when stderr is not a terminal (containers), plain text on a terminal.
  Every record carries the current request id, and every configured secret is masked.
- Metrics are Prometheus counters in one registry, served on ``/metrics``.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pythonjsonlogger.json import JsonFormatter

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

REGISTRY = CollectorRegistry(auto_describe=True)
SYNC_RUNS = Counter(
    "tokenwise_sync_runs", "Sync runs by source and outcome", ["source", "status"], registry=REGISTRY
)
SYNC_ROWS = Counter("tokenwise_sync_rows", "Rows stored by sync", ["source", "table"], registry=REGISTRY)
SOURCE_LAG = Gauge(
    "tokenwise_source_lag_seconds",
    "Seconds since the source last synced successfully",
    ["source"],
    registry=REGISTRY,
)
SLACK_LATENCY = Histogram(
    "tokenwise_slack_request_seconds",
    "Time to answer a Slack request (HTTP)",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5),
    registry=REGISTRY,
)
RECAP_DELIVERIES = Counter(
    "tokenwise_recap_deliveries", "Recap posts by outcome", ["status"], registry=REGISTRY
)
ALERTS = Counter(
    "tokenwise_alerts", "Budget alerts by kind and outcome", ["kind", "status"], registry=REGISTRY
)


def metrics_text() -> bytes:
    return generate_latest(REGISTRY)


class ContextFilter(logging.Filter):
    """Adds the request id and masks secrets in the final message (args included)."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = sorted({s for s in (secrets or []) if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        if self.secrets:
            message = record.getMessage()
            masked = message
            for secret in self.secrets:
                masked = masked.replace(secret, "***")
            if masked != message:
                record.msg, record.args = masked, ()
            error = record.exc_info[1] if record.exc_info else None
            if error is not None and any(s in str(error) for s in self.secrets):
                # The traceback would print the secret: keep the type, drop the text.
                record.msg = (
                    f"{record.getMessage()} ({type(error).__name__}; details withheld: they held a secret)"
                )
                record.args, record.exc_info, record.exc_text = (), None, None
        return True


def configure_logging(
    *, level: str = "INFO", secrets: list[str] | None = None, json_logs: bool | None = None
) -> None:
    use_json = (not sys.stderr.isatty()) if json_logs is None else json_logs
    handler = logging.StreamHandler(sys.stderr)
    if use_json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(ContextFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs full URLs at INFO (signed download links included): keep it to warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


class RequestContextMiddleware:
    """Pure ASGI middleware: request id, latency metric, and a request body size limit.

    The body is read whole (at most ``max_body_bytes``, declared or chunked) before the app runs,
    so an oversized request is a 413 before anything parses it. The latency metric's label is
    the kind of a known Slack path (``slack_kinds``) or "other": a path never becomes a label.
    """

    def __init__(
        self, app, *, max_body_bytes: int = 1_000_000, slack_kinds: dict[str, str] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.slack_kinds = dict(slack_kinds or {})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            body = await self._read_body(headers, receive)
            if body is None:
                await _plain(send, 413, b"request body too large")
                return
            replayed = False

            async def replay():
                nonlocal replayed
                if replayed:  # the body was read already: what follows is the disconnect
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send_with_id(message):
                if message["type"] == "http.response.start":
                    message.setdefault("headers", []).append((b"x-request-id", rid.encode("latin-1")))
                await send(message)

            await self.app(scope, replay, send_with_id)
        finally:
            path = scope.get("path", "")
            if path.startswith("/slack/"):
                kind = self.slack_kinds.get(path, "other")
                SLACK_LATENCY.labels(kind=kind).observe(time.perf_counter() - started)
            request_id.reset(token)

    async def _read_body(self, headers: dict, receive) -> bytes | None:
        """The whole request body, or None when it is (or says it is) over the limit."""
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            return None
        chunks, received = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b"".join(chunks)
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _plain(send, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
    )
    await send({"type": "http.response.body", "body": body})
