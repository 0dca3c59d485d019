"""Rows for the value-in-money tests (cost per PR, baseline, seats), written as the connectors
store them: people, usage and seat rows, activity, merged pull requests.

``seed_seats`` stores a Copilot seat list as ``GitHubCopilotConnector.seat_costs`` does (one
estimated ``kind="seat"`` row per seat and day). Today ``T``; the latest seat list is for ``T - 1``:

  holder  Slack   seat since   last use      expected
  ana     UANA    T - 90       T - 2         active
  ben     UBEN    T - 90       T - 40        reassignable (30+), not reducible (< 60)
  chen    -       T - 90       never         reassignable and reducible; nobody to DM
  dana    UDANA   T - 10       never         neither (a new seat)
  erin    -       T - 90..T-6  -             not paid: left the seat list
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from bot.db import rollups
from bot.db.models import Person, PullRequest, UsageDaily
from bot.services.seats_ledger import claim_reclaim
from tests.factories import add_activity

W = "default"
SEAT_MICROS = 612_903  # $19 a month over 31 days


def add_person(conn, name: str, slack_id: str | None = None) -> int:
    conn.execute(
        Person.__table__.insert().values(
            workspace_id=W, email=f"{name}@example.com", slack_user_id=slack_id, display_name=name.title()
        )
    )
    return conn.execute(select(Person.id).where(Person.email == f"{name}@example.com")).scalar_one()


def add_usage(
    conn,
    pid: int,
    day: date,
    micros: int,
    *,
    vendor: str = "openai",
    kind: str = "usage",
    model: str = "gpt-5",
    in_org: bool = True,
    actor: str | None = None,
) -> None:
    conn.execute(
        UsageDaily.__table__.insert().values(
            workspace_id=W,
            source=vendor,
            vendor=vendor,
            day=day,
            actor=actor or f"{vendor}_user:{pid}",
            person_id=pid,
            model=model,
            cost_basis="estimated" if kind == "seat" else "billed",
            kind=kind,
            cost_micros=micros,
            raw_amount="0",
            raw_unit="usd",
            in_org_total=in_org,
        )
    )


def insert_pr(
    conn, pid: int, number: int, opened_at: datetime, merged_at: datetime, *, actor: str, **more
) -> None:
    """A merged PR of ``acme/api`` on GitHub by person ``pid``; ``more`` sets other columns."""
    conn.execute(
        PullRequest.__table__.insert().values(
            workspace_id=W,
            source="github_delivery",
            repo="acme/api",
            number=number,
            actor=actor,
            person_id=pid,
            opened_at=opened_at,
            merged_at=merged_at,
            **{"ai_confidence": "none", "ai_rule": "", **more},
        )
    )


def add_merged_pr(conn, pid: int, number: int, opened: date, merged: date) -> None:
    """A PR opened at 09:00 and merged at 17:00 UTC on those days."""
    opened_at = datetime(opened.year, opened.month, opened.day, 9, tzinfo=UTC)
    insert_pr(
        conn,
        pid,
        number,
        opened_at,
        datetime(merged.year, merged.month, merged.day, 17, tzinfo=UTC),
        actor=f"github:{pid}",
    )


def _seat_days(conn, pid: int, login: str, first: date, last: date) -> None:
    day = first
    while day <= last:
        add_usage(
            conn,
            pid,
            day,
            SEAT_MICROS,
            vendor="github_copilot",
            kind="seat",
            model="copilot-business",
            actor=f"github:{login}",
        )
        day += timedelta(days=1)


def _used(conn, pid: int, login: str, day: date) -> None:
    add_activity(
        conn,
        pid,
        day,
        workspace_id=W,
        vendor="github_copilot",
        actor=f"github:{login}",
        lines_accepted=12,
        acceptances=3,
        rebuild=False,
    )


def seed_seats(engine, today: date) -> dict[str, int]:
    ids = {}
    with engine.begin() as conn:
        for name, slack_id in (
            ("ana", "UANA"),
            ("ben", "UBEN"),
            ("chen", None),
            ("dana", "UDANA"),
            ("erin", None),
        ):
            ids[name] = add_person(conn, name, slack_id)
        latest = today - timedelta(days=1)
        for name in ("ana", "ben", "chen"):
            _seat_days(conn, ids[name], name, today - timedelta(days=90), latest)
        _seat_days(conn, ids["dana"], "dana", today - timedelta(days=10), latest)
        _seat_days(conn, ids["erin"], "erin", today - timedelta(days=90), today - timedelta(days=6))
        _used(conn, ids["ana"], "ana", today - timedelta(days=2))
        _used(conn, ids["ben"], "ben", today - timedelta(days=40))
        _used(conn, ids["erin"], "erin", today - timedelta(days=7))
        rollups.rebuild(conn)
    return ids


def claim_seat(engine, vendor: str, actor: str, today: date, *, admin: bool = True, by: str = "UADMIN"):
    """An admin's (or, with ``admin=False``, a member's) Reclaim click on ``vendor``'s seat."""
    with engine.begin() as conn:
        return claim_reclaim(
            conn,
            workspace_id=W,
            vendor=vendor,
            actor=actor,
            requested_by=by,
            is_admin=admin,
            today=today,
            idle_days=30,
        )
