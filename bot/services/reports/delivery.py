"""Merged pull requests next to spend (``github_delivery``): AI-assisted share, spend per merged
PR and idle spend."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, func, or_, select

from bot.db.models import ActivityDaily, PullRequest, UsageDaily, UsagePersonDaily
from bot.domain.ai_rules import DELIVERY_VENDORS, HIGH, LOW, Detection, with_usage
from bot.domain.periods import Period, week_start
from bot.domain.records import ACTIVITY_FIELDS, SEAT
from bot.services.reports.spend import _in_period
from bot.services.reports.value import per_item_micros

# Merged pull requests next to spend. "AI-assisted" is high (a mark on the PR itself, stored at
# sync) or low (no mark, but the author used an AI tool while the PR was worked on): low is
# decided here, at query time, because vendor data lands later than GitHub's. Spend is the
# people's personal spend, as in ``/tokens me`` (every row attributed to them, seats included).


@dataclass(frozen=True)
class IdleWeek:
    """A person's spend in one Monday-start week with no PR of theirs merged from that week's
    first day in the period until ``idle_days`` after the week ended."""

    person_id: int
    week_start: date
    spend_micros: int


@dataclass
class DeliveryMeasures:
    period: Period
    idle_days: int
    spend_micros: int = 0
    merged_prs: int = 0
    ai_high: int = 0
    ai_low: int = 0
    idle_weeks: list[IdleWeek] = field(default_factory=list)
    #: Spend in weeks whose ``idle_days`` have not all passed yet and had no merge so far.
    undecided_micros: int = 0

    @property
    def ai_assisted(self) -> int:
        return self.ai_high + self.ai_low

    @property
    def ai_share(self) -> float | None:
        """For display only (counts stay integers)."""
        return self.ai_assisted / self.merged_prs if self.merged_prs else None

    @property
    def spend_per_merged_micros(self) -> int | None:
        return per_item_micros(self.spend_micros, self.merged_prs)

    @property
    def spend_per_ai_pr_micros(self) -> int | None:
        return per_item_micros(self.spend_micros, self.ai_assisted)

    @property
    def idle_spend_micros(self) -> int:
        return sum(week.spend_micros for week in self.idle_weeks)


def _utc_day_start(day: date):
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _as_utc(moment):
    # SQLite hands timestamps back without their offset; they were stored as UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def ai_tool_days(
    conn: Connection, *, workspace_id: str, person_ids: list[int], start: date, end: date
) -> dict[int, set[date]]:
    """UTC days on which each person used an AI tool per another vendor's data: usage rows with
    spend, tokens or requests (seats are not use) or activity rows with any signal."""
    used = or_(
        UsageDaily.cost_micros != 0,
        UsageDaily.input_tokens > 0,
        UsageDaily.output_tokens > 0,
        UsageDaily.cache_read_tokens > 0,
        UsageDaily.cache_write_tokens > 0,
        UsageDaily.requests > 0,
    )
    active = or_(*(getattr(ActivityDaily, name) > 0 for name in ACTIVITY_FIELDS))
    found: dict[int, set[date]] = {}
    for table, condition in ((UsageDaily, used), (ActivityDaily, active)):
        query = select(table.person_id, table.day).where(
            table.workspace_id == workspace_id,
            table.person_id.in_(person_ids),
            table.day >= start,
            table.day < end,
            table.vendor.not_in(sorted(DELIVERY_VENDORS)),
            condition,
        )
        if table is UsageDaily:
            query = query.where(UsageDaily.kind != SEAT)
        for person_id, day in conn.execute(query.distinct()).all():
            found.setdefault(int(person_id), set()).add(day)
    return found


def delivery_measures(
    conn: Connection,
    workspace_id: str,
    person_ids: list[int],
    period: Period,
    idle_days: int,
    *,
    today: date | None = None,
) -> DeliveryMeasures:
    """Merged PRs, AI-assisted share, spend per merged / AI-assisted PR and idle spend of a set of
    people over ``period`` (merge days and usage days are UTC days, like the other reports).

    Idle spend is judged per person and week: a week's spend is idle when none of that person's
    PRs merged from the week's first day (in the period) until ``idle_days`` after the week's
    end; until that deadline has passed (``today``, default the UTC date) it is "undecided".
    """
    result = DeliveryMeasures(period, idle_days)
    if not person_ids:
        return result
    today = today or datetime.now(UTC).date()
    horizon = period.end + timedelta(days=7 + idle_days)  # the last merge that can clear a week
    rows = conn.execute(
        select(
            PullRequest.person_id,
            PullRequest.opened_at,
            PullRequest.first_commit_at,
            PullRequest.merged_at,
            PullRequest.ai_confidence,
            PullRequest.ai_rule,
        ).where(
            PullRequest.workspace_id == workspace_id,
            PullRequest.person_id.in_(person_ids),
            PullRequest.merged_at >= _utc_day_start(period.start),
            PullRequest.merged_at < _utc_day_start(horizon),
        )
    ).all()
    merges: dict[int, list[date]] = {}
    in_period = []
    for row in rows:
        merged_day = _as_utc(row.merged_at).date()
        merges.setdefault(int(row.person_id), []).append(merged_day)
        if merged_day < period.end:
            worked_from = _as_utc(row.first_commit_at or row.opened_at).date()
            in_period.append((row, min(worked_from, merged_day), merged_day))

    unmarked = [item for item in in_period if item[0].ai_confidence != HIGH]
    ai_days: dict[int, set[date]] = {}
    if unmarked:
        ai_days = ai_tool_days(
            conn,
            workspace_id=workspace_id,
            person_ids=person_ids,
            start=min(first for _, first, _ in unmarked),
            end=max(last for _, _, last in unmarked) + timedelta(days=1),
        )
    for row, first, last in in_period:
        result.merged_prs += 1
        detection = with_usage(
            Detection(row.ai_confidence, row.ai_rule), first, last, ai_days.get(int(row.person_id), ())
        )
        result.ai_high += detection.confidence == HIGH
        result.ai_low += detection.confidence == LOW

    spend: dict[int, dict[date, int]] = {}
    for person_id, day, cost in conn.execute(
        select(UsagePersonDaily.person_id, UsagePersonDaily.day, func.sum(UsagePersonDaily.cost_micros))
        .where(
            UsagePersonDaily.workspace_id == workspace_id,
            UsagePersonDaily.person_id.in_(person_ids),
            *_in_period(UsagePersonDaily, period),
        )
        .group_by(UsagePersonDaily.person_id, UsagePersonDaily.day)
    ).all():
        spend.setdefault(int(person_id), {})[day] = int(cost or 0)
        result.spend_micros += int(cost or 0)

    for person_id in sorted(spend):
        days = spend[person_id]
        week = week_start(period.start)
        while week < period.end:
            low, high = max(week, period.start), min(week + timedelta(days=7), period.end)
            spent = sum(cost for day, cost in days.items() if low <= day < high)
            deadline = week + timedelta(days=7 + idle_days)
            if spent > 0 and not any(low <= day < deadline for day in merges.get(person_id, ())):
                if today >= deadline:
                    result.idle_weeks.append(IdleWeek(person_id, week, spent))
                else:
                    result.undecided_micros += spent
            week += timedelta(days=7)
    return result
