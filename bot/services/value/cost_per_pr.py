"""Cost per merged pull request: the author's AI spend in the PR's working span.

A PR's *working span* is the UTC days from its first commit (or its opening, when that came
first or no commit date is known) to its merge, both included, and at most ``MAX_SPAN_DAYS``
days ending on the merge day (a branch left open for months would otherwise soak up a
quarter's spend). Each day of the author's AI spend (usage, not seats: a seat costs the same
whatever is built) is shared equally among the author's merged PRs whose span covers that day,
with the micro-dollars split by largest remainder, so the PRs' figures add up exactly to the
spend of the days they cover. Those figures are *apportioned*, never measured: the spend of a
day may have gone on anything the author did that day.

Where spend can be tied to one PR (an agent session that names the PR, a trailer that names a
session), the caller passes it as ``measured`` (PR -> day -> micros): that PR then shows the
measured figure, labelled so, and only the rest of the day's spend is apportioned to the others.
Nothing stored today ties a session to a PR, so ``load_pr_costs`` passes none (docs/value-money.md).

Spend of a day counts only once every PR open that day is known: a PR merged later joins the
share of the days it covers, so a past week's figures settle once its open PRs have merged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, func, select

from bot.db.models import PullRequest, UsagePersonDaily, as_utc
from bot.domain.records import SEAT

APPORTIONED = "apportioned"
MEASURED = "measured"
MAX_SPAN_DAYS = 28


@dataclass(frozen=True)
class PrWork:
    """A merged PR and its working span ``[start, merged]`` (UTC days, both included)."""

    pr_id: int
    person_id: int
    repo: str
    number: int
    start: date
    merged: date

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.merged


@dataclass(frozen=True)
class PrCost:
    pr_id: int
    person_id: int
    repo: str
    number: int
    merged: date
    micros: int
    basis: str  # APPORTIONED | MEASURED


@dataclass(frozen=True)
class PrCostSummary:
    """The spread of a group's PR costs: median and the middle half, never a ranking."""

    prs: int
    authors: frozenset[int]
    median_micros: int
    low_micros: int  # 25th percentile (nearest rank)
    high_micros: int  # 75th percentile (nearest rank)
    measured: int  # PRs with a measured figure
    without_spend: int  # PRs whose span saw no AI spend of their author
    #: The authors with AI spend in a PR's span: the people the figures come from. An author
    #: without spend adds only $0 PRs, so a channel's minimum group counts these, never ``authors``
    #: (docs/privacy.md, "Recap posts").
    spenders: frozenset[int] = frozenset()


def working_span(
    opened_at: datetime, merged_at: datetime, first_commit_at: datetime | None
) -> tuple[date, date]:
    """The UTC days ``(start, merged)`` a PR was worked on (see the module's docstring)."""
    merged = as_utc(merged_at).date()
    begun = as_utc(opened_at)
    if first_commit_at is not None:
        begun = min(begun, as_utc(first_commit_at))
    start = max(min(begun.date(), merged), merged - timedelta(days=MAX_SPAN_DAYS - 1))
    return start, merged


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` in whole units that add up to ``total``
    exactly: each gets the floor of its share, the units left go to the largest remainders
    (the earlier one on a tie, so the split is the same on every run)."""
    weight = sum(weights)
    if weight <= 0:
        raise ValueError("weights must add up to more than 0")
    shares = [total * w // weight for w in weights]
    left = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % weight), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


def apportion(
    prs: Sequence[PrWork],
    daily: Mapping[tuple[int, date], int],
    measured: Mapping[int, Mapping[date, int]] | None = None,
) -> list[PrCost]:
    """Every PR's cost from the authors' spend per (person, UTC day)."""
    measured = measured or {}
    totals = {pr.pr_id: 0 for pr in prs}
    by_person: dict[int, list[PrWork]] = {}
    for pr in sorted(prs, key=lambda p: p.pr_id):
        by_person.setdefault(pr.person_id, []).append(pr)
    for (person_id, day), micros in sorted(daily.items()):
        open_prs = [pr for pr in by_person.get(person_id, ()) if pr.covers(day)]
        shared = [pr for pr in open_prs if pr.pr_id not in measured]
        tied = sum(measured[pr.pr_id].get(day, 0) for pr in open_prs if pr.pr_id in measured)
        pool = max(micros - tied, 0)
        if not shared or pool <= 0:
            continue
        for pr, share in zip(shared, largest_remainder(pool, [1] * len(shared)), strict=True):
            totals[pr.pr_id] += share
    for pr_id, days in measured.items():
        if pr_id in totals:
            totals[pr_id] = sum(days.values())
    return [
        PrCost(
            pr.pr_id,
            pr.person_id,
            pr.repo,
            pr.number,
            pr.merged,
            totals[pr.pr_id],
            MEASURED if pr.pr_id in measured else APPORTIONED,
        )
        for pr in sorted(prs, key=lambda p: (p.merged, p.pr_id))
    ]


def _nearest_rank(ordered: Sequence[int], fraction: tuple[int, int]) -> int:
    num, den = fraction
    rank = max(1, -(-len(ordered) * num // den))  # ceil(n * p), at least the first
    return ordered[rank - 1]


def summarize(costs: Iterable[PrCost]) -> PrCostSummary | None:
    """Median (the mean of the two middle figures when even, rounded half up) and quartiles."""
    costs = list(costs)
    if not costs:
        return None
    ordered = sorted(c.micros for c in costs)
    n = len(ordered)
    mid = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2] + 1) // 2
    return PrCostSummary(
        prs=n,
        authors=frozenset(c.person_id for c in costs),
        median_micros=mid,
        low_micros=_nearest_rank(ordered, (1, 4)),
        high_micros=_nearest_rank(ordered, (3, 4)),
        measured=sum(1 for c in costs if c.basis == MEASURED),
        without_spend=sum(1 for c in costs if c.micros == 0),
        spenders=frozenset(c.person_id for c in costs if c.micros > 0),
    )


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def load_pr_costs(
    conn: Connection, *, workspace_id: str, person_ids: Sequence[int], start: date, end: date
) -> list[PrCost]:
    """The costs of the PRs of ``person_ids`` merged on UTC days ``[start, end)``.

    Their authors' other merged PRs whose spans share a day with them are loaded too, so a day's
    spend is split among every PR open that day, not only those merged in the period."""
    if not person_ids:
        return []
    ids = sorted(set(person_ids))
    horizon = start - timedelta(days=MAX_SPAN_DAYS)
    # PRs merged up to MAX_SPAN_DAYS after the period can reach back into its spans' days.
    rows = conn.execute(
        select(
            PullRequest.id,
            PullRequest.person_id,
            PullRequest.repo,
            PullRequest.number,
            PullRequest.opened_at,
            PullRequest.merged_at,
            PullRequest.first_commit_at,
        ).where(
            PullRequest.workspace_id == workspace_id,
            PullRequest.person_id.in_(ids),
            PullRequest.merged_at >= _day_start(horizon),
            PullRequest.merged_at < _day_start(end + timedelta(days=MAX_SPAN_DAYS)),
        )
    ).all()
    work = [
        PrWork(int(pr_id), int(pid), repo, int(number), *working_span(opened, merged, first))
        for pr_id, pid, repo, number, opened, merged, first in rows
    ]
    wanted = {pr.pr_id for pr in work if start <= pr.merged < end}
    if not wanted:
        return []
    first_day = min(pr.start for pr in work if pr.pr_id in wanted)
    last_day = max(pr.merged for pr in work if pr.pr_id in wanted)
    daily = {
        (int(pid), day): int(micros or 0)
        for pid, day, micros in conn.execute(
            select(UsagePersonDaily.person_id, UsagePersonDaily.day, func.sum(UsagePersonDaily.cost_micros))
            .where(
                UsagePersonDaily.workspace_id == workspace_id,
                UsagePersonDaily.person_id.in_(ids),
                UsagePersonDaily.kind != SEAT,
                # Money counted once: rows billed elsewhere too (e.g. Claude Code estimates
                # beside Anthropic's bill) stay out, as in the org's totals.
                UsagePersonDaily.in_org_total.is_(True),
                UsagePersonDaily.day >= first_day,
                UsagePersonDaily.day <= last_day,
            )
            .group_by(UsagePersonDaily.person_id, UsagePersonDaily.day)
        ).all()
    }
    return [cost for cost in apportion(work, daily) if cost.pr_id in wanted]


def my_pr_costs(
    conn: Connection, *, workspace_id: str, person_id: int, start: date, end: date
) -> list[PrCost]:
    """One person's own PR costs for ``/tokens me`` (ephemeral: their figures, theirs alone)."""
    return load_pr_costs(conn, workspace_id=workspace_id, person_ids=[person_id], start=start, end=end)
