"""Builders for ``/tokens sources``: the vendor-key modal and its answers (pure).

A stored key is never shown back, not even in part: the modal says "set" or "not set".
Limits (docs.slack.dev, views): title 24 chars, 100 blocks, input label 2000 chars, placeholder
150 chars, block_id 255 chars, private_metadata 3000 chars.
"""

from __future__ import annotations

import json

from bot.services.secrets import GENERATE_KEY_COMMAND, SecretStatus
from bot.slack.blocks.common import Block, Message, clip, context, message, section
from bot.sources.overrides import CONFIGURABLE, default_base_url

CALLBACK_ID = "tokenwise_sources"
REMOVE_BLOCK = "remove"
VALUE_ACTION = "value"
MAX_TITLE = 24
MAX_LABEL = 2000
MAX_PLACEHOLDER = 150


def key_block_id(source: str) -> str:
    return f"key:{source}"


def url_block_id(source: str) -> str:
    return f"url:{source}"


def extra_block_id(source: str) -> str:
    return f"extra:{source}"


def _plain(text: str, limit: int = MAX_LABEL) -> dict:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def _modal(title: str, blocks: list[Block], *, submit: str | None, metadata: str = "") -> dict:
    view: dict = {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": _plain(title, MAX_TITLE),
        "close": _plain("Close" if submit is None else "Cancel", MAX_TITLE),
        "blocks": blocks,
    }
    if submit is not None:
        view["submit"] = _plain(submit, MAX_TITLE)
    if metadata:
        view["private_metadata"] = metadata
    return view


def _input(
    block_id: str, label: str, *, placeholder: str, initial: str | None = None, hint: str = ""
) -> Block:
    element: dict = {
        "type": "plain_text_input",
        "action_id": VALUE_ACTION,
        "placeholder": _plain(placeholder, MAX_PLACEHOLDER),
    }
    if initial:
        element["initial_value"] = initial
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "optional": True,
        "label": _plain(label),
        "element": element,
    }
    if hint:
        block["hint"] = _plain(hint)
    return block


def build_sources_modal(statuses: dict[str, SecretStatus], *, channel_id: str) -> dict:
    """One key input and one base URL input per source; the key input is always empty."""
    blocks: list[Block] = [
        section(
            "Keys are encrypted before they are stored and are never shown again, here or anywhere. "
            "Leave a key blank to keep the stored one. A stored key replaces the environment's "
            "key for that source in this workspace."
        )
    ]
    for source, spec in CONFIGURABLE.items():
        status = statuses.get(source) or SecretStatus(source, False, None)
        state = "set" if status.is_set else "not set"
        blocks.append(
            _input(
                key_block_id(source),
                f"{spec.label} key ({state})",
                placeholder=f"paste a new {spec.key_kind}" if status.is_set else f"{spec.key_kind}",
            )
        )
        if spec.extra_field:  # stored encrypted with the key: never shown back either
            blocks.append(
                _input(
                    extra_block_id(source),
                    f"{spec.label} {spec.extra_label} ({state})",
                    placeholder=spec.extra_label,
                    hint="Needed with a new key, and changed only together with it.",
                )
            )
        blocks.append(
            _input(
                url_block_id(source),
                f"{spec.label} base URL",
                placeholder=default_base_url(source),
                initial=status.base_url,
                hint="Blank = the vendor's default.",
            )
        )
    stored = [s for s in CONFIGURABLE if (statuses.get(s) and statuses[s].is_set)]
    if stored:
        blocks.append(
            {
                "type": "input",
                "block_id": REMOVE_BLOCK,
                "optional": True,
                "label": _plain("Remove stored keys"),
                "element": {
                    "type": "checkboxes",
                    "action_id": VALUE_ACTION,
                    "options": [{"text": _plain(CONFIGURABLE[s].label, 75), "value": s} for s in stored[:10]],
                },
            }
        )
    blocks.append(
        context("GitHub Copilot and GitHub delivery also need an organisation: set them in the environment.")
    )
    metadata = json.dumps({"channel": channel_id}) if channel_id else ""
    return _modal("Vendor keys", blocks, submit="Save", metadata=metadata)


def build_no_secret_key_modal() -> dict:
    """Shown instead of the inputs while TOKENWISE_SECRET_KEY is unset: nothing could be stored."""
    return _modal(
        "Vendor keys",
        [
            section(
                "Keys entered here are stored encrypted, and the encryption key is not configured yet. "
                "Generate one on the server:"
            ),
            section(f"```{GENERATE_KEY_COMMAND}```"),
            section(
                "Set the output as `TOKENWISE_SECRET_KEY` in the bot's environment, restart it and run "
                "`/tokens sources` again. Keep it safe: stored keys cannot be read without it."
            ),
        ],
        submit=None,
    )


def build_refused_view(text: str) -> dict:
    return _modal("Vendor keys", [section(f":no_entry: {text}")], submit=None)


ACTION_WORDS = {
    "secret.set": "key saved",
    "secret.base_url": "base URL changed",
    "secret.remove": "key removed",
}


def build_saved(changes: list[tuple[str, str]], *, sync_minutes: int) -> Message:
    """The confirmation after a submission: which sources changed, never a value."""
    if not changes:
        text = "Nothing changed: no new key, base URL or removal was entered."
        return message(text, [section(text)])
    done = ", ".join(
        f"{CONFIGURABLE[source].label} {ACTION_WORDS.get(action, action)}" for source, action in changes
    )
    text = f":lock: Vendor keys: {done}. The next sync (within {sync_minutes} minutes) uses them."
    return message(text, [section(text), context("Keys are stored encrypted and are never shown again.")])


def build_otel_token(token: str, *, rotated: bool) -> Message:
    """The OTLP ingest token, shown this once (only its hash is stored), with how to send it."""
    done = "rotated: the old token no longer works" if rotated else "created"
    text = f":key: OTel ingest token {done}. Copy it now: it is shown only this once."
    return message(
        text,
        [
            section(text),
            section(f"```{token}```"),
            context(
                "Agents send it as `Authorization: Bearer <token>` to `/v1/metrics` and `/v1/logs` "
                "on this app's host (docs/sources/otel.md). Only you see this message."
            ),
        ],
    )
