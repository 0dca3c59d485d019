"""``/tokens help``, ``me`` (and ``/tokens [period]``), ``@user``, ``org`` and ``status``, and
the buttons on those replies: switch the period (7d / 30d / quarter; also on ``/tokens team``)
and open a managed team (also on the App Home).

The numbers come from ``bot.services.me``, ``bot.services.reports`` and
``bot.services.status``; the replies are drawn by ``bot.slack.blocks.reports``.

A button's value is a ``/tokens`` command line. A click runs it again for the person who
clicked, through the same handler as the typed command, so every rule of who may see what is
decided again at that moment; a forged value is no more than a typed command, and only the
shapes the buttons make are accepted (``button_command``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.periods import parse_period
from bot.services import access, budgets, people, privacy, reconcile, reports
from bot.services.commands import CommandError, ParsedCommand, parse, usage_line
from bot.services.demo import DEMO_EMAILS
from bot.services.me import load_me
from bot.services.no_usage import NONE_IN_PERIOD, explain_no_usage
from bot.services.runtime import Runtime
from bot.services.status import status_report
from bot.slack.background import in_background
from bot.slack.blocks.budgets import with_budgets
from bot.slack.blocks.common import Message
from bot.slack.blocks.no_usage import build_no_usage, no_usage_blocks
from bot.slack.blocks.pr_costs import delivery_lines
from bot.slack.blocks.reconcile import with_reconciliation, with_unpriced
from bot.slack.blocks.reports import (
    OPEN_TEAM_ACTION,
    PERIOD_ACTION,
    WORKING,
    as_modal,
    build_error,
    build_help,
    build_me,
    build_org,
    build_status,
    open_team_buttons,
    period_buttons,
    with_actions,
    with_demo_note,
)
from bot.slack.context import (
    CommandContext,
    admins_hint,
    authorized_workspace,
    caller_person,
    one_period,
    request_context,
)
from bot.slack.directory import SlackDirectory
from bot.slack.handlers.teams import handle_team, team_target
from bot.slack.membership import refresh_managed_teams

log = logging.getLogger(__name__)


async def handle_help(ctx: CommandContext, command: ParsedCommand) -> Message:
    return build_help(is_admin=ctx.caller.is_admin)


async def handle_me(ctx: CommandContext, command: ParsedCommand) -> Message:
    period = one_period(ctx, command.args, "me")
    caller = ctx.caller
    settings = ctx.runtime.settings
    load = {
        "workspace_id": caller.workspace_id,
        "slack_user_id": caller.user_id,
        "is_admin": caller.is_admin,
        "period": period,
        "today": ctx.runtime.today(),
        "min_group_size": settings.min_group_size,
        "enabled": ctx.runtime.source_lags,
        "fix_days": settings.github_delivery_fix_days,
    }
    hint = admins_hint(ctx.runtime)
    mine = await ctx.db(load_me, **load)
    if mine is None:  # not linked by Slack id yet: match by email (a write), once per person
        person = await caller_person(ctx)
        if person is None:  # Slack shows no email: say so, and who can link them
            explained = await ctx.db(
                explain_no_usage,
                workspace_id=caller.workspace_id,
                email=caller.slack.email if caller.slack else None,
                person_id=None,
                enabled=ctx.runtime.source_lags,
            )
            return build_no_usage(explained, admins_hint=hint, tz=settings.tz, period_label=period.label)
        mine = await ctx.db(load_me, **load, person=person)
    opener = open_team_buttons(mine.managed)
    explained = mine.no_usage
    if explained is not None and explained.reason != NONE_IN_PERIOD:  # nothing linked, ever
        reply = build_no_usage(explained, admins_hint=hint, tz=settings.tz, period_label=period.label)
        return with_actions(with_budgets(reply, mine.budgets), opener)
    person = mine.person
    notice = (
        no_usage_blocks(explained, admins_hint=hint, tz=settings.tz, period_label=period.label)
        if explained is not None
        else []
    )
    reply = build_me(
        mine.report,
        who=person.display_name or person.email or "you",
        models=mine.report.models,
        tz=settings.tz,
        medians=mine.medians,
        notice=notice,
        delivery=delivery_lines(mine.delivery, mine.pr_costs),
    )
    # The budgets that apply now, whatever the period asked.
    reply = with_budgets(with_unpriced(reply, mine.unpriced), mine.budgets)
    if settings.demo and person.email in DEMO_EMAILS:
        reply = with_demo_note(reply, person.display_name or person.email)
    return with_actions(reply, period_buttons("me"), opener)


async def handle_org(ctx: CommandContext, command: ParsedCommand) -> Message:
    if not ctx.caller.is_admin:
        return build_error(
            f"Org totals are for admins ({admins_hint(ctx.runtime)}). `/tokens me` shows your own numbers."
        )
    period = one_period(ctx, command.args, "org")
    today = ctx.runtime.today()
    workspace_id = ctx.caller.workspace_id

    viewer = access.Viewer(ctx.caller.user_id, True, None)

    def load(conn):
        report = reports.org_report(conn, workspace_id=workspace_id, period=period, today=today)
        models = reports.org_models(conn, workspace_id=workspace_id, period=period)
        unpriced = reports.unpriced_models(
            conn, workspace_id=workspace_id, start=period.start, end=period.end
        )
        org_budgets = budgets.budgets_of_target(
            conn, workspace_id=workspace_id, kind=budgets.ORG, target_id=budgets.ORG
        )
        owned = budgets.visible_statuses(
            conn,
            workspace_id=workspace_id,
            viewer=viewer,
            budgets=[(budget, None) for budget in org_budgets],
            today=today,
            min_group_size=ctx.runtime.settings.min_group_size,
        )
        return report, models, unpriced, owned

    report, models, unpriced, owned = await ctx.db(load)
    reply = with_budgets(with_unpriced(build_org(report, models=models), unpriced), owned)
    return with_actions(reply, period_buttons("org"))


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
    settings = ctx.runtime.settings
    return with_reconciliation(build_status(report, tz=settings.tz, demo_mode=settings.demo), gaps)


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
    if not ctx.caller.is_admin and not await refresh_managed_teams(ctx):
        return refusal  # manages no team: can_view_person would refuse; spare the target lookups
    slack_user = await ctx.directory.user(ctx.client, target)
    person = await ctx.person(target, slack_user)
    # Read-only: matching the viewer is not needed here (viewing yourself was handled above).
    viewer_person = await ctx.db(
        people.resolve_slack_user, workspace_id=ctx.caller.workspace_id, slack_user_id=ctx.caller.user_id
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
        return reports.person_report(
            conn, workspace_id=workspace_id, person_ids=[person.id], period=period, today=today
        )

    report = await ctx.db(load, write=True)
    reply = build_me(
        report, who=f"<@{target}>", models=report.models, tz=ctx.runtime.settings.tz, self_view=False
    )
    return with_actions(reply, period_buttons(f"<@{target}>"))


# -- the buttons -------------------------------------------------------------------------------

RERUNNABLE = {"me": handle_me, "user": handle_user_view, "org": handle_org, "team": handle_team}


def button_command(value: str) -> ParsedCommand:
    """The command a button's value names, if it is one of the shapes the buttons make: ``me``,
    ``org`` or ``<@U…>`` with at most a period, ``team <group or channel>`` with at most a period.
    Anything else (``team refresh``, ``team approve``, another subcommand) is refused."""
    command = parse(value[:300])
    args = command.args
    if command.name not in RERUNNABLE or len(args) > (2 if command.name == "team" else 1):
        raise CommandError("This button is not one I made; type the `/tokens` command instead.")
    if command.name == "team" and (not args or team_target(args[0]) is None):
        raise CommandError("This button is not one I made; type the `/tokens` command instead.")
    return command


async def run_button(
    runtime: Runtime, directory: SlackDirectory, client: AsyncWebClient, body: dict, workspace_id: str
) -> Message:
    """The reply to a click, for the person who clicked (never the one who got the first reply)."""
    user_id = body.get("user", {}).get("id", "")
    try:
        command = button_command(str((body.get("actions") or [{}])[0].get("value", "")))
        channel_id = (body.get("channel") or {}).get("id", "")
        ctx = await request_context(runtime, directory, client, body, user_id, workspace_id, channel_id)
        return await RERUNNABLE[command.name](ctx, command)
    except CommandError as error:
        return build_error(error.message, error.usage)
    except Exception:
        log.exception("a /tokens button failed for user %s", user_id)
        return build_error("Something went wrong on my side; it has been logged. Please try again.")


async def modal_for(client: AsyncWebClient, body: dict) -> str | None:
    """Where a click's reply goes when it has no ``response_url`` (the App Home, a modal): the
    modal it came from, else one opened now, within the trigger's 3 seconds, and filled in when
    the reply is ready. None: a message's buttons, answered through the ``response_url``."""
    if body.get("response_url"):
        return None
    view = body.get("view") or {}
    if view.get("type") == "modal":
        return view.get("id", "")
    opened = await client.views_open(trigger_id=body.get("trigger_id", ""), view=as_modal(WORKING))
    return opened["view"]["id"]


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    async def answer(body: dict, client: AsyncWebClient, respond: AsyncRespond, workspace_id: str) -> None:
        action = (body.get("actions") or [{}])[0].get("action_id", "")
        try:
            view_id = await modal_for(client, body)
            reply = await run_button(runtime, directory, client, body, workspace_id)
            if view_id is not None:
                await client.views_update(view_id=view_id, view=as_modal(reply))
            else:  # a new period replaces the reply; an opened team comes as a new message
                replace_original = action.startswith(PERIOD_ACTION)
                await respond(
                    **reply.as_kwargs(), response_type="ephemeral", replace_original=replace_original
                )
        except Exception:  # an expired response_url or trigger_id: logged, nothing more
            log.warning("could not deliver a /tokens button answer")

    async def on_click(
        ack: AsyncAck, body: dict, client: AsyncWebClient, respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        await ack()
        workspace_id = authorized_workspace(runtime, context)
        in_background(answer(body, client, respond, workspace_id), "/tokens button")

    pattern = re.compile(rf"^({PERIOD_ACTION}|{OPEN_TEAM_ACTION})_\w+$")
    app.action(pattern)(on_click)
