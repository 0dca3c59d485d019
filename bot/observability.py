"""Logs, metrics and request ids.

- Logs are JSON lines when stderr is not a terminal (containers), plain text on a terminal.
  Every record carries the current request id, and every known secret is masked in every
  form (raw, URL-encoded, JSON-escaped, hex, base64): configured ones and those vendor clients send.
- Metrics are Prometheus counters in one registry, served on ``/metrics``.
"""

from __future__ import annotations

import base64
import contextvars
import itertools
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pythonjsonlogger.json import JsonFormatter

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIds:
    """16 hex digits per request: a random prefix per process and a counter. Unique within a
    process and, by the prefix, across the workers (a forked child draws its own); ``uuid4`` per
    request cost an ``os.urandom`` call and a UUID object each (2% of a worker under load)."""

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self.prefix = os.urandom(4).hex()
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFF:08x}"


new_request_id = _RequestIds().next

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
OTLP_GROUPS = Histogram(
    "tokenwise_otlp_group_requests",
    "OTLP requests stored per transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
OTLP_WAITING = Gauge(
    "tokenwise_otlp_waiting_requests", "OTLP requests waiting for the next group commit", registry=REGISTRY
)
OTLP_WRITING = Gauge(
    "tokenwise_otlp_writing_requests", "OTLP requests in the group being written", registry=REGISTRY
)


def metrics_text() -> bytes:
    return generate_latest(REGISTRY)


# -- secrets: every form a credential takes, masked out of every text that leaves -------------

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8  # shorter values (and shorter encoded fragments) match ordinary text
_B64_STANDARD_TO_URLSAFE = str.maketrans("+/", "-_")


def base64_cores(secret: bytes) -> set[str]:
    """What base64 of any text holding ``secret`` contains, wherever the secret sits in it.

    Base64 turns 3 bytes into 4 characters, so the characters a secret produces depend on its
    offset modulo 3 in the encoded text (a Basic header encodes ``key:``; an echo may encode
    ``{"key": "..."}``). For each of the 3 offsets this keeps the characters made of the
    secret's bits only, none of its neighbours': a substring of every such encoding, padded or
    not, standard or url-safe alphabet.
    """
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + secret + bytes(2)).decode()
        core = encoded[-(-offset * 8 // 6) : (offset + len(secret)) * 8 // 6]
        cores |= {core, core.translate(_B64_STANDARD_TO_URLSAFE)}
    return cores


def secret_forms(secret: str) -> set[str]:
    """The texts that reveal ``secret``: as is, URL-encoded (``%XX`` and form ``+``), JSON-escaped,
    hex, and base64 in any alignment or alphabet (see ``base64_cores``)."""
    raw = secret.encode()
    url_forms = {quote(secret, safe=""), quote_plus(secret, safe="")}
    forms = {
        secret,
        *url_forms,
        # Percent-escapes and hex are case-insensitive: a vendor may echo either case.
        *(re.sub(r"%[0-9A-F]{2}", lambda escape: escape.group(0).lower(), form) for form in url_forms),
        json.dumps(secret)[1:-1],
        raw.hex(),
        raw.hex().upper(),
        *base64_cores(raw),
    }
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class SecretMask:
    """The credentials this process holds (configured ones, and every one a vendor client sends),
    in all their forms; ``mask`` replaces each in a text. Process-wide: an error or log line can
    be made anywhere, and whichever client sent a key, that key must not appear in it."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH} - self._secrets
        if not new:
            return
        with self._lock:
            self._secrets |= new
            forms = set().union(*(secret_forms(s) for s in self._secrets))
            # Longest first, so a secret inside a longer form never leaves that form's rest.
            ordered = sorted(forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))
            _install_record_masking()

    def mask(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(REDACTED, text) if pattern is not None and text else text

    def reveals(self, text: str) -> bool:
        pattern = self._pattern
        return bool(pattern is not None and text and pattern.search(text))

    def scrub(self, record: logging.LogRecord) -> None:
        """Mask a log record in place: its message (args included), and its traceback, which
        is dropped (type kept) when any part of it would print a secret."""
        if self._pattern is None:
            return
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it when the record is emitted
            return
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            if self.reveals(text):
                error = record.exc_info[1]
                record.msg = (
                    f"{record.getMessage()} ({type(error).__name__}; details withheld: they held a secret)"
                )
                record.args, record.exc_info, record.exc_text = (), None, None
        if record.stack_info and self.reveals(record.stack_info):
            record.stack_info = self.mask(record.stack_info)


SECRETS = SecretMask()


def remember_secrets(*secrets: str) -> None:
    """Credentials to mask from now on (in logs, errors, messages)."""
    SECRETS.add(secrets)


def mask_secrets(text: str) -> str:
    return SECRETS.mask(text)


_record_masking_installed = False


def _install_record_masking() -> None:
    """Mask every log record as it is made, before any handler (pytest's included) sees it."""
    global _record_masking_installed
    if _record_masking_installed:
        return
    _record_masking_installed = True
    make_record = logging.getLogRecordFactory()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        SECRETS.scrub(record)
        return record

    logging.setLogRecordFactory(masked_record)


class ContextFilter(logging.Filter):
    """Adds the request id; masks secrets again at the handler (records made by other factories)."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        remember_secrets(*(secrets or []))

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        SECRETS.scrub(record)
        return True


#: Libraries whose INFO lines are noise on a console (migration steps, job bookkeeping, font
#: caches, connection chatter): kept to warnings unless a log level is asked for.
NOISY_LIBRARIES = (
    "alembic",
    "apscheduler",
    "matplotlib",
    "PIL",
    "slack_bolt",
    "slack_sdk",
    "urllib3",
)


class LibraryWarningsOnly(logging.Filter):
    """Drops the records below WARNING of ``NOISY_LIBRARIES`` (and their child loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return not any(record.name == name or record.name.startswith(name + ".") for name in NOISY_LIBRARIES)


def configure_logging(
    *,
    level: str = "INFO",
    secrets: list[str] | None = None,
    json_logs: bool | None = None,
    quiet_libraries: bool = False,
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
    if quiet_libraries:
        # A filter on this handler, not the libraries' levels: other handlers (a test's capture)
        # still see every record.
        handler.addFilter(LibraryWarningsOnly())
    # httpx logs full URLs at INFO (signed download links included): keep it to warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


class RequestContextMiddleware:
    """Pure ASGI middleware: request id, latency metric, and a request body size limit.

    The body is read whole (at most ``max_body_bytes``, declared or chunked) before the app runs,
    so an oversized request is a 413 before anything parses it. The latency metric's label is
    the kind of a known Slack path (``slack_kinds``) or "other": a path never becomes a label.
    Paths in ``streamed_paths`` (the OTLP intake) get their body unread: their handler checks the
    credentials first and bounds the body itself.
    """

    def __init__(
        self,
        app,
        *,
        max_body_bytes: int = 1_000_000,
        slack_kinds: dict[str, str] | None = None,
        streamed_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.slack_kinds = dict(slack_kinds or {})
        self.streamed_paths = streamed_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or new_request_id()
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            if scope.get("path", "") in self.streamed_paths:
                await self.app(scope, receive, send)
                return
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
