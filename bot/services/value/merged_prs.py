"""The merged pull requests the value measures read (survival, review load): one typed row per
PR from ``pull_request``, for a set of people or a team, by UTC merge time. No rules here."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from bot.db.models import PullRequest, TeamMembership
from bot.domain.ai_rules import HIGH


@dataclass(frozen=True, slots=True)
class MergedPr:
    repo: str
    number: int
    person_id: int | None
    opened_at: datetime
    merged_at: datetime
    ready_at: datetime | None
    review_rounds: int
    ai: bool  # a high-confidence AI-assisted mark (docs/value.md: why not the low one)
    is_fix: bool
    reverts: tuple[str, ...]
    reverted_by: str
    merge_sha: str
    files: frozenset[str]

    @property
    def key(self) -> tuple[str, int]:
        return self.repo, self.number


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored as UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _row(row) -> MergedPr:
    return MergedPr(
        repo=row.repo,
        number=int(row.number),
        person_id=row.person_id,
        opened_at=utc(row.opened_at),
        merged_at=utc(row.merged_at),
        ready_at=utc(row.ready_at) if row.ready_at else None,
        review_rounds=int(row.review_rounds or 0),
        ai=row.ai_confidence == HIGH,
        is_fix=bool(row.is_fix),
        reverts=tuple((row.reverts or "").split()),
        reverted_by=row.reverted_by or "",
        merge_sha=row.merge_sha or "",
        files=frozenset(path for path in (row.files or "").split("\n") if path),
    )


def merged_between(
    conn: Connection,
    workspace_id: str,
    start: datetime,
    end: datetime,
    *,
    person_ids: Collection[int] | None = None,
    repos: Collection[str] | None = None,
) -> list[MergedPr]:
    """PRs merged in ``[start, end)``, of ``person_ids`` (None: anyone's) in ``repos`` (None: any)."""
    query = select(PullRequest).where(
        PullRequest.workspace_id == workspace_id, PullRequest.merged_at >= start, PullRequest.merged_at < end
    )
    if person_ids is not None:
        query = query.where(PullRequest.person_id.in_(sorted(person_ids)))
    if repos is not None:
        query = query.where(PullRequest.repo.in_(sorted(repos)))
    rows = conn.execute(query.order_by(PullRequest.merged_at, PullRequest.repo, PullRequest.number))
    return [_row(row) for row in rows]


def on_team_at_merge(conn: Connection, team_id: int, prs: Iterable[MergedPr]) -> list[MergedPr]:
    """The PRs whose author was on the team on the UTC merge day (``reports.on_team``'s rule)."""
    stretches: dict[int, list[tuple[date, date | None]]] = {}
    for person_id, joined, left in conn.execute(
        select(TeamMembership.person_id, TeamMembership.joined_on, TeamMembership.left_on).where(
            TeamMembership.team_id == team_id
        )
    ):
        stretches.setdefault(int(person_id), []).append((joined, left))
    return [
        pr
        for pr in prs
        if pr.person_id is not None
        and any(
            joined <= pr.merged_at.date() and (left is None or pr.merged_at.date() < left)
            for joined, left in stretches.get(pr.person_id, ())
        )
    ]


@dataclass(frozen=True)
class Whose:
    """Whose PRs a measure is about: ``person_ids``, or the team's members on each merge day;
    neither: the whole workspace's."""

    workspace_id: str
    person_ids: Collection[int] | None = None
    team_id: int | None = None


def subject_prs(conn: Connection, whose: Whose, start: datetime, end: datetime) -> list[MergedPr]:
    """``whose`` PRs merged in ``[start, end)``."""
    prs = merged_between(conn, whose.workspace_id, start, end, person_ids=whose.person_ids)
    return prs if whose.team_id is None else on_team_at_merge(conn, whose.team_id, prs)
