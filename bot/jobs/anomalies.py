"""The anomaly check, after every sync and on its own schedule: run the rules per installed
workspace, open / update / close the incidents, then send the DMs they owe.

Each DM's ledger row is claimed (INSERT ... ON CONFLICT DO NOTHING, committed) before it is
sent and only the claimer sends, so any number of replicas and restarts tell each recipient
once per incident and audience. A DM Slack refused for now (rate limit, outage) is left
``retry`` and claimed again by a later run; a refusal that stands is ``failed``, not retried.
A re-run that finds the incident still open updates its
figures and sends nothing new; escalation to the managers is a new audience, told once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from slack_sdk.web.async_client import AsyncWebClient

from bot.db.models import Person, Team
from bot.jobs.per_workspace import run_in_each_workspace
from bot.services.anomalies import incidents
from bot.services.anomalies.detectors import TEAM
from bot.services.anomalies.incidents import TO_MANAGER, TO_PERSON, Applied, DueNotice
from bot.services.runtime import Runtime
from bot.slack.blocks import anomalies as views
from bot.slack.blocks.common import Message
from bot.slack.messaging import is_transient, send_dm, slack_error

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    applied: Applied
    sent: list[tuple[int, str, str]] = field(default_factory=list)  # (incident, audience, recipient)
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # refused for good
    retrying: list[tuple[int, str, str]] = field(default_factory=list)  # rate-limited: a later run


async def _db(runtime: Runtime, fn: Callable, *args, write: bool = False, **kwargs):
    def work():
        with runtime.engine.begin() if write else runtime.engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    return await asyncio.to_thread(work)


def notice_message(runtime: Runtime, notice: DueNotice, labels: dict[int | str, Person | Team]) -> Message:
    incident = notice.incident
    if incident.subject_kind == TEAM:
        return views.build_team_notice(incident, team=views.subject_label(incident, labels))
    if notice.audience == TO_PERSON:
        return views.build_person_notice(incident, escalate_hours=runtime.settings.anomaly_escalate_hours)
    if notice.audience == TO_MANAGER:
        who = views.subject_label(incident, labels)
        return views.build_manager_notice(incident, who=who, unreachable=notice.unreachable)
    return views.build_admin_notice(incident)


async def check_anomalies(
    runtime: Runtime,
    client: AsyncWebClient,
    *,
    workspace_id: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CheckResult:
    now = clock()
    settings = runtime.settings
    detections = await _db(
        runtime, incidents.detect_now, workspace_id=workspace_id, today=now.date(), settings=settings
    )
    applied = await _db(
        runtime,
        incidents.apply_detections,
        workspace_id=workspace_id,
        detections=detections,
        now=now,
        write=True,
    )
    due = await _db(runtime, incidents.due_notices, workspace_id=workspace_id, now=now, settings=settings)
    result = CheckResult(applied)
    labels = await _db(runtime, incidents.subjects, [n.incident for n in due if n.audience == TO_MANAGER])
    for notice in due:
        claimed = await _db(
            runtime, incidents.claim_notice, workspace_id=workspace_id, notice=notice, write=True
        )
        if not claimed:
            continue  # another replica (or an earlier run) owns this DM
        key = (notice.incident.id, notice.audience, notice.recipient)
        try:
            channel, ts = await send_dm(client, notice.recipient, notice_message(runtime, notice, labels))
        except Exception as error:  # one unreachable recipient must not stop the others
            reason = slack_error(error)
            # A rate limit or outage: left to a later run. Any other refusal stands (and a
            # person's sends their managers the incident at once).
            status = incidents.RETRY if is_transient(error) else incidents.FAILED
            log.warning("anomaly %s %s DM to %s %s: %s", key[0], key[1], key[2], status, reason)
            await _db(
                runtime, incidents.finish_notice, notice=notice, status=status, error=reason, write=True
            )
            (result.retrying if status == incidents.RETRY else result.failed).append(key)
            continue
        await _db(
            runtime,
            incidents.finish_notice,
            notice=notice,
            status=incidents.SENT,
            channel=channel,
            ts=ts,
            write=True,
        )
        result.sent.append(key)
    return result


def anomaly_job(runtime: Runtime) -> int:
    """Scheduler entry point (a worker thread): every served workspace; returns the DMs sent."""

    async def check(workspace_id: str, client: AsyncWebClient) -> int:
        return len((await check_anomalies(runtime, client, workspace_id=workspace_id)).sent)

    return sum(run_in_each_workspace(runtime, check, what="anomaly check").values())
