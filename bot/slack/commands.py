"""The ``/tokens`` listener: ack fast, parse, authorize, call services, answer ephemerally.

The answer goes in the ack when it is ready within ``ACK_BUDGET_SECONDS`` (the usual case: a
few indexed queries); otherwise the ack says "working on it" and the answer follows through the
``response_url`` from a background task. Every failure becomes an ephemeral message; nothing
reaches Slack as a 500.

The app runs with ``process_before_response=True``: Bolt sends the HTTP response (or the Socket
Mode envelope's ack) when the listener returns, not as soon as it acks. So every listener returns
right after its ack and hands any slow tail (Slack Web API calls, database writes, a late answer)
to ``in_background``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.models import Person
from bot.domain.periods import PeriodError, parse_period
from bot.services import access, budgets, people, privacy, reconcile, reports
from bot.services.commands import CommandError, ParsedCommand, parse, usage_line
from bot.services.runtime import Runtime
from bot.services.status import status_report
from bot.slack.blocks.budgets import with_budgets
from bot.slack.blocks.common import Message
from bot.slack.blocks.reconcile import with_reconciliation, with_unpriced
from bot.slack.blocks.reports import (
    build_error,
    build_help,
    build_me,
    build_not_linked,
    build_org,
    build_status,
)
from bot.slack.directory import SlackDirectory, SlackUser

log = logging.getLogger(__name__)

ACK_BUDGET_SECONDS = 2.0

# The event loop keeps only weak references to tasks: a task nobody holds can be garbage-collected
# mid-flight. Listeners' background work is held here until it finishes.
_BACKGROUND: set[asyncio.Task] = set()


async def _logged(work: Awaitable, what: str) -> None:
    try:
        await work
    except Exception:  # nobody awaits a background task: log it, never raise into Bolt
        log.exception("%s failed", what)


def in_background(work: Awaitable, what: str) -> asyncio.Task:
    """Run ``work`` after the listener has returned (and Slack has its response); a failure is
    logged with ``what``."""
    task = asyncio.get_running_loop().create_task(_logged(work, what))
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


async def drain_background(timeout: float) -> None:
    """Wait up to ``timeout`` seconds for this loop's background work (a graceful shutdown lets
    late answers and button effects finish)."""
    loop = asyncio.get_running_loop()
    pending = [task for task in _BACKGROUND if task.get_loop() is loop]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


@dataclass
class Caller:
    user_id: str
    channel_id: str
    workspace_id: str  # the installation Bolt authorized (authorized_workspace), never the body's
    slack: SlackUser | None
    is_admin: bool


@dataclass
class CommandContext:
    runtime: Runtime
    directory: SlackDirectory
    client: AsyncWebClient
    caller: Caller

    async def db(self, fn: Callable, *args, write: bool = False, **kwargs):
        """Run a data-layer call in a worker thread (the event loop keeps serving acks)."""

        def work():
            engine = self.runtime.engine
            with engine.begin() if write else engine.connect() as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.to_thread(work)


Handler = Callable[[CommandContext, ParsedCommand], Awaitable[Message]]


def one_period(ctx: CommandContext, args: list[str], name: str):
    if len(args) > 1:
        raise CommandError(f"`/tokens {name}` takes at most one period.", usage_line(name))
    try:
        return parse_period(args[0] if args else None, ctx.runtime.today())
    except PeriodError as error:
        raise CommandError(str(error), usage_line(name)) from None


async def caller_person(ctx: CommandContext) -> Person | None:
    caller = ctx.caller
    person = await ctx.db(
        people.find_by_slack_id, workspace_id=caller.workspace_id, slack_user_id=caller.user_id
    )
    if person is None and caller.slack and caller.slack.email:
        person = await ctx.db(
            people.match_slack_user,
            workspace_id=caller.workspace_id,
            slack_user_id=caller.user_id,
            email=caller.slack.email,
            name=caller.slack.name,
            write=True,
        )
    return person


def admins_hint(runtime: Runtime) -> str:
    named = []
    for entry in sorted(runtime.settings.admin_entries)[:3]:
        named.append(entry if "@" in entry else f"<@{entry.upper()}>")
    return "a workspace admin" + (f", {', '.join(named)}" if named else "")


async def handle_help(ctx: CommandContext, command: ParsedCommand) -> Message:
    return build_help(is_admin=ctx.caller.is_admin)


async def handle_me(ctx: CommandContext, command: ParsedCommand) -> Message:
    period = one_period(ctx, command.args, "me")
    today = ctx.runtime.today()
    caller = ctx.caller
    workspace_id = caller.workspace_id
    today, min_group_size = ctx.runtime.today(), ctx.runtime.settings.min_group_size

    def load(conn, person: Person | None = None):
        # The person and their numbers in one worker-thread call: each hand-off costs about as
        # much as a query under load (docs/benchmarks.md, B5).
        person = person or people.find_by_slack_id(
            conn, workspace_id=workspace_id, slack_user_id=caller.user_id
        )
        if person is None:
            return None
        report = reports.person_report(
            conn, workspace_id=workspace_id, person_ids=[person.id], period=period, today=today
        )
        models = report.models
        owned = budgets.statuses_for_person(
            conn,
            workspace_id=workspace_id,
            viewer=access.Viewer(caller.user_id, caller.is_admin, person.id),
            person_id=person.id,
            today=today,
            min_group_size=min_group_size,
        )
        unpriced = reports.unpriced_models(
            conn, workspace_id=workspace_id, start=period.start, end=period.end, person_ids=[person.id]
        )
        return person, report, models, owned, unpriced

    loaded = await ctx.db(load)
    if loaded is None:  # not linked by Slack id yet: match by email (a write), once per person
        person = await caller_person(ctx)
        if person is None:
            return build_not_linked(admins_hint=admins_hint(ctx.runtime))
        loaded = await ctx.db(load, person)
    person, report, models, owned, unpriced = loaded
    reply = build_me(
        report, who=person.display_name or person.email or "you", models=models, tz=ctx.runtime.settings.tz
    )
    # The budgets that apply now, whatever the period asked.
    return with_budgets(with_unpriced(reply, unpriced), owned)


async def handle_org(ctx: CommandContext, command: ParsedCommand) -> Message:
    if not ctx.caller.is_admin:
        return build_error(
            f"Org totals are for admins ({admins_hint(ctx.runtime)}). `/tokens me` shows your own numbers."
        )
    period = one_period(ctx, command.args, "org")
    today = ctx.runtime.today()
    workspace_id = ctx.caller.workspace_id

    def load(conn):
        report = reports.org_report(conn, workspace_id=workspace_id, period=period, today=today)
        models = reports.org_models(conn, workspace_id=workspace_id, period=period)
        unpriced = reports.unpriced_models(
            conn, workspace_id=workspace_id, start=period.start, end=period.end
        )
        return report, models, unpriced

    report, models, unpriced = await ctx.db(load)
    return with_unpriced(build_org(report, models=models), unpriced)


async def handle_status(ctx: CommandContext, command: ParsedCommand) -> Message:
    if command.args:
        raise CommandError("`/tokens status` takes no arguments.", usage_line("status"))
    report = await ctx.db(
        status_report, workspace_id=ctx.caller.workspace_id, enabled=ctx.runtime.source_lags
    )
    gaps = None
    if ctx.caller.is_admin:  # vendor totals, gaps and unpriced tokens are org figures: admins only
        period = parse_period(None, ctx.runtime.today())
        gaps = await ctx.db(reconcile.reconcile, workspace_id=ctx.caller.workspace_id, period=period)
    else:
        report = replace(report, unlinked=[])  # unlinked actors carry spend: admins only
    return with_reconciliation(build_status(report, tz=ctx.runtime.settings.tz), gaps)


HANDLERS: dict[str, Handler] = {
    "help": handle_help,
    "me": handle_me,
    "org": handle_org,
    "status": handle_status,
}


def feature_modules() -> list:
    """Modules in bot/slack/handlers/ (imported late: they import this module)."""
    import importlib
    import pkgutil

    import bot.slack.handlers as package

    return [
        importlib.import_module(f"{package.__name__}.{m.name}")
        for m in pkgutil.iter_modules(package.__path__)
    ]


async def handle_user_view(ctx: CommandContext, command: ParsedCommand) -> Message:
    """``/tokens @user``: whoever ``access.can_view_person`` allows (themself, their managers,
    admins). The refusal is the same whatever the target's state, so it reveals nothing."""
    target = command.target_user
    if target == ctx.caller.user_id:
        return await handle_me(ctx, ParsedCommand("me", command.args))
    period = one_period(ctx, command.args, "me")
    today = ctx.runtime.today()
    refusal = build_error(
        f"<@{target}>'s numbers are visible to {access.PERSON_WHO_CAN} ({admins_hint(ctx.runtime)})."
    )
    if not ctx.caller.is_admin:
        from bot.slack.handlers.teams import refresh_managed_teams  # late: handlers import this module

        if not await refresh_managed_teams(ctx):
            return refusal  # manages no team: can_view_person would refuse; spare the target lookups
    slack_user = await ctx.directory.user(ctx.client, target)
    person = await ctx.db(people.find_by_slack_id, workspace_id=ctx.caller.workspace_id, slack_user_id=target)
    if person is None and slack_user and slack_user.email:
        person = await ctx.db(
            people.match_slack_user,
            workspace_id=ctx.caller.workspace_id,
            slack_user_id=target,
            email=slack_user.email,
            name=slack_user.name,
            write=True,
        )
    # Read-only: matching the viewer is not needed here (viewing yourself was handled above).
    viewer_person = await ctx.db(
        people.find_by_slack_id, workspace_id=ctx.caller.workspace_id, slack_user_id=ctx.caller.user_id
    )
    viewer = access.Viewer(
        ctx.caller.user_id, ctx.caller.is_admin, viewer_person.id if viewer_person else None
    )
    decision = await ctx.db(
        access.can_view_person, ctx.caller.workspace_id, viewer, person.id if person else None
    )
    if not decision.allowed:
        return refusal
    if person is None:
        if slack_user is None:
            return build_error(f"I cannot find <@{target}> in this workspace.")
        return build_error(
            f"I have no usage linked to <@{target}>"
            + (" (a deactivated account)." if slack_user.deleted else ".")
        )
    workspace_id = ctx.caller.workspace_id

    def load(conn):
        privacy.record(
            conn,
            workspace_id=workspace_id,
            actor_user_id=ctx.caller.user_id,
            action="view.person",
            target=f"person:{person.id}",
            detail=f"period={period.start}..{period.last_day} as={decision.reason}",
        )
        report = reports.person_report(
            conn, workspace_id=workspace_id, person_ids=[person.id], period=period, today=today
        )
        models = report.models
        return report, models

    report, models = await ctx.db(load, write=True)
    return build_me(report, who=f"<@{target}>", models=models, tz=ctx.runtime.settings.tz, self_view=False)


def authorized_workspace(runtime: Runtime, context: AsyncBoltContext) -> str:
    """The workspace a request may read and write: the installation Bolt authorized it with
    (``context.authorize_result``, whose team id comes from the installation's token). Never a
    team id read from the body: Bolt picks its installation by fields a listener does not read
    (``authorizations``, ``view.app_installed_team_id``), so the body's ``team_id`` or
    ``team.id`` can name another workspace than the one that verified the request."""
    result = context.authorize_result
    return runtime.workspace_for(result.team_id if result is not None else None)


async def answer(
    runtime: Runtime, directory: SlackDirectory, client: AsyncWebClient, body: dict, workspace_id: str
) -> Message:
    user_id = body.get("user_id", "")
    try:
        command = parse(body.get("text"))
        slack_user = await directory.user(client, user_id)
        caller = Caller(
            user_id=user_id,
            channel_id=body.get("channel_id", ""),
            workspace_id=workspace_id,
            slack=slack_user,
            is_admin=access.is_admin(
                runtime.settings,
                user_id=user_id,
                email=slack_user.email if slack_user else None,
                slack_admin=bool(slack_user and slack_user.is_admin),
            ),
        )
        ctx = CommandContext(runtime, directory, client, caller)
        if command.name == "user":
            return await handle_user_view(ctx, command)
        return await HANDLERS[command.name](ctx, command)
    except CommandError as error:
        return build_error(error.message, error.usage)
    except Exception:
        log.exception("/tokens failed for user %s", user_id)
        return build_error(
            "Something went wrong on my side; it has been logged. Please try again in a minute."
        )


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    """Wire /tokens, plus each feature module's subcommands (``HANDLERS``) and its events and
    actions (an optional ``register(app, runtime, directory)``)."""
    for module in feature_modules():
        HANDLERS.update(getattr(module, "HANDLERS", {}))
        if hasattr(module, "register"):
            module.register(app, runtime, directory)

    async def deliver_late(task: asyncio.Task, respond: AsyncRespond, user_id: str) -> None:
        reply = await task
        try:
            await respond(**reply.as_kwargs(), response_type="ephemeral", replace_original=True)
        except Exception:  # an expired response_url is logged, nothing more
            log.warning("could not deliver a late /tokens answer to user %s", user_id)

    async def handle_tokens_command(
        ack: AsyncAck, body: dict, client: AsyncWebClient, respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        workspace_id = authorized_workspace(runtime, context)
        task = asyncio.ensure_future(answer(runtime, directory, client, body, workspace_id))
        done, _ = await asyncio.wait((task,), timeout=ACK_BUDGET_SECONDS)
        if done:
            await ack(**task.result().as_kwargs(), response_type="ephemeral")
            return
        await ack(text=":hourglass_flowing_sand: Working on it…", response_type="ephemeral")
        user_id = body.get("user_id", "")
        in_background(deliver_late(task, respond, user_id), f"late /tokens answer for {user_id}")

    app.command("/tokens")(handle_tokens_command)
