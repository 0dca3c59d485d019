"""``/tokens sources`` (admins): vendor keys per workspace, entered in a modal, stored encrypted;
``/tokens sources otel token create|rotate``: the OTLP ingest token, shown once to the admin.

``/tokens sources`` goes through the command table like every subcommand; the modal opens with
the command's ``trigger_id`` (``CommandContext.trigger_id``).

The submission is re-authorized (admin rights can be lost while a modal is open), validated
before anything is written (errors show under the offending input), stored in one transaction
and audited without values. Key values are never logged, echoed or sent back to Slack.
"""

from __future__ import annotations

import json
import logging

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import otel
from bot.services import secrets as secret_store
from bot.services.commands import ParsedCommand, usage_line
from bot.services.runtime import Runtime
from bot.services.secrets import SecretChange, SecretInputError, clean_base_url, clean_extra, clean_key
from bot.slack.background import in_background
from bot.slack.blocks.common import Message, section
from bot.slack.blocks.reports import build_error
from bot.slack.blocks.sources import (
    CALLBACK_ID,
    REMOVE_BLOCK,
    VALUE_ACTION,
    build_no_secret_key_modal,
    build_otel_token,
    build_refused_view,
    build_saved,
    build_sources_modal,
    extra_block_id,
    key_block_id,
    url_block_id,
)
from bot.slack.context import CommandContext, admins_hint, authorized_workspace, resolve_caller, run_db
from bot.slack.directory import SlackDirectory
from bot.sources.overrides import CONFIGURABLE

log = logging.getLogger(__name__)

SUBCOMMAND = "sources"


def _refusal(runtime: Runtime) -> str:
    return f"Vendor keys are managed by admins ({admins_hint(runtime)})."


OPENED = ":key: Opened the vendor keys form. Keys you enter are stored encrypted and never shown back."


OTEL_ACTIONS = {"create": False, "rotate": True}  # action -> rotate


async def handle_sources(ctx: CommandContext, command: ParsedCommand) -> Message:
    """Opens the modal and says so, ephemerally, so the command never looks ignored; or refuses."""
    words = [word.lower() for word in command.args]
    if words[:2] == ["otel", "token"]:
        return await _otel_token(ctx, words[2:])
    if command.args:
        return build_error("`/tokens sources` takes no arguments but `otel token …`.", usage_line(SUBCOMMAND))
    if not ctx.caller.is_admin:
        return build_error(_refusal(ctx.runtime))
    if secret_store.has_keyring(ctx.runtime.settings):
        statuses = await ctx.db(secret_store.statuses, workspace_id=ctx.caller.workspace_id)
        view = build_sources_modal(statuses, channel_id=ctx.caller.channel_id)
    else:
        view = build_no_secret_key_modal()
    try:
        await ctx.client.views_open(trigger_id=ctx.trigger_id, view=view)
    except SlackApiError as error:
        code = error.response.get("error") if error.response is not None else "unknown"
        log.warning("views.open for /tokens sources failed: %s", code)
        return build_error(f"Slack did not open the form (`{code}`). Run `/tokens sources` again.")
    return Message(OPENED, [section(OPENED)])


async def _otel_token(ctx: CommandContext, words: list[str]) -> Message:
    """Create or rotate the workspace's ingest token; the answer (ephemeral, to the admin who
    asked) is the one place the token is shown. Never logged."""
    if not ctx.caller.is_admin:
        return build_error(f"OTel ingest tokens are managed by admins ({admins_hint(ctx.runtime)}).")
    if len(words) != 1 or words[0] not in OTEL_ACTIONS:
        return build_error("Say `create` or `rotate`.", "/tokens sources otel token create|rotate")
    rotate = OTEL_ACTIONS[words[0]]
    try:
        token = await ctx.db(
            otel.issue_token,
            workspace_id=ctx.caller.workspace_id,
            rotate=rotate,
            by=ctx.caller.user_id,
            write=True,
        )
    except otel.TokenError as error:
        return build_error(f"{error}: `/tokens sources otel token {'create' if rotate else 'rotate'}`.")
    log.info("OTel ingest token %s by %s", "rotated" if rotate else "created", ctx.caller.user_id)
    return build_otel_token(token, rotated=rotate)


def _text(values: dict, block_id: str) -> str | None:
    return ((values.get(block_id) or {}).get(VALUE_ACTION) or {}).get("value")


def read_submission(values: dict) -> list[SecretChange]:
    """The modal's state as changes; ``SecretInputError`` names the first unusable input."""
    selected = ((values.get(REMOVE_BLOCK) or {}).get(VALUE_ACTION) or {}).get("selected_options") or []
    remove = {option.get("value") for option in selected}
    changes = []
    for source, spec in CONFIGURABLE.items():
        key = clean_key(source, _text(values, key_block_id(source)))
        base_url = clean_base_url(source, _text(values, url_block_id(source)))
        extra = clean_extra(source, _text(values, extra_block_id(source))) if spec.extra_field else None
        if key and source in remove:
            raise SecretInputError(source, "key", "Paste a new key or remove the stored one, not both.")
        changes.append(SecretChange(source, key=key, base_url=base_url, remove=source in remove, extra=extra))
    return changes


_ERROR_BLOCKS = {"base_url": url_block_id, "extra": extra_block_id}


def _error_block(error: SecretInputError) -> str:
    return _ERROR_BLOCKS.get(error.field, key_block_id)(error.source)


async def save_sources(
    runtime: Runtime, directory: SlackDirectory, client: AsyncWebClient, body: dict, workspace_id: str
) -> tuple[dict, Message | None]:
    """(the ack's arguments, the confirmation to send after it)."""
    user_id = (body.get("user") or {}).get("id", "")
    view = body.get("view") or {}
    caller = await resolve_caller(runtime, directory, client, user_id=user_id, workspace_id=workspace_id)
    if not caller.is_admin:
        return {"response_action": "update", "view": build_refused_view(_refusal(runtime))}, None
    try:
        fernet = secret_store.keyring(runtime.settings)
    except secret_store.SecretKeyError:
        return {"response_action": "update", "view": build_no_secret_key_modal()}, None
    try:
        changes = read_submission((view.get("state") or {}).get("values") or {})
        changed = await run_db(
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

    app.view(CALLBACK_ID)(handle_submission)
