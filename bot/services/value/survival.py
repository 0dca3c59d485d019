"""Survival: did an AI-assisted PR last, compared with the others? (docs/value.md, "Survival")

A merged PR is, in this order:

- **reverted**: a later PR says it reverts it (GitHub's "Revert" button: "Reverts owner/repo#123"
  in the body; ``git revert``: "This reverts commit <merge sha>" in the body or a commit), at any
  time after the merge, or a revert commit pushed straight to the base branch names its merge
  commit (``pull_request.reverted_by``, seen by the sync while the PR is in its trailing days);
- **fixed**: within ``window_days`` of its merge, a fix PR (``survival_rules.is_fix``) merged in
  the same repository changed at least one of its files;
- **pending**: neither yet, and the window is still open: not counted either way;
- **survived**: neither, and the window has closed.

The surviving share is survived / (survived + reverted + fixed), AI-assisted (a high-confidence
mark) and other PRs apart. Verdicts are derived from the stored facts at each read, so a re-sync
that rewrites a PR never counts it twice.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from bot.domain.survival_rules import MIN_SHA, names_commit
from bot.services.value.merged_prs import MergedPr, Whose, merged_between, subject_prs

SURVIVED = "survived"
REVERTED = "reverted"
FIXED = "fixed"
PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    by: str = ""  # "#123" (the reverting or fixing PR) or "commit:<sha>"


def reverts(later: MergedPr, pr: MergedPr) -> bool:
    """Does ``later`` say it reverts ``pr``?"""
    if later.key == pr.key:
        return False
    same_repo = later.repo.lower() == pr.repo.lower()
    for ref in later.reverts:
        if ref == f"#{pr.number}" and same_repo:
            return True
        if ref == f"{pr.repo.lower()}#{pr.number}":
            return True
        if same_repo and names_commit(ref, pr.merge_sha):
            return True
    return False


class Followers:
    """The PRs merged after the ones judged, indexed so that a verdict reads only its candidates
    (an org's month is thousands of PRs): revert PRs by what they name, fix PRs per repository in
    merge order."""

    def __init__(self, later: Iterable[MergedPr]) -> None:
        self.by_ref: dict[tuple[str, str], list[MergedPr]] = {}
        self.fixes: dict[str, list[MergedPr]] = {}
        for other in later:
            for ref in other.reverts:
                self.by_ref.setdefault(self._ref_key(other.repo, ref), []).append(other)
            if other.is_fix:
                self.fixes.setdefault(other.repo, []).append(other)
        for fixes in self.fixes.values():
            fixes.sort(key=lambda o: o.merged_at)

    @staticmethod
    def _ref_key(repo: str, ref: str) -> tuple[str, str]:
        """(repository, "#n" or the sha's first 7 digits) of what a ref names."""
        if ref.startswith("sha:"):
            return repo.lower(), ref[: 4 + MIN_SHA]
        named_repo, _, number = ref.rpartition("#")
        return (named_repo or repo).lower(), f"#{number}"

    def revert_of(self, pr: MergedPr) -> MergedPr | None:
        keys = [(pr.repo.lower(), f"#{pr.number}")]
        if pr.merge_sha:
            keys.append((pr.repo.lower(), f"sha:{pr.merge_sha[:MIN_SHA]}"))
        found = [
            o
            for key in keys
            for o in self.by_ref.get(key, ())
            if o.merged_at >= pr.merged_at and reverts(o, pr)
        ]
        return min(found, key=lambda o: (o.merged_at, o.repo, o.number), default=None)

    def fix_of(self, pr: MergedPr, deadline: datetime) -> MergedPr | None:
        fixes = self.fixes.get(pr.repo, [])
        for other in fixes[bisect_left(fixes, pr.merged_at, key=lambda o: o.merged_at) :]:
            if other.merged_at > deadline:
                break
            if other.key != pr.key and other.files & pr.files:
                return other
        return None


def verdict(pr: MergedPr, later: Followers, window_days: int, now: datetime) -> Verdict:
    """``pr``'s verdict against the PRs merged after it (any author, any repository)."""
    revert = later.revert_of(pr)
    if revert is not None:
        return Verdict(REVERTED, f"#{revert.number}")
    if pr.reverted_by:
        return Verdict(REVERTED, pr.reverted_by)
    deadline = pr.merged_at + timedelta(days=window_days)
    fix = later.fix_of(pr, deadline)
    if fix is not None:
        return Verdict(FIXED, f"#{fix.number}")
    return Verdict(PENDING) if now < deadline else Verdict(SURVIVED)


@dataclass(frozen=True)
class Share:
    survived: int = 0
    reverted: int = 0
    fixed: int = 0
    pending: int = 0
    people: frozenset[int] = frozenset()  # the authors of the decided PRs: the share's group

    @property
    def decided(self) -> int:
        return self.survived + self.reverted + self.fixed

    @property
    def share(self) -> float | None:
        return self.survived / self.decided if self.decided else None


@dataclass(frozen=True)
class SurvivalShares:
    window_days: int
    ai: Share = field(default_factory=Share)
    other: Share = field(default_factory=Share)
    verdicts: dict[tuple[str, int], Verdict] = field(default_factory=dict)

    @property
    def groups(self) -> tuple[frozenset[int], ...]:
        return tuple(s.people for s in (self.ai, self.other) if s.decided)


def tally(prs: Sequence[MergedPr], verdicts: dict[tuple[str, int], Verdict]) -> Share:
    counts = {SURVIVED: 0, REVERTED: 0, FIXED: 0, PENDING: 0}
    for pr in prs:
        counts[verdicts[pr.key].status] += 1
    people = frozenset(
        pr.person_id for pr in prs if pr.person_id is not None and verdicts[pr.key].status != PENDING
    )
    return Share(counts[SURVIVED], counts[REVERTED], counts[FIXED], counts[PENDING], people)


def survival_shares(
    conn: Connection,
    whose: Whose,
    *,
    start: datetime,
    end: datetime,
    window_days: int,
    now: datetime,
    prs: Sequence[MergedPr] | None = None,
) -> SurvivalShares:
    """The verdicts of ``whose`` PRs merged in ``[start, end)`` (``prs``: those, already read)
    and the two surviving shares."""
    if prs is None:
        prs = subject_prs(conn, whose, start, end)
    if not prs:
        return SurvivalShares(window_days)
    # Reverts and fixes by anyone, up to now (a revert counts whenever it comes).
    later = merged_between(
        conn, whose.workspace_id, min(p.merged_at for p in prs), max(now, end) + timedelta(seconds=1)
    )
    followers = Followers(later)
    verdicts = {pr.key: verdict(pr, followers, window_days, now) for pr in prs}
    return SurvivalShares(
        window_days,
        ai=tally([p for p in prs if p.ai], verdicts),
        other=tally([p for p in prs if not p.ai], verdicts),
        verdicts=verdicts,
    )
