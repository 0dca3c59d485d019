"""``/tokens anomalies`` (your own incidents; managers also the people their grants reach;
admins all) and the "Expected" buttons of the anomaly DMs (bot.services.anomalies)."""

from __future__ import annotations

import re
from datetime import timedelta

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.clock import utcnow
from bot.services import access, privacy
from bot.services.anomalies import incidents
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.runtime import Runtime
from bot.slack.blocks import anomalies as views
from bot.slack.blocks.common import Message
from bot.slack.clicks import on_click
from bot.slack.context import CommandContext, caller_person, run_db
from bot.slack.directory import SlackDirectory

LISTED_DAYS = 7
EXPECTED_PATTERN = re.compile(rf"^{views.EXPECTED_ACTION}_(\d+)$")


async def handle_anomalies(ctx: CommandContext, command: ParsedCommand) -> Message:
    if command.args:
        raise CommandError("`/tokens anomalies` takes no arguments.", usage_line("anomalies"))
    caller = ctx.caller
    person = await caller_person(ctx)
    viewer = access.Viewer(caller.user_id, caller.is_admin, person.id if person else None)
    workspace_id = caller.workspace_id

    def load(conn):
        shown = incidents.visible_incidents(
            conn, workspace_id=workspace_id, viewer=viewer, since=utcnow() - timedelta(days=LISTED_DAYS)
        )
        others = sorted({i.person_id for i in shown if i.person_id not in (None, viewer.person_id)})
        # Someone else's figures were shown: each of them can see who looked (`/tokens audit me`).
        privacy.record_views(
            conn,
            workspace_id=workspace_id,
            actor_user_id=caller.user_id,
            action="view.anomalies",
            person_ids=others,
            detail="as=admin" if caller.is_admin else "as=manager",
        )
        return shown, incidents.subjects(conn, shown)

    shown, labels = await ctx.db(load, write=True)
    scope = "the workspace" if caller.is_admin else "your incidents and your teams'"
    return views.build_anomalies(shown, labels=labels, tz=ctx.runtime.settings.tz, scope=scope)


async def answer_expected(
    runtime: Runtime, directory: SlackDirectory, client: AsyncWebClient, body: dict, workspace_id: str
) -> Message:
    user_id = (body.get("user") or {}).get("id", "")
    action = (body.get("actions") or [{}])[0]
    match = EXPECTED_PATTERN.match(action.get("action_id", ""))
    value = action.get("value", "")
    if match is None or not value.isdigit():
        return views.build_answer(incidents.Answer("unknown"), tz=runtime.settings.tz)
    slack_user = await directory.user(client, user_id)
    is_admin = access.is_admin(
        runtime.settings,
        user_id=user_id,
        email=slack_user.email if slack_user else None,
        slack_admin=bool(slack_user and slack_user.is_admin),
    )
    answer = await run_db(
        runtime,
        incidents.mark_expected,
        workspace_id=workspace_id,
        incident_id=int(value),
        user_id=user_id,
        is_admin=is_admin,
        days=int(match.group(1)),
        write=True,
    )
    return views.build_answer(answer, tz=runtime.settings.tz)


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    async def answer(client: AsyncWebClient, body: dict, workspace_id: str) -> Message:
        return await answer_expected(runtime, directory, client, body, workspace_id)

    on_click(
        app,
        runtime,
        [EXPECTED_PATTERN],
        answer,
        fallback=lambda: views.build_answer(incidents.Answer("unknown"), tz=runtime.settings.tz),
        what="anomaly 'expected' click",
    )
