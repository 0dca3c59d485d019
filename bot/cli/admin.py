"""Maintenance groups: ``tokenwise db``, ``tokenwise secrets`` and ``tokenwise otel token``."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.common import Command, console, err, fail, load_settings, open_engine, typer_app

db_app = typer_app(help="Database maintenance.")
secrets_app = typer_app(help="Vendor keys stored per workspace (encrypted).")
otel_app = typer_app(help="OTLP intake for coding agents (docs/sources/otel.md).")
token_app = typer_app(help="The workspace's ingest token.")
otel_app.add_typer(token_app, name="token")


@db_app.command("upgrade", cls=Command)
def db_upgrade() -> None:
    """Apply database migrations up to the latest revision."""
    settings = load_settings()
    open_engine(settings)
    console.print("database is up to date")


@secrets_app.command("rotate", cls=Command)
def secrets_rotate() -> None:
    """Re-encrypt every stored vendor key with the first key of TOKENWISE_SECRET_KEY."""
    from bot.services.secrets import SecretKeyError, keyring, rotate

    settings = load_settings()
    try:
        fernet = keyring(settings)
    except SecretKeyError as error:
        raise fail(str(error)) from None
    engine = open_engine(settings)
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
    engine = open_engine(settings)
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
