"""The data model. Every table carries ``workspace_id`` so one database can serve several
Slack workspaces; single-workspace installs use ``Settings.workspace_id``.

Money is integer micro-USD (``*_micros``), never float. The vendor's own amount and unit are
kept beside it (``raw_amount`` / ``raw_unit``) so every figure can be traced back.
Times are UTC (``DateTime(timezone=True)``); usage days are UTC calendar days, as vendors bucket them.

One concern, kept in one module on purpose though it is long: the schema. Every table is here, in
the order the migrations added them (new ones are appended), so Alembic and a reader see the whole
database in one place; queries and rules live in ``bot/services`` and ``bot/db/store.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from bot.domain.clock import utcnow
from bot.domain.records import ACTIVITY_FIELDS


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes even for timezone-aware columns; they are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _ts(**kw) -> Column:
    return Column(DateTime(timezone=True), **kw)


# Budget alert thresholds: whole percents of the ceiling. The user-facing grammar (with its
# messages) is ``bot.services.budgets.grammar.parse_thresholds``; these bounds are shared with it.
DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_THRESHOLDS = 6
MAX_THRESHOLD = 200


def valid_thresholds(values: tuple[int, ...]) -> bool:
    return bool(values) and values[0] >= 1 and values[-1] <= MAX_THRESHOLD and len(values) <= MAX_THRESHOLDS


class Thresholds(TypeDecorator):
    """Stored as text (``"50,80,100"``), read as sorted whole percents. A hand-edited value that
    is not a valid list reads as the default, so one bad row cannot stop every budget check."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or isinstance(value, str):
            return value
        return ",".join(str(v) for v in value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        parts = [p.strip().removesuffix("%") for p in value.split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            return DEFAULT_THRESHOLDS
        found = tuple(sorted({int(p) for p in parts}))
        return found if valid_thresholds(found) else DEFAULT_THRESHOLDS


class MessageRefs(TypeDecorator):
    """Stored as a JSON list of ``[channel, ts]`` pairs, read as a list of tuples (unreadable
    text reads as none: the messages are then simply not updated)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or isinstance(value, str):
            return value
        return json.dumps([list(ref) for ref in value])

    def process_result_value(self, value, dialect):
        try:
            return [tuple(ref) for ref in json.loads(value or "[]")]
        except (TypeError, ValueError):
            return []


class Person(SQLModel, table=True):
    """One row per human. Email is the join key across vendors."""

    __tablename__ = "person"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email", name="uq_person_email"),
        Index("ix_person_slack", "workspace_id", "slack_user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    email: str | None = Field(default=None, max_length=320)
    slack_user_id: str | None = Field(default=None, max_length=32)
    display_name: str = Field(default="", max_length=200)
    # Names appear in channel posts only for people who opted in (privacy rules).
    show_name_in_channels: bool = Field(default=False)
    forgotten_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class Identity(SQLModel, table=True):
    """A vendor-side actor (``openai_user:user-abc``, ``github:octocat``, ``email:a@b.c``) -> person.

    Actors are namespaced strings so one table serves every vendor; usage rows keep the raw actor
    so linking later re-attributes history without re-fetching.
    """

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("workspace_id", "actor", name="uq_identity_actor"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    actor: str = Field(max_length=400)
    person_id: int = Field(foreign_key="person.id", index=True)
    origin: str = Field(default="auto", max_length=16)  # auto | admin | self | import
    label: str = Field(default="", max_length=200)  # vendor-side display name or key name
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class UsageDaily(SQLModel, table=True):
    """Spend and tokens per (source, UTC day, actor, model, cost basis, kind).

    ``cost_basis``: ``billed`` (the vendor's bill), ``estimated`` (tokens x the price table, raw unit
    ``estimate:<version>``) or ``unpriced`` (tokens of a model with no price: cost 0, counted and
    shown as unpriced, never as money). ``cache_write_tokens`` counts every prompt-cache write;
    ``cache_write_1h_tokens`` is the part of it written for one hour (priced 2x input by
    Anthropic, against 1.25x for 5-minute writes), 0 where a vendor does not say.
    """

    __tablename__ = "usage_daily"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id", "source", "day", "actor", "model", "cost_basis", "kind", name="uq_usage_key"
        ),
        Index("ix_usage_person_day", "workspace_id", "person_id", "day"),
        Index("ix_usage_day", "workspace_id", "day", "source"),
        Index("ix_usage_actor", "workspace_id", "actor"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    workspace_id: str = Field(max_length=64)
    source: str = Field(max_length=64)  # configured source instance, e.g. "openai" or "openai-eu"
    vendor: str = Field(max_length=32)  # openai | anthropic | claude_code | cursor | ...
    day: date
    actor: str = Field(max_length=400)
    person_id: int | None = Field(default=None)
    model: str = Field(default="", max_length=200)
    cost_basis: str = Field(default="billed", max_length=16)  # billed | estimated | unpriced
    kind: str = Field(default="usage", max_length=16)  # usage | seat
    input_tokens: int = Field(default=0, sa_type=BigInteger)
    output_tokens: int = Field(default=0, sa_type=BigInteger)
    cache_read_tokens: int = Field(default=0, sa_type=BigInteger)
    # Every prompt-cache write (5-minute and 1-hour); cache_write_1h_tokens is the 1-hour part of it.
    cache_write_tokens: int = Field(default=0, sa_type=BigInteger)
    cache_write_1h_tokens: int = Field(default=0, sa_type=BigInteger)
    requests: int = Field(default=0, sa_type=BigInteger)
    cost_micros: int = Field(default=0, sa_type=BigInteger)
    raw_amount: str = Field(default="0", max_length=64)
    raw_unit: str = Field(default="usd", max_length=48)
    # False when the same dollars are already billed by another row (e.g. Claude Code estimates
    # when Anthropic's cost report is synced): personal views show it, org totals skip it.
    in_org_total: bool = Field(default=True)
    sync_run_id: int | None = Field(default=None, sa_type=BigInteger)


class VendorTotalRow(SQLModel, table=True):
    """A vendor's own total for a source over UTC days ``[start, end)`` (``VendorTotal``), for
    reconciliation only: never summed into a report. Re-syncing the same span replaces it."""

    __tablename__ = "vendor_total"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source", "start", "end", "what", name="uq_vendor_total_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    source: str = Field(max_length=64)
    vendor: str = Field(max_length=32)
    start: date
    end: date  # exclusive
    what: str = Field(max_length=32)  # billed | billed_and_estimated
    amount_micros: int = Field(default=0, sa_type=BigInteger)
    raw_amount: str = Field(default="0", max_length=64)
    raw_unit: str = Field(default="usd", max_length=48)
    observed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class ActivityDaily(SQLModel, table=True):
    """Value signals per (source, UTC day, actor), as each vendor reports them."""

    __tablename__ = "activity_daily"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source", "day", "actor", name="uq_activity_key"),
        # Covering: a team's value signals are read from the index alone, in (person, day) order
        # (migration 0021, docs/benchmarks.md "Reads").
        Index("ix_activity_person_cover", "workspace_id", "person_id", "day", "vendor", *ACTIVITY_FIELDS),
        Index("ix_activity_day", "workspace_id", "day"),
        Index("ix_activity_actor", "workspace_id", "actor"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    workspace_id: str = Field(max_length=64)
    source: str = Field(max_length=64)
    vendor: str = Field(max_length=32)
    day: date
    actor: str = Field(max_length=400)
    person_id: int | None = Field(default=None)
    lines_suggested: int = Field(default=0, sa_type=BigInteger)
    lines_accepted: int = Field(default=0, sa_type=BigInteger)
    lines_added: int = Field(default=0, sa_type=BigInteger)
    lines_removed: int = Field(default=0, sa_type=BigInteger)
    suggestions_shown: int = Field(default=0, sa_type=BigInteger)
    acceptances: int = Field(default=0, sa_type=BigInteger)
    rejections: int = Field(default=0, sa_type=BigInteger)
    commits: int = Field(default=0, sa_type=BigInteger)
    pull_requests: int = Field(default=0, sa_type=BigInteger)  # PRs the AI tool says it made
    prs_opened: int = Field(default=0, sa_type=BigInteger)  # from the code host (delivery)
    prs_merged: int = Field(default=0, sa_type=BigInteger)
    ai_prs_merged: int = Field(default=0, sa_type=BigInteger)
    reviews: int = Field(default=0, sa_type=BigInteger)
    sessions: int = Field(default=0, sa_type=BigInteger)
    requests: int = Field(default=0, sa_type=BigInteger)
    merge_minutes_median: int | None = Field(default=None)
    sync_run_id: int | None = Field(default=None, sa_type=BigInteger)
    active_seconds: int = Field(default=0, sa_type=BigInteger)  # time in the tool (OTel), seconds


# -- rollups ------------------------------------------------------------------------------
# usage_daily and activity_daily summed per UTC day without the actor, maintained by
# bot.db.rollups in the same transaction as every write to the daily tables. The org, team,
# recap and budget views read these: a month of the org is ~1,000 rollup rows instead of ~830,000
# usage rows, and a team's month is a few range scans of rows stored in (person, day) order
# (docs/benchmarks.md, B3/B4). ``WITHOUT ROWID`` on SQLite keeps each table in its key's order.

_ROLLUP_TABLE_ARGS = {"sqlite_with_rowid": False}
#: What a usage rollup row is per (besides workspace, day and, for people, the person).
USAGE_ROLLUP_KEY = ("source", "vendor", "model", "cost_basis", "kind", "in_org_total", "tokens_only")


def _sum():
    return Field(default=0, sa_type=BigInteger)


class _UsageRollupColumns(SQLModel):
    workspace_id: str = Field(max_length=64)
    day: date
    source: str = Field(max_length=64)
    vendor: str = Field(max_length=32)
    model: str = Field(max_length=200)
    cost_basis: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    in_org_total: bool
    tokens_only: bool  # raw_unit == "tokens_only": tokens another source also reports
    cost_micros: int = _sum()
    input_tokens: int = _sum()
    output_tokens: int = _sum()
    cache_read_tokens: int = _sum()
    cache_write_tokens: int = _sum()
    cache_write_1h_tokens: int = _sum()  # the 1-hour part of cache_write_tokens
    requests: int = _sum()


class UsagePersonDaily(_UsageRollupColumns, table=True):
    """Usage attributed to a person, per (person, UTC day, source, model, basis, kind)."""

    __tablename__ = "usage_person_daily"
    __table_args__ = (
        # Stored in (person, day) order: a team's or a person's period is a few range scans.
        PrimaryKeyConstraint("workspace_id", "person_id", "day", *USAGE_ROLLUP_KEY),
        # Refreshing a source's window scans by day.
        Index("ix_usage_person_daily_day", "workspace_id", "day", "source", "person_id"),
        _ROLLUP_TABLE_ARGS,
    )

    person_id: int


class UsageOrgDaily(_UsageRollupColumns, table=True):
    """All usage of the workspace, attributed or not, per (UTC day, source, model, basis, kind)."""

    __tablename__ = "usage_org_daily"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "day", *USAGE_ROLLUP_KEY), _ROLLUP_TABLE_ARGS)

    unattributed_micros: int = _sum()  # part of cost_micros on rows with no person


class ActivityOrgDaily(SQLModel, table=True):
    """All value signals of the workspace per (UTC day, source)."""

    __tablename__ = "activity_org_daily"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "day", "source", "vendor"), _ROLLUP_TABLE_ARGS)

    workspace_id: str = Field(max_length=64)
    day: date
    source: str = Field(max_length=64)
    vendor: str = Field(max_length=32)
    lines_suggested: int = _sum()
    lines_accepted: int = _sum()
    lines_added: int = _sum()
    lines_removed: int = _sum()
    suggestions_shown: int = _sum()
    acceptances: int = _sum()
    rejections: int = _sum()
    commits: int = _sum()
    pull_requests: int = _sum()
    prs_opened: int = _sum()
    prs_merged: int = _sum()
    ai_prs_merged: int = _sum()
    reviews: int = _sum()
    sessions: int = _sum()
    requests: int = _sum()
    active_seconds: int = _sum()


class SyncState(SQLModel, table=True):
    """Per-source progress: the watermark is the first UTC day not yet fully synced."""

    __tablename__ = "sync_state"

    workspace_id: str = Field(primary_key=True, max_length=64)
    source: str = Field(primary_key=True, max_length=64)
    watermark: date | None = None
    last_success_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error: str | None = Field(default=None, sa_type=Text)
    last_error_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    consecutive_failures: int = Field(default=0)


class SyncRun(SQLModel, table=True):
    """One pass of one source over a window. ``tick`` makes scheduled runs unique across replicas."""

    __tablename__ = "sync_run"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source", "tick", name="uq_sync_run_tick"),
        Index("ix_sync_run_source", "workspace_id", "source", "started_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    source: str = Field(max_length=64)
    tick: str | None = Field(default=None, max_length=64)
    window_start: date
    window_end: date  # exclusive
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    status: str = Field(default="running", max_length=16)  # running | ok | failed
    usage_rows: int = Field(default=0)
    activity_rows: int = Field(default=0)
    error: str | None = Field(default=None, sa_type=Text)


class Budget(SQLModel, table=True):
    """A spend ceiling (and optional floor) for a person, a team or the whole org."""

    __tablename__ = "budget"
    __table_args__ = (
        UniqueConstraint("workspace_id", "target_kind", "target_id", "vendor", name="uq_budget_target"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    target_kind: str = Field(max_length=16)  # person | group | channel | org
    target_id: str = Field(max_length=64)  # person id, Slack group/channel id, or "org"
    vendor: str = Field(default="", max_length=32)  # "" = every vendor
    period: str = Field(default="month", max_length=16)  # week | month | quarter
    amount_micros: int = Field(sa_type=BigInteger)
    floor_micros: int | None = Field(default=None, sa_type=BigInteger)
    thresholds: tuple[int, ...] = Field(default=DEFAULT_THRESHOLDS, sa_type=Thresholds)
    include_seats: bool = Field(default=False)
    created_by: str = Field(default="", max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))

    @property
    def person_id(self) -> int | None:
        """The person of a personal budget."""
        return int(self.target_id) if self.target_kind == "person" else None

    @property
    def access_kind(self) -> str:
        """The target as ``bot.services.access`` names it: a user group or channel is a "team"."""
        return "team" if self.target_kind in ("group", "channel") else self.target_kind


class AlertSent(SQLModel, table=True):
    """Ledger of budget alerts: the unique row is claimed before the DM is sent."""

    __tablename__ = "alert_sent"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id", "budget_id", "period_start", "kind", "threshold", name="uq_alert_once"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    budget_id: int = Field(foreign_key="budget.id")
    period_start: date
    kind: str = Field(max_length=16)  # threshold | forecast | floor
    threshold: int = Field(default=0)
    status: str = Field(default="claimed", max_length=16)  # claimed | sent | failed
    error: str | None = Field(default=None, sa_type=Text)
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class RecapSubscription(SQLModel, table=True):
    __tablename__ = "recap_subscription"
    __table_args__ = (
        UniqueConstraint("workspace_id", "channel_id", "group_id", name="uq_recap_subscription"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=32)
    group_id: str = Field(default="", max_length=32)  # "" = the channel's members
    weekday: int = Field(default=0)  # Monday = 0, in the org's timezone
    local_time: str = Field(default="09:00", max_length=5)
    post_when_empty: bool = Field(default=True)
    created_by: str = Field(default="", max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))

    @property
    def team_kind(self) -> str:
        """The ``Team.kind`` whose members the recap covers: the user group's, else the channel's."""
        return "usergroup" if self.group_id else "channel"

    @property
    def team_slack_id(self) -> str:
        return self.group_id or self.channel_id


class RecapDelivery(SQLModel, table=True):
    """Ledger of recap posts: exactly one row per subscription per week, claimed before posting."""

    __tablename__ = "recap_delivery"
    __table_args__ = (UniqueConstraint("subscription_id", "week_start", name="uq_recap_once"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    subscription_id: int = Field(foreign_key="recap_subscription.id")
    week_start: date
    status: str = Field(default="claimed", max_length=16)  # claimed | posted | failed
    channel_id: str = Field(default="", max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    attempts: int = Field(default=0)
    error: str | None = Field(default=None, sa_type=Text)
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))
    posted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class AuditLog(SQLModel, table=True):
    """Who did what, when. Never holds secrets or personal numbers, only what happened."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_target", "workspace_id", "target", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, index=True, default=utcnow))
    actor_user_id: str = Field(default="", max_length=32)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=200)
    detail: str = Field(default="", sa_type=Text)


class Team(SQLModel, table=True):
    """A Slack user group or a channel's members, as last read from Slack."""

    __tablename__ = "team"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "slack_id", name="uq_team_slack"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # usergroup | channel
    slack_id: str = Field(max_length=32)  # S... or C.../G...
    name: str = Field(default="", max_length=200)
    # None until the first successful read of the members from Slack.
    refreshed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class TeamMembership(SQLModel, table=True):
    """One stretch of a person's membership: usage counts for the team on days in
    ``[joined_on, left_on)``. Leaving closes the stretch; rejoining opens a new one, so a
    person's history stays with them and never moves to a team they joined later."""

    __tablename__ = "team_membership"
    __table_args__ = (
        Index("ix_team_membership_team", "workspace_id", "team_id", "person_id"),
        Index("ix_team_membership_person", "workspace_id", "person_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    team_id: int = Field(foreign_key="team.id")
    person_id: int = Field(foreign_key="person.id")
    joined_on: date
    left_on: date | None = None  # exclusive; None while still a member


class RoleGrant(SQLModel, table=True):
    """A role an admin granted: today only ``manager`` of a team. Keyed by Slack user id so a
    manager needs no person record (no usage, no visible email)."""

    __tablename__ = "role_grant"
    __table_args__ = (
        UniqueConstraint("workspace_id", "role", "slack_user_id", "team_id", name="uq_role_grant"),
        Index("ix_role_grant_team", "workspace_id", "team_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    role: str = Field(max_length=16)  # manager
    slack_user_id: str = Field(max_length=32)
    team_id: int = Field(foreign_key="team.id")
    granted_by: str = Field(default="", max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class ManagerScope(SQLModel, table=True):
    """A person within one manager grant's reach (docs/privacy.md, "Manager scope"): a member
    of the team when the admin made the grant (``reason`` "grant"), or a later joiner an admin
    approved (``reason`` "approved"). Channel teams need a row; user groups do not (their
    membership is managed by admins in Slack)."""

    __tablename__ = "manager_scope"
    __table_args__ = (
        UniqueConstraint("role_grant_id", "person_id", name="uq_manager_scope"),
        Index("ix_manager_scope_person", "workspace_id", "person_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    role_grant_id: int = Field(foreign_key="role_grant.id")
    person_id: int = Field(foreign_key="person.id")
    reason: str = Field(max_length=16)  # grant | approved
    added_by: str = Field(default="", max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class IdentityClaim(SQLModel, table=True):
    """Someone claiming a vendor identity for themself (``/tokens link github <login>``) that
    could not be verified: it waits for an admin. Deciding is ``UPDATE ... WHERE status =
    'pending'``, so a claim is decided exactly once; nothing is re-attributed while pending."""

    __tablename__ = "identity_claim"
    __table_args__ = (Index("ix_identity_claim_status", "workspace_id", "status", "actor"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    actor: str = Field(max_length=400)
    person_id: int = Field(foreign_key="person.id")
    claimer_user_id: str = Field(max_length=32)
    status: str = Field(default="pending", max_length=16)  # pending | approved | denied
    why_pending: str = Field(default="", max_length=200)  # what verification could not confirm
    decided_by: str = Field(default="", max_length=32)
    decided_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class PullRequest(SQLModel, table=True):
    """One merged pull request from the code host (``github_delivery``), with its AI-assisted mark.

    ``ai_confidence`` is "high" (a co-author trailer, a "Generated with" line, a label or a coding
    agent as author) or "none" as synced; "low" (the author used an AI tool while the PR was
    worked on) is decided at query time from other vendors' rows (bot/domain/ai_rules.py).
    Rows are replaced per source and window of merge days, like usage and activity rows.
    """

    __tablename__ = "pull_request"
    __table_args__ = (
        UniqueConstraint("workspace_id", "repo", "number", name="uq_pull_request_key"),
        Index("ix_pull_request_person_merged", "workspace_id", "person_id", "merged_at"),
        Index("ix_pull_request_source_merged", "workspace_id", "source", "merged_at"),
        Index("ix_pull_request_actor", "workspace_id", "actor"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    workspace_id: str = Field(max_length=64)
    source: str = Field(max_length=64)
    repo: str = Field(max_length=200)  # "owner/name"
    number: int = Field(sa_type=BigInteger)
    actor: str = Field(max_length=400)  # the credited author, e.g. "github:octocat"
    person_id: int | None = Field(default=None)
    opened_at: datetime = Field(sa_column=_ts(nullable=False))
    merged_at: datetime = Field(sa_column=_ts(nullable=False))
    first_commit_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    additions: int = Field(default=0, sa_type=BigInteger)
    deletions: int = Field(default=0, sa_type=BigInteger)
    ai_confidence: str = Field(default="none", max_length=8)  # high | low | none
    ai_rule: str = Field(default="", max_length=64)  # which rule fired, e.g. "label:ai-assisted"
    sync_run_id: int | None = Field(default=None, sa_type=BigInteger)
    # Survival and review load (bot/services/value, docs/value.md); migration 0019_value_git.
    title: str = Field(default="", max_length=300)
    merge_sha: str = Field(default="", max_length=64)
    ready_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    review_rounds: int = Field(default=0)
    is_fix: bool = Field(default=False)
    reverts: str = Field(default="", max_length=400)  # refs it reverts: "#12 sha:abc1234"
    reverted_by: str = Field(default="", max_length=64)  # "commit:<sha>": a revert pushed to the branch
    files: str = Field(default="", sa_type=Text)  # changed paths, one per line (at most 300)
    # Agent sessions its trailers name (bot/domain/ai_rules.py session_ids), space-separated,
    # lower-case; migration 0020_pr_sessions. Cost per PR sums their measured cost.
    session_ids: str = Field(default="", max_length=1000)


class Workspace(SQLModel, table=True):
    """A Slack workspace that installed the app (multi-workspace mode). Jobs run only for
    ``active`` ones; uninstalling marks the row ``inactive`` and keeps the workspace's data.
    The installation itself (bot token) lives in slack_sdk's ``slack_bots`` table."""

    __tablename__ = "workspace"
    __table_args__ = (UniqueConstraint("workspace_id", name="uq_workspace_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)  # the Slack team id
    enterprise_id: str | None = Field(default=None, max_length=32)  # Enterprise Grid; find_bot needs it
    name: str = Field(default="", max_length=200)
    status: str = Field(default="active", max_length=16)  # active | inactive
    installed_by: str = Field(default="", max_length=32)
    installed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))
    uninstalled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class SourceSecret(SQLModel, table=True):
    """A vendor key an admin entered in Slack (``/tokens sources``), Fernet-encrypted with
    TOKENWISE_SECRET_KEY. It overrides the environment's key for that source in its workspace."""

    __tablename__ = "source_secret"
    __table_args__ = (UniqueConstraint("workspace_id", "source", name="uq_source_secret"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    source: str = Field(max_length=64)
    encrypted_key: str = Field(sa_type=Text)  # Fernet token (base64 text); never the key itself
    base_url: str | None = Field(default=None, max_length=500)  # None = the source's default
    updated_by: str = Field(default="", max_length=32)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class BudgetRequest(SQLModel, table=True):
    """A person asking for more budget (``/tokens budget request``) and its decision.

    Deciding is ``UPDATE ... WHERE status = 'pending'``: exactly one click wins, a replayed or
    second click finds the request decided and changes nothing."""

    __tablename__ = "budget_request"
    __table_args__ = (
        Index("ix_budget_request_person", "workspace_id", "person_id", "created_at"),
        Index("ix_budget_request_status", "workspace_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    person_id: int = Field(foreign_key="person.id")
    requester_user_id: str = Field(max_length=32)
    # The budget it asks to raise; no foreign key so clearing a budget keeps its requests' history.
    budget_id: int | None = Field(default=None)
    amount_micros: int = Field(sa_type=BigInteger)
    reason: str = Field(default="", sa_type=Text)
    status: str = Field(default="pending", max_length=16)  # pending | approved | denied
    decided_by: str = Field(default="", max_length=32)
    decided_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    granted_micros: int | None = Field(default=None, sa_type=BigInteger)
    scope: str = Field(default="", max_length=16)  # period | permanent (approved only)
    period_start: date | None = None  # the budget period an approval for one period applies to
    # JSON list of [channel, ts] of the DMs sent to deciders, so each can be updated once decided.
    notified: list[tuple[str, str]] = Field(default_factory=list, sa_type=MessageRefs)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class BudgetOverride(SQLModel, table=True):
    """Extra ceiling for one period of one budget (an approved request for that period only)."""

    __tablename__ = "budget_override"
    __table_args__ = (
        Index("ix_budget_override_budget", "workspace_id", "budget_id", "period_start"),
        UniqueConstraint("workspace_id", "request_id", name="uq_budget_override_request"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    budget_id: int = Field(foreign_key="budget.id")
    period_start: date
    extra_micros: int = Field(sa_type=BigInteger)
    request_id: int | None = Field(default=None)
    created_by: str = Field(default="", max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class RecapVote(SQLModel, table=True):
    """One vote per person per posted recap ("worth it" / "not sure" / "not worth it");
    voting again changes the choice."""

    __tablename__ = "recap_vote"
    __table_args__ = (UniqueConstraint("delivery_id", "user_id", name="uq_recap_vote"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    delivery_id: int = Field(foreign_key="recap_delivery.id")
    user_id: str = Field(max_length=32)  # Slack user id of the voter
    choice: str = Field(max_length=16)  # worth | unsure | not_worth
    voted_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class ForgottenActor(SQLModel, table=True):
    """Tombstone of a forgotten person's vendor actor: later syncs store that actor's rows under
    the same anonymous alias instead of re-identifying the person. Only a keyed hash is kept."""

    __tablename__ = "forgotten_actor"
    __table_args__ = (UniqueConstraint("workspace_id", "actor_hash", name="uq_forgotten_actor"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    actor_hash: str = Field(max_length=64)
    alias: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class OtelToken(SQLModel, table=True):
    """A workspace's OTLP ingest token (``tokenwise otel token create|rotate``): only its SHA-256
    is kept. The token alone says which workspace a coding agent's telemetry belongs to."""

    __tablename__ = "otel_token"
    __table_args__ = (
        UniqueConstraint("workspace_id", name="uq_otel_token_workspace"),
        UniqueConstraint("token_hash", name="uq_otel_token_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    token_hash: str = Field(max_length=64)  # hex SHA-256 of the token; the token is never stored
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))
    rotated_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class OtelPoint(SQLModel, table=True):
    """One data point (or event) a coding agent exported over OTLP, as mapped by its agent module
    (``bot.sources.otel``), before it is folded into ``usage_daily`` / ``activity_daily``.

    The key is the series (a hash of resource, metric and attributes) and the point's time window,
    so a point sent twice is stored once. ``value`` is what the point says (cumulative or delta);
    ``increment`` is what it adds: the value itself for a delta or the first point of a cumulative
    run, else the growth since the run's previous point (a drop is a counter reset: the whole
    value). Daily rows are sums of ``increment``.
    """

    __tablename__ = "otel_point"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source", "series", "start_ns", "time_ns", name="uq_otel_point"),
        Index("ix_otel_point_day", "workspace_id", "source", "day", "actor"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    workspace_id: str = Field(max_length=64)
    source: str = Field(max_length=64)  # otel_<agent>
    series: str = Field(max_length=64)  # hex SHA-256 of resource + metric + attributes
    metric: str = Field(max_length=200)  # the agent's metric or event name
    start_ns: int = Field(sa_type=BigInteger)  # start_time_unix_nano (0 when not sent)
    time_ns: int = Field(sa_type=BigInteger)
    day: date  # UTC day of time_ns
    actor: str = Field(max_length=400)
    measure: str = Field(max_length=32)  # input_tokens, cost_micros, lines_added, sessions, ...
    model: str = Field(default="", max_length=200)
    cumulative: bool = Field(default=False)
    value: int = Field(default=0, sa_type=BigInteger)
    increment: int = Field(default=0, sa_type=BigInteger)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))
    session: str = Field(default="", max_length=128)  # agent session id, lower-case; 0020_pr_sessions


class AnomalyIncident(SQLModel, table=True):
    """One anomaly of one subject (a person, or an actor that maps to nobody) under one rule
    (docs/anomalies.md). Repeated detections update the open incident; ``open_key`` is set
    only while it is open, so a subject has at most one open incident per rule, whatever the
    number of replicas detecting it (NULLs never collide in a unique index)."""

    __tablename__ = "anomaly_incident"
    __table_args__ = (
        UniqueConstraint("workspace_id", "open_key", name="uq_anomaly_open"),
        Index("ix_anomaly_person", "workspace_id", "person_id", "last_seen_at"),
        Index("ix_anomaly_status", "workspace_id", "status", "last_seen_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    subject_kind: str = Field(max_length=16)  # person | actor
    subject_key: str = Field(max_length=400)  # person id as text, or the actor
    person_id: int | None = Field(default=None)
    rule: str = Field(max_length=16)  # runaway | idle | drift | unattributed
    open_key: str | None = Field(default=None, max_length=440)
    status: str = Field(default="open", max_length=16)  # open | closed | expected
    day: date  # the newest UTC day the rule fired on
    spend_micros: int = Field(default=0, sa_type=BigInteger)
    peak_micros: int = Field(default=0, sa_type=BigInteger)  # the highest day while open
    figures: str = Field(default="{}", sa_type=Text)  # the rule's figures (JSON of integers)
    first_seen_at: datetime = Field(sa_column=_ts(nullable=False))
    last_seen_at: datetime = Field(sa_column=_ts(nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    detect_seconds: int = Field(default=0)  # from the start of the UTC day it fired on to first_seen_at
    close_seconds: int | None = Field(default=None)  # from first_seen_at to closed_at
    answered_by: str = Field(default="", max_length=32)  # who said "expected"


class AnomalyNotice(SQLModel, table=True):
    """Ledger of anomaly DMs: the unique row is claimed before the DM, so each recipient is told
    about an incident once per audience across replicas and restarts."""

    __tablename__ = "anomaly_notice"
    __table_args__ = (UniqueConstraint("incident_id", "audience", "recipient", name="uq_anomaly_notice"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    incident_id: int = Field(foreign_key="anomaly_incident.id")
    audience: str = Field(max_length=16)  # person | manager | admin
    recipient: str = Field(max_length=32)  # Slack user id
    status: str = Field(default="claimed", max_length=16)  # claimed | sent | retry | failed
    channel: str = Field(default="", max_length=32)
    message_ts: str = Field(default="", max_length=32)
    error: str | None = Field(default=None, sa_type=Text)
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class AnomalyMute(SQLModel, table=True):
    """ "Expected": no incident of ``rule`` for the subject until ``until``; who said so is kept."""

    __tablename__ = "anomaly_mute"
    __table_args__ = (
        Index("ix_anomaly_mute_subject", "workspace_id", "subject_kind", "subject_key", "rule"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    subject_kind: str = Field(max_length=16)
    subject_key: str = Field(max_length=400)
    rule: str = Field(max_length=16)
    until: datetime = Field(sa_column=_ts(nullable=False))
    incident_id: int | None = Field(default=None)
    created_by: str = Field(default="", max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class SavedTimePref(SQLModel, table=True):
    """A person's answer to "ask me what AI saved on my merged PRs?" (``/tokens saved``): off
    unless they opt in; a snooze pauses the questions without losing the opt-in."""

    __tablename__ = "saved_time_pref"
    __table_args__ = (UniqueConstraint("workspace_id", "person_id", name="uq_saved_time_pref"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    person_id: int = Field(foreign_key="person.id")
    opted_in: bool = Field(default=False)
    opted_in_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))  # asks from then on
    snoozed_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))


class SavedTimeAsk(SQLModel, table=True):
    """Ledger of the "what did it save you?" DMs and their answers: one row per merged PR (by
    repo and number: PR rows are replaced on re-sync, their ids change) and at most one per
    person and local day, claimed before the DM is sent. The answer lives on the row, so each
    PR has one answer; a second click changes it."""

    __tablename__ = "saved_time_ask"
    __table_args__ = (
        UniqueConstraint("workspace_id", "repo", "number", name="uq_saved_time_pr"),
        UniqueConstraint("workspace_id", "person_id", "ask_day", name="uq_saved_time_day"),
        Index("ix_saved_time_merged", "workspace_id", "merged_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    person_id: int = Field(foreign_key="person.id")
    repo: str = Field(max_length=200)
    number: int = Field(sa_type=BigInteger)
    merged_at: datetime = Field(sa_column=_ts(nullable=False))
    ask_day: date  # the org's local day of the DM: one a day per person
    recipient: str = Field(max_length=32)  # Slack user id
    status: str = Field(default="claimed", max_length=16)  # claimed | sent | failed
    channel: str = Field(default="", max_length=32)
    message_ts: str = Field(default="", max_length=32)
    error: str | None = Field(default=None, sa_type=Text)
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))
    bucket: str | None = Field(default=None, max_length=16)  # nothing | under_30m | 30m_2h | more
    answered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class SeatReclaim(SQLModel, table=True):
    """Ledger of seat reclaim requests: an admin's "Reclaim" claims the row BEFORE the holder is
    asked by DM, so each seat holder is asked once per seat, whoever clicks and however often.
    ``seat_since`` (the first day of the holder's current seat) lets a later seat be asked about."""

    __tablename__ = "seat_reclaim"
    __table_args__ = (
        UniqueConstraint("workspace_id", "vendor", "actor", "seat_since", name="uq_seat_reclaim"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(max_length=64)
    vendor: str = Field(max_length=32)
    actor: str = Field(max_length=400)
    seat_since: date
    person_id: int | None = Field(default=None)
    requested_by: str = Field(max_length=32)  # the admin's Slack id
    recipient: str = Field(default="", max_length=32)  # the holder's Slack id
    status: str = Field(default="claimed", max_length=16)  # claimed | sent | failed
    channel: str = Field(default="", max_length=32)
    message_ts: str = Field(default="", max_length=32)
    error: str | None = Field(default=None, sa_type=Text)
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, default=utcnow))
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class OtelSessionDaily(SQLModel, table=True):
    """One agent session's spend per UTC day and actor, summed from ``otel_point`` increments on
    every OTLP request (so a point sent twice counts once) and kept when the raw points are
    pruned: what ties a session's measured cost to the pull request whose trailer names it
    (bot/services/value/cost_per_pr.py). ``cost_micros`` is the agent's own estimate (0 for an
    agent that sends tokens only, e.g. Codex); ``tokens`` counts every token kind."""

    __tablename__ = "otel_session_daily"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source", "day", "actor", "session", name="uq_otel_session_daily"),
        Index("ix_otel_session_daily_session", "workspace_id", "session"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    workspace_id: str = Field(max_length=64)
    source: str = Field(max_length=64)  # otel_<agent>
    day: date
    actor: str = Field(max_length=400)
    session: str = Field(max_length=128)
    cost_micros: int = Field(default=0, sa_type=BigInteger)
    tokens: int = Field(default=0, sa_type=BigInteger)
