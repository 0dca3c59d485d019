"""The daily figures the rules read, in a few grouped queries over the whole window.

People's spend comes from the ``usage_person_daily`` rollup (the same rows as ``/tokens me``,
seats left out: a seat costs the same on a quiet day); value signals and the spend of actors
that map to nobody from the daily tables (their indexes on workspace and day). A forgotten
person is never a subject, and neither is a forgotten actor's alias.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

from sqlalchemy import Connection, func, select

from bot.db.models import (
    ActivityDaily,
    ActivityOrgDaily,
    Person,
    Team,
    TeamMembership,
    UsageDaily,
    UsagePersonDaily,
)
from bot.domain.records import SEAT
from bot.services.anomalies.detectors import ACTOR, PERSON, TEAM, Day, History, Thresholds, recent_days
from bot.services.privacy import FORGOTTEN_PREFIX
from bot.sources.prices import price_for

#: Activity columns that say work came of the spend (suggestions shown or requests do not).
#: Only whether their sum is zero matters, so seconds of active time add to counts harmlessly:
#: a seat-plan user seen only through OTLP time in the tool is not idle.
SIGNAL_COLUMNS = (
    "lines_accepted",
    "acceptances",
    "commits",
    "pull_requests",
    "prs_opened",
    "prs_merged",
    "reviews",
    "sessions",
    "active_seconds",
)


def premium_rule(min_output_usd: Decimal) -> Callable[[str], bool]:
    """Models in the most expensive tier: a list output price of at least ``min_output_usd`` per
    million tokens in the current price table. A model with no list price is not in it."""

    @cache
    def is_premium(model: str) -> bool:
        price = price_for(model) if model else None
        return price is not None and price.output >= min_output_usd

    return is_premium


def window(today: date, th: Thresholds) -> tuple[date, date]:
    """[first day any baseline needs, the day after today)."""
    oldest = min(recent_days(today, th))
    return oldest - timedelta(days=th.baseline_days), today + timedelta(days=1)


def _signals(table):
    return sum(getattr(table, name) for name in SIGNAL_COLUMNS)


def load_histories(
    conn: Connection, *, workspace_id: str, today: date, th: Thresholds, is_premium: Callable[[str], bool]
) -> tuple[list[History], set[date]]:
    """Every subject's days in the window, and the days some value source has delivered."""
    start, end = window(today, th)
    spend: dict[tuple[str, str], dict[date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    people = UsagePersonDaily
    forgotten = select(Person.id).where(Person.workspace_id == workspace_id, Person.forgotten_at.is_not(None))
    rows = conn.execute(
        select(people.person_id, people.day, people.model, func.sum(people.cost_micros))
        .where(
            people.workspace_id == workspace_id,
            people.day >= start,
            people.day < end,
            people.kind != SEAT,
            people.person_id.not_in(forgotten),
        )
        .group_by(people.person_id, people.day, people.model)
    ).all()
    for person_id, day, model, micros in rows:
        cell = spend[PERSON, str(person_id)][day]
        cell[0] += int(micros or 0)
        cell[1] += int(micros or 0) if is_premium(model) else 0
    usage = UsageDaily
    rows = conn.execute(
        select(usage.actor, usage.day, func.sum(usage.cost_micros))
        .where(
            usage.workspace_id == workspace_id,
            usage.day >= start,
            usage.day < end,
            usage.person_id.is_(None),
            usage.in_org_total.is_(True),
            usage.kind != SEAT,
            ~usage.actor.startswith(FORGOTTEN_PREFIX),
        )
        .group_by(usage.actor, usage.day)
    ).all()
    for actor, day, micros in rows:
        spend[ACTOR, actor][day][0] += int(micros or 0)
    activity = ActivityDaily
    rows = conn.execute(
        select(activity.person_id, activity.actor, activity.day, func.sum(_signals(activity)))
        .where(activity.workspace_id == workspace_id, activity.day >= start, activity.day < end)
        .group_by(activity.person_id, activity.actor, activity.day)
    ).all()
    for person_id, actor, day, signals in rows:
        key = (PERSON, str(person_id)) if person_id is not None else (ACTOR, actor)
        if key in spend:  # signals without spend start no history
            spend[key][day][2] += int(signals or 0)
    org = ActivityOrgDaily
    reported = set(
        conn.execute(
            select(org.day)
            .where(org.workspace_id == workspace_id, org.day >= start, org.day < end)
            .distinct()
        ).scalars()
    )
    histories = [
        History(
            kind,
            key,
            {day: Day(*figures) for day, figures in days.items()},
            int(key) if kind == PERSON else None,
        )
        for (kind, key), days in sorted(spend.items())
    ]
    return histories, reported


def team_histories(
    conn: Connection, *, workspace_id: str, people: list[History], min_people: int
) -> list[History]:
    """Each team's days: the sum of the members' days while they were members (dated
    membership, like ``/tokens team``). A day on which fewer than ``min_people`` members spent
    is left out: a team figure from one or two people is their own number, and the team's
    managers are not always managers of every member (docs/privacy.md)."""
    by_person = {h.person_id: h for h in people if h.kind == PERSON}
    rows = conn.execute(
        select(
            TeamMembership.team_id, TeamMembership.person_id, TeamMembership.joined_on, TeamMembership.left_on
        )
        .join(Team, Team.id == TeamMembership.team_id)
        .where(Team.workspace_id == workspace_id, TeamMembership.person_id.in_(sorted(by_person)))
    ).all()
    sums: dict[int, dict[date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0]))
    for team_id, person_id, joined, left in rows:
        for day, figures in by_person[person_id].days.items():
            if joined <= day and (left is None or day < left) and figures.spend_micros > 0:
                cell = sums[team_id][day]
                cell[0] += figures.spend_micros
                cell[1] += figures.premium_micros
                cell[2] += figures.signals
                cell[3] += 1  # members who spent that day
    return [
        History(
            TEAM, str(team_id), {day: Day(*cell[:3]) for day, cell in days.items() if cell[3] >= min_people}
        )
        for team_id, days in sorted(sums.items())
    ]
