"""Builders for budgets: confirmations, status lists, the ``/tokens me`` section, alert DMs and
the request-for-more flow (pure: data in, Message or blocks out)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

from bot.db.models import Budget as BudgetRow  # the budget and request rows are the tables
from bot.db.models import BudgetRequest as RequestRow
from bot.domain.money import format_usd
from bot.domain.periods import Period
from bot.services import budgets as b
from bot.services import teams
from bot.services.budgets import BudgetStatus, DecisionResult, PeerPace
from bot.slack.blocks.common import (
    Block,
    Message,
    button,
    clip,
    context,
    divider,
    escape,
    header,
    message,
    section,
)
from bot.slack.blocks.format import period_text, team_mention, usd, vendor_name

APPROVE = "tokenwise_budget_approve"
DENY = "tokenwise_budget_deny"
AMOUNT_BLOCK = "budget_request_amount"
AMOUNT_ACTION = "amount"
SCOPE_BLOCK = "budget_request_scope"
SCOPE_ACTION = "scope"
MAX_LINES = 40  # keeps each section under 3,000 characters

PERIOD_ADJECTIVE = {"week": "weekly", "month": "monthly", "quarter": "quarterly"}
SEE_ME = "`/tokens me` shows where your spend goes."


def ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def on_day(day: date, today: date) -> str:
    """``the 19th`` within the current month, ``Dec 2`` beyond it."""
    if (day.year, day.month) == (today.year, today.month):
        return f"the {ordinal(day.day)}"
    return f"{day:%b} {day.day}"


def period_name(period: Period, kind: str) -> str:
    if kind == "week":
        return f"the week of {period.start:%b} {period.start.day}"
    return period.label


def reset_text(period: Period) -> str:
    return f"resets {period.end:%a} {period.end:%b} {period.end.day}"


def target_text(budget: BudgetRow, team: teams.TeamRef | None, person_label: str = "") -> str:
    if budget.target_kind == b.PERSON:
        return person_label or f"person {budget.target_id}"
    if budget.target_kind == b.ORG:
        return "the org"
    if team is not None:
        return team.mention
    return team_mention(b.TEAM_KINDS[budget.target_kind], budget.target_id)


def scope_text(budget: BudgetRow) -> str:
    vendors = vendor_name(budget.vendor) if budget.vendor else "all vendors"
    return vendors + (", seats included" if budget.include_seats else "")


def amount_text(budget: BudgetRow) -> str:
    return f"{usd(budget.amount_micros)}/{budget.period}"


def describe(budget: BudgetRow | None) -> str:
    """One line for before/after confirmations."""
    if budget is None:
        return "_no budget_"
    parts = [f"*{amount_text(budget)}*", scope_text(budget)]
    parts.append(f"floor {usd(budget.floor_micros)}" if budget.floor_micros is not None else "no floor")
    parts.append(f"alerts at {', '.join(f'{t}%' for t in budget.thresholds)}")
    return " · ".join(parts)


def forecast_text(status: BudgetStatus, *, amounts: bool = True) -> str:
    """``amounts=False`` for viewers who see percentages only: "over by $X" beside the percentage
    would give the spend behind it."""
    if status.over:
        if not amounts:
            return f"over by {status.percent - 100}%"
        return f"over by {usd(status.spent_micros - status.ceiling_micros)}"
    target = status.next_threshold or 100
    day = status.reach(target)
    if day is not None:
        return f"at this pace you reach {target}% on {on_day(day, status.today)}"
    if status.rate == 0:
        return "no spend in the last 7 days"
    return f"at this pace you stay under {target}% this period"


def floor_text(status: BudgetStatus) -> str:
    floor = status.budget.floor_micros
    if floor is None:
        return ""
    expected = status.floor_expected_micros or 0
    if status.spent_micros >= floor:
        return f"floor {usd(floor)} reached"
    if status.past_mid_period and status.spent_micros < expected:
        return f"below the pace of its {usd(floor)} floor ({usd(expected)} expected by now)"
    return f"floor {usd(floor)}"


def status_line(status: BudgetStatus, *, highlight: bool = False) -> str:
    budget = status.budget
    who = target_text(budget, status.team, status.person_label)
    scope = scope_text(budget)
    reset = reset_text(status.period)
    if status.visibility == b.HIDDEN:
        return (
            f"{who} · {amount_text(budget)} ({scope}) · its status is shown to its managers only "
            f"(too few people to show a team total) · {reset}"
        )
    if status.visibility == b.PERCENT:
        icon = ":red_circle:" if status.over else ":large_green_circle:"
        return (
            f"{icon} {who} · {PERIOD_ADJECTIVE[budget.period]} budget ({scope}): *{status.percent}%* used · "
            f"{forecast_text(status, amounts=False)} · {reset}"
        )
    icon = (
        ":red_circle:"
        if status.over
        else (":large_orange_circle:" if status.percent >= 80 else ":large_green_circle:")
    )
    extra = f" (incl. +{usd(status.extra_micros)} approved for this period)" if status.extra_micros else ""
    parts = [
        f"{icon} {who} · {usd(status.ceiling_micros)}/{budget.period}{extra} ({scope}): "
        f"*{usd(status.spent_micros)}* spent, *{status.percent}%*",
        forecast_text(status),
    ]
    if floor := floor_text(status):
        parts.append(floor)
    parts.append(reset)
    line = " · ".join(parts)
    return f"*Tightest:* {line}" if highlight else line


def _status_lines(items: Sequence[BudgetStatus]) -> list[str]:
    tight = b.tightest(items) if len(items) > 1 else None
    return [status_line(s, highlight=s is tight) for s in items]


def _chunks(lines: list[str]) -> list[Block]:
    """Sections of at most MAX_LINES lines, each well under Slack's 3,000 characters."""
    blocks = []
    for start in range(0, min(len(lines), MAX_LINES * 3), MAX_LINES):
        blocks.append(section("\n".join(lines[start : start + MAX_LINES])))
    if len(lines) > MAX_LINES * 3:
        blocks.append(context(f"…and {len(lines) - MAX_LINES * 3} more."))
    return blocks


# -- command answers ---------------------------------------------------------------------------


def build_budget_changed(
    *, before: BudgetRow | None, after: BudgetRow, status: BudgetStatus, who: str, tz: ZoneInfo
) -> Message:
    verb = "Budget set" if before is None else "Budget changed"
    text = f"{verb} for {who}: {amount_text(after)} ({scope_text(after)})"
    blocks = [
        section(f":white_check_mark: *{verb}* for {who}."),
        section(f"*Before:* {describe(before)}\n*After:* {describe(after)}"),
        section(status_line(status)),
        context(
            f"Periods follow {tz.key}: this one is {period_text(status.period)} and "
            f"{reset_text(status.period)}. "
            "Alerts go by DM once per threshold per period. The change is in the audit log."
        ),
    ]
    return message(text, blocks)


def build_budget_cleared(removed: Sequence[BudgetRow], *, who: str) -> Message:
    lines = [f"*Before:* {describe(r)}\n*After:* _no budget_" for r in removed]
    text = f"Removed {len(removed)} budget(s) of {who}."
    return message(
        text,
        [
            section(f":wastebasket: {text}"),
            *_chunks(lines),
            context("Its alert history and any extra approved for this period went with it. Audited."),
        ],
    )


def build_budget_show(items: Sequence[BudgetStatus], *, title: str, empty: str, note: str = "") -> Message:
    if not items:
        return message(empty, [section(empty)])
    blocks = [header(title), *_chunks(_status_lines(items))]
    footer = ["Percentages are of the current period's ceiling; the forecast uses the last 7 days' pace."]
    if note:
        footer.append(note)
    blocks.append(context(*footer))
    return message(f"{title}: {len(items)} budget(s)", blocks)


def budget_me_blocks(items: Sequence[BudgetStatus]) -> list[Block]:
    """The short ``/tokens me`` section: each budget that applies, the tightest highlighted."""
    if not items:
        return []
    lines = _status_lines(items)[:8]
    if len(items) > 8:
        lines.append(f"…and {len(items) - 8} more: `/tokens budget`")
    return [divider(), section(clip("*Budgets*\n" + "\n".join(lines), 3000))]


def with_budgets(reply: Message, items: Sequence[BudgetStatus]) -> Message:
    """``reply`` (a ``/tokens me`` answer) with the budget section before its footer."""
    extra = budget_me_blocks(items)
    if not extra:
        return reply
    blocks = list(reply.blocks)
    at = len(blocks) - 1 if blocks and blocks[-1].get("type") == "context" else len(blocks)
    return message(reply.text, [*blocks[:at], *extra, *blocks[at:]])


# -- alerts ------------------------------------------------------------------------------------


def _whose(status: BudgetStatus, audience: str) -> str:
    budget = status.budget
    adjective = PERIOD_ADJECTIVE[budget.period]
    vendors = f" {vendor_name(budget.vendor)}" if budget.vendor else ""
    if audience == b.PERSON:
        return f"your {adjective}{vendors} AI budget"
    return f"the {adjective}{vendors} AI budget of {target_text(budget, status.team, status.person_label)}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def build_threshold_alert(status: BudgetStatus, *, threshold: int, audience: str) -> Message:
    whose = _whose(status, audience)
    ceiling = usd(status.ceiling_micros)
    head = f"{status.percent}% of {whose} is used" if status.percent < 100 else f"{whose} is used up"
    period = period_name(status.period, status.budget.period)
    text = _sentence(f"{head}: {usd(status.spent_micros)} of {ceiling} in {period} (the {threshold}% alert)")
    icon = ":rotating_light:" if threshold >= 100 else ":warning:"
    details = [_sentence(forecast_text(status)), _sentence(reset_text(status.period))]
    if audience == b.PERSON:
        details.append("Need more? `/tokens budget request <amount> <reason>` asks your manager.")
    return message(
        text,
        [
            section(f"{icon} {text}"),
            section(" ".join(details)),
            context(SEE_ME + " Once per threshold per period."),
        ],
    )


def build_forecast_alert(status: BudgetStatus, *, audience: str) -> Message:
    whose = _whose(status, audience)
    day = status.reach(100)
    when = on_day(day, status.today) if day else "before the period ends"
    text = (
        f"Early warning: at this pace {whose} runs out on {when}, before it {reset_text(status.period)}. "
        f"{usd(status.spent_micros)} of {usd(status.ceiling_micros)} spent so far "
        f"({status.percent}%), about {usd(int(status.rate))} a day over the last 7 days; "
        f"projected {usd(status.projected_micros)} by the end of "
        f"{period_name(status.period, status.budget.period)}."
    )
    return message(
        text, [section(f":crystal_ball: {text}"), context(SEE_ME + " One early warning per period.")]
    )


def build_floor_nudge(status: BudgetStatus, *, audience: str, peers: PeerPace | None) -> Message:
    floor = status.budget.floor_micros or 0
    whose = _whose(status, audience)
    expected = status.floor_expected_micros or 0
    text = (
        f"A gentle nudge: {whose} expects at least {usd(floor)} of use in "
        f"{period_name(status.period, status.budget.period)}, and {usd(status.spent_micros)} is used so far "
        f"(a steady pace would be about {usd(expected)} by now)."
    )
    lines = [text]
    if peers is not None:
        who = "Your teammates" if audience == b.PERSON else "Its members"
        lines.append(
            f"{who} in {peers.team.mention} average {usd(peers.average_micros)} each so far "
            f"({peers.people} people)."
        )
    lines.append("If the tools are not helping, that is worth knowing too. " + SEE_ME)
    return message(text, [section(":seedling: " + "\n".join(lines)), context("One nudge per period.")])


# -- requests for more -------------------------------------------------------------------------


def budget_name(status: BudgetStatus, whose: str) -> str:
    """``your personal budget``, ``the budget of @platform``, ``the org budget``."""
    vendors = f" {vendor_name(status.budget.vendor)}" if status.budget.vendor else ""
    if status.budget.target_kind == b.PERSON:
        return f"{whose} personal{vendors} budget"
    if status.budget.target_kind == b.ORG:
        return f"the org{vendors} budget"
    return f"the{vendors} budget of {target_text(status.budget, status.team)}"


def build_request_sent(request: RequestRow, *, status: BudgetStatus, deciders: Sequence[str]) -> Message:
    names = ", ".join(f"<@{u}>" for u in deciders[:10])
    amount = "" if status.budget.target_kind == b.ORG else f" ({amount_text(status.budget)})"
    text = (
        f"Asked {names} for {usd(request.amount_micros)} more on {budget_name(status, 'your')}{amount}. "
        "You will get a DM with the decision."
    )
    return message(text, [section(f":envelope: {text}"), context(f"Request #{request.id} · audited.")])


def build_request_dm(request: RequestRow, *, requester: str, status: BudgetStatus) -> Message:
    """What a decider gets: the request, the budget's status, an amount field, a scope choice
    and Approve / Deny."""
    text = f"{requester} asks for {usd(request.amount_micros)} more on {budget_name(status, 'their')}."
    blocks: list[Block] = [
        section(f":inbox_tray: {text}\n>{escape(clip(request.reason, 500))}"),
        section(status_line(status)),
        {
            "type": "input",
            "block_id": AMOUNT_BLOCK,
            "label": {"type": "plain_text", "text": "Amount to add (USD)"},
            "element": {
                "type": "plain_text_input",
                "action_id": AMOUNT_ACTION,
                "initial_value": format_usd(request.amount_micros),
            },
        },
        {
            "type": "input",
            "block_id": SCOPE_BLOCK,
            "label": {"type": "plain_text", "text": "For"},
            "element": {
                "type": "radio_buttons",
                "action_id": SCOPE_ACTION,
                "initial_option": _scope_option(b.SCOPE_PERIOD),
                "options": [_scope_option(b.SCOPE_PERIOD), _scope_option(b.SCOPE_PERMANENT)],
            },
        },
        {
            "type": "actions",
            "block_id": "budget_request_decide",
            "elements": [
                button("Approve", APPROVE, str(request.id), style="primary"),
                button("Deny", DENY, str(request.id), style="danger"),
            ],
        },
        context(
            f"Request #{request.id} · only {requester}'s managers and admins can decide; "
            "decisions are audited."
        ),
    ]
    return message(text, blocks)


def _scope_option(scope: str) -> dict:
    words = "This period only" if scope == b.SCOPE_PERIOD else "From now on (raise the budget)"
    return {"text": {"type": "plain_text", "text": words}, "value": scope}


def decision_words(request: RequestRow) -> str:
    if request.status == b.APPROVED:
        how = "for this period only" if request.scope == b.SCOPE_PERIOD else "from now on"
        return f"approved +{usd(request.granted_micros or 0)} {how}"
    return {b.DENIED: "denied", b.CANCELLED: "cancelled (the budget was removed)"}.get(
        request.status, request.status
    )


def build_request_closed(
    request: RequestRow, *, requester: str, result: DecisionResult | None = None
) -> Message:
    """Replaces the deciders' DMs once decided: no buttons left to click."""
    by = f"<@{request.decided_by}>" if request.decided_by else "someone"
    text = f"{requester}'s request for {usd(request.amount_micros)} more: {decision_words(request)} by {by}."
    lines = [f":ballot_box_with_check: {text}", f">{escape(clip(request.reason, 500))}"]
    if (
        result is not None
        and result.changed
        and result.ceiling_before is not None
        and request.status == b.APPROVED
    ):
        lines.append(
            f"Ceiling for this period: {usd(result.ceiling_before)} → {usd(result.ceiling_after or 0)}."
        )
    return message(text, [section("\n".join(lines)), context(f"Request #{request.id} · audited.")])


def build_already_decided(request: RequestRow) -> Message:
    by = f"<@{request.decided_by}>" if request.decided_by else "someone"
    text = f"Request #{request.id} was already {decision_words(request)} by {by}; nothing changed."
    return message(text, [section(text)])


def build_decision_dm(result: DecisionResult) -> Message:
    """To the requester: the decision, with the before and after of the ceiling (not for the org
    budget: org dollars are for admins)."""
    request = result.request
    by = f"<@{request.decided_by}>"
    budget = result.budget_after
    if request.status == b.APPROVED and budget is not None and result.period is not None:
        granted = usd(request.granted_micros or 0)
        which = (
            "your personal budget"
            if budget.target_kind == b.PERSON
            else (
                "the org budget"
                if budget.target_kind == b.ORG
                else f"the budget of {target_text(budget, None)}"
            )
        )
        if request.scope == b.SCOPE_PERIOD:
            period = period_name(result.period, budget.period)
            text = f"Approved by {by}: +{granted} on {which} for {period} only."
            change = f"{usd(result.ceiling_before or 0)} → {usd(result.ceiling_after or 0)}"
            detail = f"This period's ceiling: {change}, until it {reset_text(result.period)}."
        else:
            text = f"Approved by {by}: +{granted} on {which} from now on."
            before = result.budget_before.amount_micros if result.budget_before else 0
            detail = f"The budget: {usd(before)} → {usd(budget.amount_micros)} per {budget.period}."
        if budget.target_kind != b.ORG:
            text = f"{text} {detail}"
        icon = ":white_check_mark:"
    else:
        text = (
            f"Denied by {by}: your request for {usd(request.amount_micros)} more. The budget stays as it was."
        )
        icon = ":no_entry_sign:"
    return message(text, [section(f"{icon} {text}"), context(f"Request #{request.id} · {SEE_ME}")])


def build_refused(requester: str) -> Message:
    text = (
        f"Only {requester}'s managers and admins can decide this request. "
        "Nothing changed; the attempt was recorded."
    )
    return message(text, [section(f":no_entry: {text}")])


def build_action_error(text: str) -> Message:
    return message(text, [section(f":warning: {text}")])
