"""The seat ledger's four figures from stored seat rows, the renewal date, and the reclaim
ledger's claim (admins only, once per seat, a failed DM claimable again). SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from bot.db.models import SeatReclaim
from bot.services import privacy
from bot.services.seats_ledger import (
    CLAIMED,
    FAILED,
    finish_reclaim,
    load_ledger,
    next_renewal,
)
from tests.support.value import W, claim_seat, seed_seats

TODAY = date(2026, 12, 3)


def _ledger(engine, **kw):
    values = dict(workspace_id=W, today=TODAY, idle_days=30, reduce_days=60, renewals={})
    with engine.connect() as conn:
        return load_ledger(conn, **{**values, **kw})


def test_four_figures_per_vendor(engine):
    ids = seed_seats(engine, TODAY)
    ledger = _ledger(engine)
    [copilot] = ledger.vendors
    assert copilot.vendor == "github_copilot" and copilot.as_of == TODAY - timedelta(days=1)
    assert copilot.paid == 4  # erin left the seat list
    assert copilot.active == 1  # ana, in the last 7 days
    assert [s.person_id for s in copilot.reassignable] == [ids["chen"], ids["ben"]]  # most idle first
    assert copilot.reducible == 1  # chen: 90 days unused; ben only 40
    assert copilot.renewal == date(2027, 1, 1) and not copilot.stale
    assert set(ledger.people) == {ids[n] for n in ("ana", "ben", "chen", "dana")}
    # Longer thresholds: nothing reassignable; a stale seat list says so.
    longer = _ledger(engine, idle_days=100, reduce_days=100).vendors[0]
    assert (len(longer.reassignable), longer.reducible) == (0, 0)
    assert _ledger(engine, today=TODAY + timedelta(days=30)).vendors[0].stale


def test_no_seats_no_vendors(engine):
    assert _ledger(engine).vendors == []


def test_next_renewal_configured_or_monthly():
    assert next_renewal("github_copilot", date(2026, 12, 3), {}) == date(2027, 1, 1)
    assert next_renewal("cursor", date(2026, 11, 30), {}) == date(2026, 12, 1)
    assert next_renewal("cursor", date(2026, 12, 3), {"cursor": date(2027, 3, 1)}) == date(2027, 3, 1)
    assert next_renewal("cursor", date(2026, 12, 3), {"cursor": date(2025, 3, 1)}) == date(2027, 3, 1)
    # A stored billing cycle: monthly on its day, the month's last day when the month is shorter.
    assert next_renewal("cursor", date(2026, 12, 3), {}, date(2026, 11, 15)) == date(2026, 12, 15)
    assert next_renewal("cursor", date(2026, 12, 15), {}, date(2026, 11, 15)) == date(2027, 1, 15)
    assert next_renewal("cursor", date(2027, 1, 31), {}, date(2026, 12, 31)) == date(2027, 2, 28)
    configured = {"cursor": date(2027, 3, 1)}
    assert next_renewal("cursor", date(2026, 12, 3), configured, date(2026, 11, 15)) == date(2027, 3, 1)


def _claim(engine, actor: str, *, admin: bool = True, by: str = "UADMIN"):
    return claim_seat(engine, "github_copilot", actor, TODAY, admin=admin, by=by)


def _rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(SeatReclaim.actor, SeatReclaim.status, SeatReclaim.recipient)).all()


def test_reclaim_is_claimed_once_by_an_admin_and_a_failed_dm_again(engine):
    seed_seats(engine, TODAY)
    assert _claim(engine, "github:ben", admin=False, by="UANA").status == "refused"
    assert _rows(engine) == []
    first = _claim(engine, "github:ben")
    assert first.status == CLAIMED and first.holder.slack_user_id == "UBEN" and first.idle == 40
    assert _claim(engine, "github:ben").status == "asked"  # a second click, or another admin
    with engine.begin() as conn:
        finish_reclaim(conn, reclaim_id=first.reclaim_id, status=FAILED, error="channel_not_found")
    again = _claim(engine, "github:ben")
    assert again.status == CLAIMED and again.reclaim_id == first.reclaim_id
    assert _claim(engine, "github:ben").status == "asked"
    assert _rows(engine) == [("github:ben", CLAIMED, "UBEN")]


def test_reclaim_refuses_seats_in_use_unknown_or_without_a_slack_holder(engine):
    ids = seed_seats(engine, TODAY)
    assert _claim(engine, "github:ana").status == "in_use"
    assert _claim(engine, "github:dana").status == "in_use"  # a new seat, 10 days old
    assert _claim(engine, "github:erin").status == "no_seat"
    assert _claim(engine, "github:nobody").status == "no_seat"
    assert _claim(engine, "github:chen").status == "no_holder"
    assert _rows(engine) == []
    # Forgetting a person deletes the record of having asked them.
    assert _claim(engine, "github:ben").status == CLAIMED
    with engine.begin() as conn:
        privacy.forget_person(conn, workspace_id=W, person_id=ids["ben"], actor_user_id="UADMIN")
    assert _rows(engine) == []
