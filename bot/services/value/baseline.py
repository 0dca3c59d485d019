"""A team's own baseline: its weeks before it adopted AI tools, beside last week.

*Adoption* is the first week (of the ``HISTORY_WEEKS`` read) in which the team's AI spend, usage
and seats, reached the adoption threshold (``Settings.adoption_threshold_usd``); the weeks
before it are the team's *pre-adoption weeks*. The measure compared is merged pull requests a
week, from the code host: the one value signal that exists before any AI tool is in use (the
tools' own counts, accepted lines and the like, start with the tools).

In the first ``EARLY_WEEKS`` weeks after adoption a team below its pre-adoption average is
labelled an *early dip*: learning a tool costs time before it saves any, so such a week is
shown as that, not as failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, case, func, literal_column, select

from bot.db.models import PullRequest, UsagePersonDaily, as_utc

HISTORY_WEEKS = 26  # about six months: how far back adoption is looked for
EARLY_WEEKS = 6  # weeks after adoption in which a dip is "early"


@dataclass(frozen=True)
class TeamWeek:
    """One week of a team: its AI spend, its merged PRs and their authors."""

    start: date
    spend_micros: int = 0
    merged_prs: int = 0
    authors: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Baseline:
    """This week's merged PRs against the pre-adoption average and last week."""

    adopted: date  # start of the adoption week
    weeks_since: int  # 0: this week is the adoption week
    pre_weeks: int
    pre_prs: int  # merged PRs over all pre-adoption weeks
    this_prs: int
    last_prs: int | None  # None: last week is before the history read
    groups: tuple[frozenset[int], ...]  # whose figures these are (see recap.rules.postable)

    @property
    def pre_average(self) -> float:
        return self.pre_prs / self.pre_weeks

    @property
    def early_dip(self) -> bool:
        return self.weeks_since < EARLY_WEEKS and self.this_prs < self.pre_average


def compare(weeks: Sequence[TeamWeek], threshold_micros: int) -> Baseline | None:
    """``weeks`` newest first (``weeks[0]`` this week). None when the team never reached the
    threshold, or no merged PR is known before it did: the pre-adoption weeks count from the
    first week with a merged PR (before it the code host was not synced, not idle)."""
    oldest_first = list(reversed(weeks))
    adopted = next((i for i, w in enumerate(oldest_first) if w.spend_micros >= threshold_micros), None)
    if adopted is None:
        return None
    known = next((i for i, w in enumerate(oldest_first[:adopted]) if w.merged_prs), None)
    if known is None:
        return None
    pre = oldest_first[known:adopted]
    this = weeks[0]
    last = weeks[1] if len(weeks) > 1 else None
    pre_authors = frozenset().union(*(w.authors for w in pre))
    groups = tuple(g for g in (this.authors, pre_authors, last.authors if last else frozenset()) if g)
    return Baseline(
        adopted=oldest_first[adopted].start,
        weeks_since=len(oldest_first) - 1 - adopted,
        pre_weeks=len(pre),
        pre_prs=sum(w.merged_prs for w in pre),
        this_prs=this.merged_prs,
        last_prs=last.merged_prs if last else None,
        groups=groups,
    )


def _week_of(day: date, starts: Sequence[date]) -> int | None:
    """Index (newest first) of the week ``day`` falls in, or None outside them."""
    for i, start in enumerate(starts):
        if start <= day < start + timedelta(days=7):
            return i
    return None


def load_baseline(
    conn: Connection,
    *,
    workspace_id: str,
    clause,
    person_ids: Sequence[int],
    end: date,
    threshold_micros: int,
) -> Baseline | None:
    """``compare`` of ``load_team_weeks``. Without a merged PR in the weeks read there is no
    baseline whatever the spend, so the spend (half a year of the team's rows, the recap's
    costliest query: docs/benchmarks.md, B4) is read only when there is one."""
    if not _merged_prs(conn, workspace_id, person_ids, _starts(end), end)[0]:
        return None
    return compare(
        load_team_weeks(conn, workspace_id=workspace_id, clause=clause, person_ids=person_ids, end=end),
        threshold_micros,
    )


def _starts(end: date) -> list[date]:
    return [end - timedelta(days=7 * (i + 1)) for i in range(HISTORY_WEEKS)]


def _merged_prs(
    conn: Connection, workspace_id: str, person_ids: Sequence[int], starts: Sequence[date], end: date
) -> tuple[dict[int, int], dict[int, set[int]]]:
    """Merged PRs of ``person_ids`` per week index, and their authors."""
    first = starts[-1]
    prs: dict[int, int] = {}
    authors: dict[int, set[int]] = {}
    if person_ids:
        for pid, merged_at in conn.execute(
            select(PullRequest.person_id, PullRequest.merged_at).where(
                PullRequest.workspace_id == workspace_id,
                PullRequest.person_id.in_(sorted(set(person_ids))),
                PullRequest.merged_at >= datetime(first.year, first.month, first.day, tzinfo=UTC),
                PullRequest.merged_at < datetime(end.year, end.month, end.day, tzinfo=UTC),
            )
        ).all():
            wk = _week_of(as_utc(merged_at).date(), starts)
            if wk is not None:
                prs[wk] = prs.get(wk, 0) + 1
                authors.setdefault(wk, set()).add(int(pid))
    return prs, authors


def load_team_weeks(
    conn: Connection, *, workspace_id: str, clause, person_ids: Sequence[int], end: date
) -> list[TeamWeek]:
    """The ``HISTORY_WEEKS`` weeks before ``end``, newest first. ``clause`` selects the team's
    rows of ``UsagePersonDaily`` (``Scope.clause``); ``person_ids`` are the people whose merged
    PRs count (the team's members over the span)."""
    starts = _starts(end)
    first = starts[-1]
    # Summed per week in SQL (the week's index, grouped by its alias: PostgreSQL binds the CASE's
    # dates apart in SELECT and GROUP BY). Grouped per day, SQLite walked the (day, ...) index
    # over the whole org's half year instead of the team's rows in (person, day) order: ~50 s
    # against ~1 s for 500 people of 5,000 (docs/benchmarks.md, B4).
    week = case(*[(UsagePersonDaily.day >= s, i) for i, s in enumerate(starts[:-1])], else_=len(starts) - 1)
    spend: dict[int, int] = {}
    for wk, micros in conn.execute(
        select(week.label("wk"), func.sum(UsagePersonDaily.cost_micros))
        .where(
            UsagePersonDaily.workspace_id == workspace_id,
            clause,
            UsagePersonDaily.in_org_total.is_(True),
            UsagePersonDaily.day >= first,
            UsagePersonDaily.day < end,
        )
        .group_by(literal_column("wk"))
    ).all():
        if micros:
            spend[int(wk)] = int(micros)
    prs, authors = _merged_prs(conn, workspace_id, person_ids, starts, end)
    return [
        TeamWeek(start, spend.get(i, 0), prs.get(i, 0), frozenset(authors.get(i, ())))
        for i, start in enumerate(starts)
    ]
