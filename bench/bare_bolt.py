"""The framework's floor for B5: a bare Bolt app (the same ``AsyncApp`` options and Starlette
adapter as ``bot.slack.app``/``bot.web``) that verifies the request signature, routes ``/tokens``
and acks a fixed answer, no database and no Slack calls. Between this floor and the bare
Starlette ceiling lies what Bolt itself costs; between the floor and ``tokenwise run`` lies what
Tokenwise costs."""

from __future__ import annotations

import logging

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from bench.bare_app import ANSWER, serve
from bench.slack import BOT_TOKEN, SIGNING_SECRET


async def fixed_authorization(**_) -> AuthorizeResult:
    # What the real app learns once from auth.test and then caches; there is no Slack here.
    return AuthorizeResult(
        enterprise_id=None, team_id="TBENCH", bot_token=BOT_TOKEN, bot_user_id="UBOT", bot_id="BBOT"
    )


bolt = AsyncApp(
    authorize=fixed_authorization,
    signing_secret=SIGNING_SECRET,
    ignoring_self_events_enabled=True,
    raise_error_for_unhandled_request=False,
    process_before_response=True,
    logger=logging.getLogger("bench.bare_bolt"),
)


@bolt.command("/tokens")
async def tokens(ack) -> None:
    await ack(ANSWER)


handler = AsyncSlackRequestHandler(bolt)


async def slack_events(request: Request):
    return await handler.handle(request)


app = Starlette(routes=[Route("/slack/events", slack_events, methods=["POST"])])


def main() -> None:
    serve("bench.bare_bolt:app")


if __name__ == "__main__":
    main()
