"""Builders for ``/tokens privacy``, ``audit``, ``forget`` and ``export`` answers (pure)."""

from __future__ import annotations

import re
from datetime import date
from zoneinfo import ZoneInfo

from bot.services.privacy import AuditPage, ForgetResult
from bot.slack.blocks.common import Message, button, context, escape, header, message, section
from bot.slack.blocks.format import local_time

FORGET_CONFIRM = "tokenwise_forget_confirm"
FORGET_CANCEL = "tokenwise_forget_cancel"

ACTION_WORDS = {
    "view.person": "viewed the numbers of",
    "view.team_member": "viewed, in a team view, the numbers of",
    "export.usage": "exported everyone's usage",
    "person.forget": "forgot",
    "privacy.names": "changed the name setting of",
    "role.add": "granted a role:",
    "role.remove": "removed a role:",
    "link.admin": "linked",
    "link.self": "linked (self-claim)",
    "link.claim": "claimed, pending an admin,",
    "link.approve": "approved a claim of",
    "link.deny": "denied a claim of",
    "link.move": "moved to another person",
    "scope.approve": "approved, for a team's managers, the numbers of",
    "view.budget": "viewed the budget of",
    "view.recap_detail": "was sent, as a manager, the recap detail about",
    "view.budget_request": "was sent, to decide it, the budget request and spend of",
    "budget.set": "set a budget for",
    "budget.clear": "cleared a budget of",
    "budget.request": "asked for a larger budget:",
    "budget.request.approve": "decided a budget request:",
    "budget.request.refused": "was refused deciding a budget request:",
    "recap.subscribe": "subscribed a channel to the weekly recap:",
    "recap.unsubscribe": "unsubscribed a channel from the weekly recap:",
}


def build_privacy_status(*, show_name: bool, min_group_size: int, changed: bool = False) -> Message:
    state = "may show your name" if show_name else "never show your name"
    lead = "Saved: channel posts now " if changed else "Channel posts "
    text = f"{lead}{state}."
    rules = (
        "Your own numbers are only ever shown to you (ephemeral answers and your App Home), to "
        "managers of your teams and to admins; every view by someone else is audited "
        "(`/tokens audit me`). Channels get aggregates only, for groups of at least "
        f'{min_group_size} people; smaller groups are folded into "others".'
    )
    return message(
        text,
        [
            section(f":lock: {text}"),
            section(rules),
            context("`/tokens privacy names on` or `off` · `/tokens forget me` erases your identity"),
        ],
    )


def _target_text(target: str, labels: dict[int, tuple[str | None, str]], teams: dict[int, str]) -> str:
    kind, _, number = target.partition(":")
    if kind == "person" and number.isdigit():
        return _person_text(number, labels)
    if kind == "team" and number.isdigit():
        return teams.get(int(number), "a team since removed")
    if kind == "channel" and number:
        return f"<#{escape(number)}>"
    if kind == "source" and number:
        return f"the {escape(number)} source"
    if kind == "budget":
        return "a budget"  # its row id means nothing to a reader; the detail describes it
    return escape(target[:80]) if target else ""


MAX_DETAIL = 160
_KEY_VALUE = re.compile(r"^(?P<key>[a-z_]+)=(?P<value>\S*?)(?P<colon>:?)$")
_PERIOD = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


def _person_text(number: str, labels: dict[int, tuple[str | None, str]]) -> str:
    slack_id, label = labels.get(int(number), (None, "someone"))
    return f"<@{slack_id}>" if slack_id else escape(label)


def _detail_word(key: str, value: str, labels: dict[int, tuple[str | None, str]]) -> str:
    """One ``key=value`` of a stored detail in words; internal row ids are dropped or named."""
    if key == "person" and value.isdigit():
        return _person_text(value, labels)
    if key == "from" and value.startswith("person:") and value[7:].isdigit():
        return "from " + _person_text(value[7:], labels)
    if key in ("budget", "group") and (value.isdigit() or value == "-"):
        return ""  # an internal row id: the words around it say which budget
    if key == "group":
        return f"<!subteam^{escape(value)}>" if value.startswith("S") else escape(value)
    if key in ("request", "claim"):
        return f"{key} #{escape(value)}"  # the numbers people see in /tokens budget and link pending
    if key == "team":
        return escape(value)
    if key == "period" and (match := _PERIOD.match(value)):
        first, last = (date.fromisoformat(day) for day in match.groups())
        return f"{first:%b %-d, %Y} – {last:%b %-d, %Y}"
    if key == "as":
        return f"as {escape(value)}"
    if key == "rows" and value.isdigit():
        return f"{value} rows"
    return f"{escape(key)} {escape(value)}"


def detail_text(detail: str, labels: dict[int, tuple[str | None, str]]) -> str:
    """A stored audit detail for people: ``person=14``, ``budget=3`` and ``period=a..b`` in words,
    cut at a word boundary, never mid-word."""
    words = []
    for token in detail.split():
        if match := _KEY_VALUE.match(token):
            word = _detail_word(match["key"], match["value"], labels)
            if word:
                words.append(word + match["colon"])
            elif match["colon"] and words:
                words[-1] += ":"
        else:
            words.append(escape(token))
    text = " ".join(words)
    if len(text) <= MAX_DETAIL:
        return text
    cut = text[: MAX_DETAIL + 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + " …"


def page_note(page: AuditPage, command: str) -> str:
    """ "Showing 26–50 of 80 (page 2 of 4)" and how to get the older and newer pages."""
    note = f"Showing {page.first}–{page.last} of {page.total} (page {page.page} of {page.pages})"
    note += ", newest first"
    moves = []
    if page.page < page.pages:
        moves.append(f"older: `/tokens {command} page {page.page + 1}`")
    if page.page > 1:
        moves.append(f"newer: `/tokens {command} page {page.page - 1}`")
    return note + (" · " + " · ".join(moves) if moves else "") + "."


def build_audit(
    page: AuditPage,
    *,
    title: str,
    labels: dict[int, tuple[str | None, str]],
    tz: ZoneInfo,
    empty: str,
    command: str,
    about: str = "",
    teams: dict[int, str] | None = None,
) -> Message:
    intro = [context(about)] if about else []
    if not page.entries:
        return message(f"{title}: {empty}", [header(title), *intro, section(empty)])
    lines = []
    for entry in page.entries:
        words = ACTION_WORDS.get(entry.action, f"`{escape(entry.action)}`")
        actor = (
            f"<@{entry.actor_user_id}>"
            if entry.actor_user_id[:1] in ("U", "W")
            else escape(entry.actor_user_id)
        )
        target = (
            "" if entry.action == "export.usage" else " " + _target_text(entry.target, labels, teams or {})
        )
        said = detail_text(entry.detail, labels) if entry.detail else ""
        detail = f" _({said})_" if said else ""
        lines.append(f"{local_time(entry.at, tz)}: {actor or 'someone'} {words}{target}{detail}")
    note = page_note(page, command)
    return message(
        f"{title}: entries {page.first}–{page.last} of {page.total}",
        [
            header(title),
            *intro,
            section(note),
            *(section(chunk) for chunk in _chunks(lines)),
            context(note, "The audit log never holds the numbers."),
        ],
    )


def _chunks(lines: list[str], limit: int = 2900) -> list[str]:
    """Lines packed into section-sized texts (a section holds 3,000 characters)."""
    chunks: list[str] = []
    for line in lines:
        if chunks and len(chunks[-1]) + 1 + len(line) <= limit:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line[:limit])
    return chunks


def build_forget_prompt(person_id: int) -> Message:
    text = (
        "This erases who you are from Tokenwise: your email, name, Slack id, vendor links, team "
        "memberships and roles. What was spent stays in the org's totals without your name. "
        "It cannot be undone. Usage your vendor accounts still report later stays unattributed: it is "
        "stored under the same anonymous placeholder, never linked to you, and no new record of you is "
        "made from it. Removing those accounts at the vendors is still part of leaving."
    )
    return message(
        "Forget me? " + text,
        [
            section(f":warning: *Forget me?*\n{text}"),
            {
                "type": "actions",
                "elements": [
                    button("Yes, forget me", FORGET_CONFIRM, str(person_id), style="danger"),
                    button("Cancel", FORGET_CANCEL, "cancel"),
                ],
            },
        ],
    )


def build_forgotten(result: ForgetResult) -> Message:
    text = (
        f"Done: you are forgotten. {result.usage_rows:,} usage rows and {result.activity_rows:,} activity "
        f"rows were anonymised, {result.identities:,} vendor links deleted."
    )
    return message(text, [section(f":wastebasket: {text}")])


def build_export_sent(*, rows: int, period_label: str) -> Message:
    text = f"I sent you the CSV ({rows:,} rows, {period_label}) in a direct message."
    return message(text, [section(f":page_facing_up: {text}"), context("This export was audited.")])
