"""Builds the Bolt ``AsyncApp`` and wires every listener. Nothing else lives here."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime import Runtime
from bot.slack import commands
from bot.slack.directory import SlackDirectory

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """The process cannot start: the message is one line naming what to fix."""


def make_web_client(runtime: Runtime, token: str | None = None) -> AsyncWebClient:
    settings = runtime.settings
    if token is None and settings.slack_bot_token:
        token = settings.slack_bot_token.get_secret_value()
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=1),
        ],
    )


def build_app(runtime: Runtime, *, socket_mode: bool = False) -> AsyncApp:
    settings = runtime.settings
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set: create the app from manifest.yml and install it first")
    if not socket_mode and not settings.slack_signing_secret:
        raise ConfigError("SLACK_SIGNING_SECRET is not set (Basic Information -> App Credentials)")
    app = AsyncApp(
        client=make_web_client(runtime),
        signing_secret=settings.slack_signing_secret.get_secret_value()
        if settings.slack_signing_secret
        else None,
        request_verification_enabled=not socket_mode,
        ignoring_self_events_enabled=True,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("bot.slack.bolt"),
    )
    directory = SlackDirectory()
    commands.register(app, runtime, directory)

    @app.error
    async def handle_errors(error, body, logger):  # never a 500 to Slack
        logger.exception("unhandled Slack listener error: %s", type(error).__name__)

    return app
