"""``/tokens sources`` (admins): vendor keys per workspace, entered in a modal, stored encrypted.

Opening a modal needs the command's ``trigger_id``, which the shared ``/tokens`` dispatcher does
not pass to handlers, so this module registers its own ``/tokens`` listener that matches only
``sources``. Bolt runs the first matching listener, and ``bot.slack.commands.register`` wires
feature modules before its catch-all ``/tokens``; every other subcommand still goes there.

The submission is re-authorized (admin rights can be lost while a modal is open), validated
before anything is written (errors show under the offending input), stored in one transaction
and audited without values. Key values are never logged, echoed or sent back to Slack.
"""

from __future__ import annotations

import asyncio
import json
import logging

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import access
from bot.services import secrets as secret_store
from bot.services.commands import usage_line
from bot.services.runtime import Runtime
from bot.services.secrets import SecretChange, SecretInputError, clean_base_url, clean_key
from bot.slack.blocks.common import Message, section
from bot.slack.blocks.reports import build_error
from bot.slack.blocks.sources import (
    CALLBACK_ID,
    REMOVE_BLOCK,
    VALUE_ACTION,
    build_no_secret_key_modal,
    build_refused_view,
    build_saved,
    build_sources_modal,
    key_block_id,
    url_block_id,
)
from bot.slack.commands import admins_hint, authorized_workspace, in_background
from bot.slack.directory import SlackDirectory
from bot.sources.overrides import CONFIGURABLE

log = logging.getLogger(__name__)

SUBCOMMAND = "sources"


async def is_sources_command(body: dict) -> bool:
    words = (body.get("text") or "").split()
    return bool(words) and words[0].lower() == SUBCOMMAND


def _refusal(runtime: Runtime) -> str:
    return f"Vendor keys are managed by admins ({admins_hint(runtime)})."


async def _is_admin(
    directory: SlackDirectory, client: AsyncWebClient, runtime: Runtime, user_id: str
) -> bool:
    slack_user = await directory.user(client, user_id)
    return access.is_admin(
        runtime.settings,
        user_id=user_id,
        email=slack_user.email if slack_user else None,
        slack_admin=bool(slack_user and slack_user.is_admin),
    )


def _db(runtime: Runtime, fn, *args, write: bool = False, **kwargs):
    def work():
        with runtime.engine.begin() if write else runtime.engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    return asyncio.to_thread(work)


async def open_sources(
    runtime: Runtime, directory: SlackDirectory, client: AsyncWebClient, body: dict, workspace_id: str
) -> Message | None:
    """Opens the modal (None: nothing to say in the channel) or returns an ephemeral refusal."""
    if len((body.get("text") or "").split()) > 1:
        return build_error("`/tokens sources` takes no arguments.", usage_line(SUBCOMMAND))
    user_id = body.get("user_id", "")
    if not await _is_admin(directory, client, runtime, user_id):
        return build_error(_refusal(runtime))
    if secret_store.has_keyring(runtime.settings):
        statuses = await _db(runtime, secret_store.statuses, workspace_id=workspace_id)
        view = build_sources_modal(statuses, channel_id=body.get("channel_id", ""))
    else:
        view = build_no_secret_key_modal()
    try:
        await client.views_open(trigger_id=body.get("trigger_id", ""), view=view)
    except SlackApiError as error:
        code = error.response.get("error") if error.response is not None else "unknown"
        log.warning("views.open for /tokens sources failed: %s", code)
        return build_error(f"Slack did not open the form (`{code}`). Run `/tokens sources` again.")
    return None


def _text(values: dict, block_id: str) -> str | None:
    return ((values.get(block_id) or {}).get(VALUE_ACTION) or {}).get("value")


def read_submission(values: dict) -> list[SecretChange]:
    """The modal's state as changes; ``SecretInputError`` names the first unusable input."""
    selected = ((values.get(REMOVE_BLOCK) or {}).get(VALUE_ACTION) or {}).get("selected_options") or []
    remove = {option.get("value") for option in selected}
    changes = []
    for source in CONFIGURABLE:
        key = clean_key(source, _text(values, key_block_id(source)))
        base_url = clean_base_url(source, _text(values, url_block_id(source)))
        if key and source in remove:
            raise SecretInputError(source, "key", "Paste a new key or remove the stored one, not both.")
        changes.append(SecretChange(source, key=key, base_url=base_url, remove=source in remove))
    return changes


def _error_block(error: SecretInputError) -> str:
    return url_block_id(error.source) if error.field == "base_url" else key_block_id(error.source)


async def save_sources(
    runtime: Runtime, directory: SlackDirectory, client: AsyncWebClient, body: dict, workspace_id: str
) -> tuple[dict, Message | None]:
    """(the ack's arguments, the confirmation to send after it)."""
    user_id = (body.get("user") or {}).get("id", "")
    view = body.get("view") or {}
    if not await _is_admin(directory, client, runtime, user_id):
        return {"response_action": "update", "view": build_refused_view(_refusal(runtime))}, None
    try:
        fernet = secret_store.keyring(runtime.settings)
    except secret_store.SecretKeyError:
        return {"response_action": "update", "view": build_no_secret_key_modal()}, None
    try:
        changes = read_submission((view.get("state") or {}).get("values") or {})
        changed = await _db(
            runtime,
            secret_store.apply_changes,
            fernet,
            workspace_id=workspace_id,
            changes=changes,
            updated_by=user_id,
            write=True,
        )
    except SecretInputError as error:
        return {"response_action": "errors", "errors": {_error_block(error): error.message}}, None
    log.info(
        "vendor keys changed in workspace %s by %s: %s",
        workspace_id,
        user_id,
        ", ".join(f"{source} {action}" for source, action in changed) or "none",
    )
    return {}, build_saved(changed, sync_minutes=runtime.settings.sync_interval_minutes)


OPENED = ":key: Opened the vendor keys form. Keys you enter are stored encrypted and never shown back."


async def _confirm(client: AsyncWebClient, body: dict, reply: Message) -> None:
    """Ephemeral in the channel the command came from; a DM when that is not possible."""
    user_id = (body.get("user") or {}).get("id", "")
    try:
        channel = json.loads((body.get("view") or {}).get("private_metadata") or "{}").get("channel")
    except ValueError:
        channel = None
    try:
        if channel:
            await client.chat_postEphemeral(channel=channel, user=user_id, **reply.as_kwargs())
            return
    except SlackApiError as error:
        log.info("ephemeral confirmation failed (%s); sending a DM", error.response.get("error"))
    try:
        await client.chat_postMessage(channel=user_id, **reply.as_kwargs())
    except SlackApiError as error:
        log.warning("could not confirm saved vendor keys to %s: %s", user_id, error.response.get("error"))


def register(app: AsyncApp, runtime: Runtime, directory: SlackDirectory) -> None:
    async def handle_command(
        ack: AsyncAck, body: dict, client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        try:
            reply = await open_sources(
                runtime, directory, client, body, authorized_workspace(runtime, context)
            )
        except Exception:
            log.exception("/tokens sources failed for user %s", body.get("user_id"))
            reply = build_error("Something went wrong on my side; it has been logged. Please try again.")
        if reply is None:  # the modal is open; say so, ephemerally, so the command never looks ignored
            reply = Message(OPENED, [section(OPENED)])
        await ack(**reply.as_kwargs(), response_type="ephemeral")

    async def handle_submission(
        ack: AsyncAck, body: dict, client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        try:
            workspace_id = authorized_workspace(runtime, context)
            response, reply = await save_sources(runtime, directory, client, body, workspace_id)
        except Exception:
            log.exception("saving vendor keys failed for user %s", (body.get("user") or {}).get("id"))
            response = {
                "response_action": "update",
                "view": build_refused_view("Something went wrong on my side; nothing was saved. Try again."),
            }
            reply = None
        await ack(**response)
        if reply is not None:  # after the response: the modal closes without waiting for chat.*
            in_background(_confirm(client, body, reply), "vendor keys confirmation")

    app.command("/tokens", matchers=[is_sources_command])(handle_command)
    app.view(CALLBACK_ID)(handle_submission)
