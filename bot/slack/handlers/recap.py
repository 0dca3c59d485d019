"""``/tokens recap`` (subscribe, list, unsubscribe, preview) and the vote buttons.

The scheduled delivery of the recaps these subscriptions ask for is ``bot.jobs.recaps``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.models import Team
from bot.services import access, recap, teams
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.runtime import Runtime
from bot.slack.background import in_background
from bot.slack.blocks.common import Message
from bot.slack.blocks.format import team_mention, team_mention_of
from bot.slack.blocks.recap import (
    PREVIEW_VALUE,
    VOTE_PREFIX,
    build_list,
    build_preview_vote_note,
    build_recap,
    build_subscribed,
    build_unsubscribed,
    with_tally,
)
from bot.slack.blocks.reports import build_error
from bot.slack.context import CommandContext, admins_hint, authorized_workspace, caller_person, run_db
from bot.slack.directory import SlackDirectory
from bot.slack.membership import TeamAt, TeamReadError, refresh_stale_teams, refresh_team

log = logging.getLogger(__name__)

# -- shared helpers ------------------------------------------------------------------------------


def invite_hint(channel_id: str) -> str:
    return (
        f"I am not in <#{channel_id}>. Invite me there first (`/invite @tokenwise` in <#{channel_id}>), "
        "then try again."
    )


async def channel_problem(
    client: AsyncWebClient, channel_id: str, directory: SlackDirectory | None = None
) -> tuple[str | None, str]:
    """(Why the bot cannot post in ``channel_id`` (not a member, archived, unknown) or None,
    the channel's name when Slack told it)."""
    try:
        response = await client.conversations_info(channel=channel_id)
    except SlackApiError as error:
        code = (error.response.get("error") if error.response is not None else None) or "unknown"
        if code in ("not_in_channel", "channel_not_found"):
            return invite_hint(channel_id), ""
        return f"Slack would not tell me about <#{channel_id}> (`{code}`).", ""
    channel = response.get("channel") or {}
    name = channel.get("name") or ""
    if name and directory is not None:
        directory.remember_channel(client, channel_id, name)
    if channel.get("is_archived"):
        return f"<#{channel_id}> is archived.", name
    if channel.get("is_member") is False and not channel.get("is_im"):
        return invite_hint(channel_id), name
    return None, name


async def fresh_team(
    runtime: Runtime, client: AsyncWebClient, directory: SlackDirectory, at: TeamAt
) -> tuple[Team, str]:
    """The team with membership no older than TOKENWISE_TEAM_REFRESH_MINUTES, plus a note when
    Slack could not be read and the last known membership is used. Raises TeamReadError when
    the team was never read. A channel's name, when not given, is asked of Slack
    (``SlackDirectory.channel_name``, cached), so a recap's header names the channel, not its id."""
    if at.kind == teams.CHANNEL and not at.name:
        at = replace(at, name=await directory.channel_name(client, at.slack_id))
    team = await run_db(runtime, teams.get_team, **at.key())
    if team is None or team.refreshed_at is None:
        team, _ = await refresh_team(runtime, client, directory, at)
        return team, ""
    await refresh_stale_teams(runtime, client, directory, workspace_id=at.workspace_id, only=[team])
    if at.name and at.name != team.name:  # renamed since (or first seen without a name): the header shows it
        await run_db(runtime, teams.ensure_team, **at.named(), write=True)
    refreshed = await run_db(runtime, teams.team_by_id, team.id)
    stale = teams.is_stale(
        refreshed, now=datetime.now(UTC), max_age=timedelta(minutes=runtime.settings.team_refresh_minutes)
    )
    return refreshed, (
        "Membership could not be re-read from Slack; the last known members are used." if stale else ""
    )


def team_recap(conn, runtime: Runtime, workspace_id: str, team: Team, *, end: date) -> recap.Recap:
    """The recap of a team up to ``end``, as the weekly job would post it."""
    return recap.load_configured(
        conn,
        runtime.settings,
        workspace_id=workspace_id,
        scope=recap.team_scope(team),
        end=end,
        today=runtime.today(),
    )


def _target(ctx: CommandContext, request: recap.RecapRequest) -> tuple[str, str, str, str]:
    """(channel, team kind, team Slack id, team name) of a command; the channel defaults to
    the one the command was typed in."""
    channel = request.channel_id or ctx.caller.channel_id
    if not channel or channel.startswith("D"):
        raise CommandError("Name a channel: recaps are posted in channels, not in DMs.", usage_line("recap"))
    if request.group_id:
        return channel, teams.USERGROUP, request.group_id, request.group_name
    return channel, teams.CHANNEL, channel, request.channel_name


# -- /tokens recap -------------------------------------------------------------------------------


async def handle_recap(ctx: CommandContext, command: ParsedCommand) -> Message:
    args = command.args
    verb = args[0].lower() if args else ""
    handlers: dict[str, Callable] = {
        "subscribe": _subscribe,
        "list": _list,
        "unsubscribe": _unsubscribe,
        "preview": _preview,
    }
    if verb not in handlers:
        what = f"`{args[0][:30]}` is not a recap command." if args else "Say what to do with recaps."
        raise CommandError(f"{what} Use subscribe, list, unsubscribe or preview.", usage_line("recap"))
    return await handlers[verb](ctx, args[1:])


async def _may_manage(ctx: CommandContext, kind: str, slack_id: str) -> bool:
    caller = ctx.caller
    return await ctx.db(
        recap.can_manage,
        workspace_id=caller.workspace_id,
        user_id=caller.user_id,
        is_admin=caller.is_admin,
        kind=kind,
        slack_id=slack_id,
    )


def _refusal(ctx: CommandContext, kind: str, slack_id: str) -> Message:
    return build_error(
        f"Recaps of {team_mention(kind, slack_id)} are set up by admins and the team's managers "
        f"({admins_hint(ctx.runtime)})."
    )


async def _subscribe(ctx: CommandContext, args: list[str]) -> Message:
    request = recap.parse_request(args, usage=usage_line("recap"), schedule=True)
    channel, kind, slack_id, name = _target(ctx, request)
    if not await _may_manage(ctx, kind, slack_id):
        return _refusal(ctx, kind, slack_id)
    problem, channel_name = await channel_problem(ctx.client, channel, ctx.directory)
    if problem:
        return build_error(problem)
    if kind == teams.CHANNEL and not name:
        name = channel_name  # the channel typed in, not mentioned: its name for the recap's header
    try:
        team, note = await fresh_team(
            ctx.runtime, ctx.client, ctx.directory, TeamAt(ctx.caller.workspace_id, kind, slack_id, name)
        )
    except TeamReadError as error:
        return build_error(error.message)
    workspace_id = ctx.caller.workspace_id
    settings = ctx.runtime.settings
    today = ctx.runtime.today()
    # Would this week's recap be withheld? The same load as the post, so the warning never disagrees.
    last_week = await ctx.db(team_recap, ctx.runtime, workspace_id, team, end=today)
    existing = await ctx.db(
        recap.get_subscription,
        workspace_id=workspace_id,
        channel_id=channel,
        group_id=request.group_id or "",
    )
    sub, created = await ctx.db(
        recap.subscribe,
        workspace_id=workspace_id,
        channel_id=channel,
        group_id=request.group_id or "",
        # A reschedule keeps what was not given again.
        weekday=request.weekday if request.weekday is not None else (existing.weekday if existing else 0),
        local_time=request.local_time or (existing.local_time if existing else "09:00"),
        post_when_empty=request.post_when_empty
        if request.post_when_empty is not None
        else (existing.post_when_empty if existing else True),
        created_by=ctx.caller.user_id,
        write=True,
    )
    tz = settings.tz
    return build_subscribed(
        sub,
        created=created,
        next_run=recap.next_run(sub, datetime.now(UTC), tz),
        tz=tz,
        note=note,
        withheld_below=settings.min_group_size if last_week.too_small else None,
    )


async def _list(ctx: CommandContext, args: list[str]) -> Message:
    if args:
        raise CommandError("`/tokens recap list` takes no arguments.", usage_line("recap"))

    def load(conn):
        subs = recap.list_subscriptions(conn, workspace_id=ctx.caller.workspace_id)
        return subs, recap.latest_deliveries(conn, [s.id for s in subs])

    subs, latest = await ctx.db(load)
    tz = ctx.runtime.settings.tz
    now = datetime.now(UTC)
    return build_list(
        subs, latest, tz=tz, now=now, next_runs={s.id: recap.next_run(s, now, tz) for s in subs}
    )


async def _unsubscribe(ctx: CommandContext, args: list[str]) -> Message:
    request = recap.parse_request(args, usage=usage_line("recap"), schedule=False)
    channel, kind, slack_id, _ = _target(ctx, request)
    if not await _may_manage(ctx, kind, slack_id):
        return _refusal(ctx, kind, slack_id)
    removed = await ctx.db(
        recap.unsubscribe,
        workspace_id=ctx.caller.workspace_id,
        channel_id=channel,
        group_id=request.group_id or "",
        actor_user_id=ctx.caller.user_id,
        write=True,
    )
    if not removed:
        who = team_mention(kind, slack_id) if request.group_id else "its members"
        return build_error(
            f"<#{channel}> has no weekly recap of {who}; nothing changed. "
            "`/tokens recap list` shows them all."
        )
    return build_unsubscribed(channel, request.group_id or "")


async def _preview(ctx: CommandContext, args: list[str]) -> Message:
    request = recap.parse_request(args, usage=usage_line("recap"), schedule=False)
    channel, kind, slack_id, name = _target(ctx, request)
    workspace_id = ctx.caller.workspace_id
    settings = ctx.runtime.settings
    try:
        team, _ = await fresh_team(
            ctx.runtime, ctx.client, ctx.directory, TeamAt(workspace_id, kind, slack_id, name)
        )
    except TeamReadError as error:
        return build_error(error.message)
    person = await caller_person(ctx)
    viewer = access.Viewer(ctx.caller.user_id, ctx.caller.is_admin, person.id if person else None)
    decision = await ctx.db(
        access.can_view_team, workspace_id, viewer, team.id, min_group_size=settings.min_group_size
    )
    if not decision.allowed or decision.reason == "member":
        # A member asks for any channel they build: previews of two overlapping channels would be
        # the differencing the team view refuses (docs/privacy.md, "Aggregates"). Members see
        # the recap when an admin or manager has it posted.
        return build_error(
            f"A preview of the recap of {team_mention_of(team)} is for its managers and admins "
            f"({admins_hint(ctx.runtime)}); members see the recap when it is posted."
        )
    today = ctx.runtime.today()

    def load(conn):
        found = team_recap(conn, ctx.runtime, workspace_id, team, end=today)
        sub = recap.get_subscription(
            conn, workspace_id=workspace_id, channel_id=channel, group_id=request.group_id or ""
        )
        if sub is not None:
            monday = today - timedelta(days=today.weekday())
            found.last_vote = recap.previous_tally(conn, subscription_id=sub.id, week_start=monday)
        return found

    return build_recap(await ctx.db(load), preview=True)


# -- the vote --------------------------------------------------------------------------------------


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    locks: dict[int, asyncio.Lock] = {}

    async def on_vote(
        ack: AsyncAck, body: dict, client: AsyncWebClient, respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        await ack()
        workspace_id = authorized_workspace(runtime, context)
        # Recording the vote and re-drawing the tally (chat.update) happen after the response.
        in_background(vote(body, client, respond, workspace_id), "recap vote")

    async def vote(body: dict, client: AsyncWebClient, respond: AsyncRespond, workspace_id: str) -> None:
        action = (body.get("actions") or [{}])[0]
        choice = str(action.get("action_id", "")).removeprefix(VOTE_PREFIX)
        value = str(action.get("value", ""))
        user_id = (body.get("user") or {}).get("id", "")
        if value == PREVIEW_VALUE or not value.isdigit() or choice not in recap.CHOICES or not user_id:
            note = build_preview_vote_note()
            await respond(**note.as_kwargs(), response_type="ephemeral", replace_original=False)
            return
        delivery_id = int(value)
        if len(locks) > 1000:
            locks.clear()  # old recaps: a new lock per recap is cheap
        # One vote at a time per recap in this process, so the last chat.update shows the last tally.
        async with locks.setdefault(delivery_id, asyncio.Lock()):
            delivery = await run_db(runtime, recap.delivery_by_id, delivery_id)
            container = body.get("container") or {}
            if (
                delivery is None
                or delivery.workspace_id != workspace_id
                or (container.get("channel_id") and container.get("channel_id") != delivery.channel_id)
            ):
                text = "This recap is no longer open for votes."
                await respond(text=text, response_type="ephemeral", replace_original=False)
                return
            tally = await run_db(
                runtime,
                recap.record_vote,
                delivery_id=delivery_id,
                user_id=user_id,
                choice=choice,
                write=True,
            )
            posted = body.get("message") or {}
            if tally is None or not posted.get("blocks"):
                return
            try:
                await client.chat_update(
                    channel=delivery.channel_id,
                    ts=delivery.message_ts or posted.get("ts"),
                    text=posted.get("text") or "Weekly AI recap",
                    blocks=with_tally(posted["blocks"], tally),
                )
            except SlackApiError as error:
                code = error.response.get("error") if error.response is not None else "unknown"
                log.warning("recap %s: tally update failed: %s", delivery_id, code)

    app.action(re.compile(f"^{VOTE_PREFIX}"))(on_vote)
