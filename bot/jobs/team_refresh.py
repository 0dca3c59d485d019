"""Re-read stale team memberships from Slack, so a leaver stops counting from the day they left
even when nobody asks about their team (a manager's view re-reads on demand as well)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.per_workspace import run_in_each_workspace
from bot.services.runtime import Runtime
from bot.slack.directory import SlackDirectory
from bot.slack.handlers.teams import refresh_stale_teams


def team_refresh_job(runtime: Runtime) -> int:
    """Scheduler entry point (a worker thread): re-read every stale team, in every served
    workspace with that workspace's own bot token; returns how many were re-read."""

    async def refresh(workspace_id: str, client: AsyncWebClient) -> int:
        return await refresh_stale_teams(runtime, client, SlackDirectory(), workspace_id=workspace_id)

    return sum(run_in_each_workspace(runtime, refresh, what="team refresh").values())
