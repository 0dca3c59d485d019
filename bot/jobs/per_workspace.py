"""Run one piece of scheduled work in every installed workspace, each with its own bot client.

A job has no Slack request to take a token from: ``bot.services.workspaces.active_workspace_ids``
says which workspaces are served, ``bot.slack.clients.bot_client_for`` gives each one's client.
A workspace that has no token (uninstalled since the list was read, or never installed) is
skipped before anything is claimed, so the work is done on a later run instead of being lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

from slack_sdk.web.async_client import AsyncWebClient

from bot.services.runtime import Runtime
from bot.services.workspaces import active_workspace_ids
from bot.slack.clients import WorkspaceNotInstalled, bot_client_for

log = logging.getLogger(__name__)

WorkspaceJob = Callable[[str, AsyncWebClient], Awaitable]


def _served(runtime: Runtime) -> list[str]:
    with runtime.engine.connect() as conn:
        return active_workspace_ids(conn, runtime.settings)


async def each_workspace(
    runtime: Runtime, job: WorkspaceJob, *, what: str, only: Collection[str] | None = None
) -> dict:
    """``await job(workspace_id, client)`` for each served workspace (of ``only``, when given: a
    job with nothing to do elsewhere asks for no other client), in a stable order. Returns
    workspace id -> what the job returned, for the workspaces it ran in."""
    if only is not None and not only:
        return {}
    done = {}
    for workspace_id in await asyncio.to_thread(_served, runtime):
        if only is not None and workspace_id not in only:
            continue
        try:
            client = await bot_client_for(runtime, workspace_id)
        except WorkspaceNotInstalled:
            log.debug("%s skipped for %s: no Slack token to use", what, workspace_id)
            continue
        done[workspace_id] = await job(workspace_id, client)
    return done


def run_in_each_workspace(runtime: Runtime, job: WorkspaceJob, *, what: str) -> dict:
    """The scheduler's entry (a worker thread, no event loop yet): ``each_workspace`` to the end."""
    return asyncio.run(each_workspace(runtime, job, what=what))
