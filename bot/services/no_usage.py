"""Why a person sees no AI spend, and what to do next: the Slack email that was matched (or that
there is none), whether any vendor account was ever attributed to them, which sources are
connected and healthy. ``/tokens me`` and the App Home show it instead of a bare "$0.00".

Three cases, told apart because their next steps differ:

- ``NO_EMAIL``: no person is linked to the Slack user and Slack shows no email for them (a
  guest, a hidden email, a lookup that failed), so nothing can be matched: an admin links them.
- ``NO_MATCH``: no vendor row was ever attributed to the person (matched by the email, or linked
  by Slack id with no email on record): the vendor account uses another email (an admin links
  it) or is a GitHub login (claim it).
- ``NONE_IN_PERIOD``: usage is linked, just none in the period asked (with the last day seen).

Only the person's own identities are listed, and only to them. Data only;
``bot/slack/blocks/no_usage.py`` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, func, select

from bot.db.models import ActivityDaily, Identity, UsagePersonDaily
from bot.services.status import source_statuses

NO_EMAIL = "no_email"
NO_MATCH = "no_match"
NONE_IN_PERIOD = "none_in_period"
MAX_IDENTITIES = 10


@dataclass(frozen=True)
class ConnectedSource:
    name: str
    healthy: bool
    last_success_at: datetime | None


@dataclass(frozen=True)
class NoUsage:
    reason: str
    email: str | None  # the email matched (None: Slack shows none, or the linked person has none)
    identities: list[str]  # the person's vendor actors (``github:ana``), theirs to see
    sources: list[ConnectedSource]  # the enabled sources, whether their last sync succeeded
    last_day: date | None = None  # NONE_IN_PERIOD: the last day with usage or activity

    @property
    def failing(self) -> list[str]:
        return [s.name for s in self.sources if not s.healthy]


def connected_sources(
    conn: Connection, *, workspace_id: str, enabled: dict[str, timedelta]
) -> list[ConnectedSource]:
    return [
        ConnectedSource(s.source, s.healthy, s.last_success_at)
        for s in source_statuses(conn, workspace_id=workspace_id, enabled=enabled)
        if s.enabled
    ]


def last_seen(conn: Connection, *, workspace_id: str, person_id: int) -> date | None:
    """The last day any usage or activity row is attributed to the person (None: never)."""
    days = [
        conn.execute(
            select(func.max(table.day)).where(
                table.workspace_id == workspace_id, table.person_id == person_id
            )
        ).scalar_one_or_none()
        for table in (UsagePersonDaily, ActivityDaily)
    ]
    found = [day for day in days if day is not None]
    return max(found) if found else None


def explain_no_usage(
    conn: Connection,
    *,
    workspace_id: str,
    email: str | None,
    person_id: int | None,
    enabled: dict[str, timedelta],
) -> NoUsage:
    """Why ``person_id`` (None: no person could be matched) shows no usage."""
    sources = connected_sources(conn, workspace_id=workspace_id, enabled=enabled)
    if person_id is None:
        return NoUsage(NO_EMAIL if not email else NO_MATCH, email, [], sources)
    # A person linked by Slack id is matched already, email or not: never "Slack shows no email"
    # (Slack may well show one), but what is linked to them and when it was last used.
    identities = list(
        conn.execute(
            select(Identity.actor)
            .where(Identity.workspace_id == workspace_id, Identity.person_id == person_id)
            .order_by(Identity.actor)
            .limit(MAX_IDENTITIES)
        ).scalars()
    )
    day = last_seen(conn, workspace_id=workspace_id, person_id=person_id)
    return NoUsage(NO_MATCH if day is None else NONE_IN_PERIOD, email, identities, sources, day)
