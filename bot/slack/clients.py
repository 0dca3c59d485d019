"""Web API clients for work that no Slack request started (scheduled recaps, alerts, refreshes).

A listener gets its client from Bolt, already holding the requesting workspace's token. A job
asks here, per workspace: SLACK_BOT_TOKEN in a single-workspace install, the installation's bot
token in a multi-workspace one. Jobs go through ``bot.jobs.per_workspace``, which loops over
``bot.services.workspaces.active_workspace_ids`` and skips a workspace that raises
``WorkspaceNotInstalled`` (uninstalled since the loop began).
"""

from __future__ import annotations

import asyncio

from slack_sdk.web.async_client import AsyncWebClient

from bot.observability import remember_secrets
from bot.services import workspaces
from bot.services.runtime import Runtime


class WorkspaceNotInstalled(LookupError):
    """The workspace uninstalled the app (or never installed it): there is no token to use."""

    def __init__(self, workspace_id: str) -> None:
        super().__init__(f"workspace {workspace_id} has no active installation")
        self.workspace_id = workspace_id


def _bot_token(runtime: Runtime, workspace_id: str) -> str | None:
    from bot.slack.oauth import installation_store

    with runtime.engine.connect() as conn:
        workspace = workspaces.get(conn, workspace_id)
    if workspace is None or workspace.status != workspaces.ACTIVE:
        return None
    bot = installation_store(runtime).find_bot(enterprise_id=workspace.enterprise_id, team_id=workspace_id)
    if bot is None:
        return None
    remember_secrets(bot.bot_token or "")
    return bot.bot_token


async def bot_client_for(runtime: Runtime, workspace_id: str) -> AsyncWebClient:
    """A client holding ``workspace_id``'s bot token; ``WorkspaceNotInstalled`` when it has none."""
    from bot.slack.app import make_web_client

    settings = runtime.settings
    if not settings.multi_workspace:
        if workspace_id != settings.workspace_id or settings.slack_bot_token is None:
            raise WorkspaceNotInstalled(workspace_id)
        return make_web_client(runtime)
    token = await asyncio.to_thread(_bot_token, runtime, workspace_id)
    if token is None:
        raise WorkspaceNotInstalled(workspace_id)
    return make_web_client(runtime, token=token)
