"""GitHub delivery: the value the AI vendors do not grade themselves. Per person per UTC day:
pull requests opened and merged (and how many of those were AI-assisted), commits on default
branches, reviews given, lines changed and the median time from first commit to merge; plus one
``pull_request`` row per merged PR with its AI-assisted mark. See docs/sources/github_delivery.md.

REST endpoints, asked through the shared GitHub client (``bot.sources.github_api``):

- ``GET /orgs/{org}/repos`` (all pages), filtered by GITHUB_DELIVERY_REPOS_ALLOW / _DENY;
- ``GET /repos/{repo}/pulls?state=all&sort=updated&direction=desc``: pages are followed through
  the ``Link`` header only until a pull request was last updated before the window;
- ``GET /repos/{repo}/commits?sha=<default branch>&since=&until=`` (skipped when nothing was
  pushed to the repo since the window started; 409 is an empty repository);
- per merged PR ``GET /repos/{repo}/pulls/{n}`` (lines, labels, body, title, shas), ``.../commits``
  (first commit, trailers; past the 250 that endpoint lists, ``GET /repos/{repo}/compare/
  {base}...{head}`` page by page), ``.../files`` (paths, for follow-up fixes) and
  ``GET /repos/{repo}/issues/{n}/timeline`` (when it was marked ready for review); per PR touched
  in the window ``.../reviews`` (reviews given, and review rounds: distinct reviewed commits).

Every GET is conditional: the parsed (slimmed) body of each URL is kept with its ETag in a
bounded in-process cache (``SHARED_CACHE``), and a ``304 Not Modified`` (which GitHub does not
count against the rate limit) reuses it. A 403/429 with ``Retry-After``, a "secondary rate limit"
403 and an exhausted primary limit that resets within TOKENWISE_HTTP_MAX_BACKOFF are waited out
and retried (VendorHttp itself retries 429/5xx only). The search API is not used.

Bots (dependabot, renovate, any ``[bot]`` or type Bot account) are left out; coding agents are
not: a PR opened by an agent (Copilot, devin-ai-integration[bot], ...) is credited to its first
human assignee, else to the agent account. Actors are ``github:<login lower-case>``, shared with
the github_copilot source; GitHub gives no email, so people are linked by login
(``/tokens link github <login>``).
"""

from __future__ import annotations

import fnmatch
import logging
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from bot.domain.ai_rules import HIGH, PullRequestFacts, agent_tool, detect, is_excluded, session_ids
from bot.domain.records import ActivityRecord, Batch, IdentityHint, PullRequestRecord
from bot.domain.survival_rules import is_fix, joined_refs, names_commit, revert_refs
from bot.settings import Settings, VendorAccount
from bot.sources.base import SourceError, split_window
from bot.sources.github_api import EtagCache, GitHubApi, actor_of
from bot.sources.github_delivery_parse import (
    Account,
    BranchCommit,
    PullCommit,
    PullDetail,
    PullSummary,
    Repo,
    Review,
    parse_branch_commits,
    parse_compare,
    parse_files,
    parse_pull,
    parse_pull_commits,
    parse_pulls,
    parse_ready_times,
    parse_repos,
    parse_reviews,
)

log = logging.getLogger(__name__)

VENDOR = "github_delivery"
FILES_LIMIT = 300  # paths kept per PR for the follow-up-fix overlap (docs/value.md)
PR_COMMITS_LIMIT = 250  # GitHub: "Lists a maximum of 250 commits for a pull request"
REVIEW_STATES = frozenset({"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"})
HINTS = {
    401: "the token was rejected (check GITHUB_DELIVERY_TOKEN, or GITHUB_COPILOT_TOKEN if unset)",
    403: (
        "the token lacks access (fine-grained: 'Pull requests: read', 'Contents: read', "
        "'Metadata: read' on the org's repositories; classic: repo + read:org)"
    ),
    404: "check GITHUB_DELIVERY_ORG and that the token can see this repository",
}


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SHARED_CACHE = EtagCache()  # the ETag cache of every delivery connector of this process


def _patterns(text: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in (text or "").split(",") if part.strip())


def review_rounds(pr: PullSummary, reviews: list[Review]) -> int:
    """Rounds of review: the distinct head commits humans other than the author submitted a review
    on (each push answering a review starts a new round); 0 when nobody reviewed."""
    author = pr.author.login.lower() if pr.author else ""
    return len(
        {
            r.commit_id or "?"
            for r in reviews
            if r.reviewer is not None
            and r.state in REVIEW_STATES
            and r.reviewer.login.lower() != author
            and not is_excluded(r.reviewer.login, r.reviewer.type)
        }
    )


def credited_author(pr: PullSummary) -> Account | None:
    """Who a PR counts for: its author; for a coding agent, its first human assignee (else the
    agent); None for bots and deleted accounts."""
    author = pr.author
    if author is None:
        return None
    if agent_tool(author.login):
        human = next(
            (a for a in pr.assignees if not agent_tool(a.login) and not is_excluded(a.login, a.type)), None
        )
        return human or author
    return None if is_excluded(author.login, author.type) else author


class GitHubDeliveryConnector:
    vendor: ClassVar[str] = VENDOR

    def __init__(
        self,
        account: VendorAccount,
        settings: Settings,
        *,
        cache: EtagCache | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """One GitHub organisation's delivery source; its repository filters are the settings'
        GITHUB_DELIVERY_REPOS_ALLOW and GITHUB_DELIVERY_REPOS_DENY."""
        name, token, base_url = account.name, account.key, account.base_url
        self.name = name
        self.org = (account.org or "").strip() or None
        self.lag = timedelta(0)  # GitHub's API is live
        self.trailing_days = 14  # PRs merge, get labelled and reviewed late
        self.max_window_days = 7
        self.allow = _patterns(settings.github_delivery_repos_allow)
        self.deny = _patterns(settings.github_delivery_repos_deny)
        self.api = GitHubApi(
            source=name,
            token=token,
            base_url=base_url,
            settings=settings,
            hints=HINTS,
            cache=SHARED_CACHE if cache is None else cache,
            wait_rate_limits=True,
            transport=transport,
            sleep=sleep,
        )
        self.http = self.api.http

    def close(self) -> None:
        self.api.close()

    # -- endpoints -----------------------------------------------------------------------
    def _repo_path(self, repo: Repo, suffix: str = "") -> str:
        owner, name = repo.full_name.split("/", 1)
        return f"repos/{quote(owner, safe='')}/{quote(name, safe='')}" + (f"/{suffix}" if suffix else "")

    def _wanted(self, repo: Repo) -> bool:
        names = (repo.name.lower(), repo.full_name.lower())
        if any(fnmatch.fnmatchcase(n, p) for n in names for p in self.deny):
            return False
        return not self.allow or any(fnmatch.fnmatchcase(n, p) for n in names for p in self.allow)

    def repos(self) -> list[Repo]:
        if not self.org:
            raise SourceError(
                self.name,
                "settings",
                "no GitHub organisation: set GITHUB_DELIVERY_ORG (or `org` in the [[accounts]] entry)",
            )
        endpoint = f"orgs/{quote(self.org, safe='')}/repos"
        found: list[Repo] = []
        for page in self.api.pages(endpoint, {"type": "all", "per_page": 100}, endpoint, parse=parse_repos):
            found.extend(repo for repo in page if self._wanted(repo))
        return found

    def pulls_since(self, repo: Repo, since: datetime) -> list[PullSummary]:
        """Pull requests updated at or after ``since``, newest first; older pages are never asked for."""
        endpoint = self._repo_path(repo, "pulls")
        params = {"state": "all", "sort": "updated", "direction": "desc", "per_page": 100}
        found: list[PullSummary] = []
        for page in self.api.pages(endpoint, params, endpoint, parse=parse_pulls):
            found.extend(pr for pr in page if pr.updated_at >= since)
            if any(pr.updated_at < since for pr in page):
                break
        return found

    def branch_commits(self, repo: Repo, start: datetime, end: datetime) -> list[BranchCommit]:
        """Commits on the default branch with a committer date in ``[start, end)``."""
        if not repo.default_branch or repo.pushed_at is None or repo.pushed_at < start:
            return []  # nothing was pushed since the window began
        endpoint = self._repo_path(repo, "commits")
        params = {
            "sha": repo.default_branch,
            "since": _iso(start),
            "until": _iso(end),
            "per_page": 100,
        }
        found: list[BranchCommit] = []
        for page in self.api.pages(endpoint, params, endpoint, parse=parse_branch_commits, empty=(409,)):
            found.extend(replace(c, repo=repo.full_name) for c in page if start <= c.committed_at < end)
        return found

    def pull_detail(self, repo: Repo, number: int) -> PullDetail:
        endpoint = self._repo_path(repo, f"pulls/{number}")
        page = self.api.get(endpoint, None, endpoint, parse=parse_pull)
        assert page is not None
        return page.body

    def _listing(self, repo: Repo, suffix: str, parse: Callable[[Any], tuple]) -> list:
        endpoint = self._repo_path(repo, suffix)
        return [
            item
            for page in self.api.pages(endpoint, {"per_page": 100}, endpoint, parse=parse)
            for item in page
        ]

    def pull_commits(self, repo: Repo, number: int, detail: PullDetail | None = None) -> list[PullCommit]:
        """Every commit of the PR. The PR commits endpoint stops at 250; past that GitHub points to
        the commit listing, and the comparison of the PR's base and head pages through them all."""
        if detail and detail.commit_count > PR_COMMITS_LIMIT and detail.base_sha and detail.head_sha:
            return self._listing(repo, f"compare/{detail.base_sha}...{detail.head_sha}", parse_compare)
        return self._listing(repo, f"pulls/{number}/commits", parse_pull_commits)

    def pull_files(self, repo: Repo, number: int) -> list[str]:
        return self._listing(repo, f"pulls/{number}/files", parse_files)

    def ready_times(self, repo: Repo, number: int) -> list[datetime]:
        return self._listing(repo, f"issues/{number}/timeline", parse_ready_times)

    def reviews(self, repo: Repo, number: int) -> list[Review]:
        return self._listing(repo, f"pulls/{number}/reviews", parse_reviews)

    # -- fetch ---------------------------------------------------------------------------
    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        start, end = _midnight(window_start), _midnight(window_end)
        repos = self.repos()
        # One listing pass for the whole window (it is sorted by update time, newest first);
        # the batches below cut it into windows and fetch per-PR details only as needed.
        listed = [(repo, self.pulls_since(repo, start)) for repo in repos]
        commits = [commit for repo in repos for commit in self.branch_commits(repo, start, end)]
        reviews: dict[tuple[str, int], list[Review]] = {}
        log.info(
            "%s: %d repositories, %d pull requests updated since %s",
            self.name,
            len(repos),
            sum(len(pulls) for _, pulls in listed),
            window_start,
        )
        for batch_start, batch_end in split_window(window_start, window_end, self.max_window_days):
            yield self._batch(batch_start, batch_end, listed, commits, reviews)

    def _batch(
        self,
        batch_start: date,
        batch_end: date,
        listed: list[tuple[Repo, list[PullSummary]]],
        commits: list[BranchCommit],
        reviews: dict[tuple[str, int], list[Review]],
    ) -> Batch:
        low, high = _midnight(batch_start), _midnight(batch_end)
        records: dict[tuple[date, str], ActivityRecord] = {}
        minutes: dict[tuple[date, str], list[int]] = {}
        names: dict[str, str] = {}  # actor -> login as GitHub spells it

        def record(moment: datetime, login: str) -> ActivityRecord:
            actor = actor_of(login)
            names.setdefault(actor, login)
            key = (moment.date(), actor)
            if key not in records:
                records[key] = ActivityRecord(day=key[0], actor=actor)
            return records[key]

        pulls: list[PullRequestRecord] = []
        for repo, summaries in listed:
            for pr in summaries:
                if pr.created_at < high and pr.updated_at >= low:
                    key = (repo.full_name, pr.number)
                    if key not in reviews:
                        reviews[key] = self.reviews(repo, pr.number)
                    for moment, login in self._reviews_given(pr, reviews[key], low, high):
                        record(moment, login).reviews += 1
                credited = credited_author(pr)
                if credited is None:
                    continue
                if low <= pr.created_at < high:
                    record(pr.created_at, credited.login).prs_opened += 1
                if pr.merged_at is not None and low <= pr.merged_at < high:
                    merged = self._merged(
                        repo, pr, credited, reviews.get((repo.full_name, pr.number), []), commits
                    )
                    pulls.append(merged)
                    stats = record(pr.merged_at, credited.login)
                    stats.prs_merged += 1
                    stats.ai_prs_merged += merged.ai_confidence == HIGH
                    stats.lines_added += merged.additions
                    stats.lines_removed += merged.deletions
                    started = merged.first_commit_at or merged.opened_at
                    elapsed = max(0, int((merged.merged_at - started).total_seconds() // 60))
                    minutes.setdefault(stats.key(), []).append(elapsed)
        for commit in commits:
            author = commit.author
            if author is None or is_excluded(author.login, author.type):
                continue
            if low <= commit.committed_at < high:
                record(commit.committed_at, author.login).commits += 1
        for key, values in minutes.items():
            records[key].merge_minutes_median = int(statistics.median(values))  # whole minutes, down
        return Batch(
            batch_start,
            batch_end,
            activity=list(records.values()),
            identities=[IdentityHint(actor, None, login) for actor, login in names.items()],
            pull_requests=pulls,
        )

    @staticmethod
    def _reviews_given(
        pr: PullSummary, reviews: list[Review], low: datetime, high: datetime
    ) -> list[tuple[datetime, str]]:
        """One review per reviewer per PR per UTC day: replies in a thread are not extra reviews,
        and an author answering their own review is not reviewing."""
        author = pr.author.login.lower() if pr.author else ""
        given: dict[tuple[date, str], tuple[datetime, str]] = {}
        for review in reviews:
            reviewer, when = review.reviewer, review.submitted_at
            if reviewer is None or when is None or review.state not in REVIEW_STATES:
                continue
            if not (low <= when < high) or reviewer.login.lower() == author:
                continue
            if is_excluded(reviewer.login, reviewer.type):
                continue
            given.setdefault((when.date(), reviewer.login.lower()), (when, reviewer.login))
        return list(given.values())

    def _merged(
        self,
        repo: Repo,
        pr: PullSummary,
        credited: Account,
        reviews: list[Review],
        branch: list[BranchCommit],
    ) -> PullRequestRecord:
        assert pr.merged_at is not None and pr.author is not None
        detail = self.pull_detail(repo, pr.number)
        commits = self.pull_commits(repo, pr.number, detail)
        messages = tuple(c.message for c in commits)
        ready = [t for t in self.ready_times(repo, pr.number) if t <= pr.merged_at]
        detection = detect(
            PullRequestFacts(
                author_login=pr.author.login,
                author_type=pr.author.type,
                labels=detail.labels,
                body=detail.body,
                commit_messages=messages,
            )
        )
        # A revert pushed straight to the base branch names the merge (or squash) commit.
        reverted_by = next(
            (
                f"commit:{c.sha[:12]}"
                for c in branch
                if c.repo == repo.full_name
                and any(
                    names_commit(ref, detail.merge_sha) for ref in revert_refs(repo.full_name, (c.message,))
                )
            ),
            "",
        )
        return PullRequestRecord(
            repo=repo.full_name,
            number=pr.number,
            actor=actor_of(credited.login),
            opened_at=pr.created_at,
            merged_at=pr.merged_at,
            first_commit_at=min((c.authored_at for c in commits if c.authored_at), default=None),
            additions=detail.additions,
            deletions=detail.deletions,
            ai_confidence=detection.confidence,
            ai_rule=detection.rule,
            title=detail.title,
            merge_sha=detail.merge_sha or "",
            ready_at=max(ready, default=pr.created_at),
            review_rounds=review_rounds(pr, reviews),
            is_fix=is_fix(detail.title, detail.labels),
            reverts=joined_refs(revert_refs(repo.full_name, (detail.body, *messages))),
            reverted_by=reverted_by,
            files=tuple(self.pull_files(repo, pr.number)[:FILES_LIMIT]),
            session_ids=session_ids((detail.body, *messages)),
        )


def from_settings(settings: Settings) -> list[GitHubDeliveryConnector]:
    accounts = settings.vendor_accounts(
        VENDOR,
        key=settings.github_delivery_token or settings.github_copilot_token,
        base_url=settings.github_api_base_url,
        org=settings.github_delivery_org or settings.github_copilot_org,
    )
    return [GitHubDeliveryConnector(account, settings) for account in accounts]
