"""Cost per merged pull request: the author's AI spend in the PR's working span.

A PR's *working span* is the UTC days from its first commit (or its opening, when that came
first or no commit date is known) to its merge, both included, and at most ``MAX_SPAN_DAYS``
days ending on the merge day (a branch left open for months would otherwise soak up a
quarter's spend). Each day of the author's AI spend (usage, not seats: a seat costs the same
whatever is built) is shared equally among the author's merged PRs whose span covers that day,
with the micro-dollars split by largest remainder, so the PRs' figures add up exactly to the
spend of the days they cover. Those figures are *apportioned*, never measured: the spend of a
day may have gone on anything the author did that day.

Where spend can be tied to one PR it is *measured*: a trailer in the PR body or one of its commits
names an agent session (``bot.domain.ai_rules.session_ids``: ``Claude-Session:``,
``Entire-Session:``, ...), the agent's telemetry reported that session's cost
(``otel_session_daily``, from the ``session.id`` of Claude Code's metrics), and the session is the
author's own (its actor is linked to the PR's author). That PR then shows the session's cost,
labelled "measured", and the author's spend of each day minus what their measured PRs took that
day is apportioned among their other PRs open that day, so the figures still add up to the day's
spend (a session estimate larger than the day's billed spend leaves the others nothing that day).
A session whose agent sends no cost (Codex: tokens only) ties nothing: its PR stays apportioned,
never a silent $0. A session named by several PRs of its author is split equally among them
(docs/value.md "Cost per pull request").

Spend of a day counts only once every PR open that day is known: a PR merged later joins the
share of the days it covers, so a past week's figures settle once its open PRs have merged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, func, select

from bot.db.models import Identity, OtelSessionDaily, PullRequest, UsagePersonDaily, as_utc
from bot.domain.records import SEAT
from bot.sources.otel import AGENTS, source_of

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
        theirs = by_person.get(person_id, ())
        shared = [pr for pr in theirs if pr.covers(day) and pr.pr_id not in measured]
        # What their measured PRs took that day, whether or not the day is in those PRs' spans.
        tied = sum(measured[pr.pr_id].get(day, 0) for pr in theirs if pr.pr_id in measured)
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


#: Sources whose sessions carry a cost: an agent that sends tokens only cannot measure a PR.
PRICED_SESSION_SOURCES = tuple(sorted(source_of(a.agent) for a in AGENTS.values() if a.priced))


def load_measured(
    conn: Connection, *, workspace_id: str, work: Sequence[PrWork], sessions: Mapping[int, Sequence[str]]
) -> dict[int, dict[date, int]]:
    """PR -> UTC day -> micro-dollars of the sessions each PR names (``sessions``: PR -> ids), for
    the sessions of its own author with a cost; PRs with none are left out (apportioned)."""
    authors = {pr.pr_id: pr.person_id for pr in work}
    naming: dict[tuple[int, str], list[int]] = {}  # (author, session) -> the PRs naming it
    for pr_id, names in sorted(sessions.items()):
        for name in names:
            naming.setdefault((authors[pr_id], name), []).append(pr_id)
    if not naming:
        return {}
    names = sorted({name for _, name in naming})
    found = []
    for at in range(0, len(names), 500):  # bounded IN lists (an org's month of PRs names many)
        found += conn.execute(
            select(
                Identity.person_id,
                OtelSessionDaily.session,
                OtelSessionDaily.day,
                OtelSessionDaily.cost_micros,
            )
            .join(
                Identity,
                (Identity.workspace_id == OtelSessionDaily.workspace_id)
                & (Identity.actor == OtelSessionDaily.actor),
            )
            .where(
                OtelSessionDaily.workspace_id == workspace_id,
                OtelSessionDaily.source.in_(PRICED_SESSION_SOURCES),
                OtelSessionDaily.session.in_(names[at : at + 500]),
                Identity.person_id.in_(sorted({person for person, _ in naming})),
            )
        ).all()
    daily: dict[tuple[int, str], dict[date, int]] = {}
    for person_id, name, day, micros in found:
        days = daily.setdefault((int(person_id), name), {})
        days[day] = days.get(day, 0) + int(micros or 0)
    measured: dict[int, dict[date, int]] = {}
    for key, days in sorted(daily.items()):
        prs = naming.get(key)
        if not prs or sum(days.values()) <= 0:
            continue  # another person's session, or one without a cost: nothing measured
        for day, micros in sorted(days.items()):
            for pr_id, share in zip(prs, largest_remainder(micros, [1] * len(prs)), strict=True):
                measured.setdefault(pr_id, {})
                measured[pr_id][day] = measured[pr_id].get(day, 0) + share
    return measured


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
            PullRequest.session_ids,
        ).where(
            PullRequest.workspace_id == workspace_id,
            PullRequest.person_id.in_(ids),
            PullRequest.merged_at >= _day_start(horizon),
            PullRequest.merged_at < _day_start(end + timedelta(days=MAX_SPAN_DAYS)),
        )
    ).all()
    work = [
        PrWork(int(pr_id), int(pid), repo, int(number), *working_span(opened, merged, first))
        for pr_id, pid, repo, number, opened, merged, first, _ in rows
    ]
    sessions = {int(row[0]): row[-1].split() for row in rows if row[-1]}
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
    measured = load_measured(conn, workspace_id=workspace_id, work=work, sessions=sessions)
    return [cost for cost in apportion(work, daily, measured) if cost.pr_id in wanted]


def my_pr_costs(
    conn: Connection, *, workspace_id: str, person_id: int, start: date, end: date
) -> list[PrCost]:
    """One person's own PR costs for ``/tokens me`` (ephemeral: their figures, theirs alone)."""
    return load_pr_costs(conn, workspace_id=workspace_id, person_ids=[person_id], start=start, end=end)
