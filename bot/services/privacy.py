"""Privacy rules as code: small groups fold into "others", names in channels only by opt-in,
forgetting a person without changing org totals, the audit trail, and the admin CSV export.

See docs/privacy.md for the rules in plain words.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, and_, case, delete, func, or_, select, update

from bot.db import rollups, store
from bot.db.models import (
    ActivityDaily,
    AnomalyIncident,
    AnomalyMute,
    AnomalyNotice,
    AuditLog,
    Identity,
    IdentityClaim,
    ManagerScope,
    OtelPoint,
    OtelSessionDaily,
    Person,
    RoleGrant,
    SavedTimeAsk,
    SavedTimePref,
    SeatReclaim,
    TeamMembership,
    UsageDaily,
)
from bot.domain.clock import utcnow
from bot.domain.money import MICROS_PER_USD
from bot.domain.periods import Period
from bot.domain.records import ACTIVITY_FIELDS, ESTIMATED
from bot.services import teams
from bot.services.reports.medians import forget_cached_medians

OTHERS = "others"
FORGOTTEN_PREFIX = "forgotten:"

# -- channel aggregates --------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """One row of a channel post: a label, how many people it covers, and summed metrics
    (money in micros, counts); what the metrics are is up to the caller."""

    label: str
    people: int
    metrics: Mapping[str, int] = field(default_factory=dict)


def _merge(label: str, groups: Sequence[Group]) -> Group:
    metrics: dict[str, int] = {}
    for group in groups:
        for name, value in group.metrics.items():
            metrics[name] = metrics.get(name, 0) + value
    return Group(label, sum(g.people for g in groups), metrics)


def fold_small_groups(groups: Sequence[Group], min_size: int, *, others_label: str = OTHERS) -> list[Group]:
    """Groups of at least ``min_size`` people keep their row; smaller ones are summed into one
    ``others`` row. If "others" itself would be smaller than ``min_size`` (so that a reader
    could subtract their way to a small group), the smallest kept groups are folded in too.
    If everyone together is fewer than ``min_size`` people, nothing may be shown: ``[]``.

    Totals are preserved: the sum of every metric over the result equals the input's sum
    (except in the ``[]`` case). Kept groups stay in their input order; "others" comes last.
    """
    if min_size < 1:
        raise ValueError("min_size must be at least 1")
    if sum(g.people for g in groups) < min_size:
        return []
    kept = [g for g in groups if g.people >= min_size]
    small = [g for g in groups if g.people < min_size]
    while small and sum(g.people for g in small) < min_size:
        # Secondary suppression: fold the smallest kept group (last in input order on ties).
        smallest = min(reversed(kept), key=lambda g: g.people)
        kept.remove(smallest)
        small.append(smallest)
    if not small:
        return kept
    return [*kept, _merge(others_label, small)]


def channel_name(display_name: str, show_name_in_channels: bool) -> str | None:
    """A person's name for a channel post, or None when they have not opted in."""
    return display_name if show_name_in_channels and display_name else None


def set_show_name(conn: Connection, *, person_id: int, show: bool) -> None:
    conn.execute(update(Person).where(Person.id == person_id).values(show_name_in_channels=show))


# -- audit -----------------------------------------------------------------------------------


def person_target(person_id: int) -> str:
    return f"person:{person_id}"


def record(
    conn: Connection,
    *,
    workspace_id: str,
    actor_user_id: str,
    action: str,
    target: str = "",
    detail: str = "",
) -> None:
    conn.execute(
        AuditLog.__table__.insert().values(
            workspace_id=workspace_id,
            at=utcnow(),
            actor_user_id=actor_user_id[:32],
            action=action[:64],
            target=target[:200],
            detail=detail,
        )
    )


def record_views(
    conn: Connection,
    *,
    workspace_id: str,
    actor_user_id: str,
    action: str,
    person_ids: Sequence[int],
    detail: str,
) -> None:
    """One audit row per person whose numbers were shown, so each can see it (``audit me``)."""
    if not person_ids:
        return
    now = utcnow()
    conn.execute(
        AuditLog.__table__.insert(),
        [
            {
                "workspace_id": workspace_id,
                "at": now,
                "actor_user_id": actor_user_id[:32],
                "action": action[:64],
                "target": person_target(pid),
                "detail": detail,
            }
            for pid in person_ids
        ],
    )


def record_views_by(
    conn: Connection,
    *,
    workspace_id: str,
    actor_user_ids: Sequence[str],
    action: str,
    person_ids: Sequence[int],
    detail: str,
) -> None:
    """``record_views`` for each of several viewers shown the same people's numbers (a DM to
    every manager of a team)."""
    for actor in actor_user_ids:
        record_views(
            conn,
            workspace_id=workspace_id,
            actor_user_id=actor,
            action=action,
            person_ids=person_ids,
            detail=detail,
        )


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor_user_id: str
    action: str
    target: str
    detail: str


AUDIT_PAGE_SIZE = 25
_PERSON_REFERENCE = re.compile(r"\bperson[=:](\d+)\b")


@dataclass(frozen=True)
class AuditPage:
    """One page of the audit log, newest first: entries ``first``..``first + len - 1`` (1-based)
    of ``total``, so an answer can say what it leaves out."""

    entries: list[AuditEntry]
    total: int
    page: int
    pages: int

    def person_ids(self) -> list[int]:
        """Every person an entry names, as its target or in its detail (``person=14``,
        ``from=person:9``): the builder shows them by name, never by internal id."""
        found = set()
        for entry in self.entries:
            for text in (entry.target, entry.detail):
                found.update(int(n) for n in _PERSON_REFERENCE.findall(text or ""))
        return sorted(found)

    @property
    def first(self) -> int:
        return (self.page - 1) * AUDIT_PAGE_SIZE + 1 if self.entries else 0

    @property
    def last(self) -> int:
        return self.first + len(self.entries) - 1 if self.entries else 0


def _audit_query(
    *,
    workspace_id: str,
    person_id: int | None,
    user_id: str | None,
    views_only: bool,
    exclude_actor: str | None,
):
    clauses = []
    if person_id is not None:
        clauses.append(AuditLog.target == person_target(person_id))
        clauses.append(AuditLog.action == "export.usage")
    if user_id is not None:
        clauses.append(AuditLog.actor_user_id == user_id)
    where = [AuditLog.workspace_id == workspace_id]
    if clauses:
        where.append(or_(*clauses))
    if views_only:
        where.append(or_(AuditLog.action.like("view.%"), AuditLog.action == "export.usage"))
    if exclude_actor is not None:
        where.append(AuditLog.actor_user_id != exclude_actor)
    return where


def audit_page(
    conn: Connection,
    *,
    workspace_id: str,
    person_id: int | None = None,
    user_id: str | None = None,
    views_only: bool = False,
    exclude_actor: str | None = None,
    page: int = 1,
) -> AuditPage:
    """Page ``page`` (1 = newest) of the audit log, with the total count. ``person_id``: entries
    about that person (plus org-wide exports, which include everyone); ``user_id``: also what
    that user did; ``views_only``: only views of numbers, not e.g. their own settings changes;
    ``exclude_actor``: not what that user did (their own looks). A page past the end is the
    last page, never an empty answer that hides entries."""
    where = _audit_query(
        workspace_id=workspace_id,
        person_id=person_id,
        user_id=user_id,
        views_only=views_only,
        exclude_actor=exclude_actor,
    )
    total = int(conn.execute(select(func.count()).select_from(AuditLog).where(*where)).scalar() or 0)
    pages = max(1, -(-total // AUDIT_PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = conn.execute(
        select(AuditLog.at, AuditLog.actor_user_id, AuditLog.action, AuditLog.target, AuditLog.detail)
        .where(*where)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .offset((page - 1) * AUDIT_PAGE_SIZE)
        .limit(AUDIT_PAGE_SIZE)
    ).all()
    return AuditPage([AuditEntry(*row) for row in rows], total, page, pages)


def people_labels(conn: Connection, *, person_ids: Sequence[int]) -> dict[int, tuple[str | None, str]]:
    """person id -> (Slack user id or None, display label) for showing audit targets."""
    if not person_ids:
        return {}
    rows = conn.execute(
        select(Person.id, Person.slack_user_id, Person.display_name, Person.email, Person.forgotten_at).where(
            Person.id.in_(list(set(person_ids)))
        )
    ).all()
    labels = {}
    for pid, slack_id, name, email, forgotten in rows:
        label = "a forgotten person" if forgotten else (name or email or "someone without a name")
        labels[pid] = (None if forgotten else slack_id, label)
    return labels


# -- forgetting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForgetResult:
    person_id: int
    usage_rows: int
    activity_rows: int
    identities: int


def forget_person(conn: Connection, *, workspace_id: str, person_id: int, actor_user_id: str) -> ForgetResult:
    """Erase who a person was while keeping what was spent.

    Their usage and activity rows stay (org totals do not move) but lose the person and get a
    random actor per original actor (``forgotten:<random>``; one per actor so rows that were
    distinct stay distinct under the unique key). Identities, team memberships and role grants
    are deleted; the person row keeps its id with email, name and Slack id blanked and
    ``forgotten_at`` set. The audit log records that it happened, not who it was.
    """
    person = conn.execute(
        select(Person.id, Person.slack_user_id).where(
            Person.id == person_id, Person.workspace_id == workspace_id, Person.forgotten_at.is_(None)
        )
    ).first()
    if person is None:
        raise LookupError("no such person (or already forgotten)")
    actors: set[str] = set()
    for table in (UsageDaily, ActivityDaily):
        actors.update(
            conn.execute(
                select(table.actor)
                .where(table.workspace_id == workspace_id, table.person_id == person_id)
                .distinct()
            ).scalars()
        )
    identity_actors = conn.execute(
        select(Identity.actor).where(Identity.workspace_id == workspace_id, Identity.person_id == person_id)
    ).scalars()
    actors.update(identity_actors)
    replacement = {actor: f"{FORGOTTEN_PREFIX}{secrets.token_hex(8)}" for actor in sorted(actors)}
    # Tombstones keep the next syncs from bringing the person back under their vendor ids.
    store.add_tombstones(conn, workspace_id, replacement)
    counts = {}
    for table in (UsageDaily, ActivityDaily):
        changed = 0
        for actor, new_actor in replacement.items():
            where = (table.person_id == person_id, table.actor == actor)
            if table is UsageDaily:  # the org keeps the spend, now unattributed, in its rollups
                changed += rollups.repoint_usage(
                    conn,
                    workspace_id=workspace_id,
                    where=where,
                    values={"person_id": None, "actor": new_actor},
                )
                continue
            result = conn.execute(
                update(table)
                .where(table.workspace_id == workspace_id, *where)
                .values(person_id=None, actor=new_actor)
            )
            changed += result.rowcount or 0
        counts[table.__tablename__] = changed
    # The raw OTLP points name the actor too (bot.services.otel): the same alias, so refolding
    # them keeps the person anonymous.
    for table in (OtelPoint, OtelSessionDaily):  # and the sessions' daily sums made from them
        for actor, new_actor in replacement.items():
            conn.execute(
                update(table)
                .where(table.workspace_id == workspace_id, table.actor == actor)
                .values(actor=new_actor)
            )
    identities = conn.execute(
        delete(Identity).where(Identity.workspace_id == workspace_id, Identity.person_id == person_id)
    ).rowcount
    conn.execute(delete(TeamMembership).where(TeamMembership.person_id == person_id))
    conn.execute(delete(ManagerScope).where(ManagerScope.person_id == person_id))
    conn.execute(delete(IdentityClaim).where(IdentityClaim.person_id == person_id))
    # Anomaly incidents hold the person's figures and mutes their choices (docs/anomalies.md).
    theirs = select(AnomalyIncident.id).where(AnomalyIncident.person_id == person_id).scalar_subquery()
    conn.execute(delete(AnomalyNotice).where(AnomalyNotice.incident_id.in_(theirs)))
    conn.execute(delete(AnomalyIncident).where(AnomalyIncident.person_id == person_id))
    conn.execute(
        delete(AnomalyMute).where(
            AnomalyMute.subject_kind == "person", AnomalyMute.subject_key == str(person_id)
        )
    )
    # What they said AI saved them, and whether to ask (docs/value.md).
    conn.execute(delete(SavedTimeAsk).where(SavedTimeAsk.person_id == person_id))
    conn.execute(delete(SavedTimePref).where(SavedTimePref.person_id == person_id))
    conn.execute(delete(SeatReclaim).where(SeatReclaim.person_id == person_id))  # who was asked
    if person.slack_user_id:
        their_grants = and_(
            RoleGrant.workspace_id == workspace_id, RoleGrant.slack_user_id == person.slack_user_id
        )
        teams.delete_scope(conn, their_grants)
        conn.execute(delete(RoleGrant).where(their_grants))
    conn.execute(
        update(Person)
        .where(Person.id == person_id)
        .values(
            email=None,
            display_name="",
            slack_user_id=None,
            show_name_in_channels=False,
            forgotten_at=utcnow(),
        )
    )
    record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="person.forget",
        target=person_target(person_id),
    )
    # Team medians kept by this process (reports.medians.CACHE_SECONDS) leave the person out from
    # now on; other processes' expire within CACHE_SECONDS.
    forget_cached_medians()
    return ForgetResult(person_id, counts["usage_daily"], counts["activity_daily"], int(identities or 0))


# -- export ----------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "day",
    "person_id",
    "email",
    "name",
    "vendor",
    "cost_usd",
    "estimated_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "requests",
    *ACTIVITY_FIELDS,
)


def _usd(micros: int) -> str:
    """Exact dollars with six decimals (micros), so sums in a spreadsheet match the bot."""
    return f"{Decimal(micros) / MICROS_PER_USD:.6f}"


def export_csv(conn: Connection, *, workspace_id: str, period: Period) -> tuple[str, int]:
    """Per person, day and vendor: spend, tokens and value signals. Returns (CSV text, rows).
    Unattributed and forgotten spend has no person and is not in the export."""
    usage = conn.execute(
        select(
            UsageDaily.day,
            UsageDaily.person_id,
            UsageDaily.vendor,
            func.sum(UsageDaily.cost_micros),
            func.sum(case((UsageDaily.cost_basis == ESTIMATED, UsageDaily.cost_micros), else_=0)),
            func.sum(UsageDaily.input_tokens),
            func.sum(UsageDaily.output_tokens),
            func.sum(UsageDaily.cache_read_tokens),
            func.sum(UsageDaily.cache_write_tokens),
            func.sum(UsageDaily.requests),
        )
        .where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.person_id.is_not(None),
            UsageDaily.day >= period.start,
            UsageDaily.day < period.end,
        )
        .group_by(UsageDaily.day, UsageDaily.person_id, UsageDaily.vendor)
    ).all()
    activity = conn.execute(
        select(
            ActivityDaily.day,
            ActivityDaily.person_id,
            ActivityDaily.vendor,
            *(func.sum(getattr(ActivityDaily, name)) for name in ACTIVITY_FIELDS),
        )
        .where(
            ActivityDaily.workspace_id == workspace_id,
            ActivityDaily.person_id.is_not(None),
            ActivityDaily.day >= period.start,
            ActivityDaily.day < period.end,
        )
        .group_by(ActivityDaily.day, ActivityDaily.person_id, ActivityDaily.vendor)
    ).all()
    rows: dict[tuple[date, int, str], dict] = {}
    for day, pid, vendor, cost, estimated, inp, out, cread, cwrite, requests in usage:
        rows[(day, pid, vendor)] = {
            "cost": int(cost or 0),
            "estimated": int(estimated or 0),
            "input_tokens": int(inp or 0),
            "output_tokens": int(out or 0),
            "cache_read_tokens": int(cread or 0),
            "cache_write_tokens": int(cwrite or 0),
            "requests": int(requests or 0),
        }
    for day, pid, vendor, *values in activity:
        row = rows.setdefault((day, pid, vendor), {})
        for name, value in zip(ACTIVITY_FIELDS, values, strict=True):
            row[name] = int(value or 0)
    person_ids = sorted({pid for _, pid, _ in rows})
    who = {}
    for start in range(0, len(person_ids), 500):
        who.update(
            {
                pid: (email or "", name or "")
                for pid, email, name in conn.execute(
                    select(Person.id, Person.email, Person.display_name).where(
                        Person.id.in_(person_ids[start : start + 500])
                    )
                ).all()
            }
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for key in sorted(rows, key=lambda k: (k[0], who.get(k[1], ("", ""))[0], k[1], k[2])):
        day, pid, vendor = key
        row = rows[key]
        email, name = who.get(pid, ("", ""))
        writer.writerow(
            [
                day.isoformat(),
                pid,
                email,
                _safe_cell(name),
                vendor,
                _usd(row.get("cost", 0)),
                _usd(row.get("estimated", 0)),
                row.get("input_tokens", 0),
                row.get("output_tokens", 0),
                row.get("cache_read_tokens", 0),
                row.get("cache_write_tokens", 0),
                row.get("requests", 0),
                *(row.get(name, 0) for name in ACTIVITY_FIELDS),
            ]
        )
    return out.getvalue(), len(rows)


def _safe_cell(text: str) -> str:
    """Names come from vendors and Slack: defuse spreadsheet formulas (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
