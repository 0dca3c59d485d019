"""Scheduled delivery of the weekly recaps (``recap_job``, every ``RECAP_CHECK_MINUTES``).

For each due subscription, claim the week's ledger row and commit it, then post; only the
claimant posts, so replicas and restarts never double-post. The post carries message metadata
with the delivery id, so a process that takes over a claim abandoned mid-post
(``recap.STALE_CLAIM``) first looks for that message in the channel (``conversations.history``)
instead of posting it twice; when it cannot look, it does not re-post and the failure shows in
``/tokens status``.

After the post: the chart goes into the recap's thread (``files_upload_v2``), and the people
behind the findings who did not opt in to names go to the team's managers by DM. Posts to one
channel are at least ``CHANNEL_INTERVAL`` apart (Slack allows about one message per second per
channel); a 429's Retry-After is honoured by the client's retry handler.

The ``/tokens recap`` commands and the vote buttons are ``bot.slack.handlers.recap``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.models import RecapSubscription
from bot.jobs.per_workspace import each_workspace
from bot.observability import RECAP_DELIVERIES
from bot.services import access, recap, seats
from bot.services.runtime import Runtime
from bot.slack.blocks import recap_chart
from bot.slack.blocks.recap import build_manager_detail, build_recap
from bot.slack.context import run_db
from bot.slack.directory import SlackDirectory
from bot.slack.handlers.recap import fresh_team
from bot.slack.membership import TeamAt, TeamReadError

log = logging.getLogger(__name__)

RECAP_CHECK_MINUTES = 5
CHANNEL_INTERVAL = 1.1  # seconds between two posts to one channel
METADATA_EVENT = "tokenwise_recap"
HISTORY_PAGE = 200


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
    """Scheduler entry point (a worker thread): post every due recap, once."""
    return asyncio.run(deliver_due(runtime, now=now))


async def deliver_due(
    runtime: Runtime, *, now: datetime | None = None, directory: SlackDirectory | None = None
) -> list[Outcome]:
    now = now or datetime.now(UTC)
    tz = runtime.settings.tz
    due: dict[str, list[tuple[RecapSubscription, date]]] = {}
    for sub in await run_db(runtime, recap.list_subscriptions):
        week = recap.due_week(sub, now, tz)
        if week is not None:
            due.setdefault(sub.workspace_id, []).append((sub, week))
    directory = directory or SlackDirectory()
    pacer = ChannelPacer()
    idle_actors: list[set[str] | None] = []  # read from GitHub at most once per run

    async def deliver_in(workspace_id: str, client: AsyncWebClient) -> list[Outcome]:
        outcomes = []
        for sub, week in due[workspace_id]:
            claim = await run_db(runtime, recap.claim, sub, week, now, write=True)
            if claim is None:
                continue  # posted, being posted by someone else, or out of attempts
            if not idle_actors:
                idle_actors.append(await asyncio.to_thread(seats.idle_seat_actors, runtime.settings))
            outcome = await deliver(
                runtime, client, directory, claim, pacer=pacer, idle_actors=idle_actors[0]
            )
            RECAP_DELIVERIES.labels(status=outcome.status).inc()
            outcomes.append(outcome)
        return outcomes

    # A workspace without a token (uninstalled) is skipped before its claims: nothing is lost.
    done = await each_workspace(runtime, deliver_in, what="recap delivery", only=due.keys())
    return [outcome for found in done.values() for outcome in found]


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
            runtime, client, directory, TeamAt(sub.workspace_id, sub.team_kind, sub.team_slack_id)
        )

        def load(conn):
            found = recap.load_configured(
                conn,
                settings,
                workspace_id=sub.workspace_id,
                scope=recap.team_scope(team),
                end=end,
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
        png = await asyncio.to_thread(recap_chart.render_chart, report)
        await pacer.wait(channel)
        await client.files_upload_v2(
            channel=channel,
            thread_ts=ts,
            file=png,
            filename=f"tokenwise-recap-{report.period.start}.png",
            title=f"AI spend vs value, 8 weeks to {report.period.last_day:%b %-d}",
            alt_txt=recap_chart.chart_alt_text(report),
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
