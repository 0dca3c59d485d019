"""The seat ledger of seat-billed tools (GitHub Copilot, Cursor, ...) and the reclaim ledger.

Seats are the ``kind="seat"`` usage rows a connector stores, one per seat and day it was
assigned (GitHub Copilot's seat list, Cursor's paid team members; any connector storing seat
rows is counted the same way). Four figures per vendor, each its own number, never added
together nor turned into a saving or an ROI (a seat held is not a seat wasted, and reclaiming
one is a conversation):

- **paid**: seats on the vendor's latest seat list stored (its newest seat day);
- **active**: paid seats whose holder used that vendor in the last ``period_days`` days
  (an activity row with any signal, or usage other than the seat itself);
- **reassignable**: paid seats unused for ``idle_days`` days (counted from the seat's first day
  when it was never used): give them to someone else now, nothing to buy;
- **reducible at the next renewal**: paid seats unused for ``reduce_days`` days: seats the
  next renewal need not pay for. Renewal dates come from ``Settings.seat_renewals``; a vendor
  not named there whose billing cycle is stored (Cursor's ``subscriptionCycleStart``, kept as
  the start of its vendor totals) renews monthly on its cycle's day of the month; any other on
  the 1st of next month (Copilot bills seats per calendar month).

A reclaim asks the holder first: ``claim_reclaim`` inserts the ``seat_reclaim`` row BEFORE the
DM, so a holder is asked once per seat however many admins click, on however many replicas; a
failed DM may be claimed again. The bot removes nothing at the vendor.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Unpack

from sqlalchemy import Connection, func, or_, select, update

from bot.db.ledger import Outcome, finish_effect
from bot.db.models import ActivityDaily, Person, SeatReclaim, UsageDaily, VendorTotalRow
from bot.db.upsert import insert_for
from bot.domain.clock import utcnow
from bot.domain.records import ACTIVITY_FIELDS, SEAT

LOOKBACK_DAYS = 400  # how far back a seat's first day and its holder's last use are read
STALE_DAYS = 7  # a vendor whose newest seat day is older than this is shown as stale
#: Vendors whose vendor totals start on the first day of their billing cycle (Cursor's
#: cycle-to-date spend): their seats renew monthly on that day of the month.
CYCLE_VENDORS = ("cursor",)

CLAIMED = "claimed"
SENT = "sent"
FAILED = "failed"


@dataclass(frozen=True)
class Seat:
    vendor: str
    actor: str
    person_id: int | None
    since: date  # the first day a seat row was stored for this holder
    last_active: date | None  # their last use of the vendor (None: never, as far as stored)

    def idle_days(self, today: date) -> int:
        """Days since the holder last used the vendor, or since the seat began if never."""
        used = max(self.last_active, self.since) if self.last_active else self.since
        return max((today - used).days, 0)


@dataclass(frozen=True)
class VendorSeats:
    vendor: str
    as_of: date  # the newest seat day stored
    seats: tuple[Seat, ...]  # the paid seats
    active: int
    reassignable: tuple[Seat, ...]  # idle for idle_days, most idle first
    reducible: int
    renewal: date
    period_days: int
    idle_days: int
    reduce_days: int
    stale: bool  # the seat list was not refreshed in STALE_DAYS days

    @property
    def paid(self) -> int:
        return len(self.seats)


@dataclass(frozen=True)
class SeatLedger:
    vendors: list[VendorSeats]
    people: dict[int, Person]  # the holders the ledger names


def _month_day(year: int, month: int, day: int) -> date:
    """``day`` of the month, or the month's last day when it is shorter (a cycle on the 31st)."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def next_renewal(
    vendor: str, today: date, renewals: Mapping[str, date], cycle_start: date | None = None
) -> date:
    """The vendor's next renewal after ``today``: the configured date, rolled forward a year at a
    time once passed (annual contracts); else the next monthly return of ``cycle_start``'s day of
    the month (a stored billing cycle); else the 1st of next month."""
    configured = renewals.get(vendor)
    if configured is not None:
        while configured <= today:
            configured = configured.replace(year=configured.year + 1)
        return configured
    following = (today.year + today.month // 12, today.month % 12 + 1)
    if cycle_start is not None:
        this_month = _month_day(today.year, today.month, cycle_start.day)
        return this_month if this_month > today else _month_day(*following, cycle_start.day)
    return date(*following, 1)


def _cycle_starts(conn: Connection, workspace_id: str) -> dict[str, date]:
    """vendor -> the start of its latest stored billing cycle (``CYCLE_VENDORS`` only)."""
    rows = conn.execute(
        select(VendorTotalRow.vendor, func.max(VendorTotalRow.start))
        .where(VendorTotalRow.workspace_id == workspace_id, VendorTotalRow.vendor.in_(CYCLE_VENDORS))
        .group_by(VendorTotalRow.vendor)
    ).all()
    return {vendor: start for vendor, start in rows}


def _current_seats(conn: Connection, workspace_id: str, today: date) -> dict[str, tuple[date, list[Seat]]]:
    """vendor -> (newest seat day, the seats on it), without their last use yet."""
    since = today - timedelta(days=LOOKBACK_DAYS)
    rows = conn.execute(
        select(
            UsageDaily.vendor,
            UsageDaily.actor,
            func.max(UsageDaily.person_id),
            func.min(UsageDaily.day),
            func.max(UsageDaily.day),
        )
        .where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.kind == SEAT,
            UsageDaily.day >= since,
            UsageDaily.day <= today,
        )
        .group_by(UsageDaily.vendor, UsageDaily.actor)
    ).all()
    newest: dict[str, date] = {}
    for vendor, _, _, _, last in rows:
        newest[vendor] = max(newest.get(vendor, last), last)
    found: dict[str, tuple[date, list[Seat]]] = {v: (d, []) for v, d in newest.items()}
    for vendor, actor, pid, first, last in rows:
        if last == newest[vendor]:
            found[vendor][1].append(Seat(vendor, actor, None if pid is None else int(pid), first, None))
    return found


def _last_use(conn: Connection, workspace_id: str, seats: Sequence[Seat], today: date) -> dict[tuple, date]:
    """(vendor, actor) and (vendor, person) -> the last day of use stored."""
    actors = sorted({s.actor for s in seats})
    people = sorted({s.person_id for s in seats if s.person_id is not None})
    since = today - timedelta(days=LOOKBACK_DAYS)
    found: dict[tuple, date] = {}

    def keep(key: tuple, day: date) -> None:
        found[key] = max(found.get(key, day), day)

    for table, used in (
        (ActivityDaily, or_(*(getattr(ActivityDaily, name) > 0 for name in ACTIVITY_FIELDS))),
        (
            UsageDaily,
            (UsageDaily.kind != SEAT)
            & or_(UsageDaily.cost_micros > 0, UsageDaily.requests > 0, UsageDaily.input_tokens > 0),
        ),
    ):
        who = or_(table.actor.in_(actors), table.person_id.in_(people)) if people else table.actor.in_(actors)
        for vendor, actor, pid, day in conn.execute(
            select(table.vendor, table.actor, table.person_id, func.max(table.day))
            .where(table.workspace_id == workspace_id, who, used, table.day >= since, table.day <= today)
            .group_by(table.vendor, table.actor, table.person_id)
        ).all():
            keep((vendor, "actor", actor), day)
            if pid is not None:
                keep((vendor, "person", int(pid)), day)
    return found


def _with_use(seat: Seat, used: Mapping[tuple, date]) -> Seat:
    days = [used.get((seat.vendor, "actor", seat.actor))]
    if seat.person_id is not None:
        days.append(used.get((seat.vendor, "person", seat.person_id)))
    known = [d for d in days if d is not None]
    return Seat(seat.vendor, seat.actor, seat.person_id, seat.since, max(known) if known else None)


def load_ledger(
    conn: Connection,
    *,
    workspace_id: str,
    today: date,
    idle_days: int,
    reduce_days: int,
    renewals: Mapping[str, date],
    period_days: int = 7,
) -> SeatLedger:
    current = _current_seats(conn, workspace_id, today)
    every = [seat for _, seats in current.values() for seat in seats]
    used = _last_use(conn, workspace_id, every, today) if every else {}
    cycles = _cycle_starts(conn, workspace_id) if current else {}
    vendors = []
    for vendor in sorted(current):
        as_of, seats = current[vendor]
        seats = sorted((_with_use(s, used) for s in seats), key=lambda s: (-s.idle_days(today), s.actor))
        vendors.append(
            VendorSeats(
                vendor=vendor,
                as_of=as_of,
                seats=tuple(seats),
                active=sum(
                    1 for s in seats if s.last_active and s.last_active > today - timedelta(days=period_days)
                ),
                reassignable=tuple(s for s in seats if s.idle_days(today) >= idle_days),
                reducible=sum(1 for s in seats if s.idle_days(today) >= reduce_days),
                renewal=next_renewal(vendor, today, renewals, cycles.get(vendor)),
                period_days=period_days,
                idle_days=idle_days,
                reduce_days=reduce_days,
                stale=(today - as_of).days > STALE_DAYS,
            )
        )
    ids = sorted({s.person_id for v in vendors for s in v.seats if s.person_id is not None})
    people = {
        row.id: Person.model_validate(row._mapping)
        for row in (conn.execute(select(Person).where(Person.id.in_(ids))).all() if ids else [])
    }
    return SeatLedger(vendors, people)


# -- reclaim ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReclaimClaim:
    """What a reclaim click may do: ``status`` is ``claimed`` (send the DM now), ``refused`` (not
    an admin), ``asked`` (already asked: nothing sent), ``in_use`` (no longer reassignable),
    ``no_seat`` (not on the seat list), or ``no_holder`` (no Slack user to ask)."""

    status: str
    seat: Seat | None = None
    holder: Person | None = None
    reclaim_id: int | None = None
    idle: int = 0


def claim_reclaim(
    conn: Connection,
    *,
    workspace_id: str,
    vendor: str,
    actor: str,
    requested_by: str,
    is_admin: bool,
    today: date,
    idle_days: int,
) -> ReclaimClaim:
    """Claim the one DM to the seat's holder (BEFORE it is sent), after checking the click."""
    if not is_admin:
        return ReclaimClaim("refused")
    seats = _current_seats(conn, workspace_id, today).get(vendor, (today, []))[1]
    seat = next((s for s in seats if s.actor == actor), None)
    if seat is None:
        return ReclaimClaim("no_seat")
    seat = _with_use(seat, _last_use(conn, workspace_id, [seat], today))
    idle = seat.idle_days(today)
    if idle < idle_days:
        return ReclaimClaim("in_use", seat, idle=idle)
    holder = None
    if seat.person_id is not None:
        row = conn.execute(
            select(Person).where(Person.id == seat.person_id, Person.forgotten_at.is_(None))
        ).first()
        holder = Person.model_validate(row._mapping) if row else None
    if holder is None or not holder.slack_user_id:
        return ReclaimClaim("no_holder", seat, holder, idle=idle)
    key = (
        (SeatReclaim.workspace_id == workspace_id)
        & (SeatReclaim.vendor == vendor)
        & (SeatReclaim.actor == actor)
        & (SeatReclaim.seat_since == seat.since)
    )
    inserted = conn.execute(
        insert_for(conn, SeatReclaim.__table__)
        .on_conflict_do_nothing(index_elements=["workspace_id", "vendor", "actor", "seat_since"])
        .values(
            workspace_id=workspace_id,
            vendor=vendor,
            actor=actor,
            seat_since=seat.since,
            person_id=seat.person_id,
            requested_by=requested_by,
            recipient=holder.slack_user_id,
            status=CLAIMED,
            channel="",
            message_ts="",
            claimed_at=utcnow(),
        )
        .returning(SeatReclaim.id)
    ).first()
    if inserted is None:
        # A DM that failed may be tried again, by one clicker only (the UPDATE is the claim).
        retried = conn.execute(
            update(SeatReclaim)
            .where(key, SeatReclaim.status == FAILED)
            .values(status=CLAIMED, requested_by=requested_by, error=None, claimed_at=utcnow())
        )
        if retried.rowcount != 1:
            return ReclaimClaim("asked", seat, holder, idle=idle)
    reclaim_id = conn.execute(select(SeatReclaim.id).where(key)).scalar_one()
    return ReclaimClaim(CLAIMED, seat, holder, int(reclaim_id), idle)


def finish_reclaim(conn: Connection, *, reclaim_id: int, **outcome: Unpack[Outcome]) -> None:
    finish_effect(conn, SeatReclaim, SeatReclaim.id == reclaim_id, **outcome)
