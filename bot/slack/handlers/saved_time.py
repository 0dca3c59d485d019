"""``/tokens saved [on | off | snooze <days>]`` (the opt-in) and the answer and "Snooze"
buttons of the "what did it save you?" DM (bot.services.saved_time)."""

from __future__ import annotations

import re

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.clock import utcnow
from bot.services import saved_time
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.runtime import Runtime
from bot.slack.blocks import saved_time as views
from bot.slack.blocks.common import Message
from bot.slack.blocks.reports import build_not_linked
from bot.slack.clicks import on_click
from bot.slack.context import CommandContext, admins_hint, caller_person, run_db
from bot.slack.directory import SlackDirectory

ANSWER_PATTERN = re.compile(rf"^{views.ANSWER_ACTION}_({'|'.join(map(re.escape, saved_time.BUCKETS))})$")


def _parse(args: list[str]) -> dict:
    """The ``set_pref`` arguments of ``/tokens saved ...``; {} for the status."""
    words = [a.lower() for a in args]
    if not words:
        return {}
    if words in (["on"], ["off"]):
        return {"on": words[0] == "on"}
    if words[0] == "snooze" and len(words) == 2 and words[1].isdigit():
        days = int(words[1])
        if 1 <= days <= saved_time.MAX_SNOOZE_DAYS:
            return {"snooze_days": days}
        raise CommandError(
            f"Snooze for 1 to {saved_time.MAX_SNOOZE_DAYS} days, not {days}.", usage_line("saved")
        )
    raise CommandError(f"I did not understand `{' '.join(args)[:60]}`.", usage_line("saved"))


async def handle_saved(ctx: CommandContext, command: ParsedCommand) -> Message:
    change = _parse(command.args)
    person = await caller_person(ctx)
    if person is None or person.id is None:
        return build_not_linked(admins_hint=admins_hint(ctx.runtime))
    workspace_id, now = ctx.caller.workspace_id, utcnow()
    if "snooze_days" in change:
        current = await ctx.db(saved_time.get_pref, workspace_id=workspace_id, person_id=person.id)
        if not current.opted_in:
            raise CommandError("The questions are off: there is nothing to snooze.", "`/tokens saved on`")
    if change:
        pref = await ctx.db(
            saved_time.set_pref, workspace_id=workspace_id, person_id=person.id, now=now, write=True, **change
        )
    else:
        pref = await ctx.db(saved_time.get_pref, workspace_id=workspace_id, person_id=person.id)
    settings = ctx.runtime.settings
    return views.build_status(pref, now=now, tz=settings.tz, min_group_size=settings.min_group_size)


async def answer_tap(runtime: Runtime, body: dict, workspace_id: str) -> Message:
    """An answer button, or the DM's "Snooze" button; the ask id is the value."""
    user_id = (body.get("user") or {}).get("id", "")
    action = (body.get("actions") or [{}])[0]
    action_id, value = action.get("action_id", ""), action.get("value", "")
    match = ANSWER_PATTERN.match(action_id)
    tz = runtime.settings.tz
    if (match is None and action_id != views.SNOOZE_ACTION) or not value.isdigit():
        return views.build_answer(saved_time.Answer("unknown"), tz=tz)
    who = {"workspace_id": workspace_id, "ask_id": int(value), "user_id": user_id, "now": utcnow()}
    if match is None:
        days = saved_time.BUTTON_SNOOZE_DAYS
        answer = await run_db(runtime, saved_time.snooze_from_ask, days=days, write=True, **who)
    else:
        answer = await run_db(runtime, saved_time.record_answer, bucket=match.group(1), write=True, **who)
    return views.build_answer(answer, tz=tz)


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    async def answer(client: AsyncWebClient, body: dict, workspace_id: str) -> Message:
        return await answer_tap(runtime, body, workspace_id)

    on_click(
        app,
        runtime,
        [ANSWER_PATTERN, views.SNOOZE_ACTION],
        answer,
        fallback=lambda: views.build_answer(saved_time.Answer("unknown"), tz=runtime.settings.tz),
        what="saved-time answer",
    )
