"""``tokenwise run`` (serve Slack, with the jobs unless told not to) and ``tokenwise scheduler``
(the jobs alone), with the start banner and the Slack token check."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import VERBOSE, console, fail, load_settings, open_engine, setup_logging
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.jobs.scheduler import RunOnce


#: auth.test errors that mean the token itself is wrong (not Slack being unwell).
TOKEN_REFUSED = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)


def _slack_identity(settings: Settings) -> dict:
    """Who SLACK_BOT_TOKEN is (``auth.test``): the workspace and the bot user. A token Slack
    refuses stops the start here, in one line, before anything is migrated or served."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    # slack_sdk logs every failed attempt at ERROR; the one line below says it once, with the cause.
    quiet = logging.getLogger("bot.cli.auth_test")
    quiet.disabled = True
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=10,
        logger=quiet,
    )
    try:
        answer = client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error") or f"HTTP {error.response.status_code}"
        if code in TOKEN_REFUSED:
            raise fail(
                f"Slack refused SLACK_BOT_TOKEN ({code}): copy the Bot User OAuth Token (xoxb-…) from "
                "OAuth & Permissions, or reinstall the app to the workspace"
            ) from None
        raise fail(f"Slack's auth.test at {settings.slack_api_url} answered {code}", 1) from None
    except OSError as error:  # URLError, timeouts, refused connections
        reason = getattr(error, "reason", None) or error
        raise fail(f"cannot reach Slack at {settings.slack_api_url}: {reason}", 1) from None
    if not answer.get("bot_id"):
        raise fail("SLACK_BOT_TOKEN is not a bot token: use the Bot User OAuth Token (xoxb-…)")
    return answer.data if isinstance(answer.data, dict) else {}


def _banner(
    settings: Settings,
    runtime,
    identity: dict | None,
    *,
    socket_mode: bool,
    port: int,
    workers: int,
    jobs: bool,
) -> list[str]:
    """What this process is about to serve, in the words the Slack app settings use."""
    from importlib.metadata import version
    from urllib.parse import urlsplit

    from sqlalchemy.engine import make_url

    from bot.jobs.scheduler import scheduled_jobs

    redirect = urlsplit(settings.slack_redirect_uri or "")
    public = f"{redirect.scheme}://{redirect.netloc}" if redirect.netloc else "https://YOUR-PUBLIC-HOST"
    if identity is not None:
        bot = f"@{identity['user']}" if identity.get("user") else identity.get("user_id", "?")
        workspace = f"{identity.get('team', '?')} ({identity.get('team_id', '?')}), as bot {bot}"
    else:
        workspace = f"every workspace that installs the app (OAuth): send admins to {public}/slack/install"
    sources = ", ".join(sorted(runtime.source_lags)) or (
        "none yet: set a vendor key (README, Sources) or TOKENWISE_DEMO=1"
    )
    if settings.secret_key is not None:
        sources += "; and the keys stored with /tokens sources"
    database = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    if socket_mode:
        slack = "Socket Mode: no Request URL needed (manifest.dev.yml)"
    else:
        slack = (
            f"HTTP on {settings.host}:{port}; Request URL to paste into Slack (slash command, Event "
            f"Subscriptions, Interactivity): {public}/slack/events"
        )
    lines = [
        f"Tokenwise {version('tokenwise')}",
        f"  workspace  {workspace}",
        f"  sources    {sources}",
        f"  database   {database}",
        f"  Slack      {slack}",
        "  jobs       "
        + (
            ", ".join(f"{row.what} every {row.minutes} min" for row in scheduled_jobs(settings))
            if jobs
            else "off (--no-scheduler): run `tokenwise scheduler` next to it"
        ),
    ]
    if workers > 1:
        lines.append(f"  workers    {workers} HTTP processes")
    return lines


def run(
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Serve Slack only; run jobs elsewhere.")
    ] = False,
    port: Annotated[int | None, typer.Option(help="HTTP port (default PORT or 3000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="HTTP worker processes (default TOKENWISE_WORKERS or 1); the jobs run once, "
            "in the supervising process.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Check the configuration (the Slack token too), print the banner and exit."
        ),
    ] = False,
    verbose: Annotated[bool, VERBOSE] = False,
) -> None:
    """Serve Slack: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT."""
    import uvicorn

    from bot.jobs.scheduler import build_scheduler
    from bot.services.runtime import build_runtime
    from bot.slack.app import ConfigError, build_app
    from bot.web import build_web_app, serve_workers

    settings = load_settings()
    setup_logging(settings, verbose=verbose)
    workers = workers or settings.workers
    port = port or settings.port
    # Check the whole configuration before touching data: a bad setting must not migrate anything.
    engine = open_engine(settings, migrate=False)
    runtime = build_runtime(settings, engine)
    socket_mode = settings.slack_app_token is not None
    if socket_mode and workers > 1:
        raise fail("--workers (TOKENWISE_WORKERS) is for HTTP mode; Socket Mode runs one process")
    if socket_mode and not settings.slack_app_token.get_secret_value().startswith("xapp-"):
        raise fail(
            "SLACK_APP_TOKEN must be an app-level token (xapp-…, Basic Information → App-Level Tokens, "
            "scope connections:write)"
        )
    try:
        bolt = build_app(runtime, socket_mode=socket_mode)
    except ConfigError as error:
        raise fail(str(error)) from None
    identity = None if settings.multi_workspace else _slack_identity(settings)
    banner = _banner(
        settings,
        runtime,
        identity,
        socket_mode=socket_mode,
        port=port,
        workers=workers,
        jobs=not no_scheduler,
    )
    console.print("\n".join(banner), highlight=False, soft_wrap=True)
    if check:
        return
    open_engine(settings, engine=engine)
    scheduler = None if no_scheduler else build_scheduler(runtime)
    if socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        async def serve_socket() -> None:
            if scheduler:
                scheduler.start()
            await AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value()).start_async()

        asyncio.run(serve_socket())
        return
    options = dict(
        host=settings.host,
        port=port,
        log_level="info",
        timeout_keep_alive=5,
        limit_concurrency=1000,
        proxy_headers=True,
    )
    if workers == 1:
        uvicorn.run(build_web_app(runtime, bolt, scheduler=scheduler), **options)
        return
    # Each worker is a fresh (spawned) process that builds its own app from the environment
    # (bot.web.create_app); the jobs run here, in the supervisor, so exactly once.
    if scheduler is not None:
        scheduler.start()
    try:
        serve_workers("bot.web:create_app", factory=True, workers=workers, **options)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


def _once_lines(done: RunOnce) -> list[str]:
    """The jobs after the sync, one line each (a failed job's traceback is in the log above)."""
    failed = "failed, see the log"
    recaps = ", ".join(
        f"{n} {status}" for status, n in sorted(Counter(o.status for o in done.recaps or []).items())
    )
    return [
        f"budget alerts: {failed if done.alerts_sent is None else f'{done.alerts_sent} sent'}",
        f"recaps due: {failed if done.recaps is None else recaps or 'none'}",
        f"teams re-read: {failed if done.teams_refreshed is None else done.teams_refreshed}",
        f"anomaly DMs: {failed if done.anomaly_dms is None else f'{done.anomaly_dms} sent'}",
        f"saved-time questions: {failed if done.saved_time_asks is None else f'{done.saved_time_asks} sent'}",
        f"OTLP points pruned: {failed if done.otel_points_pruned is None else done.otel_points_pruned}",
    ]


def scheduler(
    once: Annotated[
        bool, typer.Option("--once", help="Run every job once for the current tick, then exit.")
    ] = False,
    verbose: Annotated[bool, VERBOSE] = False,
) -> None:
    """Run the scheduled jobs alone (no Slack server): pair with `tokenwise run --no-scheduler`."""
    import signal
    import threading

    from bot.jobs.scheduler import build_scheduler, run_once
    from bot.services.runtime import build_runtime

    settings = load_settings()
    setup_logging(settings, verbose=verbose)
    runtime = build_runtime(settings, open_engine(settings))
    if once:
        done = run_once(runtime)
        for outcome in done.syncs:
            console.print(f"{outcome.source}: {outcome.status}", highlight=False)
        for line in _once_lines(done):
            console.print(line, highlight=False)
        if done.failed:
            raise typer.Exit(1)
        return
    jobs = build_scheduler(runtime)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    jobs.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        jobs.shutdown(wait=True)
