"""A stored Copilot seat list for the seat ledger tests (services and Slack).

Seat rows are what ``GitHubCopilotConnector.seat_costs`` stores: one estimated ``kind="seat"``
row per seat and day. Today ``T``; the latest seat list is for ``T - 1``:

  holder  Slack   seat since   last use      expected
  ana     UANA    T - 90       T - 2         active
  ben     UBEN    T - 90       T - 40        reassignable (30+), not reducible (< 60)
  chen    -       T - 90       never         reassignable and reducible; nobody to DM
  dana    UDANA   T - 10       never         neither (a new seat)
  erin    -       T - 90..T-6  -             not paid: left the seat list
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from bot.db import rollups
from bot.db.models import ActivityDaily, Person, UsageDaily

W = "default"
SEAT_MICROS = 612_903  # $19 a month over 31 days


def _person(conn, name: str, slack_id: str | None) -> int:
    conn.execute(
        Person.__table__.insert().values(
            workspace_id=W, email=f"{name}@example.com", slack_user_id=slack_id, display_name=name.title()
        )
    )
    return conn.execute(select(Person.id).where(Person.email == f"{name}@example.com")).scalar_one()


def _seat_days(conn, pid: int, login: str, first: date, last: date) -> None:
    rows = []
    day = first
    while day <= last:
        rows.append(
            dict(
                workspace_id=W,
                source="github_copilot",
                vendor="github_copilot",
                day=day,
                actor=f"github:{login}",
                person_id=pid,
                model="copilot-business",
                cost_basis="estimated",
                kind="seat",
                cost_micros=SEAT_MICROS,
                raw_amount="0.612903",
                raw_unit="estimate:copilot-seat-list-price",
                in_org_total=True,
            )
        )
        day += timedelta(days=1)
    conn.execute(UsageDaily.__table__.insert(), rows)


def _used(conn, pid: int, login: str, day: date) -> None:
    conn.execute(
        ActivityDaily.__table__.insert().values(
            workspace_id=W,
            source="github_copilot",
            vendor="github_copilot",
            day=day,
            actor=f"github:{login}",
            person_id=pid,
            lines_accepted=12,
            acceptances=3,
        )
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
            ids[name] = _person(conn, name, slack_id)
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
