"""The ``/tokens`` listener: ack fast, parse, authorize, call the subcommand's handler, answer
ephemerally. Which handler answers which subcommand is ``bot.slack.command_table``.

The answer goes in the ack when it is ready within ``ACK_BUDGET_SECONDS`` (the usual case: a
few indexed queries); otherwise the ack says "working on it" and the answer follows through the
``response_url`` from a background task (``bot.slack.background``). Every failure becomes an
ephemeral message; nothing reaches Slack as a 500.
"""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.commands import CommandError, parse
from bot.services.runtime import Runtime
from bot.slack.background import in_background
from bot.slack.blocks.common import Message
from bot.slack.blocks.reports import build_error
from bot.slack.command_table import COMMANDS, LISTENERS
from bot.slack.context import authorized_workspace, request_context
from bot.slack.directory import SlackDirectory

log = logging.getLogger(__name__)

ACK_BUDGET_SECONDS = 2.0


async def answer(
    runtime: Runtime, directory: SlackDirectory, client: AsyncWebClient, body: dict, workspace_id: str
) -> Message:
    user_id = body.get("user_id", "")
    try:
        command = parse(body.get("text"))
        channel_id = body.get("channel_id", "")
        ctx = await request_context(runtime, directory, client, body, user_id, workspace_id, channel_id)
        return await COMMANDS[command.name](ctx, command)
    except CommandError as error:
        return build_error(error.message, error.usage)
    except Exception:
        log.exception("/tokens failed for user %s", user_id)
        return build_error(
            "Something went wrong on my side; it has been logged. Please try again in a minute."
        )


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    """Wire /tokens and every feature's events and actions (``command_table.LISTENERS``).

    /tokens first: Bolt tries its listeners' matchers in registration order for every request,
    and no other listener takes a slash command, so a command matches at the first try instead
    of after every action, view and event listener's matchers (docs/benchmarks.md, B5)."""

    async def deliver_late(task: asyncio.Task, respond: AsyncRespond, user_id: str) -> None:
        reply = await task
        try:
            await respond(**reply.as_kwargs(), response_type="ephemeral", replace_original=True)
        except Exception:  # an expired response_url is logged, nothing more
            log.warning("could not deliver a late /tokens answer to user %s", user_id)

    async def handle_tokens_command(
        ack: AsyncAck, body: dict, client: AsyncWebClient, respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        workspace_id = authorized_workspace(runtime, context)
        task = asyncio.ensure_future(answer(runtime, directory, client, body, workspace_id))
        done, _ = await asyncio.wait((task,), timeout=ACK_BUDGET_SECONDS)
        if done:
            await ack(**task.result().as_kwargs(), response_type="ephemeral")
            return
        await ack(text=":hourglass_flowing_sand: Working on it…", response_type="ephemeral")
        user_id = body.get("user_id", "")
        in_background(deliver_late(task, respond, user_id), f"late /tokens answer for {user_id}")

    app.command("/tokens")(handle_tokens_command)
    for register_listeners in LISTENERS:
        register_listeners(app, runtime, directory)
