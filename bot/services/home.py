"""What the App Home dashboard shows one person: this month, the last eight weeks, top models,
their teams' medians of the value measures, why there is nothing when there is nothing, and
(for managers) their teams' aggregates. Data only; bot/slack/blocks/home.py draws it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Connection

from bot.db.models import AnomalyIncident, Team
from bot.domain.periods import Period, calendar_period, week_start
from bot.services import access, budgets, reports, teams
from bot.services.anomalies.incidents import open_for_person
from bot.services.budgets import BudgetStatus
from bot.services.me import TeamMedian, team_medians
from bot.services.no_usage import NoUsage, explain_no_usage
from bot.services.reports import SpendReport
from bot.settings import Settings

TREND_WEEKS = 8
MAX_TEAMS = 15  # keeps the Home tab well inside 100 blocks


@dataclass(frozen=True)
class TeamSummary:
    team: Team
    members: int
    report: SpendReport | None  # None while members outside the manager's grant are in it
    unapproved: int = 0  # members the grant does not reach (docs/privacy.md, "Manager scope")


@dataclass
class Dashboard:
    who: str
    month: SpendReport  # the period shown: this month, unless the Home's period buttons chose another
    models: list[tuple[str, str, int]]
    weeks: list[tuple[date, int]]
    teams: list[TeamSummary] = field(default_factory=list)
    more_teams: int = 0
    anomalies: list[AnomalyIncident] = field(default_factory=list)  # the person's open incidents
    budgets: list[BudgetStatus] = field(default_factory=list)  # those that apply, as /tokens me shows them
    medians: list[TeamMedian] = field(default_factory=list)  # their teams', beside their own
    no_usage: NoUsage | None = None  # why the period is empty, when it is
    when: str = "this month"  # the period in words ("this month", "in the last 7 days")


def trend_start(today: date, weeks: int = TREND_WEEKS) -> date:
    """Monday of the first of ``weeks`` weeks ending with the current one."""
    return week_start(today) - timedelta(days=7 * (weeks - 1))


def load_dashboard(
    conn: Connection,
    *,
    workspace_id: str,
    person_id: int,
    who: str,
    slack_user_id: str,
    today: date,
    is_admin: bool = False,
    min_group_size: int = Settings.model_fields["min_group_size"].default,
    email: str | None = None,
    enabled: dict[str, timedelta] | None = None,
    period: Period | None = None,
) -> Dashboard:
    """The dashboard for ``period`` (this month when None)."""
    month: Period = period or calendar_period("month", today)
    when = (
        "this month"
        if period is None
        else ("in the " if month.label.startswith("last ") else "in ") + month.label
    )
    report = reports.person_report(
        conn, workspace_id=workspace_id, person_ids=[person_id], period=month, today=today
    )
    models = report.models
    weeks = reports.weekly_spend(
        conn,
        workspace_id=workspace_id,
        person_ids=[person_id],
        first_week=trend_start(today),
        weeks=TREND_WEEKS,
    )
    managed = teams.managed_teams(conn, workspace_id=workspace_id, slack_user_id=slack_user_id)
    summaries = []
    for team in managed[:MAX_TEAMS]:
        # A team total over someone the grant does not reach, beside the members the manager may
        # look up one by one, would give that person's spend away: no figures until approved.
        unapproved = len(access.unapproved_members(conn, workspace_id, slack_user_id, team.id))
        team_month = (
            None
            if unapproved
            else reports.team_report(
                conn, workspace_id=workspace_id, team_id=team.id, period=month, today=today
            )
        )
        summaries.append(TeamSummary(team, teams.member_count(conn, team_id=team.id), team_month, unapproved))
    anomalies = open_for_person(conn, workspace_id=workspace_id, person_id=person_id)
    member_of = teams.teams_of(conn, workspace_id=workspace_id, person_id=person_id)  # read once
    owned = budgets.statuses_for_person(
        conn,
        workspace_id=workspace_id,
        viewer=access.Viewer(slack_user_id, is_admin, person_id),
        person_id=person_id,
        today=today,
        min_group_size=min_group_size,
        member_of=member_of,
    )
    medians = team_medians(
        conn,
        workspace_id=workspace_id,
        person_id=person_id,
        period=month,
        min_group_size=min_group_size,
        member_of=member_of,
    )
    no_usage = None
    if report.is_empty:
        no_usage = explain_no_usage(
            conn, workspace_id=workspace_id, email=email, person_id=person_id, enabled=enabled or {}
        )
    more = max(0, len(managed) - MAX_TEAMS)
    return Dashboard(
        who,
        report,
        models,
        weeks,
        summaries,
        more,
        anomalies,
        budgets=owned,
        medians=medians,
        no_usage=no_usage,
        when=when,
    )
