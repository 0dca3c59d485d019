"""Direct messages from the bot, and the short reason a Slack call failed (for logs and replies)."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.blocks.common import Message


async def send_dm(client: AsyncWebClient, user_id: str, reply: Message) -> tuple[str, str]:
    """conversations.open + chat.postMessage; returns (channel, ts) so the DM can be updated."""
    opened = await client.conversations_open(users=user_id)
    channel = opened["channel"]["id"]
    posted = await client.chat_postMessage(channel=channel, **reply.as_kwargs())
    return channel, posted.get("ts") or ""


#: Refusals that may pass later: Slack's rate limit and its own outages. Any other error
#: (``cannot_dm_bot``, ``user_not_found``, ``account_inactive``...) stands until something changes.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"}
)


def is_transient(error: Exception) -> bool:
    """Worth trying again on a later run: a 429 or 5xx (the client's own retries already spent),
    a transient Slack error, or no answer at all (a timeout, a dropped connection)."""
    if isinstance(error, SlackApiError):
        response = error.response
        if response is None:
            return False
        return (
            response.status_code == 429
            or response.status_code >= 500
            or response.get("error") in TRANSIENT_ERRORS
        )
    return isinstance(error, (OSError, TimeoutError))


def slack_error(error: Exception) -> str:
    if isinstance(error, SlackApiError) and error.response is not None:
        return str(error.response.get("error") or "unknown")
    return type(error).__name__
