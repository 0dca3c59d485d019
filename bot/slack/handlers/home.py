"""The App Home tab: on ``app_home_opened`` (Home tab) publish the person's dashboard.

Slack retries an event it thinks was not delivered; a retried event has the same ``event_id``
and is skipped here. Publishing the same view twice is harmless anyway (``views.publish``
replaces the tab), so a retry after a restart costs one extra publish and nothing else.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import teams
from bot.services.home import load_dashboard
from bot.services.runtime import Runtime
from bot.slack.background import in_background
from bot.slack.blocks.home import build_home, build_home_not_linked
from bot.slack.context import admins_hint, authorized_workspace, resolve_person, run_db
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


async def home_view(
    runtime: Runtime, client: AsyncWebClient, directory: SlackDirectory, *, user_id: str, workspace_id: str
) -> dict:
    person = await resolve_person(
        runtime,
        directory,
        client,
        workspace_id=workspace_id,
        slack_user_id=user_id,
        humans_only=True,
        caller=True,
    )
    if person is None:
        return build_home_not_linked(admins_hint=admins_hint(runtime))
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
    )
    return build_home(dashboard, tz=runtime.settings.tz, now=datetime.now(UTC))


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

    async def publish(client: AsyncWebClient, user_id: str, workspace_id: str, event_id: str) -> None:
        try:
            view = await home_view(runtime, client, directory, user_id=user_id, workspace_id=workspace_id)
            await client.views_publish(user_id=user_id, view=view)
        except Exception:  # an event listener has nobody to answer: log, and let a retry try again
            recent.forget(event_id)
            log.exception("App Home for %s failed", user_id)

    app.event("app_home_opened")(on_app_home_opened)
