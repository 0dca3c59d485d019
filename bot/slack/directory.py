"""Slack user lookups (``users.info``) with a small TTL cache: emails, names, admin flags; and
channel names (``conversations.info``), cached the same way.

The cache is per process and lock-free (one event loop); the durable cache is the person row,
which remembers its Slack user id once matched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackUser:
    id: str
    email: str | None
    name: str
    is_admin: bool
    deleted: bool
    is_bot: bool = False


class SlackDirectory:
    def __init__(self, ttl_seconds: float = 600.0, max_entries: int = 20_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        # Keyed by the bot token too: the same user id can be an admin in one workspace only.
        self._cache: dict[tuple[str, str], tuple[float, SlackUser | None]] = {}
        self._channels: dict[tuple[str, str], tuple[float, str]] = {}

    async def user(self, client: AsyncWebClient, user_id: str) -> SlackUser | None:
        now = time.monotonic()
        key = (client.token or "", user_id)
        cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        try:
            response = await client.users_info(user=user_id)
            data = response["user"]
            profile = data.get("profile") or {}
            user = SlackUser(
                id=user_id,
                email=(profile.get("email") or "").lower() or None,
                name=profile.get("real_name") or data.get("real_name") or data.get("name") or user_id,
                is_admin=bool(data.get("is_admin") or data.get("is_owner") or data.get("is_primary_owner")),
                deleted=bool(data.get("deleted")),
                is_bot=bool(data.get("is_bot")),
            )
        except SlackApiError as error:
            code = error.response.get("error") if error.response is not None else "unknown"
            if code != "user_not_found":
                log.warning("users.info for %s failed: %s", user_id, code)
                return None  # do not cache transient failures
            user = None
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, user)
        return user

    def forget(self, user_id: str) -> None:
        for key in [k for k in self._cache if k[1] == user_id]:
            self._cache.pop(key, None)

    def remember_channel(self, client: AsyncWebClient, channel_id: str, name: str) -> None:
        if len(self._channels) >= self.max_entries:
            self._channels.clear()
        self._channels[(client.token or "", channel_id)] = (time.monotonic() + self.ttl, name)

    async def channel_name(self, client: AsyncWebClient, channel_id: str) -> str:
        """The channel's name as ``conversations.info`` tells it, or "" when Slack will not say
        (not cached: the next call asks again)."""
        cached = self._channels.get((client.token or "", channel_id))
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = await client.conversations_info(channel=channel_id)
        except SlackApiError as error:
            code = error.response.get("error") if error.response is not None else "unknown"
            log.info("conversations.info for %s failed: %s", channel_id, code)
            return ""
        name = (response.get("channel") or {}).get("name") or ""
        self.remember_channel(client, channel_id, name)
        return name
