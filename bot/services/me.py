"""What ``/tokens me`` shows one person: their spend in a period, the budgets that apply to them
now, and the models without a price. Data only; bot/slack/blocks/reports.py draws it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection

from bot.db.models import Person
from bot.domain.periods import Period
from bot.services import access, budgets, people, reports
from bot.services.budgets import BudgetStatus
from bot.services.reports import SpendReport, UnpricedModel


@dataclass(frozen=True)
class MyNumbers:
    person: Person
    report: SpendReport  # the asked period
    budgets: list[BudgetStatus]  # those that apply now, whatever the period asked
    unpriced: list[UnpricedModel]


def load_me(
    conn: Connection,
    *,
    workspace_id: str,
    slack_user_id: str,
    is_admin: bool,
    period: Period,
    today: date,
    min_group_size: int,
    person: Person | None = None,
) -> MyNumbers | None:
    """The numbers of ``person``, or of the person linked to ``slack_user_id`` (None when there is
    none yet: matching by email is a write, the Slack layer's call). The person and their numbers
    in one call: each worker-thread hand-off costs about as much as a query under load
    (docs/benchmarks.md, B5)."""
    person = person or people.resolve_slack_user(conn, workspace_id=workspace_id, slack_user_id=slack_user_id)
    if person is None:
        return None
    report = reports.person_report(
        conn, workspace_id=workspace_id, person_ids=[person.id], period=period, today=today
    )
    owned = budgets.statuses_for_person(
        conn,
        workspace_id=workspace_id,
        viewer=access.Viewer(slack_user_id, is_admin, person.id),
        person_id=person.id,
        today=today,
        min_group_size=min_group_size,
    )
    unpriced = reports.unpriced_models(
        conn, workspace_id=workspace_id, start=period.start, end=period.end, person_ids=[person.id]
    )
    return MyNumbers(person, report, owned, unpriced)
