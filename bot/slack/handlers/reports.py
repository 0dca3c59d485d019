"""``/tokens help``, ``me`` (and ``/tokens [period]``), ``@user``, ``org`` and ``status``.

The numbers come from ``bot.services.me``, ``bot.services.reports`` and
``bot.services.status``; the replies are drawn by ``bot.slack.blocks.reports``.
"""

from __future__ import annotations

from dataclasses import replace

from bot.domain.periods import parse_period
from bot.services import access, people, privacy, reconcile, reports
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.demo import DEMO_EMAILS
from bot.services.me import load_me
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
    with_demo_note,
)
from bot.slack.context import CommandContext, admins_hint, caller_person, one_period
from bot.slack.membership import refresh_managed_teams


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
    }
    mine = await ctx.db(load_me, **load)
    if mine is None:  # not linked by Slack id yet: match by email (a write), once per person
        person = await caller_person(ctx)
        if person is None:
            return build_not_linked(admins_hint=admins_hint(ctx.runtime))
        mine = await ctx.db(load_me, **load, person=person)
    person = mine.person
    reply = build_me(
        mine.report,
        who=person.display_name or person.email or "you",
        models=mine.report.models,
        tz=settings.tz,
    )
    # The budgets that apply now, whatever the period asked.
    reply = with_budgets(with_unpriced(reply, mine.unpriced), mine.budgets)
    if settings.demo and person.email in DEMO_EMAILS:
        reply = with_demo_note(reply, person.display_name or person.email)
    return reply


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
    return build_me(
        report, who=f"<@{target}>", models=report.models, tz=ctx.runtime.settings.tz, self_view=False
    )
