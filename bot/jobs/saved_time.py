"""The "what did it save you?" questions: every hour, per installed
workspace, one DM per person who opted in and has an AI-assisted PR merged and not yet asked about.

Each DM's ledger row (unique per PR, and per person and local day) is claimed and committed
before it is sent, and only the claimer sends: any number of replicas and restarts ask each PR
once and each person at most once a day. A DM Slack refuses is recorded ``failed``, not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.per_workspace import run_in_each_workspace
from bot.services import saved_time
from bot.services.runtime import Runtime
from bot.slack.blocks import saved_time as views
from bot.slack.context import run_db
from bot.slack.messaging import send_dm, slack_error

log = logging.getLogger(__name__)

SAVED_TIME_CHECK_MINUTES = 60


async def ask_saved_time(
    runtime: Runtime,
    client: AsyncWebClient,
    *,
    workspace_id: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[int]:
    """Send the questions due now; returns the ledger ids of the DMs sent."""
    now, settings = clock(), runtime.settings
    due = await run_db(runtime, saved_time.due_asks, workspace_id=workspace_id, now=now, tz=settings.tz)
    sent = []
    for ask in due:
        ask_id = await run_db(
            runtime,
            saved_time.claim_ask,
            workspace_id=workspace_id,
            ask=ask,
            now=now,
            tz=settings.tz,
            write=True,
        )
        if ask_id is None:
            continue  # another replica (or an earlier run) asked this person today, or this PR
        reply = views.build_ask(ask, ask_id=ask_id, min_group_size=settings.min_group_size, tz=settings.tz)
        try:
            channel, ts = await send_dm(client, ask.recipient, reply)
            outcome = {"status": saved_time.SENT, "channel": channel, "ts": ts}
            sent.append(ask_id)
        except Exception as error:  # one unreachable person must not stop the others
            reason = slack_error(error)
            log.warning("saved-time question %s to %s failed: %s", ask_id, ask.recipient, reason)
            outcome = {"status": saved_time.FAILED, "error": reason}
        await run_db(runtime, saved_time.finish_ask, ask_id=ask_id, write=True, **outcome)
    return sent


def saved_time_job(runtime: Runtime) -> int:
    """Scheduler entry point (a worker thread): every served workspace; returns the DMs sent."""

    async def ask(workspace_id: str, client: AsyncWebClient) -> int:
        return len(await ask_saved_time(runtime, client, workspace_id=workspace_id))

    return sum(run_in_each_workspace(runtime, ask, what="saved-time questions").values())
