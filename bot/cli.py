"""The ``tokenwise`` command line (typer). Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from typer.core import TyperCommand, TyperGroup

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.jobs.scheduler import RunOnce


def _flags_take_no_value(params: list) -> list:
    """Typer's rich help prints a ``<bool>`` placeholder after every flag (``--help`` too), as if
    it took a value: an empty metavar leaves the column blank."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    def get_params(self, ctx):
        return _flags_take_no_value(super().get_params(ctx))


class Group(TyperGroup):
    def get_params(self, ctx):
        return _flags_take_no_value(super().get_params(ctx))


def _typer(**options) -> typer.Typer:
    return typer.Typer(cls=Group, no_args_is_help=True, **options)


app = _typer(help="Tokenwise: AI spend next to value, in Slack.", add_completion=False)
db_app = _typer(help="Database maintenance.")
people_app = _typer(help="People and identities.")
app.add_typer(db_app, name="db")
app.add_typer(people_app, name="people")
secrets_app = _typer(help="Vendor keys stored per workspace (encrypted).")
app.add_typer(secrets_app, name="secrets")
otel_app = _typer(help="OTLP intake for coding agents (docs/sources/otel.md).")
token_app = _typer(help="The workspace's ingest token.")
otel_app.add_typer(token_app, name="token")
app.add_typer(otel_app, name="otel")

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def load_settings(**overrides) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise fail(f"invalid configuration: {where}: {first['msg']}") from None


def _engine(settings: Settings, *, migrate: bool = True, engine=None):
    from sqlalchemy.exc import OperationalError

    from bot.db.engine import make_engine
    from bot.db.migrate import upgrade

    try:
        engine = engine or make_engine(settings.resolved_database_url)
        if migrate:
            upgrade(engine)
        return engine
    except OperationalError as error:
        raise fail(f"cannot open the database: {str(error.orig).splitlines()[0]}") from None
    except Exception as error:
        raise fail(
            f"cannot open the database: {type(error).__name__}: {str(error).splitlines()[0]}"
        ) from None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"tokenwise {version('tokenwise')}", highlight=False)
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Tokenwise: AI spend next to value, in Slack."""


VERBOSE = typer.Option(
    "--verbose", "-v", help="Log every library's INFO lines too (as TOKENWISE_LOG_LEVEL=INFO does)."
)


def _setup_logging(settings: Settings, level: str = "INFO", *, verbose: bool = False) -> None:
    """``level`` unless TOKENWISE_LOG_LEVEL says otherwise; the libraries' INFO chatter stays
    off the console unless a level (or ``--verbose``) was asked for."""
    from bot.observability import configure_logging

    asked = settings.log_level or ("INFO" if verbose else None)
    configure_logging(level=asked or level, secrets=settings.secret_values(), quiet_libraries=asked is None)


@db_app.command("upgrade", cls=Command)
def db_upgrade() -> None:
    """Apply database migrations up to the latest revision."""
    settings = load_settings()
    _engine(settings)
    console.print("database is up to date")


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{name} must be a date like 2026-01-31, not {value!r}") from None


def _sync(
    settings: Settings,
    engine,
    *,
    source: str | None,
    since: date | None,
    until: date | None,
    include_demo=None,
):
    from bot.services.secrets import SecretKeyError, connectors_for_workspace
    from bot.services.sync import run_all
    from bot.services.workspaces import active_workspace_ids
    from bot.sources.registry import UnknownSourceError

    # Every active workspace syncs with its own connectors (stored keys over the environment's).
    with engine.connect() as conn:
        workspace_ids = active_workspace_ids(conn, settings)
    plan, refusals = [], []
    for workspace_id in workspace_ids:
        try:
            connectors = connectors_for_workspace(
                settings, engine, workspace_id, only=source, include_demo=include_demo
            )
        except (UnknownSourceError, SecretKeyError) as error:
            refusals.append(str(error))
            continue
        plan.append((workspace_id, connectors))
    if not any(connectors for _, connectors in plan):
        if refusals:
            raise fail(refusals[0])
        raise fail("no source is enabled: set a vendor key (see README, Sources) or run `tokenwise demo`")
    progress = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    )
    tasks: dict[str, int] = {}

    def report(name: str, start: date, end: date, done: date) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(name, total=(end - start).days)
        progress.update(tasks[name], completed=(min(done, end) - start).days)

    outcomes = []
    with progress:
        for workspace_id, connectors in plan:
            outcomes += run_all(
                engine,
                connectors,
                workspace_id=workspace_id,
                since=since,
                until=until,
                backfill_days=settings.backfill_days,
                trailing_days=settings.trailing_days,
                progress=report,
            )
    return outcomes


@app.command(cls=Command)
def sync(
    source: Annotated[str | None, typer.Option(help="Only this source (name or vendor).")] = None,
    since: Annotated[str | None, typer.Option(help="Backfill from this UTC day (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this UTC day, exclusive.")] = None,
) -> None:
    """Run one sync pass over every enabled source (or one)."""
    from bot.domain.clock import utc_today
    from bot.domain.periods import days_covered

    settings = load_settings()
    _setup_logging(settings, "WARNING")
    _print_outcomes_only()
    start, end = _parse_day(since, "--since"), _parse_day(until, "--until")
    if start and end and end <= start:
        raise fail("--until must be after --since")
    engine = _engine(settings)
    outcomes = _sync(settings, engine, source=source, since=start, until=end)
    today = utc_today()
    failed = 0
    for outcome in outcomes:
        # The error starts with the source's name (SourceError): say it once.
        error = (outcome.error or "").removeprefix(f"{outcome.source}: ")
        if outcome.status == "failed":
            failed += 1
            err.print(f"[red]✗ {outcome.source}[/red]: {error}", highlight=False, soft_wrap=True)
        elif outcome.window_start is None or outcome.window_end is None:
            console.print(f"- {outcome.source}: {outcome.status} ({error})", highlight=False, soft_wrap=True)
        else:
            console.print(
                f"✓ {outcome.source}: {outcome.status}, "
                f"{days_covered(outcome.window_start, outcome.window_end, today)}: "
                f"{outcome.usage_rows} usage rows, {outcome.activity_rows} activity rows",
                highlight=False,
                soft_wrap=True,
            )
    if failed:
        raise typer.Exit(1)


def _print_outcomes_only() -> None:
    """The sync engine logs each failed source; this command prints every outcome itself."""
    import logging

    class _Outcomes(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not getattr(record, "sync_outcome", False)

    for handler in logging.getLogger().handlers:
        handler.addFilter(_Outcomes())


@app.command(cls=Command)
def demo(
    output: Annotated[Path, typer.Option(help="Where to write the Block Kit JSON.")] = Path(
        "demo-blocks.json"
    ),
    database_url: Annotated[str | None, typer.Option(help="Override DATABASE_URL.")] = None,
) -> None:
    """See Tokenwise work with no keys: a synthetic org through the real sync engine."""
    from bot.slack.blocks.builder import builder_messages
    from bot.slack.demo import demo_messages
    from bot.sources.demo import DEMO_DAYS
    from bot.terminal import render

    overrides = {"database_url": database_url} if database_url else {}
    settings = load_settings(**overrides)
    engine = _engine(settings)
    today = date.today()
    err.print(f"database: {engine.url.render_as_string(hide_password=True)}", highlight=False)
    outcomes = _sync(
        settings,
        engine,
        source="demo",
        since=today - timedelta(days=DEMO_DAYS),
        until=None,
        include_demo=True,
    )
    if any(o.status == "failed" for o in outcomes):
        raise fail("the demo sync failed: " + "; ".join(o.error or "" for o in outcomes if o.error), 1)
    with engine.connect() as conn:
        named = demo_messages(conn, settings, today)
    for title, shown in named[:2]:
        render(shown, console, title=title)
    output.write_text(json.dumps(builder_messages(named), indent=2))
    console.print(
        f'Block Kit JSON of {len(named)} messages written to {output}: paste each one\'s "message" '
        "into Slack's Block Kit Builder (https://app.slack.com/block-kit-builder).",
        highlight=False,
        soft_wrap=True,
    )


@app.command(cls=Command)
def recap(
    channel: Annotated[str, typer.Option(help="The channel the recap is for (its id, e.g. C0123ABC).")],
    preview: Annotated[
        bool, typer.Option("--preview", help="Print the recap here; nothing is posted or recorded.")
    ] = False,
    group: Annotated[
        str | None, typer.Option(help="A user group id (S...): the recap covers its members.")
    ] = None,
    chart: Annotated[
        Path | None, typer.Option(help="Also write the 8-week chart (PNG) to this file.")
    ] = None,
    database_url: Annotated[str | None, typer.Option(help="Override DATABASE_URL.")] = None,
) -> None:
    """Print the weekly recap of a channel's members (or a user group) for the last 7 days.

    A team whose members were never read from Slack is everyone in the database (`tokenwise demo`)."""
    import re
    from datetime import datetime

    from bot.services import recap as recaps
    from bot.services import teams
    from bot.slack.blocks.recap import build_recap
    from bot.slack.blocks.recap_chart import chart_alt_text, render_chart
    from bot.terminal import render

    if not preview:
        raise fail(
            "only --preview works here: subscribed recaps are posted on schedule (/tokens recap subscribe)"
        )
    for name, value in (("--channel", channel), ("--group", group)):
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", value.lstrip("#@")):
            raise fail(f"{name} must be a Slack id such as C0123ABC, not {value!r}")
    channel, group = channel.lstrip("#"), (group or "").lstrip("@") or None
    overrides = {"database_url": database_url} if database_url else {}
    settings = load_settings(**overrides)
    engine = _engine(settings)
    today = datetime.now(settings.tz).date()
    kind, slack_id = (teams.USERGROUP, group) if group else (teams.CHANNEL, channel)
    with engine.connect() as conn:
        team = teams.get_team(conn, workspace_id=settings.workspace_id, kind=kind, slack_id=slack_id)
        if team is not None and team.refreshed_at is not None and teams.member_count(conn, team_id=team.id):
            scope = recaps.team_scope(team)
        else:
            who = f"@{group}" if group else f"#{channel}"
            scope = recaps.people_scope(
                conn, workspace_id=settings.workspace_id, label=f"{who} (everyone in the database)"
            )
        report = recaps.load_configured(
            conn, settings, workspace_id=settings.workspace_id, scope=scope, end=today, today=today
        )
    render(build_recap(report, preview=True), console, title=f"tokenwise recap --channel {channel} --preview")
    if chart is not None:
        chart.write_bytes(render_chart(report))
        console.print(f"chart written to {chart} ({chart_alt_text(report)})", highlight=False)


@people_app.command("import", cls=Command)
def people_import(
    file: Annotated[
        Path, typer.Argument(help="UTF-8 CSV: email, name, slack_id, github and identity columns (README)")
    ],
    move: Annotated[
        bool, typer.Option("--move", help="Move ids that belong to someone else, with their history.")
    ] = False,
) -> None:
    """Create people and link their vendor identities from a CSV file (all or nothing)."""
    from bot.services.people import IdentityOwned, LinkError, import_csv

    if not file.is_file():
        raise fail(f"{file} does not exist")
    settings = load_settings()
    engine = _engine(settings)
    try:
        with engine.begin() as conn:
            result = import_csv(conn, workspace_id=settings.workspace_id, path=file, move=move)
    except IdentityOwned as error:
        raise fail(f"{file.name}: {error}; nothing imported (re-run with --move to move it)") from None
    except LinkError as error:
        raise fail(f"{error}; nothing imported") from None
    console.print(
        f"{file.name}: people {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged; {result.links} identity links added",
        highlight=False,
        soft_wrap=True,
    )


@people_app.command("forget", cls=Command)
def people_forget(
    email: Annotated[str, typer.Argument(help="The person's email.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a person's identity; their spend stays in org totals, anonymised (docs/privacy.md)."""
    from bot.services.people import find_by_email
    from bot.services.privacy import forget_person

    settings = load_settings()
    engine = _engine(settings)
    with engine.connect() as conn:
        person = find_by_email(conn, workspace_id=settings.workspace_id, email=email)
    if person is None or person.forgotten_at is not None:
        raise fail(f"no person with the email {email!r}")
    if not yes and not typer.confirm(f"Forget {email}? This cannot be undone.", err=True):
        raise fail("nothing changed", 1)
    with engine.begin() as conn:
        result = forget_person(
            conn, workspace_id=settings.workspace_id, person_id=person.id, actor_user_id="cli"
        )
    console.print(
        f"forgot person {result.person_id}: {result.usage_rows} usage and {result.activity_rows} activity "
        f"rows anonymised, {result.identities} identities deleted",
        highlight=False,
    )


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
            f"sync every {settings.sync_interval_minutes} min, budgets every "
            f"{settings.budget_check_minutes} min, recaps and team refreshes as due"
            if jobs
            else "off (--no-scheduler): run `tokenwise scheduler` next to it"
        ),
    ]
    if workers > 1:
        lines.append(f"  workers    {workers} HTTP processes")
    return lines


@app.command(cls=Command)
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
    _setup_logging(settings, verbose=verbose)
    workers = workers or settings.workers
    port = port or settings.port
    # Check the whole configuration before touching data: a bad setting must not migrate anything.
    engine = _engine(settings, migrate=False)
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
    _engine(settings, engine=engine)
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


@app.command(cls=Command)
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
    _setup_logging(settings, verbose=verbose)
    runtime = build_runtime(settings, _engine(settings))
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


@secrets_app.command("rotate", cls=Command)
def secrets_rotate() -> None:
    """Re-encrypt every stored vendor key with the first key of TOKENWISE_SECRET_KEY."""
    from bot.services.secrets import SecretKeyError, keyring, rotate

    settings = load_settings()
    try:
        fernet = keyring(settings)
    except SecretKeyError as error:
        raise fail(str(error)) from None
    engine = _engine(settings)
    with engine.begin() as conn:
        rotated, failed = rotate(conn, fernet)
    console.print(f"re-encrypted {rotated} stored key(s) with the first TOKENWISE_SECRET_KEY")
    if failed:
        raise fail(
            f"{failed} stored key(s) open with none of the configured keys: add the old key back "
            "(after the new one) and run this again, or enter those keys again with /tokens sources",
            1,
        )


def _otel_token(rotate: bool, workspace: str | None) -> None:
    from bot.services import otel

    settings = load_settings()
    engine = _engine(settings)
    workspace_id = workspace or settings.workspace_id
    try:
        if rotate:
            token = otel.rotate_token(engine, workspace_id=workspace_id, rotated_by="cli")
        else:
            token = otel.create_token(engine, workspace_id=workspace_id, created_by="cli")
    except otel.TokenError as error:
        raise fail(str(error)) from None
    # The one place the token is ever shown: only its hash is stored.
    err.print(
        f"ingest token for workspace {workspace_id} (shown once; send it as "
        "'Authorization: Bearer <token>' to /v1/metrics and /v1/logs):",
        highlight=False,
    )
    console.print(token, highlight=False, soft_wrap=True)


WorkspaceOption = Annotated[
    str | None, typer.Option("--workspace", help="Slack team id (default: TOKENWISE_WORKSPACE_ID).")
]


@token_app.command("create", cls=Command)
def otel_token_create(workspace: WorkspaceOption = None) -> None:
    """Create the workspace's OTLP ingest token (fails when one exists: rotate it)."""
    _otel_token(False, workspace)


@token_app.command("rotate", cls=Command)
def otel_token_rotate(workspace: WorkspaceOption = None) -> None:
    """Replace the workspace's ingest token; the old one stops working at once."""
    _otel_token(True, workspace)


def main() -> None:  # pragma: no cover
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
