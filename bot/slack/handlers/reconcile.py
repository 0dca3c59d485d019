"""``/tokens reconcile [period]`` (admins): each vendor's own total beside what Tokenwise
attributes, with the gaps in dollars and percent (bot.services.reconcile)."""

from __future__ import annotations

from bot.services import reconcile
from bot.services.commands import ParsedCommand
from bot.slack.blocks.common import Message
from bot.slack.blocks.reconcile import build_reconcile
from bot.slack.blocks.reports import build_error
from bot.slack.context import CommandContext, admins_hint, one_period


async def handle_reconcile(ctx: CommandContext, command: ParsedCommand) -> Message:
    if not ctx.caller.is_admin:
        return build_error(
            f"Reconciliation is for admins ({admins_hint(ctx.runtime)}). `/tokens me` shows your own numbers."
        )
    period = one_period(ctx, command.args, "reconcile")
    result = await ctx.db(reconcile.reconcile, workspace_id=ctx.caller.workspace_id, period=period)
    return build_reconcile(result)
