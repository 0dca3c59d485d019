"""The GitHub delivery source's response parsers (``bot.sources.github_delivery``): each reads one
documented REST shape into a slim frozen value. Schema drift: unknown fields are ignored, optional
ones may be missing; a shape that cannot be read raises ValueError (the client turns it into a
``SourceError`` naming the endpoint). See docs/sources/github_delivery.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.sources.values import count, utc_moment

BODY_LIMIT = 65_536  # PR body kept for detection (bounded: the cache holds it)
MESSAGE_LIMIT = 16_384  # per commit message
TITLE_LIMIT = 300  # pull_request.title


# -- parsing (schema drift: unknown fields ignored, optional ones may be missing) ---------------
@dataclass(frozen=True, slots=True)
class Account:
    login: str
    type: str = "User"


@dataclass(frozen=True, slots=True)
class Repo:
    full_name: str
    name: str
    default_branch: str | None
    pushed_at: datetime | None


@dataclass(frozen=True, slots=True)
class PullSummary:
    number: int
    author: Account | None  # None: a deleted ("ghost") account
    assignees: tuple[Account, ...]
    created_at: datetime
    updated_at: datetime
    merged_at: datetime | None


@dataclass(frozen=True, slots=True)
class PullDetail:
    additions: int
    deletions: int
    body: str
    labels: tuple[str, ...]
    title: str = ""
    merge_sha: str | None = None  # the merge, squash or rebase commit on the base branch
    base_sha: str | None = None
    head_sha: str | None = None
    commit_count: int = 0


@dataclass(frozen=True, slots=True)
class PullCommit:
    message: str
    authored_at: datetime | None


@dataclass(frozen=True, slots=True)
class Review:
    reviewer: Account | None
    state: str
    submitted_at: datetime | None
    commit_id: str | None = None  # the head commit the review was made on


@dataclass(frozen=True, slots=True)
class BranchCommit:
    author: Account | None  # None: the commit email is not linked to a GitHub account
    committed_at: datetime
    sha: str = ""
    message: str = ""
    repo: str = ""


def _required(value: Any, field: str) -> datetime:
    moment = utc_moment(value, field)
    if moment is None:
        raise ValueError(f"{field} is missing")
    return moment


def _account(value: Any) -> Account | None:
    if not isinstance(value, dict):
        return None
    login = value.get("login")
    if not isinstance(login, str) or not login.strip():
        return None
    kind = value.get("type")
    return Account(login.strip(), kind if isinstance(kind, str) else "User")


def _objects(body: Any, what: str) -> list[dict]:
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise ValueError(f"expected a JSON array of {what}")
    return body


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def parse_repos(body: Any) -> tuple[Repo, ...]:
    repos = []
    for item in _objects(body, "repositories"):
        full_name = item.get("full_name")
        if not isinstance(full_name, str) or "/" not in full_name:
            raise ValueError("a repository has no full_name")
        branch = item.get("default_branch")
        repos.append(
            Repo(
                full_name=full_name,
                name=str(item.get("name") or full_name.split("/", 1)[1]),
                default_branch=branch if isinstance(branch, str) and branch else None,
                pushed_at=utc_moment(item.get("pushed_at"), "pushed_at"),
            )
        )
    return tuple(repos)


def parse_pulls(body: Any) -> tuple[PullSummary, ...]:
    pulls = []
    for item in _objects(body, "pull requests"):
        number = item.get("number")
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError("a pull request has no number")
        assignees = item.get("assignees") or []
        if not isinstance(assignees, list):
            raise ValueError(f"#{number}: assignees is not a list")
        pulls.append(
            PullSummary(
                number=number,
                author=_account(item.get("user")),
                assignees=tuple(a for a in map(_account, assignees) if a is not None),
                created_at=_required(item.get("created_at"), f"#{number} created_at"),
                updated_at=_required(item.get("updated_at"), f"#{number} updated_at"),
                merged_at=utc_moment(item.get("merged_at"), f"#{number} merged_at"),
            )
        )
    return tuple(pulls)


def _sha(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value.strip() else None


def _ref_sha(value: Any) -> str | None:
    return _sha(value.get("sha")) if isinstance(value, dict) else None


def parse_pull(body: Any) -> PullDetail:
    if not isinstance(body, dict):
        raise ValueError("expected a pull request object")
    labels = body.get("labels") or []
    if not isinstance(labels, list):
        raise ValueError("labels is not a list")
    return PullDetail(
        title=_text(body.get("title"), TITLE_LIMIT),
        merge_sha=_sha(body.get("merge_commit_sha")),
        base_sha=_ref_sha(body.get("base")),
        head_sha=_ref_sha(body.get("head")),
        commit_count=count(body.get("commits"), "commits", negative=False),
        additions=count(body.get("additions"), "additions", negative=False),
        deletions=count(body.get("deletions"), "deletions", negative=False),
        body=_text(body.get("body"), BODY_LIMIT),
        labels=tuple(
            label["name"]
            for label in labels
            if isinstance(label, dict) and isinstance(label.get("name"), str)
        ),
    )


def parse_pull_commits(body: Any) -> tuple[PullCommit, ...]:
    commits = []
    for item in _objects(body, "commits"):
        commit = item.get("commit")
        if not isinstance(commit, dict):
            raise ValueError("a commit has no commit object")
        author = commit.get("author") if isinstance(commit.get("author"), dict) else {}
        commits.append(
            PullCommit(
                message=_text(commit.get("message"), MESSAGE_LIMIT),
                authored_at=utc_moment(author.get("date"), "commit.author.date"),
            )
        )
    return tuple(commits)


def parse_compare(body: Any) -> tuple[PullCommit, ...]:
    """A "compare two commits" object: its ``commits`` page, read like the PR commits listing."""
    if not isinstance(body, dict):
        raise ValueError("expected a comparison object")
    return parse_pull_commits(body.get("commits") or [])


def parse_files(body: Any) -> tuple[str, ...]:
    """The paths a PR changed; a rename counts for its old path too."""
    paths: list[str] = []
    for item in _objects(body, "files"):
        for key in ("filename", "previous_filename"):
            if isinstance(item.get(key), str) and item[key]:
                paths.append(item[key])
    return tuple(paths)


def parse_ready_times(body: Any) -> tuple[datetime, ...]:
    """When the timeline says the PR was marked ready for review (other events are ignored)."""
    return tuple(
        moment
        for item in _objects(body, "timeline events")
        if item.get("event") == "ready_for_review"
        and (moment := utc_moment(item.get("created_at"), "created_at")) is not None
    )


def parse_reviews(body: Any) -> tuple[Review, ...]:
    return tuple(
        Review(
            reviewer=_account(item.get("user")),
            state=str(item.get("state") or "").upper(),
            submitted_at=utc_moment(item.get("submitted_at"), "submitted_at"),
            commit_id=_sha(item.get("commit_id")),
        )
        for item in _objects(body, "reviews")
    )


def parse_branch_commits(body: Any) -> tuple[BranchCommit, ...]:
    commits = []
    for item in _objects(body, "commits"):
        commit = item.get("commit")
        if not isinstance(commit, dict):
            raise ValueError("a commit has no commit object")
        committer = commit.get("committer") if isinstance(commit.get("committer"), dict) else {}
        author = commit.get("author") if isinstance(commit.get("author"), dict) else {}
        when = utc_moment(committer.get("date"), "commit.committer.date") or utc_moment(
            author.get("date"), "commit.author.date"
        )
        if when is None:
            raise ValueError(f"commit {item.get('sha')!r} has no date")
        commits.append(
            BranchCommit(
                author=_account(item.get("author")),
                committed_at=when,
                sha=_sha(item.get("sha")) or "",
                message=_text(commit.get("message"), MESSAGE_LIMIT),
            )
        )
    return tuple(commits)
