"""The budget check: threshold alerts, early warnings and floor nudges, each sent once.

Rules and the alert ledger live in ``bot.services.budgets``; this job claims what is due and DMs
it through the workspace's bot client. It runs on its own schedule and at the end of every sync
(``bot.jobs.sync``), so a threshold crossed by fresh numbers is told at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.clock import local_today
from bot.jobs.per_workspace import run_in_each_workspace
from bot.observability import ALERTS
from bot.services import budgets
from bot.services.budgets import DueAlert, PeerPace
from bot.services.runtime import Runtime
from bot.slack.blocks import budgets as views
from bot.slack.blocks.common import Message
from bot.slack.context import run_db
from bot.slack.messaging import send_dm, slack_error

log = logging.getLogger(__name__)


def _audience(alert: DueAlert) -> str:
    if alert.budget.person_id is not None:
        return budgets.PERSON
    return "team" if alert.status.team is not None else budgets.ORG


def alert_message(alert: DueAlert, claimed: list[tuple[str, int]], peers: PeerPace | None) -> Message:
    audience = _audience(alert)
    thresholds = [t for kind, t in claimed if kind == budgets.THRESHOLD]
    if thresholds:
        return views.build_threshold_alert(
            alert.status, threshold=max(thresholds), audience=audience, tightest=alert.tightest
        )
    if alert.kind == budgets.FLOOR:
        return views.build_floor_nudge(alert.status, audience=audience, peers=peers)
    return views.build_forecast_alert(alert.status, audience=audience)


async def _finish(
    runtime: Runtime, alert: DueAlert, keys: list[tuple[str, int]], outcome: str, error: str | None = None
) -> None:
    await run_db(
        runtime,
        budgets.finish_alert,
        workspace_id=alert.workspace_id,
        budget_id=alert.budget.id,
        period_start=alert.status.period.start,
        keys=keys,
        status=outcome,
        error=error,
        write=True,
    )
    ALERTS.labels(kind=alert.kind, status=outcome).inc()


async def _deliver(
    runtime: Runtime,
    client: AsyncWebClient,
    alert: DueAlert,
    claimed: list[tuple[str, int]],
    clock: Callable[[], datetime],
) -> str:
    """Send one claimed alert and record the outcome: sent | failed | expired."""
    settings = runtime.settings
    if local_today(clock(), settings.tz) >= alert.status.period.end:
        await _finish(runtime, alert, claimed, "expired", "the period ended before the alert was sent")
        return "expired"
    recipients = await run_db(
        runtime,
        budgets.alert_recipients,
        workspace_id=alert.workspace_id,
        budget=alert.budget,
        team=alert.status.team,
        settings=settings,
    )
    peers = None
    if alert.kind == budgets.FLOOR:
        peers = await run_db(
            runtime,
            budgets.peer_pace,
            workspace_id=alert.workspace_id,
            status=alert.status,
            min_group_size=settings.min_group_size,
        )
    reply = alert_message(alert, claimed, peers)
    errors, sent = [], 0
    for user_id in recipients:
        try:
            await send_dm(client, user_id, reply)
            sent += 1
        except Exception as error:  # one unreachable recipient must not stop the others
            errors.append(f"{user_id}: {slack_error(error)}")
    if not recipients:
        errors.append("nobody to tell (no Slack id, no manager, no admin id in TOKENWISE_ADMINS)")
    if errors:
        log.warning("budget %s %s alert: %s", alert.budget.id, alert.kind, "; ".join(errors))
    outcome = "sent" if sent else "failed"
    await _finish(runtime, alert, claimed, outcome, "; ".join(errors)[:2000] or None)
    return outcome


async def check_budgets(
    runtime: Runtime,
    client: AsyncWebClient,
    *,
    workspace_id: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[tuple[DueAlert, list[tuple[str, int]], str]]:
    """Send what is due. Each alert's ledger rows are claimed (INSERT ... ON CONFLICT DO NOTHING,
    committed) BEFORE its DM, and only the claimer sends: a restart or a second replica finds
    the rows and sends nothing. A claim whose period ended before sending is marked expired.
    Returns (alert, keys this process claimed, outcome) for each alert it claimed."""
    today = local_today(clock(), runtime.settings.tz)
    due = await run_db(
        runtime,
        budgets.due_alerts,
        workspace_id=workspace_id,
        today=today,
        min_group_size=runtime.settings.min_group_size,
    )
    done = []
    for alert in due:
        claimed = await run_db(
            runtime,
            budgets.claim_alert,
            workspace_id=workspace_id,
            budget_id=alert.budget.id,
            period_start=alert.status.period.start,
            keys=alert.keys,
            write=True,
        )
        if claimed:
            done.append((alert, claimed, await _deliver(runtime, client, alert, claimed, clock)))
    return done


def budget_check_job(runtime: Runtime) -> int:
    """Scheduler entry point (a worker thread): check every served workspace; returns DMs' count."""

    async def check(workspace_id: str, client: AsyncWebClient) -> int:
        done = await check_budgets(runtime, client, workspace_id=workspace_id)
        return sum(1 for _, _, outcome in done if outcome == "sent")

    return sum(run_in_each_workspace(runtime, check, what="budget check").values())
