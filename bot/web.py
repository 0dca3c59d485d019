"""The HTTP server (Starlette under uvicorn): Slack's request path and health.

``POST /slack/events`` carries slash commands, events and interactivity; Bolt verifies the
signature on the raw body before anything else runs. In a multi-workspace install
``GET /slack/install`` and ``GET /slack/oauth_redirect`` run Slack's OAuth flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
import time

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.domain.clock import utcnow
from bot.observability import SOURCE_LAG, RequestContextMiddleware, metrics_text
from bot.services import otel
from bot.services.otel_group_commit import GroupCommit
from bot.services.runtime import Runtime
from bot.services.status import source_statuses
from bot.settings import Settings
from bot.slack.background import drain_background
from bot.sources.otel import otlp
from bot.sources.otel.base import BadPayload

log = logging.getLogger(__name__)

SHUTDOWN_DRAIN_SECONDS = 10.0
MAX_BODY_BYTES = 1_000_000  # Slack payloads are a few KB; anything near 1 MB is not Slack


def slack_signature_valid(verifier: SignatureVerifier | None, body: bytes, headers) -> bool:
    """Slack's v0 signature over the raw body, checked before anything parses the body.

    Every malformed header (missing, non-numeric or stale timestamp, missing signature, a body
    that is not UTF-8) is simply "not signed": the caller answers 401 and nothing else runs.
    """
    timestamp = headers.get("x-slack-request-timestamp") or ""
    signature = headers.get("x-slack-signature") or ""
    if verifier is None or not signature or not (signature + timestamp).isascii() or not timestamp.isdigit():
        return False  # compare_digest raises on non-ASCII text; int() on a non-number
    try:  # is_valid also refuses a timestamp more than 5 minutes away (replays)
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except UnicodeDecodeError:
        return False


OTLP_PATHS = {"/v1/metrics": otlp.METRICS, "/v1/logs": otlp.LOGS}
TOKEN_HEADER = "x-tokenwise-token"


class RateLimit:
    """At most ``per_minute`` requests per ingest token and fixed minute, in this process.

    Keys are hashes of valid tokens only (the token is checked before the rate), so there are as
    many as workspaces sending; still, at most ``max_keys`` windows are kept: stale ones are
    dropped first, then the oldest, so memory stays bounded whatever arrives.
    """

    def __init__(self, per_minute: int, *, max_keys: int = 10_000, clock=time.monotonic) -> None:
        self.per_minute = per_minute
        self.max_keys = max_keys
        self.clock = clock
        self.windows: dict[str, tuple[int, int]] = {}  # key -> (minute, requests in it)

    def wait(self, key: str) -> float | None:
        """None: allowed (and counted); else the seconds until this token's window reopens."""
        now = self.clock()
        minute = int(now // 60)
        start, used = self.windows.get(key, (minute, 0))
        if start != minute:
            start, used = minute, 0
        if used >= self.per_minute:
            return 60 - now % 60
        if key not in self.windows and len(self.windows) >= self.max_keys:
            self.windows = {k: v for k, v in self.windows.items() if v[0] == minute}
            while len(self.windows) >= self.max_keys:  # all current: forget the oldest
                del self.windows[next(iter(self.windows))]
        self.windows[key] = (start, used + 1)
        return None


def ingest_token(headers) -> str:
    """The ingest token of ``Authorization: Bearer <token>`` or ``x-tokenwise-token: <token>``."""
    direct = (headers.get(TOKEN_HEADER) or "").strip()
    if direct:
        return direct
    scheme, _, value = (headers.get("authorization") or "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


async def bounded_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None once it is (or says it is) over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def otlp_endpoint(runtime: Runtime):
    """``POST /v1/metrics`` and ``/v1/logs``: OTLP/HTTP from coding agents (docs/sources/otel.md).

    Order matters: the token is checked from the headers before a byte of the body is read (no
    token, no parsing: 401), then the rate, then the body's size; a body that cannot be stored as
    sent is a 400 with the reason and stores nothing.
    """
    settings: Settings = runtime.settings
    limiter = RateLimit(settings.otel_requests_per_minute)
    limits = otlp.Limits(
        max_bytes=settings.otel_max_body_bytes,
        max_points=settings.otel_max_points_per_request,
        max_people=settings.otel_max_people_per_request,
        max_age_days=settings.otel_max_age_days,
    )
    # Never shorter than the age of points still accepted: a late point refolds its day, which
    # needs every point of that day.
    retention = max(settings.otel_retention_days, settings.otel_max_age_days)
    intake = GroupCommit(runtime.engine, retention_days=retention)

    def unavailable() -> Response:
        return PlainTextResponse("database unavailable", status_code=503, headers={"Retry-After": "30"})

    async def handle(request: Request) -> Response:
        signal = OTLP_PATHS[request.url.path]
        token = ingest_token(request.headers)
        try:
            workspace_id = (
                await asyncio.to_thread(otel.workspace_for_token, runtime.engine, token) if token else None
            )
        except DBAPIError:
            return unavailable()
        if workspace_id is None:
            return PlainTextResponse("missing or invalid ingest token", status_code=401)
        wait = limiter.wait(otel.token_hash(token))
        if wait is not None:
            retry = str(max(1, math.ceil(wait)))
            return PlainTextResponse("rate limit exceeded", status_code=429, headers={"Retry-After": retry})
        content_type = request.headers.get("content-type") or ""
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind not in (otlp.PROTOBUF, otlp.JSON):
            return PlainTextResponse(f"use {otlp.PROTOBUF} or {otlp.JSON}", status_code=415)
        encoding = (request.headers.get("content-encoding") or "").strip().lower()
        if encoding not in ("", "identity", "gzip"):
            return PlainTextResponse("use Content-Encoding gzip or none", status_code=415)
        body = await bounded_body(request, limits.max_bytes)
        if body is None:
            return PlainTextResponse(f"body larger than {limits.max_bytes} bytes", status_code=413)
        try:
            decoded = await asyncio.to_thread(
                otlp.decode,
                signal,
                body,
                content_type=content_type,
                encoding=encoding,
                limits=limits,
                now_ns=time.time_ns(),
            )
        except otlp.TooLarge as error:
            return PlainTextResponse(str(error), status_code=413)
        except BadPayload as error:
            log.info("refused an OTLP %s request: %s", signal, error)
            return PlainTextResponse(str(error), status_code=400)
        try:
            # Stored with the requests that arrive meanwhile, answered after their commit.
            await intake.submit(workspace_id, decoded)
        except DBAPIError as error:  # rolled back whole: the exporter retries a 503 later
            log.error("OTLP %s request not stored: database error: %s", signal, type(error).__name__)
            return unavailable()
        answer = otlp.response(signal, kind, decoded.rejected, "; ".join(decoded.reasons))
        return Response(answer, media_type=kind)

    return handle


def health(runtime: Runtime) -> tuple[bool, dict]:
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            statuses = source_statuses(
                conn, workspace_id=runtime.settings.workspace_id, enabled=runtime.source_lags
            )
    except Exception as error:  # report, never raise: this is what a load balancer polls
        return False, {"status": "unavailable", "database": f"unreachable ({type(error).__name__})"}
    now = utcnow()
    for s in statuses:
        if s.last_success_at is not None:
            SOURCE_LAG.labels(source=s.source).set((now - s.last_success_at).total_seconds())
    sources = {
        s.source: {
            "last_success_at": s.last_success_at.isoformat() if s.last_success_at else None,
            "healthy": s.healthy,
        }
        for s in statuses
    }
    return True, {"status": "ok", "database": "ok", "sources": sources}


def build_web_app(runtime: Runtime, bolt: AsyncApp, *, scheduler=None) -> Starlette:
    handler = AsyncSlackRequestHandler(bolt)
    secret = runtime.settings.slack_signing_secret
    verifier = SignatureVerifier(secret.get_secret_value()) if secret else None

    async def oauth_pages(request: Request) -> Response:
        return await handler.handle(request)

    async def slack_events(request: Request) -> Response:
        body = await request.body()  # already read whole (and size-checked) by the middleware
        if not slack_signature_valid(verifier, body, request.headers):
            log.info("refused a Slack request without a valid signature")
            return PlainTextResponse("invalid signature", status_code=401)
        try:
            return await handler.handle(request)
        except json.JSONDecodeError:  # signed, yet not the JSON Slack sends: never a 500
            log.warning("refused a signed Slack request whose body is not valid JSON")
            return PlainTextResponse("malformed body", status_code=400)

    async def ready(request: Request) -> Response:
        """Ready: the database answers (what a load balancer should route on)."""
        ok, body = await asyncio.to_thread(health, runtime)
        return JSONResponse(body, status_code=200 if ok else 503)

    async def live(request: Request) -> Response:
        """Live: the process serves requests (restart it only when this fails)."""
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        await asyncio.to_thread(health, runtime)  # refreshes the per-source lag gauges
        return Response(metrics_text(), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            # Late answers and button effects already acked to Slack: let them finish.
            await drain_background(SHUTDOWN_DRAIN_SECONDS)

    oauth_routes = []
    if bolt.oauth_flow is not None:  # multi-workspace install: Bolt serves both pages
        oauth_routes = [
            Route(bolt.oauth_flow.install_path, oauth_pages, methods=["GET"]),
            Route(bolt.oauth_flow.redirect_uri_path, oauth_pages, methods=["GET"]),
        ]
    app = Starlette(
        routes=[
            *oauth_routes,
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", ready, methods=["GET"]),
            Route("/healthz/ready", ready, methods=["GET"]),
            Route("/healthz/live", live, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *(Route(path, otlp_endpoint(runtime), methods=["POST"]) for path in OTLP_PATHS),
        ],
        lifespan=lifespan,
    )
    # The latency metric's label is one of these (or "other"): a path never becomes a label.
    kinds = {
        route.path: route.path.rsplit("/", 1)[-1] for route in app.routes if route.path.startswith("/slack/")
    }
    return RequestContextMiddleware(
        app, max_body_bytes=MAX_BODY_BYTES, slack_kinds=kinds, streamed_paths=frozenset(OTLP_PATHS)
    )


class _Config(uvicorn.Config):
    """uvicorn's Config whose pre-bound listening socket says it is TCP. ``Config.bind_socket``
    leaves the socket's ``proto`` at 0, accepted sockets inherit it, and asyncio sets TCP_NODELAY
    only when ``proto`` is IPPROTO_TCP: each worker's response head and body then wait on the
    client's delayed ACK, ~40 ms per keep-alive request (uvicorn issue #3149; on 2 cores the bare
    endpoint of bench B5 made 710 instead of 3,240 req/s)."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            sock.set_inheritable(True)
        return sock


def serve_workers(app: str, *, workers: int, **options) -> None:
    """``uvicorn.run(app, workers=N, **options)`` with the socket above: a supervisor binds the
    port and spawns N worker processes, each importing ``app`` (an import string) afresh."""
    from uvicorn.supervisors import Multiprocess

    # A worker answers the supervisor's health check only once it has imported and built the app;
    # on a busy 2-core machine that takes longer than uvicorn's 5 s, and the supervisor would kill
    # and respawn it forever.
    options.setdefault("timeout_worker_healthcheck", 60)
    config = _Config(app, workers=workers, **options)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the supervisor stops its workers
        Multiprocess(config, sockets=[config.bind_socket()]).run()


def create_app():
    """``uvicorn bot.web:create_app --factory``: what each worker of ``tokenwise run --workers N``
    runs. A worker is a fresh process: it reads the settings from the environment and builds its
    own engine and Bolt app. It never runs the scheduled jobs (the supervising process does)."""
    from bot.observability import configure_logging
    from bot.services.runtime import build_runtime
    from bot.settings import load_settings
    from bot.slack.app import build_app

    settings = load_settings()
    configure_logging(secrets=settings.secret_values())
    runtime = build_runtime(settings)
    return build_web_app(runtime, build_app(runtime))
