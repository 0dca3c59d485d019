"""Every ``/tokens`` subcommand and every other Slack listener, written out.

A new subcommand: its synopsis and description in ``bot.services.commands.SUBCOMMANDS`` (the
parser and the help read them), its handler (``async (CommandContext, ParsedCommand) ->
Message``) in a module of bot/slack/handlers/, and one line in ``COMMANDS`` below. Events,
buttons and modal submissions: a ``register(app, runtime, directory)`` in the handler module, and
one line in ``LISTENERS``.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.slack.context import Handler
from bot.slack.handlers import (
    anomalies,
    budget_requests,
    budgets,
    home,
    links,
    privacy,
    recap,
    reconcile,
    reports,
    saved_time,
    seats,
    sources,
    teams,
)

COMMANDS: dict[str, Handler] = {
    "help": reports.handle_help,
    "me": reports.handle_me,
    "user": reports.handle_user_view,  # /tokens @user [period]
    "org": reports.handle_org,
    "status": reports.handle_status,
    "reconcile": reconcile.handle_reconcile,
    "link": links.handle_link,
    "team": teams.handle_team,
    "role": teams.handle_role,
    "privacy": privacy.handle_privacy,
    "audit": privacy.handle_audit,
    "forget": privacy.handle_forget,
    "export": privacy.handle_export,
    "budget": budgets.handle_budget,
    "sources": sources.handle_sources,  # opens a modal with the command's trigger_id
    "recap": recap.handle_recap,
    "anomalies": anomalies.handle_anomalies,
    "saved": saved_time.handle_saved,
    "seats": seats.handle_seats,
}

# (app, runtime, directory) -> None: the events, actions and views of each feature.
LISTENERS: tuple[Callable, ...] = (
    anomalies.register,  # the Expected buttons on anomaly DMs
    home.register,  # app_home_opened
    reports.register,  # period and open-team buttons on me, @user, org, team and the App Home
    budget_requests.register,  # Approve / Deny on budget requests
    privacy.register,  # the forget confirmation
    recap.register,  # the recap vote buttons
    saved_time.register,  # the "what did it save you?" buttons
    seats.register,  # Reclaim on the seat ledger
    sources.register,  # the vendor keys modal's submission
)
