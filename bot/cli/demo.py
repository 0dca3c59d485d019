"""``tokenwise demo`` (a synthetic org through the real sync engine) and ``tokenwise recap
--preview`` (a team's weekly recap in the terminal)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import console, err, fail, load_settings, open_engine
from bot.cli.sync import run_sync


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
    engine = open_engine(settings)
    today = date.today()
    err.print(f"database: {engine.url.render_as_string(hide_password=True)}", highlight=False)
    outcomes = run_sync(
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
    engine = open_engine(settings)
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
