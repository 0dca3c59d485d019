"""What every ``tokenwise`` command shares: the typer classes, the consoles, one-line errors,
settings, the engine (migrated), logging and day options."""

from __future__ import annotations

from datetime import date

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from bot.settings import Settings


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


def typer_app(**options) -> typer.Typer:
    return typer.Typer(cls=Group, no_args_is_help=True, **options)


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


def open_engine(settings: Settings, *, migrate: bool = True, engine=None):
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


VERBOSE = typer.Option(
    "--verbose", "-v", help="Log every library's INFO lines too (as TOKENWISE_LOG_LEVEL=INFO does)."
)


def setup_logging(settings: Settings, level: str = "INFO", *, verbose: bool = False) -> None:
    """``level`` unless TOKENWISE_LOG_LEVEL says otherwise; the libraries' INFO chatter stays
    off the console unless a level (or ``--verbose``) was asked for."""
    from bot.observability import configure_logging

    asked = settings.log_level or ("INFO" if verbose else None)
    configure_logging(level=asked or level, secrets=settings.secret_values(), quiet_libraries=asked is None)


def parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{name} must be a date like 2026-01-31, not {value!r}") from None
