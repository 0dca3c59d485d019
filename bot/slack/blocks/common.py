"""Block Kit helpers that keep every message inside Slack's limits.

Limits (docs.slack.dev): 50 blocks per message, 100 per Home tab or modal; section text 3000
chars; 10 section fields of 2000 chars; header 150 chars; 10 context elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK_TEXT = 3000

Block = dict[str, Any]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Escape user-controlled text for mrkdwn (Slack's three control characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER), "emoji": True}}


def section(text: str, *, fields: list[str] | None = None, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}}
    if fields:
        block["fields"] = [{"type": "mrkdwn", "text": clip(f, MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]]
    if accessory:
        block["accessory"] = accessory
    return block


def fields_section(fields: list[str]) -> Block:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": clip(f, MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]],
    }


def context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": clip(t, MAX_SECTION_TEXT)} for t in texts[:MAX_CONTEXT_ELEMENTS]
        ],
    }


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str = "", *, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, 75), "emoji": True},
        "action_id": action_id,
    }
    if value:
        element["value"] = clip(value, 2000)
    if style:
        element["style"] = style
    return element


@dataclass(frozen=True)
class Message:
    """A message ready for ``chat.postMessage`` / ``ack`` / ``respond``: fallback text + blocks."""

    text: str
    blocks: list[Block]

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def message(text: str, blocks: list[Block], *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> Message:
    if len(blocks) > max_blocks:
        # Keep the head and say what was cut, rather than fail the whole post.
        blocks = [*blocks[: max_blocks - 1], context("_More rows than fit in one message were left out._")]
    return Message(clip(text, MAX_FALLBACK_TEXT), blocks)


def validate(blocks: list[Block], *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Problems with a block list (empty when it is within Slack's limits). Used by tests."""
    problems = []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks > {max_blocks}")
    for index, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "section":
            if "text" in block and not 1 <= len(block["text"]["text"]) <= MAX_SECTION_TEXT:
                problems.append(f"block {index}: section text length {len(block['text']['text'])}")
            if len(block.get("fields", [])) > MAX_FIELDS:
                problems.append(f"block {index}: {len(block['fields'])} fields")
            for f in block.get("fields", []):
                if not 1 <= len(f["text"]) <= MAX_FIELD_TEXT:
                    problems.append(f"block {index}: field length {len(f['text'])}")
            if "text" not in block and not block.get("fields"):
                problems.append(f"block {index}: section without text or fields")
        elif kind == "header":
            if not 1 <= len(block["text"]["text"]) <= MAX_HEADER:
                problems.append(f"block {index}: header length {len(block['text']['text'])}")
        elif kind == "context":
            if not 1 <= len(block["elements"]) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"block {index}: {len(block['elements'])} context elements")
        elif kind == "actions" and not 1 <= len(block["elements"]) <= 25:
            problems.append(f"block {index}: {len(block['elements'])} action elements")
    return problems
