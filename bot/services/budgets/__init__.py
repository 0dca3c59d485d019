"""Budgets: spend ceilings (and optional floors) per person, team or org, per calendar period.

Rules in plain words are in docs/budgets.md. One module per concern, each importing its
siblings directly (no cycles):

- ``vocabulary``: the shared words and limits, and ``BudgetError``;
- ``grammar``: amounts, periods, thresholds and the ``/tokens budget set|request`` arguments;
- ``forecast``: periods, run-rate and the forecast maths (pure);
- ``store``: the ``Budget`` rows (read, set, clear, with audit) and the approved extras;
- ``status``: a budget's status now (ceiling, spend, run-rate, what follows from them);
- ``visibility``: how much of a status a viewer may see;
- ``recipients``: who gets an alert, who decides a request;
- ``alerts``: the alert ledger (what is due, claimed before it is sent);
- ``requests``: requests for more and their one decision;
- ``authorization``: who may set, clear, show or request budgets, as a typed decision.

No Slack here: the Slack layer resolves mentions to people and teams, sends the DMs and calls
back to record what happened. Rows are the SQLModel tables (``Budget``, ``BudgetRequest``);
money is integer micro-USD throughout.

This package re-exports the names callers use as ``budgets.X``; modules inside it import each
other, never this file.
"""

from __future__ import annotations

from bot.services.budgets.alerts import DueAlert, PeerPace, claim_alert, due_alerts, finish_alert, peer_pace
from bot.services.budgets.forecast import (
    RUN_RATE_DAYS,
    current_period,
    projected,
    reach_day,
    reset_at,
    run_rate,
    share_reached,
    threshold_micros,
)
from bot.services.budgets.grammar import (
    EXAMPLES,
    BudgetSpec,
    TargetRef,
    format_thresholds,
    parse_amount,
    parse_amount_period,
    parse_period_word,
    parse_request,
    parse_set,
    parse_target,
    parse_thresholds,
    parse_vendor,
    target_error,
)
from bot.services.budgets.recipients import (
    admin_user_ids,
    alert_recipients,
    deciders,
    managers_of_person,
    slack_id_of,
)
from bot.services.budgets.requests import (
    DecisionResult,
    RequestAim,
    aim_request,
    create_request,
    decide_request,
    get_request,
    pending_request,
    set_notified,
)
from bot.services.budgets.status import BudgetStatus, daily_spend, statuses, tightest, tightest_candidates
from bot.services.budgets.store import (
    all_budgets,
    audit_target,
    budget_by_id,
    budgets_for_person,
    budgets_of_target,
    clear_budgets,
    describe,
    extras,
    get_budget,
    set_budget,
    team_of_budget,
    unchanged,
    with_teams,
)
from bot.services.budgets.visibility import statuses_for_person, visibility, visible_statuses
from bot.services.budgets.vocabulary import (
    APPROVED,
    CANCELLED,
    CHANNEL,
    DAY_WORDS,
    DEFAULT_THRESHOLDS,
    DENIED,
    FLOOR,
    FORECAST,
    FULL,
    GROUP,
    HIDDEN,
    MAX_AMOUNT_MICROS,
    MAX_AMOUNT_USD,
    MAX_REASON,
    MAX_THRESHOLD,
    MAX_THRESHOLDS,
    ORG,
    PENDING,
    PERCENT,
    PERIOD_WORDS,
    PERIODS,
    PERSON,
    SCOPE_PERIOD,
    SCOPE_PERMANENT,
    TEAM_KINDS,
    THRESHOLD,
    VENDORS,
    YEAR_WORDS,
    BudgetError,
)

__all__ = [
    "APPROVED",
    "CANCELLED",
    "CHANNEL",
    "DAY_WORDS",
    "DEFAULT_THRESHOLDS",
    "DENIED",
    "EXAMPLES",
    "FLOOR",
    "FORECAST",
    "FULL",
    "GROUP",
    "HIDDEN",
    "MAX_AMOUNT_MICROS",
    "MAX_AMOUNT_USD",
    "MAX_REASON",
    "MAX_THRESHOLD",
    "MAX_THRESHOLDS",
    "ORG",
    "PENDING",
    "PERCENT",
    "PERIODS",
    "PERIOD_WORDS",
    "PERSON",
    "RUN_RATE_DAYS",
    "SCOPE_PERIOD",
    "SCOPE_PERMANENT",
    "TEAM_KINDS",
    "THRESHOLD",
    "VENDORS",
    "YEAR_WORDS",
    "BudgetError",
    "BudgetSpec",
    "BudgetStatus",
    "DecisionResult",
    "DueAlert",
    "PeerPace",
    "RequestAim",
    "TargetRef",
    "admin_user_ids",
    "aim_request",
    "alert_recipients",
    "all_budgets",
    "audit_target",
    "budget_by_id",
    "budgets_for_person",
    "budgets_of_target",
    "claim_alert",
    "clear_budgets",
    "create_request",
    "current_period",
    "daily_spend",
    "decide_request",
    "deciders",
    "describe",
    "due_alerts",
    "extras",
    "finish_alert",
    "format_thresholds",
    "get_budget",
    "get_request",
    "managers_of_person",
    "parse_amount",
    "parse_amount_period",
    "parse_period_word",
    "parse_request",
    "parse_set",
    "parse_target",
    "parse_thresholds",
    "parse_vendor",
    "peer_pace",
    "pending_request",
    "projected",
    "reach_day",
    "reset_at",
    "run_rate",
    "set_budget",
    "set_notified",
    "share_reached",
    "slack_id_of",
    "statuses",
    "statuses_for_person",
    "target_error",
    "team_of_budget",
    "threshold_micros",
    "tightest",
    "tightest_candidates",
    "unchanged",
    "visibility",
    "visible_statuses",
    "with_teams",
]
