"""Messages as Slack's Block Kit Builder takes them (``tokenwise demo`` writes them to a file).

The Builder's message surface reads one JSON object, ``{"blocks": [...]}``, and nothing else, so
each message is written as ``{"name": ..., "text": ..., "message": {"blocks": [...]}}``: the
``message`` value pastes as is, the name and the notification text ride beside it.
"""

from __future__ import annotations

from bot.slack.blocks.common import MAX_FALLBACK_TEXT, Message, validate


class OutsideSlackLimits(ValueError):
    pass


def builder_messages(named: list[tuple[str, Message]]) -> list[dict]:
    """Each message, checked against Slack's limits first (``OutsideSlackLimits`` names the one
    that is not within them: Slack would refuse to post it, and the Builder to render it)."""
    out = []
    for name, msg in named:
        problems = validate(msg.blocks)
        if problems or not 1 <= len(msg.text) <= MAX_FALLBACK_TEXT:
            raise OutsideSlackLimits(f"{name}: {'; '.join(problems) or 'text length'}")
        out.append({"name": name, "text": msg.text, "message": {"blocks": msg.blocks}})
    return out
