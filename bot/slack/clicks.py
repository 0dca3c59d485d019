"""Buttons whose answer is slow or talks to Slack: the click is acked at once and answered to the
clicker alone (ephemeral) from the background, after Slack has its response. A failure is logged
and answered with the button's own "unknown" reply, never an error Slack shows."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.runtime import Runtime
from bot.slack.background import in_background
from bot.slack.blocks.common import Message
from bot.slack.context import authorized_workspace

log = logging.getLogger(__name__)

#: ``answer(client, body, workspace_id)``: the reply to one click.
Answer = Callable[[AsyncWebClient, dict, str], Awaitable[Message]]


def on_click(
    app: AsyncApp,
    runtime: Runtime,
    actions: list[str | re.Pattern],
    answer: Answer,
    *,
    fallback: Callable[[], Message],
    what: str,
) -> None:
    """Register ``answer`` for the buttons ``actions``; ``what`` names the click in the logs."""

    async def reply(body: dict, client: AsyncWebClient, respond: AsyncRespond, workspace_id: str) -> None:
        try:
            message = await answer(client, body, workspace_id)
        except Exception:
            log.exception("%s failed", what)
            message = fallback()
        await respond(**message.as_kwargs(), replace_original=False, response_type="ephemeral")

    async def listener(
        ack: AsyncAck, body: dict, client: AsyncWebClient, respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        await ack()
        workspace_id = authorized_workspace(runtime, context)
        in_background(reply(body, client, respond, workspace_id), what)

    for action in actions:
        app.action(action)(listener)
