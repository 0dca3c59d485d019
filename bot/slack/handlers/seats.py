"""``/tokens seats`` (admins): the seat ledger, and its Reclaim buttons, which ask the seat's
holder by DM first, once (bot.services.seats_ledger)."""

from __future__ import annotations

import dataclasses

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import privacy, seats_ledger
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.runtime import Runtime
from bot.slack.blocks import seats as views
from bot.slack.blocks.common import Message
from bot.slack.blocks.reports import build_error
from bot.slack.clicks import on_click
from bot.slack.context import CommandContext, admins_hint, resolve_caller, run_db
from bot.slack.directory import SlackDirectory
from bot.slack.messaging import send_dm, slack_error


async def handle_seats(ctx: CommandContext, command: ParsedCommand) -> Message:
    if command.args:
        raise CommandError("`/tokens seats` takes no arguments.", usage_line("seats"))
    caller = ctx.caller
    if not caller.is_admin:
        return build_error(f"The seat ledger is for workspace admins ({admins_hint(ctx.runtime)}).")
    settings = ctx.runtime.settings
    today = ctx.runtime.today()

    def load(conn):
        ledger = seats_ledger.load_ledger(
            conn,
            workspace_id=caller.workspace_id,
            today=today,
            idle_days=settings.seat_idle_days,
            reduce_days=settings.seat_reduce_days,
            renewals=settings.seat_renewals,
        )
        # Who holds an unused seat is about them: each can see who looked (`/tokens audit me`).
        privacy.record_views(
            conn,
            workspace_id=caller.workspace_id,
            actor_user_id=caller.user_id,
            action="view.seats",
            person_ids=sorted({s.person_id for v in ledger.vendors for s in v.reassignable if s.person_id}),
            detail="seat ledger",
        )
        return ledger

    ledger = await ctx.db(load, write=True)
    return views.build_ledger(ledger, today)


async def answer_reclaim(
    runtime: Runtime, directory: SlackDirectory, client: AsyncWebClient, body: dict, workspace_id: str
) -> Message:
    user_id = (body.get("user") or {}).get("id", "")
    action = (body.get("actions") or [{}])[0]
    parsed = views.parse_reclaim_value(action.get("value", ""))
    if parsed is None:
        return views.build_reclaim_answer(seats_ledger.ReclaimClaim("unknown"))
    # Admin rights are decided now, from Slack and the settings: never from the message clicked.
    caller = await resolve_caller(runtime, directory, client, user_id=user_id, workspace_id=workspace_id)
    claim = await run_db(
        runtime,
        seats_ledger.claim_reclaim,
        workspace_id=workspace_id,
        vendor=parsed[0],
        actor=parsed[1],
        requested_by=user_id,
        is_admin=caller.is_admin,
        today=runtime.today(),
        idle_days=runtime.settings.seat_idle_days,
        write=True,
    )
    if claim.status != seats_ledger.CLAIMED:
        return views.build_reclaim_answer(claim)
    assert claim.holder is not None and claim.reclaim_id is not None
    try:
        dm = views.build_holder_dm(claim, user_id)
        channel, ts = await send_dm(client, claim.holder.slack_user_id or "", dm)
    except Exception as error:
        channel, ts, reason = "", "", slack_error(error)
    else:
        reason = ""
    status = seats_ledger.FAILED if reason else seats_ledger.SENT
    await run_db(
        runtime,
        seats_ledger.finish_reclaim,
        reclaim_id=claim.reclaim_id,
        status=status,
        channel=channel,
        ts=ts,
        error=reason or None,
        write=True,
    )
    return views.build_reclaim_answer(dataclasses.replace(claim, status=status), error=reason)


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    async def answer(client: AsyncWebClient, body: dict, workspace_id: str) -> Message:
        return await answer_reclaim(runtime, directory, client, body, workspace_id)

    on_click(
        app,
        runtime,
        [views.RECLAIM_ACTION],
        answer,
        fallback=lambda: views.build_reclaim_answer(seats_ledger.ReclaimClaim("unknown")),
        what="seat reclaim click",
    )
