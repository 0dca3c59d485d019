"""The connector protocol every vendor module implements.

A connector turns a vendor's admin API into ``Batch`` objects. A batch covers a *complete*
window of UTC days ``[window_start, window_end)``: the sync engine stores it in one transaction
and replaces whatever that source had stored for those days, so a re-fetch of a revised window
never double counts and a failure mid-window stores nothing partial.

Actors are namespaced strings (``openai_user:user-abc``, ``openai_key:key_1``, ``email:a@b.c``,
``github:octocat``). ``email:`` actors create people automatically; other namespaces are joined
to people through ``IdentityHint`` records or links an admin makes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar, Protocol, runtime_checkable

from bot.money import Money

#: Raw unit of a usage row whose dollars and tokens another source reports too (Anthropic usage
#: that Claude Code covers): it carries no dollars, and reports count its tokens once.
TOKENS_ONLY = "tokens_only"
BILLED = "billed"
ESTIMATED = "estimated"
UNPRICED = "unpriced"  # tokens whose model has no price: counted and shown, never a silent $0
USAGE = "usage"
SEAT = "seat"


class SourceError(Exception):
    """A source's run failed; the message names the endpoint and never contains a secret."""

    def __init__(self, source: str, endpoint: str, message: str) -> None:
        super().__init__(f"{source}: {endpoint}: {message}")
        self.source = source
        self.endpoint = endpoint


def email_actor(email: str) -> str:
    return f"email:{email.strip().lower()}"


@dataclass(slots=True)
class UsageRecord:
    day: date
    actor: str
    model: str = ""
    cost: Money = field(default_factory=Money.zero)
    cost_basis: str = BILLED
    kind: str = USAGE
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    requests: int = 0
    in_org_total: bool = True

    def key(self) -> tuple:
        return (self.day, self.actor, self.model, self.cost_basis, self.kind)

    def merge(self, other: UsageRecord) -> None:
        """Fold a second record with the same key into this one (vendors may split a day)."""
        self.cost = self.cost + other.cost
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.requests += other.requests


ACTIVITY_FIELDS = (
    "lines_suggested",
    "lines_accepted",
    "lines_added",
    "lines_removed",
    "suggestions_shown",
    "acceptances",
    "rejections",
    "commits",
    "pull_requests",
    "prs_opened",
    "prs_merged",
    "ai_prs_merged",
    "reviews",
    "sessions",
    "requests",
)


@dataclass(slots=True)
class ActivityRecord:
    day: date
    actor: str
    lines_suggested: int = 0
    lines_accepted: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    suggestions_shown: int = 0
    acceptances: int = 0
    rejections: int = 0
    commits: int = 0
    pull_requests: int = 0
    prs_opened: int = 0
    prs_merged: int = 0
    ai_prs_merged: int = 0
    reviews: int = 0
    sessions: int = 0
    requests: int = 0
    merge_minutes_median: int | None = None

    def key(self) -> tuple:
        return (self.day, self.actor)

    def merge(self, other: ActivityRecord) -> None:
        for name in ACTIVITY_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.merge_minutes_median is not None:
            self.merge_minutes_median = other.merge_minutes_median


@dataclass(frozen=True, slots=True)
class IdentityHint:
    """The vendor told us who an actor is (e.g. OpenAI user id -> email)."""

    actor: str
    email: str | None = None
    name: str = ""


@dataclass(slots=True)
class PullRequestRecord:
    """One merged pull request from a code host (delivery sources), stored in ``pull_request``.

    Its UTC merge day must fall inside the batch window; times are timezone-aware.
    """

    repo: str  # "owner/name"
    number: int
    actor: str  # who is credited (the author, or the human who assigned a coding agent)
    opened_at: datetime
    merged_at: datetime
    first_commit_at: datetime | None = None
    additions: int = 0
    deletions: int = 0
    ai_confidence: str = "none"  # high | none here; "low" is decided at query time
    ai_rule: str = ""

    @property
    def day(self) -> date:
        return self.merged_at.astimezone(UTC).date()


#: What a vendor total is compared with (``VendorTotal.what``): the source's billed rows only, or
#: its billed and estimated rows together (e.g. Cursor's on-demand spend vs its overall spend).
TOTAL_BILLED = "billed"
TOTAL_BILLED_AND_ESTIMATED = "billed_and_estimated"


@dataclass(frozen=True, slots=True)
class VendorTotal:
    """The vendor's own figure for the source's spend over UTC days ``[start, end)``.

    It is the same money as the usage rows, so it never enters a report: the sync engine stores it
    (one row per workspace, source, start, end and ``what``, replaced on re-sync) and
    ``bot.services.reconcile`` compares it with the stored rows of the same span. The span need
    not lie inside the batch's window (Cursor's cycle-to-date spend starts at the cycle start).
    """

    start: date
    end: date  # exclusive
    amount: Money
    what: str = TOTAL_BILLED


@dataclass(slots=True)
class Batch:
    window_start: date
    window_end: date  # exclusive
    usage: list[UsageRecord] = field(default_factory=list)
    activity: list[ActivityRecord] = field(default_factory=list)
    identities: list[IdentityHint] = field(default_factory=list)
    #: None: this source has no pull requests and the engine leaves ``pull_request`` alone. A list
    #: (even empty) replaces the source's pull requests merged in the window, like the other rows.
    pull_requests: list[PullRequestRecord] | None = None
    #: The vendor's own totals reported with this batch (reconciliation only, never summed).
    vendor_totals: list[VendorTotal] = field(default_factory=list)


@runtime_checkable
class Connector(Protocol):
    """One configured source instance (a vendor account)."""

    vendor: ClassVar[str]
    name: str
    #: How long the vendor takes to publish data (for /tokens status).
    lag: timedelta
    #: Days re-fetched before the watermark on every run, because vendors revise recent data.
    trailing_days: int
    #: The largest window one batch may cover (the vendor's own limit, or what keeps memory flat).
    max_window_days: int

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        """Yield complete batches covering ``[window_start, window_end)`` in order."""
        ...

    def close(self) -> None: ...


def split_window(start: date, end: date, max_days: int) -> Iterator[tuple[date, date]]:
    """Cut ``[start, end)`` into consecutive windows of at most ``max_days``."""
    cursor = start
    while cursor < end:
        stop = min(end, cursor + timedelta(days=max_days))
        yield cursor, stop
        cursor = stop


def fold(records: list) -> list:
    """Merge records that share a key, keeping first-seen order."""
    merged: dict[tuple, object] = {}
    for record in records:
        existing = merged.get(record.key())
        if existing is None:
            merged[record.key()] = record
        else:
            existing.merge(record)
    return list(merged.values())
