"""Multi-workspace install (Slack OAuth): ``GET /slack/install`` and ``GET /slack/oauth_redirect``.

Installations and OAuth states live in slack_sdk's own tables (``slack_bots``,
``slack_installations``, ``slack_oauth_states``; created by migration ``0004_oauth``), read and
written by slack_sdk's SQLAlchemy stores on the app's one engine. Bolt's async app calls them
through ``asyncio.to_thread``, as every other data-layer call here: slack_sdk's async stores would
need a second, async engine (aiosqlite / psycopg async) with its own pool and SQLite pragmas.

Uninstalling (``app_uninstalled``, or ``tokens_revoked`` for the bot token) deletes the
installation and marks the workspace inactive so scheduled jobs skip it; its data stays.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.observability import remember_secrets
from bot.services import workspaces
from bot.services.runtime import Runtime
from bot.slack.context import run_db

log = logging.getLogger(__name__)

# The bot scopes of manifest.yml (tests/web/test_oauth.py keeps the two equal).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "im:write",
    "users:read",
    "users:read.email",
    "files:write",
    "usergroups:read",
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
)
STATE_EXPIRATION_SECONDS = 600


def installation_store(runtime: Runtime) -> SQLAlchemyInstallationStore:
    """slack_sdk's store on the runtime's engine (cheap: it only describes the tables)."""
    return SQLAlchemyInstallationStore(
        client_id=runtime.settings.slack_client_id or "",
        engine=runtime.engine,
        logger=logging.getLogger("bot.slack.installations"),
    )


class ThreadedInstallationStore(AsyncInstallationStore):
    """The async interface Bolt's ``AsyncApp`` needs, over the sync SQLAlchemy store."""

    def __init__(self, store: SQLAlchemyInstallationStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return self.store.logger

    async def _run(self, fn, /, **kwargs) -> Any:
        return await asyncio.to_thread(functools.partial(fn, **kwargs))

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.store.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.store.save_bot, bot)

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        bot = await self._run(
            self.store.find_bot,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        if bot is not None:  # each workspace's bot token is masked like a configured one
            remember_secrets(bot.bot_token or "")
        return bot

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await self._run(
            self.store.find_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._run(self.store.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await self._run(
            self.store.delete_installation, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id
        )


class ThreadedStateStore(AsyncOAuthStateStore):
    def __init__(self, store: SQLAlchemyOAuthStateStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return self.store.logger

    async def async_issue(self, *args, **kwargs) -> str:
        return await asyncio.to_thread(self.store.issue)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.store.consume, state)


def oauth_settings(runtime: Runtime) -> AsyncOAuthSettings:
    settings = runtime.settings
    store = ThreadedInstallationStore(installation_store(runtime))

    async def success(args: AsyncSuccessArgs) -> BoltResponse:
        installation = args.installation
        if not installation.team_id:  # an org-wide Enterprise Grid install: no workspace to scope by
            log.warning("org-wide install of enterprise %s is not supported", installation.enterprise_id)
            return await args.default.failure(
                AsyncFailureArgs(
                    request=args.request,
                    reason="org_wide_install_not_supported",
                    suggested_status_code=400,
                    settings=args.settings,
                    default=args.default,
                )
            )

        def activate(conn) -> None:
            workspaces.activate(
                conn,
                workspace_id=installation.team_id,
                enterprise_id=installation.enterprise_id,
                name=installation.team_name or "",
                installed_by=installation.user_id or "",
            )

        await run_db(runtime, activate, write=True)
        log.info("installed in workspace %s", installation.team_id)
        return await args.default.success(args)

    async def failure(args: AsyncFailureArgs) -> BoltResponse:
        log.warning("Slack install failed: %s", args.reason)
        return await args.default.failure(args)

    oauth = AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value()
        if settings.slack_client_secret
        else None,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=settings.slack_redirect_uri,
        installation_store=store,
        installation_store_bot_only=True,
        state_store=ThreadedStateStore(
            SQLAlchemyOAuthStateStore(
                expiration_seconds=STATE_EXPIRATION_SECONDS,
                engine=runtime.engine,
                logger=logging.getLogger("bot.slack.oauth_state"),
            )
        ),
        state_expiration_seconds=STATE_EXPIRATION_SECONDS,
        callback_options=AsyncCallbackOptions(success=success, failure=failure),
        logger=logging.getLogger("bot.slack.oauth"),
    )
    # Every request still looks the bot up (an uninstalled workspace is refused at once); only
    # the auth.test answer per token is remembered, sparing a Slack round trip per command.
    oauth.authorize.cache_enabled = True
    return oauth


def register_uninstall(app: AsyncApp, runtime: Runtime, store: AsyncInstallationStore) -> None:
    """Our own listeners instead of Bolt's ``enable_token_revocation_listeners``: besides deleting
    the installation they mark the workspace inactive, which Bolt's do not know about."""

    async def deactivate(team_id: str | None, why: str) -> None:
        if not team_id:
            return
        changed = await run_db(runtime, workspaces.deactivate, workspace_id=team_id, write=True)
        if changed:
            log.info("workspace %s is inactive (%s); its data is kept", team_id, why)

    async def on_app_uninstalled(context: AsyncBoltContext) -> None:
        await store.async_delete_all(enterprise_id=context.enterprise_id, team_id=context.team_id)
        await deactivate(context.team_id, "app uninstalled")

    async def on_tokens_revoked(event: dict, context: AsyncBoltContext) -> None:
        tokens = event.get("tokens") or {}
        for user_id in tokens.get("oauth") or []:
            await store.async_delete_installation(
                enterprise_id=context.enterprise_id, team_id=context.team_id, user_id=user_id
            )
        if tokens.get("bot"):
            await store.async_delete_bot(enterprise_id=context.enterprise_id, team_id=context.team_id)
            await deactivate(context.team_id, "bot token revoked")

    app.event("app_uninstalled")(on_app_uninstalled)
    app.event("tokens_revoked")(on_tokens_revoked)
