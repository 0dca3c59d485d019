"""Review load: how long merged PRs waited from ready-for-review to merge, and in how many review
rounds, AI-assisted vs the others (docs/value.md, "Review load").

- *ready*: the last ``ready_for_review`` timeline event before the merge, else the PR's opening
  (a PR opened ready for review has no such event);
- *review time*: whole minutes from ready to merge (0 when ready came after the merge);
- *rounds*: the distinct head commits that humans other than the author reviewed (a push that
  answers a review starts a new round); 0 when nobody reviewed.

A group's figures are the median review time (the lower median) and the mean rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection

from bot.services.value.merged_prs import MergedPr, Whose, subject_prs


def review_minutes(pr: MergedPr) -> int:
    ready = pr.ready_at or pr.opened_at
    return max(0, int((pr.merged_at - ready).total_seconds() // 60))


@dataclass(frozen=True)
class ReviewGroup:
    prs: int = 0
    median_minutes: int | None = None
    mean_rounds: float | None = None
    people: frozenset[int] = frozenset()  # the authors: the group the figures come from


def review_group(prs: Sequence[MergedPr]) -> ReviewGroup:
    if not prs:
        return ReviewGroup()
    return ReviewGroup(
        prs=len(prs),
        median_minutes=statistics.median_low(review_minutes(p) for p in prs),
        mean_rounds=sum(p.review_rounds for p in prs) / len(prs),
        people=frozenset(p.person_id for p in prs if p.person_id is not None),
    )


@dataclass(frozen=True)
class ReviewLoad:
    ai: ReviewGroup = field(default_factory=ReviewGroup)
    other: ReviewGroup = field(default_factory=ReviewGroup)

    @property
    def groups(self) -> tuple[frozenset[int], ...]:
        return tuple(g.people for g in (self.ai, self.other) if g.prs)


def review_load(
    conn: Connection,
    whose: Whose,
    *,
    start: datetime,
    end: datetime,
    prs: Sequence[MergedPr] | None = None,
) -> ReviewLoad:
    """Review load of ``whose`` PRs merged in ``[start, end)`` (``prs``: those, already read)."""
    if prs is None:
        prs = subject_prs(conn, whose, start, end)
    return ReviewLoad(review_group([p for p in prs if p.ai]), review_group([p for p in prs if not p.ai]))
