"""Builds the Bolt ``AsyncApp`` and wires every listener. Nothing else lives here."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.services.runtime import Runtime
from bot.slack import commands
from bot.slack.clients import make_web_client
from bot.slack.directory import SlackDirectory

log = logging.getLogger(__name__)
BOLT_LOGGER = logging.getLogger("bot.slack.bolt")


class _TokenFromClient(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and, handed our client (which
    carries that same token), warns that the token "will be unused": true, harmless, and a
    confusing first line of every `tokenwise run`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


BOLT_LOGGER.addFilter(_TokenFromClient())


class ConfigError(ValueError):
    """The process cannot start: the message is one line naming what to fix."""


def _oauth_settings(runtime: Runtime, *, socket_mode: bool):
    from bot.slack.oauth import oauth_settings

    settings = runtime.settings
    if not settings.slack_client_secret:
        raise ConfigError("SLACK_CLIENT_ID is set but SLACK_CLIENT_SECRET is not (Basic Information)")
    if socket_mode:
        raise ConfigError(
            "a multi-workspace install (SLACK_CLIENT_ID) serves /slack/install over HTTP: "
            "unset SLACK_APP_TOKEN"
        )
    if settings.slack_bot_token:
        log.warning("SLACK_CLIENT_ID is set: multi-workspace install, so SLACK_BOT_TOKEN is not used")
    return oauth_settings(runtime)


def build_app(runtime: Runtime, *, socket_mode: bool = False) -> AsyncApp:
    settings = runtime.settings
    oauth = None
    if settings.multi_workspace:
        oauth = _oauth_settings(runtime, socket_mode=socket_mode)
    elif not settings.slack_bot_token:
        raise ConfigError(
            "SLACK_BOT_TOKEN is not set: create the Slack app from manifest.dev.yml (Socket Mode) or "
            "manifest.yml (HTTP) and install it (README, Set up in Slack)"
        )
    if not socket_mode and not settings.slack_signing_secret:
        raise ConfigError("SLACK_SIGNING_SECRET is not set (Basic Information -> App Credentials)")
    app = AsyncApp(
        client=make_web_client(runtime),
        oauth_settings=oauth,
        signing_secret=settings.slack_signing_secret.get_secret_value()
        if settings.slack_signing_secret
        else None,
        request_verification_enabled=not socket_mode,
        ignoring_self_events_enabled=True,
        raise_error_for_unhandled_request=False,
        # Respond as soon as the listener returns, not on Bolt's 10 ms poll of ack(): every
        # listener acks and returns fast and leaves slow work to background.in_background.
        process_before_response=True,
        logger=BOLT_LOGGER,
    )
    directory = SlackDirectory()
    if oauth is not None:
        from bot.slack.oauth import register_uninstall

        register_uninstall(app, runtime, oauth.installation_store)
    commands.register(app, runtime, directory)

    @app.error
    async def handle_errors(error, request: AsyncBoltRequest, response: BoltResponse | None, logger):
        logger.exception("unhandled Slack listener error: %s", type(error).__name__)
        if response is None:  # Bolt has already answered Slack
            return None
        # Never a 500 to Slack: keep what the listener acked (its message), or an empty 200.
        acked = request.context.ack.response
        if acked is not None:
            return BoltResponse(status=200, body=acked.body, headers=acked.headers)
        return BoltResponse(status=200, body="")

    return app
