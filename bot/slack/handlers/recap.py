"""``/tokens recap``, the vote buttons, and the scheduled delivery of weekly recaps.

Delivery (``recap_job``, every ``RECAP_CHECK_MINUTES`` from the scheduler): for each due
subscription, claim the week's ledger row and commit it, then post; only the claimant posts, so
replicas and restarts never double-post. The post carries message metadata with the delivery id,
so a process that takes over a claim abandoned mid-post (``recap.STALE_CLAIM``) first looks for
that message in the channel (``conversations.history``) instead of posting it twice; when it
cannot look, it does not re-post and the failure shows in ``/tokens status``.

After the post: the chart goes into the recap's thread (``files_upload_v2``), and the people
behind the findings who did not opt in to names go to the team's managers by DM. Posts to one
channel are at least ``CHANNEL_INTERVAL`` apart (Slack allows about one message per second per
channel); a 429's Retry-After is honoured by the client's retry handler.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability import RECAP_DELIVERIES
from bot.services import access, recap, teams
from bot.services.commands import CommandError, ParsedCommand, usage_line
from bot.services.runtime import Runtime
from bot.services.teams import TeamRef
from bot.slack.background import in_background
from bot.slack.blocks.common import Message
from bot.slack.blocks.format import team_mention
from bot.slack.blocks.recap import (
    PREVIEW_VALUE,
    VOTE_PREFIX,
    build_list,
    build_manager_detail,
    build_preview_vote_note,
    build_recap,
    build_subscribed,
    build_unsubscribed,
    with_tally,
)
from bot.slack.blocks.reports import build_error
from bot.slack.context import CommandContext, admins_hint, authorized_workspace, caller_person, run_db
from bot.slack.directory import SlackDirectory
from bot.slack.membership import TeamReadError, refresh_stale_teams, refresh_team

log = logging.getLogger(__name__)

RECAP_CHECK_MINUTES = 5
CHANNEL_INTERVAL = 1.1  # seconds between two posts to one channel
METADATA_EVENT = "tokenwise_recap"
HISTORY_PAGE = 200


# -- shared helpers ------------------------------------------------------------------------------


def invite_hint(channel_id: str) -> str:
    return (
        f"I am not in <#{channel_id}>. Invite me there first (`/invite @tokenwise` in <#{channel_id}>), "
        "then try again."
    )


async def channel_problem(client: AsyncWebClient, channel_id: str) -> tuple[str | None, str]:
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
    if channel.get("is_archived"):
        return f"<#{channel_id}> is archived.", name
    if channel.get("is_member") is False and not channel.get("is_im"):
        return invite_hint(channel_id), name
    return None, name


async def fresh_team(
    runtime: Runtime,
    client: AsyncWebClient,
    directory: SlackDirectory,
    workspace_id: str,
    kind: str,
    slack_id: str,
    name: str = "",
) -> tuple[TeamRef, str]:
    """The team with membership no older than TOKENWISE_TEAM_REFRESH_MINUTES, plus a note when
    Slack could not be read and the last known membership is used. Raises TeamReadError when
    the team was never read."""
    team = await run_db(runtime, teams.get_team, workspace_id=workspace_id, kind=kind, slack_id=slack_id)
    if team is None or team.refreshed_at is None:
        team, _ = await refresh_team(runtime, client, directory, workspace_id, kind, slack_id, name)
        return team, ""
    await refresh_stale_teams(runtime, client, directory, workspace_id=workspace_id, only=[team])
    if name and name != team.name:  # renamed since (or first seen without a name): the header shows it
        await run_db(
            runtime,
            teams.ensure_team,
            workspace_id=workspace_id,
            kind=kind,
            slack_id=slack_id,
            name=name,
            write=True,
        )
    refreshed = await run_db(runtime, teams.team_by_id, team.id)
    stale = teams.is_stale(
        refreshed, now=datetime.now(UTC), max_age=timedelta(minutes=runtime.settings.team_refresh_minutes)
    )
    return refreshed, (
        "Membership could not be re-read from Slack; the last known members are used." if stale else ""
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
    problem, channel_name = await channel_problem(ctx.client, channel)
    if problem:
        return build_error(problem)
    if kind == teams.CHANNEL and not name:
        name = channel_name  # the channel typed in, not mentioned: its name for the recap's header
    try:
        _, note = await fresh_team(
            ctx.runtime, ctx.client, ctx.directory, ctx.caller.workspace_id, kind, slack_id, name
        )
    except TeamReadError as error:
        return build_error(error.message)
    workspace_id = ctx.caller.workspace_id
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
    tz = ctx.runtime.settings.tz
    return build_subscribed(
        sub, created=created, next_run=recap.next_run(sub, datetime.now(UTC), tz), tz=tz, note=note
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
        team, _ = await fresh_team(ctx.runtime, ctx.client, ctx.directory, workspace_id, kind, slack_id, name)
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
            f"A preview of the recap of {team.mention} is for its managers and admins "
            f"({admins_hint(ctx.runtime)}); members see the recap when it is posted."
        )
    today = ctx.runtime.today()

    def load(conn):
        found = recap.load_recap(
            conn,
            workspace_id=workspace_id,
            scope=recap.team_scope(team),
            end=today,
            min_group_size=settings.min_group_size,
            idle_days=settings.github_delivery_idle_days,
            today=today,
        )
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


# -- delivery ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    subscription_id: int
    week_start: object
    status: str  # posted | recovered | skipped | failed
    message_ts: str | None = None
    error: str | None = None


class ChannelPacer:
    """At most one post per ``interval`` seconds per channel (Slack's per-channel limit)."""

    def __init__(self, interval: float = CHANNEL_INTERVAL) -> None:
        self.interval = interval
        self.last: dict[str, float] = {}

    async def wait(self, channel: str) -> None:
        previous = self.last.get(channel)
        if previous is not None:
            pause = previous + self.interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
        self.last[channel] = time.monotonic()


def recap_job(runtime: Runtime, *, now: datetime | None = None) -> list[Outcome]:
    """Scheduler entry point (a sync thread): post every due recap, once."""
    try:
        return asyncio.run(deliver_due(runtime, now=now))
    except Exception:
        log.exception("recap delivery failed")
        return []


def idle_seat_actors(runtime: Runtime) -> set[str] | None:
    """Actors of GitHub Copilot seats idle for 30 days, as GitHub reports them (None when the
    source is off or GitHub cannot be read: the recap then judges seats from stored activity)."""
    from bot.sources.github_copilot import actor_of
    from bot.sources.registry import UnknownSourceError, enabled_connectors

    try:
        connectors = enabled_connectors(runtime.settings, only="github_copilot")
    except UnknownSourceError:
        return None
    found: set[str] = set()
    try:
        for connector in connectors:
            found.update(actor_of(login) for login in connector.idle_seats(30))
    except Exception as error:
        log.warning("idle Copilot seats unavailable: %s", type(error).__name__)
        return None
    finally:
        for connector in connectors:
            connector.close()
    return found


async def deliver_due(
    runtime: Runtime, *, now: datetime | None = None, directory: SlackDirectory | None = None
) -> list[Outcome]:
    from bot.slack.clients import WorkspaceNotInstalled, bot_client_for

    now = now or datetime.now(UTC)
    tz = runtime.settings.tz
    subs = await run_db(runtime, recap.list_subscriptions)
    directory = directory or SlackDirectory()
    pacer = ChannelPacer()
    clients: dict[str, AsyncWebClient | None] = {}
    idle_actors: list[set[str] | None] = []  # read from GitHub at most once per run
    outcomes = []
    for sub in subs:
        week = recap.due_week(sub, now, tz)
        if week is None:
            continue
        if sub.workspace_id not in clients:
            try:
                clients[sub.workspace_id] = await bot_client_for(runtime, sub.workspace_id)
            except WorkspaceNotInstalled:
                clients[sub.workspace_id] = None
        client = clients[sub.workspace_id]
        if client is None:
            continue  # no token (uninstalled): nothing is claimed, nothing is lost
        claim = await run_db(runtime, recap.claim, sub, week, now, write=True)
        if claim is None:
            continue  # posted, being posted by someone else, or out of attempts
        if not idle_actors:
            idle_actors.append(await asyncio.to_thread(idle_seat_actors, runtime))
        outcome = await deliver(runtime, client, directory, claim, pacer=pacer, idle_actors=idle_actors[0])
        RECAP_DELIVERIES.labels(status=outcome.status).inc()
        outcomes.append(outcome)
    return outcomes


async def find_posted(client: AsyncWebClient, channel: str, delivery_id: int, since: datetime) -> str | None:
    """The ts of this delivery's message in ``channel`` posted after ``since``, found by its
    metadata; None when it is not there. Raises SlackApiError when the history cannot be read."""
    cursor = None
    for _ in range(20):
        response = await client.conversations_history(
            channel=channel,
            oldest=f"{since.timestamp() - 60:.6f}",
            include_all_metadata=True,
            limit=HISTORY_PAGE,
            **({"cursor": cursor} if cursor else {}),
        )
        for item in response.get("messages") or []:
            metadata = item.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == METADATA_EVENT and str(payload.get("delivery_id")) == str(
                delivery_id
            ):
                return item.get("ts")
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None


def _error_code(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return (error.response.get("error") if error.response is not None else None) or "slack_error"
    if isinstance(error, TeamReadError):
        return error.message
    return type(error).__name__


async def deliver(
    runtime: Runtime,
    client: AsyncWebClient,
    directory: SlackDirectory,
    claim: recap.Claim,
    *,
    pacer: ChannelPacer,
    idle_actors: set[str] | None = None,
) -> Outcome:
    """Post one claimed recap; every failure is written to the ledger (and retried later)."""
    sub = claim.subscription
    settings = runtime.settings

    async def fail(error: str, *, final: bool = False) -> Outcome:
        await run_db(runtime, recap.mark_failed, claim.delivery_id, error=error, final=final, write=True)
        log.warning(
            "recap %s for %s week %s failed: %s", claim.delivery_id, sub.channel_id, claim.week_start, error
        )
        return Outcome(sub.id, claim.week_start, "failed", error=error)

    if claim.took_over_since is not None:
        try:
            ts = await find_posted(client, sub.channel_id, claim.delivery_id, claim.took_over_since)
        except SlackApiError as error:
            return await fail(
                f"interrupted while posting and I cannot check whether it went out ({_error_code(error)}); "
                "not posted again, to avoid a duplicate",
                final=True,
            )
        if ts is not None:
            await run_db(
                runtime,
                recap.mark_posted,
                claim.delivery_id,
                message_ts=ts,
                now=datetime.now(UTC),
                write=True,
            )
            return Outcome(sub.id, claim.week_start, "recovered", message_ts=ts)
    end = recap.recap_end(sub, claim.week_start)
    try:
        team, _ = await fresh_team(
            runtime, client, directory, sub.workspace_id, sub.team_kind, sub.team_slack_id
        )

        def load(conn):
            found = recap.load_recap(
                conn,
                workspace_id=sub.workspace_id,
                scope=recap.team_scope(team),
                end=end,
                min_group_size=settings.min_group_size,
                idle_days=settings.github_delivery_idle_days,
                today=runtime.today(),
                idle_seat_actors=idle_actors,
            )
            found.last_vote = recap.previous_tally(conn, subscription_id=sub.id, week_start=claim.week_start)
            found.delivery_id = claim.delivery_id
            return found

        report = await run_db(runtime, load)
        if report.empty and not sub.post_when_empty:
            await run_db(
                runtime, recap.mark_skipped, claim.delivery_id, reason="no AI usage this week", write=True
            )
            return Outcome(sub.id, claim.week_start, "skipped")
        posted = build_recap(report)
        await pacer.wait(sub.channel_id)
        response = await client.chat_postMessage(
            channel=sub.channel_id,
            text=posted.text,
            blocks=posted.blocks,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"delivery_id": claim.delivery_id}},
            unfurl_links=False,
            unfurl_media=False,
        )
    except (SlackApiError, TeamReadError) as error:
        return await fail(_error_code(error))
    except Exception as error:
        log.exception("recap %s could not be built or posted", claim.delivery_id)
        return await fail(_error_code(error))
    ts = response.get("ts")
    await run_db(
        runtime, recap.mark_posted, claim.delivery_id, message_ts=ts, now=datetime.now(UTC), write=True
    )
    if not report.empty and not report.too_small:
        await _chart(runtime, client, report, sub.channel_id, ts, pacer)
        await _manager_detail(runtime, client, report, sub.workspace_id)
    return Outcome(sub.id, claim.week_start, "posted", message_ts=ts)


async def _chart(
    runtime: Runtime,
    client: AsyncWebClient,
    report: recap.Recap,
    channel: str,
    ts: str | None,
    pacer: ChannelPacer,
) -> None:
    """The 8-week chart into the recap's thread; a failure costs the chart, not the recap."""
    try:
        png = await asyncio.to_thread(recap.render_chart, report)
        await pacer.wait(channel)
        await client.files_upload_v2(
            channel=channel,
            thread_ts=ts,
            file=png,
            filename=f"tokenwise-recap-{report.period.start}.png",
            title=f"AI spend vs value, 8 weeks to {report.period.last_day:%b %-d}",
            alt_txt=recap.chart_alt_text(report),
        )
    except Exception as error:
        log.warning("recap chart for %s not uploaded: %s", channel, _error_code(error))


async def _manager_detail(
    runtime: Runtime, client: AsyncWebClient, report: recap.Recap, workspace_id: str
) -> None:
    if not report.managers or build_manager_detail(report) is None:
        return
    person_ids = {fact.person_id for finding, _ in report.hidden_people() for fact in finding.people}

    def reach_of_each_manager(conn) -> dict[str, frozenset[int]]:
        # A manager hears only of people their grant reaches (docs/privacy.md, "Manager scope"):
        # someone invited into the channel after the grant is not theirs to see.
        return {
            manager: frozenset(p for p in person_ids if access.manages_person(conn, workspace_id, manager, p))
            for manager in report.managers
        }

    reach = await run_db(runtime, reach_of_each_manager)
    for manager in report.managers:
        detail = build_manager_detail(report, reach=reach[manager])
        if detail is None:
            continue
        try:
            opened = await client.conversations_open(users=manager)
            await client.chat_postMessage(channel=opened["channel"]["id"], **detail.as_kwargs())
        except SlackApiError as error:
            log.warning("recap detail DM to %s failed: %s", manager, _error_code(error))
            continue
        await run_db(
            runtime,
            recap.record_detail_views,
            workspace_id=workspace_id,
            manager_ids=[manager],
            person_ids=sorted(
                {
                    fact.person_id
                    for _, shown in report.hidden_people_within(reach[manager])
                    for _, fact in shown
                }
            ),
            period=report.period,
            write=True,
        )
