"""Parsing of ``/tokens`` text: subcommands and the usage text (mentions: ``bot.services.mentions``).

Pure functions, no Slack SDK: the listener hands over the raw text and gets a ``ParsedCommand``
or a ``CommandError`` whose message is safe to show the user.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from bot.domain.periods import looks_like_period

# Mentions are read by bot.services.mentions; re-exported for the rule modules that still import
# them from here (services/budgets.py, services/recap.py).
from bot.services.mentions import mentioned_channel as mentioned_channel
from bot.services.mentions import mentioned_group as mentioned_group
from bot.services.mentions import mentioned_user as mentioned_user

MAX_TEXT = 1000  # Slack allows 4,000 characters; nothing we accept is that long

# Subcommand -> (argument synopsis, one-line description). Order is the help order.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "me": ("[period]", "your spend, tokens and value signals (only you see it)"),
    "org": ("[period]", "org totals per vendor, unattributed spend included (admins)"),
    "status": ("", "sources: last sync, lag, errors and the biggest unlinked actors"),
    "reconcile": ("[period]", "vendor bills beside what Tokenwise attributes, with the gaps (admins)"),
    "link": (
        "github <login> | <vendor> <external id> @user [--move] | pending | approve|deny <n>",
        "claim your GitHub login; admins link identities and decide pending claims",
    ),
    "team": (
        "<@group | #channel> [period] | refresh <@group | #channel> | approve @user <#channel>",
        "a team's aggregates and trend; admins approve who joined a managed channel",
    ),
    "role": ("add|remove manager @user <@group | #channel> | list", "who manages which team (admins grant)"),
    "privacy": ("[names on|off]", "your privacy settings: may channel posts show your name"),
    "audit": ("[me | @user] [page N]", "who looked at your numbers (`me`); the audit log (admins)"),
    "forget": ("me", "erase your identity, keep the org's totals (asks first)"),
    "export": ("[period]", "CSV of per-person daily usage and value, sent to you (admins)"),
    "budget": (
        "[show [target]] | list | set <target> <amount>[/period] [vendor] [floor <amount>] [include seats] "
        "| clear <target> [vendor] | request <amount> <reason>",
        "budgets per person, team or org: alerts, forecasts, floors; ask your manager for more",
    ),
    "sources": (
        "[otel token create|rotate]",
        "vendor keys for this workspace, stored encrypted; the OTel ingest token, shown once (admins)",
    ),
    "recap": (
        "subscribe [#channel] [@group] [day] [time] [skip-empty] | list | unsubscribe [#channel] [@group] "
        "| preview [#channel] [@group]",
        "the weekly recap in a channel: spend beside value, the case for and against, a vote",
    ),
    "anomalies": ("", "unusual spend caught the same day: yours; managers their teams'; admins all"),
    "saved": (
        "[on | off | snooze <days>]",
        "opt in to one tap after your AI-assisted PR merges: what did it save you?",
    ),
    "seats": ("", "seats paid, active, reassignable and reducible at renewal; Reclaim asks first (admins)"),
    "help": ("", "this help"),
}


class CommandError(ValueError):
    """Bad input: ``message`` says what was wrong, ``usage`` how to do it right."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


@dataclass(frozen=True)
class ParsedCommand:
    name: str
    args: list[str] = field(default_factory=list)
    target_user: str | None = None  # "/tokens @user [period]"


def usage_line(name: str) -> str:
    synopsis, _ = SUBCOMMANDS[name]
    return f"/tokens {name} {synopsis}".rstrip()


def suggest(word: str) -> str | None:
    matches = difflib.get_close_matches(word.lower(), list(SUBCOMMANDS), n=1, cutoff=0.5)
    return matches[0] if matches else None


def parse(text: str | None) -> ParsedCommand:
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise CommandError(
            f"That command is {len(text):,} characters long; the most I accept is {MAX_TEXT:,}."
        )
    tokens = text.split()
    if not tokens:
        return ParsedCommand("help")
    head, rest = tokens[0], tokens[1:]
    if user := mentioned_user(head):
        return ParsedCommand("user", rest, target_user=user)
    name = head.lower()
    if looks_like_period(name):  # "/tokens 7d" is shorthand for "/tokens me 7d"
        return ParsedCommand("me", tokens)
    if name in SUBCOMMANDS:
        return ParsedCommand(name, rest)
    if head.startswith("@"):
        raise CommandError(
            f"I could not read `{head[:50]}` as a person. Pick them from Slack's @-mention list.",
            "/tokens @user [period]",
        )
    closest = suggest(name)
    hint = f" Did you mean `/tokens {closest}`?" if closest else ""
    raise CommandError(f"`{head[:50]}` is not a /tokens command.{hint}")
