"""A budget's status now: its current period, ceiling (extras included), spend so far and
recent run-rate, and what follows from them (thresholds crossed, the forecast, floor pace)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from sqlalchemy import Connection, func, select

from bot.db.models import Budget, Team, UsageOrgDaily, UsagePersonDaily
from bot.domain.periods import Period, calendar_period
from bot.domain.records import SEAT
from bot.services.budgets.forecast import (
    RUN_RATE_DAYS,
    projected,
    reach_day,
    run_rate,
    share_reached,
    threshold_micros,
)
from bot.services.budgets.store import extras
from bot.services.budgets.vocabulary import FULL, HIDDEN, PERSON, TEAM_KINDS
from bot.services.reports import on_team  # the one definition of "counts for the team that day"


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    team: Team | None
    period: Period
    today: date
    ceiling_micros: int  # the amount plus this period's approved extra
    extra_micros: int
    spent_micros: int
    rate: Fraction  # micros per day, last RUN_RATE_DAYS complete days
    visibility: str = FULL
    # For person budgets, who it is for (filled by ``visibility.visible_statuses`` or the caller):
    # their Slack id (None when unknown or forgotten) and a name; the Slack layer draws them.
    person_slack_id: str | None = None
    person_name: str = ""
    own: bool = False  # the viewer is the person this budget is for ("you", not "they")

    @property
    def percent(self) -> int:
        return self.spent_micros * 100 // self.ceiling_micros if self.ceiling_micros else 0

    @property
    def share(self) -> Fraction:
        return Fraction(self.spent_micros, self.ceiling_micros) if self.ceiling_micros else Fraction(0)

    @property
    def over(self) -> bool:
        return self.spent_micros >= self.ceiling_micros

    @property
    def remaining_micros(self) -> int:
        return self.ceiling_micros - self.spent_micros

    @property
    def crossed(self) -> list[int]:
        return [t for t in self.budget.thresholds if share_reached(self.spent_micros, self.ceiling_micros, t)]

    @property
    def next_threshold(self) -> int | None:
        """The lowest alert threshold not reached yet (100 when every configured one is)."""
        for t in self.budget.thresholds:
            if not share_reached(self.spent_micros, self.ceiling_micros, t):
                return t
        return None if self.over else 100

    @property
    def projected_micros(self) -> int:
        return projected(self.spent_micros, self.rate, self.today, self.period)

    def reach(self, percent: int) -> date | None:
        return reach_day(
            self.spent_micros,
            threshold_micros(self.ceiling_micros, percent),
            self.rate,
            self.today,
            self.period,
        )

    @property
    def forecast_over(self) -> bool:
        """Not over yet, but over before the period resets at this pace."""
        return not self.over and self.reach(100) is not None

    @property
    def elapsed_days(self) -> int:
        return (self.today - self.period.start).days

    @property
    def floor_expected_micros(self) -> int | None:
        """Where a steady pace to the floor would be by now (complete days only)."""
        floor = self.budget.floor_micros
        if floor is None:
            return None
        return floor * self.elapsed_days // self.period.days

    @property
    def past_mid_period(self) -> bool:
        return self.elapsed_days * 2 >= self.period.days

    @property
    def below_floor_pace(self) -> bool:
        expected = self.floor_expected_micros
        return expected is not None and self.past_mid_period and self.spent_micros < expected


def _spend_scope(workspace_id: str, budget: Budget, team: Team | None):
    """The rollup a budget's spend is read from, and the clauses that pick its rows."""
    # People and teams: every row of their people (the person rollup); the org: each dollar once
    # (estimates billed by another source left out), from the org rollup.
    table = UsageOrgDaily if budget.target_kind not in (PERSON, *TEAM_KINDS) else UsagePersonDaily
    clauses = [table.workspace_id == workspace_id]
    if budget.vendor:
        clauses.append(table.vendor == budget.vendor)
    if not budget.include_seats:
        clauses.append(table.kind != SEAT)
    if budget.target_kind == PERSON:
        clauses.append(table.person_id == int(budget.target_id))
    elif budget.target_kind in TEAM_KINDS:
        if team is None:
            return None  # the team was never read from Slack: nobody's spend counts for it
        clauses.append(on_team(table, team.id))
    else:
        clauses.append(table.in_org_total.is_(True))
    return table, clauses


def daily_spend(
    conn: Connection, *, workspace_id: str, budget: Budget, team: Team | None, start: date, end: date
) -> dict[date, int]:
    scope = _spend_scope(workspace_id, budget, team)
    if scope is None:
        return {}
    table, clauses = scope
    rows = conn.execute(
        select(table.day, func.sum(table.cost_micros))
        .where(*clauses, table.day >= start, table.day < end)
        .group_by(table.day)
    ).all()
    return {day: int(total or 0) for day, total in rows}


def statuses(
    conn: Connection, *, workspace_id: str, budgets: Sequence[tuple[Budget, Team | None]], today: date
) -> list[BudgetStatus]:
    """Each budget's current period, ceiling, spend and run-rate: one grouped query per budget
    (indexed by day) plus one for the period overrides."""
    if not budgets:
        return []
    periods = {b.id: calendar_period(b.period, today) for b, _ in budgets}
    extra = extras(
        conn,
        workspace_id=workspace_id,
        budget_ids=list(periods),
        since=min(p.start for p in periods.values()),
    )
    found = []
    for budget, team in budgets:
        period = periods[budget.id]
        daily = daily_spend(
            conn,
            workspace_id=workspace_id,
            budget=budget,
            team=team,
            start=min(period.start, today - timedelta(days=RUN_RATE_DAYS)),
            end=period.end,
        )
        spent = sum(v for d, v in daily.items() if d >= period.start)
        added = extra.get((budget.id, period.start), 0)
        found.append(
            BudgetStatus(
                budget=budget,
                team=team,
                period=period,
                today=today,
                ceiling_micros=budget.amount_micros + added,
                extra_micros=added,
                spent_micros=spent,
                rate=run_rate(daily, today),
            )
        )
    return found


def _tightness(status: BudgetStatus) -> tuple[Fraction, int]:
    """Largest share used first; between equal shares, less headroom in dollars, compared only
    where the viewer sees the dollars (a percentage-only budget never ranks by its amount)."""
    return status.share, -status.remaining_micros if status.visibility == FULL else 0


def tightest_candidates(items: Sequence[BudgetStatus]) -> list[BudgetStatus]:
    """The budgets tied for tightest among those whose status the viewer sees (several only on
    a tie, which leaves the choice to the person)."""
    shown = [s for s in items if s.visibility != HIDDEN]
    if not shown:
        return []
    top = max(_tightness(s) for s in shown)
    return [s for s in shown if _tightness(s) == top]


def tightest(items: Sequence[BudgetStatus]) -> BudgetStatus | None:
    """The tightest budget: the one with the least headroom (largest share of its ceiling used).
    The one rule for every view (``/tokens me``, ``/tokens budget``, the App Home, alerts) and
    for the budget a request for more raises; None when none is shown or two tie."""
    found = tightest_candidates(items)
    return found[0] if len(found) == 1 else None
