"""The seat ledger with Cursor beside GitHub Copilot: Cursor's seats synced through the loopback
Admin API, its four figures from Cursor's own activity (a Copilot user idle in Cursor is idle
there), its renewal on the billing cycle's day, a re-sync counting nothing twice, and a reclaim.
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from bot.db.models import UsageDaily
from bot.domain.records import SEAT
from bot.services.seats_ledger import CLAIMED, load_ledger
from tests.support.cursor_admin import serve_cursor_team, sync_cursor_days
from tests.support.value import W, claim_seat, seed_seats

TODAY = date(2026, 12, 3)
FIRST_SEEN = TODAY - timedelta(days=63)  # the first sync that saw the member list
RUNS = [(FIRST_SEEN, FIRST_SEEN), (date(2026, 10, 15), TODAY)]  # the second reads Oct 15 onwards


def _ledger(engine, **kw):
    values = dict(workspace_id=W, today=TODAY, idle_days=30, reduce_days=60, renewals={})
    with engine.connect() as conn:
        return load_ledger(conn, **{**values, **kw})


def _seat_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(UsageDaily.kind == SEAT)).scalar_one()


def test_cursor_and_copilot_each_have_their_four_figures(engine, httpserver):
    ids = seed_seats(engine, TODAY)
    serve_cursor_team(httpserver)
    sync_cursor_days(engine, httpserver, RUNS)
    cursor, copilot = _ledger(engine).vendors
    assert (cursor.vendor, copilot.vendor) == ("cursor", "github_copilot")
    # Ana (owner), Dana and Gus (members); not Ben (Unpaid Admin) nor Erin (removed).
    assert [s.actor for s in sorted(cursor.seats, key=lambda s: s.actor)] == [
        "email:ana@example.com",
        "email:dana@example.com",
        "email:gus@example.com",
    ]
    assert cursor.as_of == TODAY and cursor.paid == 3 and not cursor.stale
    assert cursor.active == 1  # Dana, two days ago in Cursor's daily usage
    # Gus never used it (63 days since first seen); Ana last on Oct 20 (44 days), though she used
    # Copilot two days ago: each vendor's seat by its own activity.
    assert [(s.actor, s.idle_days(TODAY)) for s in cursor.reassignable] == [
        ("email:gus@example.com", 63),
        ("email:ana@example.com", 44),
    ]
    assert cursor.reducible == 1  # Gus: unused 60+ days
    assert cursor.renewal == date(2026, 12, 15)  # the cycle started on Nov 15 (subscriptionCycleStart)
    # The seats are the existing people's, joined by email (Dana's name in Cursor is not needed).
    assert {s.person_id for s in cursor.seats} >= {ids["ana"], ids["dana"]}
    # Copilot's figures are what they were without Cursor.
    assert (copilot.paid, copilot.active, copilot.reducible) == (4, 1, 1)
    assert [s.person_id for s in copilot.reassignable] == [ids["chen"], ids["ben"]]
    assert copilot.renewal == date(2027, 1, 1)
    # A configured renewal wins over the cycle.
    configured = _ledger(engine, renewals={"cursor": date(2027, 3, 1)}).vendors[0]
    assert configured.renewal == date(2027, 3, 1)


def test_resyncing_counts_no_seat_twice(engine, httpserver):
    seed_seats(engine, TODAY)
    serve_cursor_team(httpserver)
    sync_cursor_days(engine, httpserver, RUNS)
    rows, ledger = _seat_rows(engine), _ledger(engine)
    sync_cursor_days(engine, httpserver, RUNS[1:] * 2)  # the next hourly runs, same day
    assert _seat_rows(engine) == rows and _ledger(engine) == ledger


def test_a_cursor_seat_is_reclaimed_from_its_holder(engine, httpserver):
    ids = seed_seats(engine, TODAY)
    serve_cursor_team(httpserver)
    sync_cursor_days(engine, httpserver, RUNS)

    def claim(actor: str):
        return claim_seat(engine, "cursor", actor, TODAY)

    ana = claim("email:ana@example.com")
    assert ana.status == CLAIMED and ana.holder.id == ids["ana"] and ana.idle == 44
    assert claim("email:dana@example.com").status == "in_use"
    assert claim("email:ben@example.com").status == "no_seat"  # an Unpaid Admin holds none
