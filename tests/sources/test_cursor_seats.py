"""Cursor seats from ``/teams/members``: who holds a paid seat (not an Unpaid Admin, not removed),
one estimated seat row per seat for the day the list speaks for, stored through the loopback
fake, kept by later runs, counted once beside the usage, and left out of the reconciliation."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.db.models import Person, UsageDaily
from bot.domain.records import SEAT, USAGE
from bot.services import reconcile
from bot.sources.cursor import SEAT_MODEL, SEAT_UNIT, paid_seat, seat_rows
from tests.support.cursor_admin import (
    SINCE,
    TODAY,
    cursor_connector,
    cursor_fixture,
    serve_cursor,
    sync_cursor_days,
)

MEMBERS = json.loads(cursor_fixture("members_seats.json"))["teamMembers"]
BY_NAME = {m["name"]: m for m in MEMBERS}
PAID = {"email:developer@company.com", "email:admin@company.com", "email:lead@company.com"}
MARCH_4 = date(2026, 3, 4)


@pytest.mark.parametrize(
    ("name", "paid"),
    [
        ("Alex", True),  # member
        ("Sam", True),  # owner
        ("Lee", True),  # admin: a role holding a seat like any other
        ("Robin", False),  # free-owner: an Unpaid Admin
        ("Kim", False),  # isRemoved
    ],
)
def test_who_holds_a_paid_seat(name, paid):
    assert paid_seat(BY_NAME[name]) is paid


def test_a_member_without_an_email_or_a_shape_holds_no_seat_and_an_unknown_role_does():
    assert not paid_seat({**BY_NAME["Alex"], "email": " "})
    assert not paid_seat("Alex")
    assert paid_seat({**BY_NAME["Alex"], "role": "billing-viewer"})  # unknown: counted, never $0
    assert paid_seat({key: v for key, v in BY_NAME["Alex"].items() if key not in ("role", "isRemoved")})
    assert not paid_seat({**BY_NAME["Robin"], "role": "FREE-OWNER"})


def test_seat_rows_cost_the_monthly_price_spread_over_the_month():
    rows = seat_rows([*MEMBERS, BY_NAME["Alex"]], MARCH_4, Decimal("40"))  # Alex listed twice: one seat
    assert {r.actor for r in rows} == PAID and len(rows) == 3
    assert {(r.kind, r.cost_basis, r.model, r.cost.raw_unit, r.in_org_total) for r in rows} == {
        (SEAT, "estimated", SEAT_MODEL, SEAT_UNIT, True)
    }
    # The days of March add up to exactly $40 a seat; a day's raw amount is its USD.
    days = [MARCH_4.replace(day=n) for n in range(1, 32)]
    month = [seat_rows(MEMBERS, day, Decimal("40"))[0].cost for day in days]
    assert sum(m.micros for m in month) == 40_000_000
    assert {Decimal(m.raw_amount) * 1_000_000 == m.micros for m in month} == {True}


def test_seats_go_with_the_window_holding_today_and_batches_keep_earlier_seats(httpserver):
    serve_cursor(httpserver, members="members_seats.json")
    connector = cursor_connector(httpserver)
    connector.today = lambda: MARCH_4
    held = list(connector.fetch(SINCE, MARCH_4 + timedelta(days=1)))
    assert [r.actor for b in held for r in b.usage if r.kind == SEAT] == sorted(PAID)
    assert {r.day for b in held for r in b.usage if r.kind == SEAT} == {MARCH_4}
    assert {b.complete_kinds for b in held} == {frozenset({USAGE})}
    # A window without today (a backfill of past days): the member list says nothing of them.
    past = list(cursor_connector(httpserver).fetch(SINCE, MARCH_4))
    assert [r for b in past for r in b.usage if r.kind == SEAT] == []


SEAT_COLUMNS = (UsageDaily.day, UsageDaily.actor, UsageDaily.cost_micros, UsageDaily.raw_amount)
SEAT_LABELS = (UsageDaily.raw_unit, UsageDaily.cost_basis, UsageDaily.in_org_total, Person.email)


def _seats(engine) -> list[tuple]:
    """The stored seat rows, each with its holder's email, by day and actor."""
    query = select(*SEAT_COLUMNS, *SEAT_LABELS).join(Person, Person.id == UsageDaily.person_id)
    query = query.where(UsageDaily.kind == SEAT).order_by(UsageDaily.day, UsageDaily.actor)
    with engine.connect() as conn:
        return conn.execute(query).all()


def _org_total(engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.sum(UsageDaily.cost_micros)).where(UsageDaily.in_org_total.is_(True))
            ).scalar()
        )


CHARGED = {n: cursor_fixture(f"events_charged_page{n}.json") for n in (1, 2)}
SPEND = {1: cursor_fixture("spend_current.json")}


def _usage(engine) -> dict[str, int]:
    """The stored usage (not seat) micro-USD per cost basis."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(UsageDaily.cost_basis, func.sum(UsageDaily.cost_micros))
            .where(UsageDaily.kind == USAGE)
            .group_by(UsageDaily.cost_basis)
        ).all()
    return {basis: int(total) for basis, total in rows}


def test_synced_seats_are_stored_once_kept_and_not_reconciled(engine, httpserver):
    serve_cursor(httpserver, members="members_seats.json", events=CHARGED, spend=SPEND)
    sync_cursor_days(engine, httpserver, [(SINCE, MARCH_4)])
    day = 40_000_000 * 4 // 31 - 40_000_000 * 3 // 31  # March 4th of $40 over 31 days, in micro-USD
    first = _seats(engine)
    assert day == 1_290_323 and first == [
        (MARCH_4, actor, day, "1.290323", SEAT_UNIT, "estimated", True, actor.removeprefix("email:"))
        for actor in sorted(PAID)
    ]
    # The org total: the chargeable events plus the seats; included usage (the seat pays for it)
    # is stored, as an estimate, and not counted again.
    usage = _usage(engine)
    billed = usage["billed"]
    assert usage["estimated"] > 0 and _org_total(engine) == billed + 3 * day

    # Re-syncing the same days (the next hourly run) changes nothing.
    sync_cursor_days(engine, httpserver, [(SINCE, MARCH_4)])
    assert _seats(engine) == first and _org_total(engine) == billed + 3 * day

    # The next day the list has other members: yesterday's seats stay, today's are the new list's.
    httpserver.clear_all_handlers()
    serve_cursor(httpserver, events=CHARGED, spend=SPEND)  # members.json: Alice, Bob, Carol (free-owner)
    sync_cursor_days(engine, httpserver, [(MARCH_4 - timedelta(days=1), MARCH_4 + timedelta(days=1))])
    later = _seats(engine)
    assert later[:3] == first
    assert [(r[0], r[1]) for r in later[3:]] == [
        (MARCH_4 + timedelta(days=1), "email:alice@example.com"),
        (MARCH_4 + timedelta(days=1), "email:bob@example.com"),
    ]

    # Cursor's spend (on-demand, and on-demand plus included) is compared with its usage only.
    with engine.connect() as conn:
        checks = reconcile.checks(conn, workspace_id="default", start=SINCE, end=TODAY + timedelta(days=2))
    usage = _usage(engine)
    assert {c.what: c.attributed_micros for c in checks} == {
        "billed": usage["billed"],
        "billed_and_estimated": usage["billed"] + usage["estimated"],
    }
