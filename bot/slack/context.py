"""What a ``/tokens`` handler is given, and the request-side helpers every listener shares.

- ``CommandContext``: the runtime, the user directory, the workspace's Web API client, the
  ``Caller`` and the command's ``trigger_id`` (a handler that opens a modal needs it).
- ``run_db`` / ``CommandContext.db``: data-layer work in a worker thread, so the event loop keeps
  serving acks; ``write=True`` runs it in a transaction.
- caller resolution: ``resolve_caller`` (who is asking, admin or not) and ``resolve_person`` (the
  person behind a Slack user: by Slack id, else by the email ``users.info`` shows).
- ``authorized_workspace``: the only workspace a request may read and write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.engine import read_connection
from bot.db.models import Person
from bot.domain.periods import Period, PeriodError, parse_period
from bot.services import access, demo, people
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.runtime import Runtime
from bot.slack.blocks.common import Message
from bot.slack.directory import SlackDirectory, SlackUser


async def run_db(runtime: Runtime, fn: Callable, *args, write: bool = False, **kwargs):
    """Run ``fn(conn, *args, **kwargs)`` in a worker thread: in a transaction with ``write``,
    on a read connection (``read_connection``: no transaction round trips) otherwise."""

    def work():
        with runtime.engine.begin() if write else read_connection(runtime.engine) as conn:
            return fn(conn, *args, **kwargs)

    return await asyncio.to_thread(work)


def authorized_workspace(runtime: Runtime, context: AsyncBoltContext) -> str:
    """The workspace a request may read and write: the installation Bolt authorized it with
    (``context.authorize_result``, whose team id comes from the installation's token). Never a
    team id read from the body: Bolt picks its installation by fields a listener does not read
    (``authorizations``, ``view.app_installed_team_id``), so the body's ``team_id`` or
    ``team.id`` can name another workspace than the one that verified the request."""
    result = context.authorize_result
    return runtime.workspace_for(result.team_id if result is not None else None)


def admins_hint(runtime: Runtime) -> str:
    """Who to ask: "a workspace admin", with up to three of TOKENWISE_ADMINS named."""
    named = []
    for entry in sorted(runtime.settings.admin_entries)[:3]:
        named.append(entry if "@" in entry else f"<@{entry.upper()}>")
    return "a workspace admin" + (f", {', '.join(named)}" if named else "")


@dataclass
class Caller:
    user_id: str
    channel_id: str
    workspace_id: str  # the installation Bolt authorized (authorized_workspace), never the body's
    slack: SlackUser | None
    is_admin: bool


async def resolve_caller(
    runtime: Runtime,
    directory: SlackDirectory,
    client: AsyncWebClient,
    *,
    user_id: str,
    workspace_id: str,
    channel_id: str = "",
) -> Caller:
    """Who is asking, as Slack shows them now (admin rights can change between two requests)."""
    slack_user = await directory.user(client, user_id)
    return Caller(
        user_id=user_id,
        channel_id=channel_id,
        workspace_id=workspace_id,
        slack=slack_user,
        is_admin=access.is_admin(
            runtime.settings,
            user_id=user_id,
            email=slack_user.email if slack_user else None,
            slack_admin=bool(slack_user and slack_user.is_admin),
        ),
    )


LOOK_UP = object()  # resolve_person's default: ask users.info only if the Slack id is not linked yet


async def resolve_person(
    runtime: Runtime,
    directory: SlackDirectory,
    client: AsyncWebClient,
    *,
    workspace_id: str,
    slack_user_id: str,
    slack_user: SlackUser | object | None = LOOK_UP,
    humans_only: bool = False,
    caller: bool = False,
) -> Person | None:
    """The person behind a Slack user (``people.resolve_slack_user``): by Slack id, a read; else
    by the email ``users.info`` shows, a write that links the id, once per person. Pass
    ``slack_user`` when the caller already has the ``users.info`` answer (None: Slack had none);
    ``humans_only`` never matches a bot's email. In demo mode (``TOKENWISE_DEMO=1``) a ``caller``
    with no person of their own is linked to a demo person (``services.demo``), never otherwise."""
    person = await run_db(
        runtime, people.resolve_slack_user, workspace_id=workspace_id, slack_user_id=slack_user_id
    )
    if person is not None:
        return person
    if slack_user is LOOK_UP:
        slack_user = await directory.user(client, slack_user_id)
    if not isinstance(slack_user, SlackUser):
        return None  # Slack did not answer: a demo claim too waits until it does
    # Demo mode: a caller whom no person matches takes a demo person (services.demo).
    demo_claim = caller and runtime.settings.demo and not slack_user.is_bot
    if not demo_claim and (not slack_user.email or (humans_only and slack_user.is_bot)):
        return None
    return await run_db(
        runtime,
        demo.resolve_demo_caller if demo_claim else people.resolve_slack_user,
        workspace_id=workspace_id,
        slack_user_id=slack_user_id,
        email=slack_user.email,
        name=slack_user.name,
        write=True,
    )


@dataclass
class CommandContext:
    runtime: Runtime
    directory: SlackDirectory
    client: AsyncWebClient
    caller: Caller
    trigger_id: str = ""  # the command's; opens a modal within 3 s of the command

    async def db(self, fn: Callable, *args, write: bool = False, **kwargs):
        """``run_db`` with this request's runtime."""
        return await run_db(self.runtime, fn, *args, write=write, **kwargs)

    async def person(
        self, slack_user_id: str, slack_user: SlackUser | object | None = LOOK_UP
    ) -> Person | None:
        """The person behind ``slack_user_id``, matched by email if need be (``resolve_person``)."""
        is_caller = slack_user_id == self.caller.user_id
        if is_caller:
            slack_user = self.caller.slack  # already looked up for this request
        return await resolve_person(
            self.runtime,
            self.directory,
            self.client,
            workspace_id=self.caller.workspace_id,
            slack_user_id=slack_user_id,
            slack_user=slack_user,
            caller=is_caller,
        )


async def caller_person(ctx: CommandContext) -> Person | None:
    """The caller's person: linked by Slack id, else matched by the email Slack shows for them."""
    return await ctx.person(ctx.caller.user_id)


# A ``/tokens`` subcommand: listed in bot.slack.command_table, answered ephemerally.
Handler = Callable[[CommandContext, ParsedCommand], Awaitable[Message]]


def one_period(ctx: CommandContext, args: list[str], name: str) -> Period:
    """The optional single period argument of ``/tokens <name>``; today's default when absent."""
    if len(args) > 1:
        raise CommandError(f"`/tokens {name}` takes at most one period.", usage_line(name))
    try:
        return parse_period(args[0] if args else None, ctx.runtime.today())
    except PeriodError as error:
        raise CommandError(str(error), usage_line(name)) from None


async def request_context(
    runtime: Runtime,
    directory: SlackDirectory,
    client: AsyncWebClient,
    body: dict,
    user_id: str,
    workspace_id: str,
    channel_id: str,
) -> CommandContext:
    """The context of a command or a click: its caller as Slack shows them now, its trigger."""
    caller = await resolve_caller(
        runtime, directory, client, user_id=user_id, workspace_id=workspace_id, channel_id=channel_id
    )
    return CommandContext(runtime, directory, client, caller, trigger_id=body.get("trigger_id", ""))
