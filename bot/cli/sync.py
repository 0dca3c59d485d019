"""``tokenwise sync``: one pass over every enabled source of every active workspace."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import date
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bot.cli.common import console, err, fail, load_settings, open_engine, parse_day, setup_logging
from bot.settings import Settings


def run_sync(
    settings: Settings,
    engine,
    *,
    source: str | None,
    since: date | None,
    until: date | None,
    include_demo=None,
    one_shot: bool = False,
):
    from bot.services.secrets import SecretKeyError, connectors_for_workspace
    from bot.services.sync import run_all, startup_heap_frozen
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
    # The process exits after this pass: start-up's heap need not be collected meanwhile.
    with progress, startup_heap_frozen() if one_shot else nullcontext():
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


def sync(
    source: Annotated[str | None, typer.Option(help="Only this source (name or vendor).")] = None,
    since: Annotated[str | None, typer.Option(help="Backfill from this UTC day (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this UTC day, exclusive.")] = None,
) -> None:
    """Run one sync pass over every enabled source (or one)."""
    from bot.domain.clock import utc_today
    from bot.domain.periods import days_covered

    settings = load_settings()
    setup_logging(settings, "WARNING")
    _print_outcomes_only()
    start, end = parse_day(since, "--since"), parse_day(until, "--until")
    if start and end and end <= start:
        raise fail("--until must be after --since")
    engine = open_engine(settings)
    outcomes = run_sync(settings, engine, source=source, since=start, until=end, one_shot=True)
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
