"""What ``/tokens me`` shows one person: their spend in a period, the budgets that apply to them
now, the models without a price, their teams' medians of the value measures, the teams they
manage (to open), and why there is nothing when there is nothing. Data only;
bot/slack/blocks/reports.py draws it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Connection

from bot.db.models import Person, Team
from bot.domain.clock import utcnow
from bot.domain.periods import Period
from bot.services import access, budgets, people, reports, teams
from bot.services.budgets import BudgetStatus
from bot.services.no_usage import NoUsage, explain_no_usage
from bot.services.reports import SpendReport, UnpricedModel, ValueRatios
from bot.services.value.cost_per_pr import PrCost, my_pr_costs
from bot.services.value.measures import ValueMeasures, value_measures
from bot.services.value.merged_prs import Whose

MAX_MEDIAN_TEAMS = 3  # one line stays readable; each team costs two grouped queries


@dataclass(frozen=True)
class TeamMedian:
    """A team's median of each value measure (``reports.team_median_ratios``), beside a member's own."""

    team: Team
    ratios: ValueRatios


@dataclass(frozen=True)
class MyNumbers:
    person: Person
    report: SpendReport  # the asked period
    budgets: list[BudgetStatus]  # those that apply now, whatever the period asked
    unpriced: list[UnpricedModel]
    medians: list[TeamMedian] = field(default_factory=list)
    managed: list[Team] = field(default_factory=list)  # teams to open (a manager's)
    no_usage: NoUsage | None = None  # why the report is empty, when it is
    delivery: ValueMeasures | None = None  # their merged PRs' survival and review load
    pr_costs: list[PrCost] = field(default_factory=list)  # their own, apportioned (docs/value.md)


def team_medians(
    conn: Connection,
    *,
    workspace_id: str,
    person_id: int,
    period: Period,
    min_group_size: int,
    member_of: Sequence[Team] | None = None,
) -> list[TeamMedian]:
    """The medians of the person's current teams for ``period`` (``member_of``: those teams, when
    the caller has read them), each only where enough people besides the person have the measure
    (``team_median_ratios`` decides; docs/privacy.md)."""
    if member_of is None:
        member_of = teams.teams_of(conn, workspace_id=workspace_id, person_id=person_id)
    found = []
    for team in member_of[:MAX_MEDIAN_TEAMS]:
        ratios = reports.team_median_ratios(
            conn,
            workspace_id=workspace_id,
            team_id=team.id,
            period=period,
            min_group_size=min_group_size,
            viewer_person_id=person_id,
            cached=True,  # the same for every member who asks (reports.medians.CACHE_SECONDS)
        )
        if ratios is not None and not ratios.is_empty:
            found.append(TeamMedian(team, ratios))
    return found


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
    enabled: dict[str, timedelta] | None = None,
    fix_days: int = 14,
) -> MyNumbers | None:
    """The numbers of ``person``, or of the person linked to ``slack_user_id`` (None when there is
    none yet: matching by email is a write, the Slack layer's call). The person and their numbers
    in one call: each worker-thread hand-off costs about as much as a query under load
    (docs/benchmarks.md, B5). ``enabled``: the connected sources, named when there is no usage."""
    person = person or people.resolve_slack_user(conn, workspace_id=workspace_id, slack_user_id=slack_user_id)
    if person is None:
        return None
    report = reports.person_report(
        conn, workspace_id=workspace_id, person_ids=[person.id], period=period, today=today
    )
    # Their current teams, read once for the budgets and the medians.
    member_of = teams.teams_of(conn, workspace_id=workspace_id, person_id=person.id)
    theirs = {"workspace_id": workspace_id, "person_id": person.id, "min_group_size": min_group_size}
    viewer = access.Viewer(slack_user_id, is_admin, person.id)
    owned = budgets.statuses_for_person(conn, viewer=viewer, today=today, member_of=member_of, **theirs)
    unpriced = reports.unpriced_models(
        conn, workspace_id=workspace_id, start=period.start, end=period.end, person_ids=[person.id]
    )
    medians = team_medians(conn, period=period, member_of=member_of, **theirs)
    managed = teams.managed_teams(conn, workspace_id=workspace_id, slack_user_id=slack_user_id)
    no_usage = None
    if report.is_empty and not unpriced:
        no_usage = explain_no_usage(
            conn, workspace_id=workspace_id, email=person.email, person_id=person.id, enabled=enabled or {}
        )
    delivery = value_measures(
        conn, Whose(workspace_id, [person.id]), period=period, fix_days=fix_days, now=utcnow()
    )
    pr_costs = my_pr_costs(
        conn, workspace_id=workspace_id, person_id=person.id, start=period.start, end=period.end
    )
    return MyNumbers(person, report, owned, unpriced, medians, managed, no_usage, delivery, pr_costs)
