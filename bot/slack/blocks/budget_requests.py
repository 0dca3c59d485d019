"""Builders for the request-for-more flow: the request sent, the deciders' DM with its amount,
scope and Approve / Deny, the pick buttons when several budgets apply, and the decision
(pure: data in, Message out). Budget wording is shared with ``budgets.py``."""

from __future__ import annotations

import json
from collections.abc import Sequence

from bot.db.models import BudgetRequest
from bot.domain.money import format_usd
from bot.services import budgets as b
from bot.services.budgets import BudgetStatus, DecisionResult
from bot.slack.blocks.budgets import (
    SEE_ME,
    amount_text,
    budget_name,
    chunks,
    period_name,
    reset_text,
    status_line,
    target_text,
)
from bot.slack.blocks.common import Block, Message, button, clip, context, escape, message, section
from bot.slack.blocks.format import usd, vendor_name

APPROVE = "tokenwise_budget_approve"
DENY = "tokenwise_budget_deny"
PICK = "tokenwise_budget_request_pick"
MAX_PICKS = 5  # buttons offered when a request must choose its budget
AMOUNT_BLOCK = "budget_request_amount"
AMOUNT_ACTION = "amount"
SCOPE_BLOCK = "budget_request_scope"
SCOPE_ACTION = "scope"


def build_request_sent(request: BudgetRequest, *, status: BudgetStatus, deciders: Sequence[str]) -> Message:
    names = ", ".join(f"<@{u}>" for u in deciders[:10])
    amount = "" if status.budget.target_kind == b.ORG else f" ({amount_text(status.budget)})"
    text = (
        f"Asked {names} for {usd(request.amount_micros)} more on {budget_name(status, 'your')}{amount}. "
        "You will get a DM with the decision."
    )
    return message(text, [section(f":envelope: {text}"), context(f"Request #{request.id} · audited.")])


def build_request_dm(request: BudgetRequest, *, requester: str, status: BudgetStatus) -> Message:
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


def choice_label(status: BudgetStatus) -> str:
    """A budget named in plain text, for a button: "Your personal Cursor budget", "The budget of
    @platform", "The org budget"."""
    budget, team = status.budget, status.team
    vendors = f" {vendor_name(budget.vendor)}" if budget.vendor else ""
    if budget.target_kind == b.PERSON:
        return f"Your personal{vendors} budget"
    if budget.target_kind == b.ORG:
        return f"The org{vendors} budget"
    name = team.name if team is not None and team.name else budget.target_id
    prefix = "@" if budget.target_kind == b.GROUP else "#"
    return f"The{vendors} budget of {prefix}{name}"


def pick_value(budget_id: int, amount_micros: int, reason: str) -> str:
    """A pick button's value: what the request needs to go on (under Slack's 2,000 characters:
    the reason is at most MAX_REASON)."""
    return json.dumps({"budget": budget_id, "amount": amount_micros, "reason": reason}, ensure_ascii=False)


def read_pick(value: str) -> tuple[int, int, str] | None:
    """A pick button's value read back (None when it is not one of ours)."""
    try:
        found = json.loads(value)
        budget_id, amount, reason = found["budget"], found["amount"], found["reason"]
    except (ValueError, TypeError, KeyError):
        return None
    if not (isinstance(budget_id, int) and isinstance(amount, int) and isinstance(reason, str)):
        return None
    if not 0 < amount <= b.MAX_AMOUNT_MICROS:
        return None
    return budget_id, amount, reason[: b.MAX_REASON]


def build_request_choice(choices: Sequence[BudgetStatus], *, amount_micros: int, reason: str) -> Message:
    """Several budgets apply and none is the tightest: which one should the request raise?"""
    shown = list(choices)[:MAX_PICKS]
    lines = [f"• {choice_label(s)}: {status_line(s)}" for s in shown]
    text = (
        f"Several budgets apply to you and none is tighter than the others: which one should "
        f"{usd(amount_micros)} more go to? Nothing was sent yet."
    )
    return message(
        text,
        [
            section(f":question: {text}"),
            *chunks(lines),
            {
                "type": "actions",
                "block_id": "budget_request_pick",
                "elements": [  # action ids are unique within a block: PICK_<n>
                    button(choice_label(s), f"{PICK}_{n}", pick_value(s.budget.id, amount_micros, reason))
                    for n, s in enumerate(shown)
                ],
            },
            context("Your manager sees the reason and the budget you pick."),
        ],
    )


def _scope_option(scope: str) -> dict:
    words = "This period only" if scope == b.SCOPE_PERIOD else "From now on (raise the budget)"
    return {"text": {"type": "plain_text", "text": words}, "value": scope}


def decision_words(request: BudgetRequest) -> str:
    if request.status == b.APPROVED:
        how = "for this period only" if request.scope == b.SCOPE_PERIOD else "from now on"
        return f"approved +{usd(request.granted_micros or 0)} {how}"
    return {b.DENIED: "denied", b.CANCELLED: "cancelled (the budget was removed)"}.get(
        request.status, request.status
    )


def build_request_closed(
    request: BudgetRequest, *, requester: str, result: DecisionResult | None = None
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


def build_already_decided(request: BudgetRequest) -> Message:
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
