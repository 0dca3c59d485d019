"""The words and limits every budgets module shares: target kinds, periods, vendors, limits,
alert kinds, request states, visibility levels, and the one error type for bad input."""

from __future__ import annotations

# The threshold bounds are defined with the column that stores them.
from bot.db.models import DEFAULT_THRESHOLDS as DEFAULT_THRESHOLDS
from bot.db.models import MAX_THRESHOLD as MAX_THRESHOLD
from bot.db.models import MAX_THRESHOLDS as MAX_THRESHOLDS
from bot.domain.money import MICROS_PER_USD
from bot.services import teams

PERSON = "person"
GROUP = "group"
CHANNEL = "channel"
ORG = "org"
TEAM_KINDS = {GROUP: teams.USERGROUP, CHANNEL: teams.CHANNEL}

PERIODS = ("week", "month", "quarter")
PERIOD_WORDS = {
    "week": "week",
    "wk": "week",
    "weekly": "week",
    "month": "month",
    "mo": "month",
    "monthly": "month",
    "quarter": "quarter",
    "qtr": "quarter",
    "quarterly": "quarter",
}
YEAR_WORDS = {"y", "yr", "yrs", "year", "years", "yearly", "annual", "annually", "a", "pa"}
DAY_WORDS = {"d", "day", "days", "daily", "h", "hr", "hour", "hourly"}

# Vendor words a budget may be scoped to -> the vendor as stored on usage rows.
VENDORS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "claude_code": "claude_code",
    "claude-code": "claude_code",
    "claudecode": "claude_code",
    "cursor": "cursor",
    "copilot": "github_copilot",
    "github_copilot": "github_copilot",
    "github-copilot": "github_copilot",
    "openrouter": "openrouter",
    "windsurf": "windsurf",
}

MAX_AMOUNT_USD = 10_000_000
MAX_AMOUNT_MICROS = MAX_AMOUNT_USD * MICROS_PER_USD
MAX_REASON = 500

# Alert kinds (the ledger's ``kind``).
THRESHOLD = "threshold"
FORECAST = "forecast"
FLOOR = "floor"

# Requests for more: their states and what an approval covers.
PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
CANCELLED = "cancelled"
SCOPE_PERIOD = "period"
SCOPE_PERMANENT = "permanent"

# How much of a budget's status a viewer may see (see ``visibility``).
FULL = "full"  # spend, ceiling, percent
PERCENT = "percent"  # percent used only: the org budget for non-admins (org dollars are admin-only)
HIDDEN = "hidden"  # the budget exists; its spend is not shown (a team below the minimum size)


class BudgetError(ValueError):
    """Bad input; the message is safe to show and says what to write instead."""
