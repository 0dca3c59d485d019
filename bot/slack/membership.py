"""Team membership read from Slack, and its refresh.

A team is a user group (``usergroups.users.list``) or a channel's members
(``conversations.members``, paginated). Members are matched to people by their Slack id, or by
the email ``users.info`` shows for ids not seen before; the dated membership is kept by
``bot.services.teams``. Membership older than ``TOKENWISE_TEAM_REFRESH_MINUTES`` is re-read when
used (``refresh_stale_teams``; ``refresh_managed_teams`` before a manager's access is decided).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.models import Team
from bot.services import teams
from bot.services.runtime import Runtime
from bot.services.teams import SlackMember
from bot.slack.blocks.format import team_mention
from bot.slack.context import CommandContext, run_db
from bot.slack.directory import SlackDirectory

log = logging.getLogger(__name__)

MEMBERS_PAGE_SIZE = 200
MAX_MEMBER_PAGES = 250  # 50,000 members: far beyond any team, stops a cursor loop
LOOKUP_CONCURRENCY = 8

READ_ERRORS = {
    "not_in_channel": "I am not in {mention}. Invite me there (`/invite @tokenwise`) and try again.",
    "channel_not_found": (
        "I cannot see {mention}: it does not exist or it is private and I am not in it. "
        "Invite me there (`/invite @tokenwise`) and try again."
    ),
    "no_such_subteam": "I cannot find that user group; it may have been deleted.",
    "subteam_not_found": "I cannot find that user group; it may have been deleted.",
    "missing_scope": (
        "I lack the Slack permission to read {mention} (`usergroups:read`, `channels:read`, "
        "`groups:read`); reinstall the app from its manifest."
    ),
}


@dataclass(frozen=True, slots=True)
class TeamAt:
    """A team to read from Slack: a channel or user group (``kind``) of a workspace, and its name
    when known."""

    workspace_id: str
    kind: str
    slack_id: str
    name: str = ""

    def key(self) -> dict[str, str]:
        """The keyword arguments that find the stored team (``teams.get_team``)."""
        return {"workspace_id": self.workspace_id, "kind": self.kind, "slack_id": self.slack_id}

    def named(self) -> dict[str, str]:
        """The key and the name (``teams.ensure_team``, ``teams.record_refresh``)."""
        return {**self.key(), "name": self.name}


class TeamReadError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


async def read_member_ids(client: AsyncWebClient, kind: str, slack_id: str) -> list[str]:
    try:
        if kind == teams.USERGROUP:
            response = await client.usergroups_users_list(usergroup=slack_id)
            return list(dict.fromkeys(response.get("users") or []))
        found: list[str] = []
        cursor = None
        for _ in range(MAX_MEMBER_PAGES):
            response = await client.conversations_members(
                channel=slack_id, limit=MEMBERS_PAGE_SIZE, **({"cursor": cursor} if cursor else {})
            )
            found.extend(response.get("members") or [])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return list(dict.fromkeys(found))
    except SlackApiError as error:
        code = (error.response.get("error") if error.response is not None else None) or "unknown"
        template = READ_ERRORS.get(code, "Slack would not give me the members of {mention} (`{code}`).")
        raise TeamReadError(template.format(mention=team_mention(kind, slack_id), code=code), code) from None


async def read_members(
    runtime: Runtime, client: AsyncWebClient, directory: SlackDirectory, team: TeamAt
) -> tuple[dict[str, int], list[SlackMember]]:
    """The members as Slack lists them now: already matched people (Slack id -> person id) and
    the others as looked up in Slack. Reads only; raises TeamReadError."""
    ids = await read_member_ids(client, team.kind, team.slack_id)
    known = await run_db(runtime, teams.known_people, workspace_id=team.workspace_id, slack_user_ids=ids)
    unknown = [uid for uid in ids if uid not in known]
    gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def look_up(uid: str):
        async with gate:
            return await directory.user(client, uid)

    users = await asyncio.gather(*(look_up(uid) for uid in unknown))
    new_members = [
        SlackMember(u.id, u.email, u.name) for u in users if u is not None and not u.deleted and not u.is_bot
    ]
    return known, new_members


async def refresh_team(
    runtime: Runtime, client: AsyncWebClient, directory: SlackDirectory, team: TeamAt
) -> tuple[Team, teams.RefreshResult]:
    """Re-read the members from Slack and record who joined and who left. Raises TeamReadError,
    in which case nothing is stored (not even a new team)."""
    known, new_members = await read_members(runtime, client, directory, team)
    return await run_db(
        runtime,
        teams.record_refresh,
        **team.named(),
        known=known,
        new_members=new_members,
        today=runtime.today(),
        write=True,
    )


def max_age(runtime: Runtime) -> timedelta:
    return timedelta(minutes=runtime.settings.team_refresh_minutes)


async def refresh_stale_teams(
    runtime: Runtime,
    client: AsyncWebClient,
    directory: SlackDirectory,
    *,
    workspace_id: str,
    only: list[Team] | None = None,
) -> int:
    """Re-read every stale team (or the stale ones of ``only``); failures are logged and keep
    the last membership. Returns how many were refreshed."""
    candidates = (
        only if only is not None else await run_db(runtime, teams.all_teams, workspace_id=workspace_id)
    )
    now = datetime.now(UTC)
    done = 0
    for team in candidates:
        if not teams.is_stale(team, now=now, max_age=max_age(runtime)):
            continue
        try:
            await refresh_team(runtime, client, directory, TeamAt(workspace_id, team.kind, team.slack_id))
            done += 1
        except TeamReadError as error:
            log.warning("team %s %s: %s", team.kind, team.slack_id, error.code)
    return done


async def refresh_managed_teams(ctx: CommandContext) -> list[Team]:
    """Before a manager's access is decided, make sure their teams' membership is current (a
    person who left yesterday must not stay visible until someone happens to refresh)."""
    workspace_id = ctx.caller.workspace_id
    managed = await ctx.db(teams.managed_teams, workspace_id=workspace_id, slack_user_id=ctx.caller.user_id)
    if managed:
        await refresh_stale_teams(
            ctx.runtime, ctx.client, ctx.directory, workspace_id=workspace_id, only=managed
        )
    return managed
