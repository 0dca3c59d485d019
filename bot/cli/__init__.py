"""The ``tokenwise`` command line (typer), one module per command group; this module builds
``app`` from them. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bot.cli import demo, serve, sync
from bot.cli.admin import db_app, otel_app, secrets_app
from bot.cli.common import Command, console, typer_app
from bot.cli.people import people_app

app = typer_app(help="Tokenwise: AI spend next to value, in Slack.", add_completion=False)
app.add_typer(db_app, name="db")
app.add_typer(people_app, name="people")
app.add_typer(secrets_app, name="secrets")
app.add_typer(otel_app, name="otel")


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


for command in (sync.sync, demo.demo, demo.recap, serve.run, serve.scheduler):
    app.command(cls=Command)(command)


def main() -> None:  # pragma: no cover
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
