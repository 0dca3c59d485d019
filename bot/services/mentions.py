"""Slack mentions in command text, read into a typed value (pure, no Slack SDK).

Slack sends a picked person as ``<@U123|ana>``, a channel as ``<#C123|eng>`` and a user group as
``<!subteam^S123|@eng>``; the part after ``|`` is the name the sender saw (optional). How a
mention is drawn back for a reader is the Slack layer's (``bot/slack/blocks/format.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

USER = "user"
CHANNEL = "channel"
USERGROUP = "usergroup"  # the same word as bot.services.teams.USERGROUP

USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
CHANNEL_MENTION = re.compile(r"^<#(C[A-Z0-9]+|G[A-Z0-9]+)(?:\|[^>]*)?>$")
GROUP_MENTION = re.compile(r"^<!subteam\^(S[A-Z0-9]+)(?:\|[^>]*)?>$")

_PATTERNS = ((USER, USER_MENTION), (CHANNEL, CHANNEL_MENTION), (USERGROUP, GROUP_MENTION))


@dataclass(frozen=True)
class Mention:
    kind: str  # USER | CHANNEL | USERGROUP
    id: str  # U…/W…, C…/G…, S…
    label: str  # the name after "|" ("" when none); a group's without its leading "@"


def label_of(token: str) -> str:
    """The name after ``|`` in ``<…|name>``, as written; "" when there is none."""
    return token[token.find("|") + 1 : -1] if "|" in token else ""


def parse_mention(token: str) -> Mention | None:
    """The mention ``token`` is, or None when it is not exactly one Slack mention."""
    for kind, pattern in _PATTERNS:
        if match := pattern.match(token):
            label = label_of(token)
            return Mention(kind, match.group(1), label.removeprefix("@") if kind == USERGROUP else label)
    return None


def _id_of(token: str, kind: str) -> str | None:
    found = parse_mention(token)
    return found.id if found is not None and found.kind == kind else None


def mentioned_user(token: str) -> str | None:
    return _id_of(token, USER)


def mentioned_channel(token: str) -> str | None:
    return _id_of(token, CHANNEL)


def mentioned_group(token: str) -> str | None:
    return _id_of(token, USERGROUP)
