"""Recap subscriptions: ``/tokens recap`` arguments, the ``recap_subscription`` rows, and when
each one is due.

A subscription posts the recap of a team (a user group, or a channel's members) into a channel
on a weekday at a local time. A recap scheduled on local date D covers the seven days
``[D - 7, D)``; its week (the delivery ledger's ``week_start``) is the Monday of D's week in the
org's timezone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, select, update

from bot.db.models import RecapDelivery, RecapSubscription, RecapVote, as_utc
from bot.db.upsert import insert_for
from bot.services import mentions, privacy, teams
from bot.services.commands import CommandError

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_WORDS = {name[:n]: i for i, name in enumerate(DAY_NAMES) for n in (3, 4, len(name))} | {
    "tues": 1,
    "thur": 3,
    "thurs": 3,
}
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
SKIP_EMPTY = ("skip-empty", "quiet")
_WHAT = {
    "channel_id": "channel",
    "group_id": "user group",
    "weekday": "day",
    "local_time": "time",
    "post_when_empty": "`skip-empty`",
}


@dataclass(frozen=True)
class RecapRequest:
    """``/tokens recap`` arguments after parsing; None where the user gave nothing."""

    channel_id: str | None = None
    channel_name: str = ""
    group_id: str | None = None
    group_name: str = ""
    weekday: int | None = None
    local_time: str | None = None
    post_when_empty: bool | None = None


def parse_time(token: str) -> str | None:
    match = _TIME.match(token.strip().lower())
    if not match:
        return None
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    elif match.group(2) is None:
        return None  # a bare "9" could be a day of the month: ask for 9:00 or 9am
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def parse_request(args: Sequence[str], *, usage: str, schedule: bool) -> RecapRequest:
    """Channel, group and (with ``schedule``) day, time and ``skip-empty``, in any order."""
    found: dict = {}
    for token in args:
        word = token.lower()
        mention = mentions.parse_mention(token)
        if mention is not None and mention.kind == mentions.CHANNEL:
            key, value = "channel_id", mention.id
            found["channel_name"] = mention.label
        elif mention is not None and mention.kind == mentions.USERGROUP:
            key, value = "group_id", mention.id
            found["group_name"] = mention.label
        elif schedule and word in _DAY_WORDS:
            key, value = "weekday", _DAY_WORDS[word]
        elif schedule and (at := parse_time(word)):
            key, value = "local_time", at
        elif schedule and word in SKIP_EMPTY:
            key, value = "post_when_empty", False
        else:
            what = (
                "a channel, a user group, a day, a time or `skip-empty`"
                if schedule
                else "a channel or a user group"
            )
            hint = " Times are like `09:00` or `9am`." if schedule and any(c.isdigit() for c in word) else ""
            raise CommandError(f"I could not read `{token[:50]}`: I expected {what}.{hint}", usage)
        if key in found:
            raise CommandError(f"`{token[:50]}`: give at most one {_WHAT[key]}.", usage)
        found[key] = value
    return RecapRequest(**found)


def schedule_text(sub: RecapSubscription) -> str:
    return f"{DAY_NAMES[sub.weekday].capitalize()}s at {sub.local_time}"


def _subscription(row) -> RecapSubscription:
    # SQLite hands back naive datetimes: due_week compares created_at with aware moments.
    return RecapSubscription.model_validate({**row._mapping, "created_at": as_utc(row.created_at)})


def list_subscriptions(conn: Connection, *, workspace_id: str | None = None) -> list[RecapSubscription]:
    query = select(RecapSubscription).order_by(RecapSubscription.id)
    if workspace_id is not None:
        query = query.where(RecapSubscription.workspace_id == workspace_id)
    return [_subscription(r) for r in conn.execute(query).all()]


def get_subscription(
    conn: Connection, *, workspace_id: str, channel_id: str, group_id: str
) -> RecapSubscription | None:
    row = conn.execute(
        select(RecapSubscription).where(
            RecapSubscription.workspace_id == workspace_id,
            RecapSubscription.channel_id == channel_id,
            RecapSubscription.group_id == group_id,
        )
    ).first()
    return _subscription(row) if row else None


def subscribe(
    conn: Connection,
    *,
    workspace_id: str,
    channel_id: str,
    group_id: str,
    weekday: int,
    local_time: str,
    post_when_empty: bool,
    created_by: str,
    now: datetime | None = None,
) -> tuple[RecapSubscription, bool]:
    """Create or reschedule (same channel and group); True when it is new."""
    existing = get_subscription(conn, workspace_id=workspace_id, channel_id=channel_id, group_id=group_id)
    values = {"weekday": weekday, "local_time": local_time, "post_when_empty": post_when_empty}
    if existing is not None:
        conn.execute(update(RecapSubscription).where(RecapSubscription.id == existing.id).values(**values))
    else:
        conn.execute(
            insert_for(conn, RecapSubscription.__table__)
            .values(
                workspace_id=workspace_id,
                channel_id=channel_id,
                group_id=group_id,
                created_by=created_by,
                created_at=now or datetime.now(UTC),
                **values,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "channel_id", "group_id"])
        )
    sub = get_subscription(conn, workspace_id=workspace_id, channel_id=channel_id, group_id=group_id)
    assert sub is not None
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=created_by,
        action="recap.subscribe",
        target=f"channel:{channel_id}",
        detail=f"group={group_id or '-'} {schedule_text(sub)}" + ("" if post_when_empty else " skip-empty"),
    )
    return sub, existing is None


def unsubscribe(
    conn: Connection, *, workspace_id: str, channel_id: str, group_id: str, actor_user_id: str
) -> bool:
    """Remove the subscription with its ledger and votes (they only make sense with it)."""
    sub = get_subscription(conn, workspace_id=workspace_id, channel_id=channel_id, group_id=group_id)
    if sub is None:
        return False
    deliveries = select(RecapDelivery.id).where(RecapDelivery.subscription_id == sub.id)
    conn.execute(delete(RecapVote).where(RecapVote.delivery_id.in_(deliveries)))
    conn.execute(delete(RecapDelivery).where(RecapDelivery.subscription_id == sub.id))
    conn.execute(delete(RecapSubscription).where(RecapSubscription.id == sub.id))
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="recap.unsubscribe",
        target=f"channel:{channel_id}",
        detail=f"group={group_id or '-'}",
    )
    return True


def can_manage(
    conn: Connection, *, workspace_id: str, user_id: str, is_admin: bool, kind: str, slack_id: str
) -> bool:
    """Admins, and the managers of the team the recap covers, (un)subscribe it."""
    if is_admin:
        return True
    return any(
        t.kind == kind and t.slack_id == slack_id
        for t in teams.managed_teams(conn, workspace_id=workspace_id, slack_user_id=user_id)
    )


# -- the schedule --------------------------------------------------------------------------------


def scheduled_at(sub: RecapSubscription, monday: date, tz: ZoneInfo) -> datetime:
    hour, minute = (int(part) for part in sub.local_time.split(":"))
    return datetime.combine(monday + timedelta(days=sub.weekday), time(hour, minute), tzinfo=tz)


def due_week(sub: RecapSubscription, now: datetime, tz: ZoneInfo) -> date | None:
    """The Monday (local) of the week whose recap is due now, or None.

    Due from the scheduled moment to the end of that local week: a bot that was down at 09:00
    catches up when it comes back the same week; after the week it is too late (the next
    week's recap covers the days anyway). A subscription made after this week's moment starts
    next week, rather than posting minutes after ``subscribe``."""
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    moment = scheduled_at(sub, monday, tz)
    if now < moment or sub.created_at > moment:
        return None
    return monday


def next_run(sub: RecapSubscription, now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    moment = scheduled_at(sub, monday, tz)
    return moment if moment > now else scheduled_at(sub, monday + timedelta(days=7), tz)


def recap_end(sub: RecapSubscription, monday: date) -> date:
    """The recap covers the seven days before its scheduled day."""
    return monday + timedelta(days=sub.weekday)
