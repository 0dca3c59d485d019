"""The App Home tab: on ``app_home_opened`` (Home tab) publish the person's dashboard; its period
buttons (this month / 7d / 30d / quarter) publish it again for that period.

Slack retries an event it thinks was not delivered; a retried event has the same ``event_id``
and is skipped here. Publishing the same view twice is harmless anyway (``views.publish``
replaces the tab), so a retry after a restart costs one extra publish and nothing else.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.periods import Period, parse_period
from bot.services import teams
from bot.services.demo import DEMO_EMAILS
from bot.services.home import load_dashboard
from bot.services.no_usage import explain_no_usage
from bot.services.runtime import Runtime
from bot.slack.background import in_background
from bot.slack.blocks.home import HOME_PERIOD_ACTION, HOME_PERIODS, build_home, build_home_not_linked
from bot.slack.context import admins_hint, authorized_workspace, resolve_caller, resolve_person, run_db
from bot.slack.directory import SlackDirectory
from bot.slack.membership import refresh_stale_teams

log = logging.getLogger(__name__)

EVENT_MEMORY_SECONDS = 15 * 60  # Slack retries within minutes


class RecentEvents:
    """Event ids seen in the last ``ttl`` seconds (per process, bounded)."""

    def __init__(self, ttl: float = EVENT_MEMORY_SECONDS, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: dict[str, float] = {}

    def seen(self, event_id: str, *, now: float | None = None) -> bool:
        """True when ``event_id`` was seen recently; records it otherwise."""
        now = time.monotonic() if now is None else now
        expiry = self._seen.get(event_id)
        if expiry is not None and expiry > now:
            return True
        if len(self._seen) >= self.max_entries:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
            if len(self._seen) >= self.max_entries:
                self._seen.clear()
        self._seen[event_id] = now + self.ttl
        return False

    def forget(self, event_id: str) -> None:
        self._seen.pop(event_id, None)


def home_period(runtime: Runtime, word: str | None) -> Period | None:
    """The period a Home button asks for; None (this month) for no word or one no button offers:
    the value comes from the click, so only the buttons' own words are read."""
    if word not in {choice for choice, _ in HOME_PERIODS} or word == "month":
        return None
    return parse_period(word, runtime.today())


async def home_view(
    runtime: Runtime,
    client: AsyncWebClient,
    directory: SlackDirectory,
    *,
    user_id: str,
    workspace_id: str,
    period: Period | None = None,
) -> dict:
    # Admin rights as every command reads them (Slack's is_admin or TOKENWISE_ADMINS): an admin's
    # Home shows team and org budgets in dollars, as /tokens me does for them.
    caller = await resolve_caller(runtime, directory, client, user_id=user_id, workspace_id=workspace_id)
    person = await resolve_person(
        runtime,
        directory,
        client,
        workspace_id=workspace_id,
        slack_user_id=user_id,
        slack_user=caller.slack,
        humans_only=True,
        caller=True,
    )
    hint = admins_hint(runtime)
    if person is None:  # Slack shows no email (or only a bot's): say so, and who can link them
        slack_user = caller.slack
        explained = await run_db(
            runtime,
            explain_no_usage,
            workspace_id=workspace_id,
            email=slack_user.email if slack_user and not slack_user.is_bot else None,
            person_id=None,
            enabled=runtime.source_lags,
        )
        return build_home_not_linked(admins_hint=hint, explained=explained, tz=runtime.settings.tz)
    managed = await run_db(runtime, teams.managed_teams, workspace_id=workspace_id, slack_user_id=user_id)
    if managed:
        await refresh_stale_teams(runtime, client, directory, workspace_id=workspace_id, only=managed)
    dashboard = await run_db(
        runtime,
        load_dashboard,
        workspace_id=workspace_id,
        person_id=person.id,
        who=person.display_name or person.email or "you",
        slack_user_id=user_id,
        today=runtime.today(),
        is_admin=caller.is_admin,
        min_group_size=runtime.settings.min_group_size,
        email=person.email,
        enabled=runtime.source_lags,
        period=period,
    )
    # Demo mode: the caller sees a demo person's numbers; say whose, as /tokens me does.
    demo = runtime.settings.demo and person.email in DEMO_EMAILS
    demo_as = (person.display_name or person.email) if demo else None
    return build_home(
        dashboard, tz=runtime.settings.tz, now=datetime.now(UTC), admins_hint=hint, demo_as=demo_as
    )


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    recent = RecentEvents()

    async def on_app_home_opened(
        body: dict, event: dict, client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        if event.get("tab") != "home":
            return  # the Messages tab needs nothing from us
        event_id = body.get("event_id") or ""
        if event_id and recent.seen(event_id):
            return
        user_id = event.get("user", "")
        workspace_id = authorized_workspace(runtime, context)
        # Slack counts an event as delivered when the response comes: publish after it.
        in_background(publish(client, user_id, workspace_id, event_id), f"App Home for {user_id}")

    async def publish(
        client: AsyncWebClient, user_id: str, workspace_id: str, event_id: str, period: Period | None = None
    ) -> None:
        try:
            view = await home_view(
                runtime, client, directory, user_id=user_id, workspace_id=workspace_id, period=period
            )
            await client.views_publish(user_id=user_id, view=view)
        except Exception:  # an event listener has nobody to answer: log, and let a retry try again
            recent.forget(event_id)
            log.exception("App Home for %s failed", user_id)

    async def on_period(ack: AsyncAck, body: dict, client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await ack()
        # The tab is published for the user who clicked (Slack's word, in the signed body).
        user_id = (body.get("user") or {}).get("id", "")
        period = home_period(runtime, (body.get("actions") or [{}])[0].get("value"))
        workspace_id = authorized_workspace(runtime, context)
        in_background(publish(client, user_id, workspace_id, "", period), f"App Home period for {user_id}")

    app.event("app_home_opened")(on_app_home_opened)
    app.action(re.compile(rf"^{HOME_PERIOD_ACTION}_\w+$"))(on_period)
