"""``tokenwise people``: import people and their identities from CSV, forget a person."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import Command, console, fail, load_settings, open_engine, typer_app

people_app = typer_app(help="People and identities.")


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
    engine = open_engine(settings)
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
    engine = open_engine(settings)
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
