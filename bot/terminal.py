"""Render Block Kit messages readably in a terminal (for ``tokenwise demo`` and previews)."""

from __future__ import annotations

import re

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from bot.slack.blocks.common import Message

_BOLD = re.compile(r"\*([^*\n]+)\*")
_ITALIC = re.compile(r"(?<![\w])_([^_\n]+)_(?![\w])")
_CODE = re.compile(r"`([^`\n]+)`")
_EMOJI = re.compile(r":[a-z0-9_+-]+:")


def mrkdwn_to_rich(text: str) -> str:
    text = text.replace("[", r"\[")
    text = _CODE.sub(r"[cyan]\1[/cyan]", text)
    text = _BOLD.sub(r"[bold]\1[/bold]", text)
    text = _ITALIC.sub(r"[italic]\1[/italic]", text)
    text = _EMOJI.sub("", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def render(message: Message, console: Console, *, title: str) -> None:
    parts: list[str] = []
    for block in message.blocks:
        kind = block.get("type")
        if kind == "header":
            parts.append(f"[bold underline]{block['text']['text']}[/bold underline]")
        elif kind == "section":
            if "text" in block:
                parts.append(mrkdwn_to_rich(block["text"]["text"]))
            if block.get("fields"):
                parts.append(
                    "    ".join(mrkdwn_to_rich(f["text"]).replace("\n", ": ") for f in block["fields"])
                )
        elif kind == "context":
            parts.append(
                "[dim]" + "  ".join(mrkdwn_to_rich(e.get("text", "")) for e in block["elements"]) + "[/dim]"
            )
        elif kind == "divider":
            parts.append("[dim]" + "─" * 40 + "[/dim]")
        elif kind == "actions":
            labels = [e.get("text", {}).get("text", "") for e in block["elements"]]
            parts.append("  ".join(f"[reverse] {label} [/reverse]" for label in labels))
        elif kind == "image":
            parts.append(f"[dim](chart: {block.get('alt_text', '')})[/dim]")
    console.print(Panel(Text.from_markup("\n".join(parts)), title=title, expand=False))
