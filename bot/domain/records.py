"""The records every layer speaks: usage, activity, identity hints, pull requests, vendor totals.

A ``Batch`` covers a *complete* window of UTC days ``[window_start, window_end)``: the sync engine
stores it in one transaction and replaces whatever that source had stored for those days, so a
re-fetch of a revised window never double counts and a failure mid-window stores nothing partial.
A batch that cannot see everything it once stored (a seat list holds today's seats only) says which
usage kinds it is complete for (``Batch.complete_kinds``); the engine keeps the source's other rows.

Actors are namespaced strings (``openai_user:user-abc``, ``openai_key:key_1``, ``email:a@b.c``,
``github:octocat``). ``email:`` actors create people automatically; other namespaces are joined
to people through ``IdentityHint`` records or links an admin makes.

A batch a part of which failed to fetch (OpenAI's costs beside its usage) is complete only for
the kinds it holds and ``incomplete``: it is stored, the watermark stays, the connector then
raises the part's error, and the next run fetches the window again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime

from bot.domain.money import Money

#: Raw unit of a usage row whose dollars and tokens another source reports too (Anthropic usage
#: that Claude Code covers): it carries no dollars, and reports count its tokens once.
TOKENS_ONLY = "tokens_only"
BILLED = "billed"
ESTIMATED = "estimated"
UNPRICED = "unpriced"  # tokens whose model has no price: counted and shown, never a silent $0
USAGE = "usage"
SEAT = "seat"
#: Dollars a vendor reports apart from its tokens (OpenAI's Costs API beside its Usage API): their
#: own kind, so a batch can be complete for the tokens and not the dollars (``complete_kinds``),
#: and one endpoint failing never overwrites or deletes what the other stored. Views treat every
#: kind but ``SEAT`` as usage.
COST = "cost"
#: ``IdentityHint.origin`` of a person guessed from a key's name (an email typed as the name),
#: the last resort after what the vendor states (a key's owner or creator).
NAME_GUESS = "name_guess"


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
    #: Every prompt-cache write, whatever its lifetime; ``cache_write_1h_tokens`` is the part of it
    #: written for one hour (Anthropic prices those at 2x input, 5-minute writes at 1.25x).
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
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
        self.cache_write_1h_tokens += other.cache_write_1h_tokens
        self.requests += other.requests


@dataclass(slots=True, kw_only=True)
class ActivityCounts:
    """What AI tools and the code host report people did: one count a signal, each summed."""

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
    #: Time a person actively used the tool (Claude Code's ``active_time.total``), in seconds.
    active_seconds: int = 0


ACTIVITY_FIELDS = tuple(f.name for f in fields(ActivityCounts))
#: A usage record's counts (tokens and requests), summed as they are wherever usage is stored.
USAGE_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "requests",
)


@dataclass(slots=True)
class ActivityRecord(ActivityCounts):
    day: date
    actor: str
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
    #: ``identity.origin`` of the link it makes: ``auto`` when the vendor states who the actor is,
    #: ``NAME_GUESS`` when the email was only read from a key's name.
    origin: str = "auto"


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
    # Survival and review load (docs/value.md)
    title: str = ""
    merge_sha: str = ""
    ready_at: datetime | None = None  # last marked ready for review before the merge, else opened_at
    review_rounds: int = 0
    is_fix: bool = False
    reverts: str = ""  # refs this PR says it reverts: "#12 sha:abc1234" (bot.domain.survival_rules)
    reverted_by: str = ""  # "commit:<sha>" when a revert was pushed straight to the base branch
    files: tuple[str, ...] = ()
    session_ids: tuple[str, ...] = ()  # agent sessions its trailers name (bot.domain.ai_rules)

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
    #: True when a part of the window failed to fetch (the batch holds the kinds that succeeded,
    #: ``complete_kinds`` says which): it is stored, but the watermark does not move, so the next
    #: run fetches the window again. The connector raises the part's error after yielding it.
    incomplete: bool = False
    #: None: this source has no pull requests and the engine leaves ``pull_request`` alone. A list
    #: (even empty) replaces the source's pull requests merged in the window, like the other rows.
    pull_requests: list[PullRequestRecord] | None = None
    #: The usage kinds (``USAGE``, ``SEAT``) this batch is complete for; None: every kind. For these
    #: the engine deletes the source's rows in the window that the run did not write. For any other
    #: kind it replaces only the (day, actor) slices the batch wrote a row of that kind for, and
    #: keeps the rest: a seat observed on an earlier day stays when today's seat list no longer
    #: has it. Activity rows and pull requests are always replaced.
    complete_kinds: frozenset[str] | None = None
    #: The vendor's own totals reported with this batch (reconciliation only, never summed).
    vendor_totals: list[VendorTotal] = field(default_factory=list)


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
