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


def slack_error(error: Exception) -> str:
    if isinstance(error, SlackApiError) and error.response is not None:
        return str(error.response.get("error") or "unknown")
    return type(error).__name__
