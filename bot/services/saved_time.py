"""What people say AI saved them: an opt-in, one-tap question after an AI-assisted PR merges.

The measured figures (accepted lines, AI-assisted merged PRs) say what was produced, not what it
was worth to the person; this asks them, lightly: at most one DM a day per person, only after
they opt in (``/tokens saved on``), snoozable, one answer per PR (a second tap changes it).
Answers are the person's own: only counts per bucket over at least the minimum group of people
who answered reach a channel (the recap's rule, ``bot.services.recap.saved_rules``).

A question is asked about a PR the code host marked AI-assisted with high confidence (a
co-author trailer, a "Generated with" line, an AI label, a coding agent as author:
bot/domain/ai_rules.py), merged since the person opted in and within the last
``LOOKBACK_DAYS``. Its ledger row (unique per PR, and per person and local day) is claimed
before the DM is sent, so replicas and restarts ask once. docs/value.md.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, update

from bot.db.models import Person, PullRequest, SavedTimeAsk, SavedTimePref, as_utc
from bot.db.upsert import insert_for
from bot.domain.ai_rules import HIGH

#: The answers, in the order of the buttons: key -> label.
BUCKETS: dict[str, str] = {
    "nothing": "Nothing",
    "under_30m": "Under 30 min",
    "30m_2h": "30 min–2 h",
    "more": "More than 2 h",
}
NOTHING = "nothing"
LOOKBACK_DAYS = 7  # a PR merged longer ago than this is not asked about: memory fades
MAX_SNOOZE_DAYS = 90
BUTTON_SNOOZE_DAYS = 7  # the DM's own "Snooze" button

CLAIMED, SENT, FAILED = "claimed", "sent", "failed"


# -- the opt-in ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pref:
    opted_in: bool = False
    snoozed_until: datetime | None = None

    def snoozed(self, now: datetime) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > now


def get_pref(conn: Connection, *, workspace_id: str, person_id: int) -> Pref:
    row = conn.execute(
        select(SavedTimePref.opted_in, SavedTimePref.snoozed_until).where(
            SavedTimePref.workspace_id == workspace_id, SavedTimePref.person_id == person_id
        )
    ).first()
    return Pref(bool(row[0]), as_utc(row[1]) if row[1] else None) if row else Pref()


def set_pref(
    conn: Connection,
    *,
    workspace_id: str,
    person_id: int,
    now: datetime,
    on: bool | None = None,
    snooze_days: int | None = None,
) -> Pref:
    """Turn the questions on or off (``on``), or snooze them for ``snooze_days`` (0 ends a
    snooze). Turning them on asks about PRs merged from now on, never about older ones."""
    before = get_pref(conn, workspace_id=workspace_id, person_id=person_id)
    values: dict = {"updated_at": now}
    if on is not None:
        values["opted_in"] = on
        values["snoozed_until"] = None
        if on and not before.opted_in:
            values["opted_in_at"] = now
    if snooze_days is not None:
        values["snoozed_until"] = now + timedelta(days=snooze_days) if snooze_days else None
    stmt = insert_for(conn, SavedTimePref.__table__).values(
        workspace_id=workspace_id,
        person_id=person_id,
        opted_in=values.get("opted_in", False),
        opted_in_at=values.get("opted_in_at"),
        snoozed_until=values.get("snoozed_until"),
        updated_at=now,
    )
    conn.execute(stmt.on_conflict_do_update(index_elements=["workspace_id", "person_id"], set_=values))
    return get_pref(conn, workspace_id=workspace_id, person_id=person_id)


# -- the questions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DueAsk:
    person_id: int
    recipient: str  # Slack user id
    repo: str
    number: int
    merged_at: datetime


def local_day(now: datetime, tz: ZoneInfo) -> date:
    """ "One a day" is the org's day, not the UTC one."""
    return now.astimezone(tz).date()


def due_asks(conn: Connection, *, workspace_id: str, now: datetime, tz: ZoneInfo) -> list[DueAsk]:
    """For each person who opted in, is not snoozed and was not asked today: their oldest
    AI-assisted PR merged since they opted in (and within ``LOOKBACK_DAYS``) not yet asked about."""
    rows = conn.execute(
        select(
            SavedTimePref.person_id,
            SavedTimePref.opted_in_at,
            SavedTimePref.snoozed_until,
            Person.slack_user_id,
        )
        .join(Person, Person.id == SavedTimePref.person_id)
        .where(
            SavedTimePref.workspace_id == workspace_id,
            SavedTimePref.opted_in.is_(True),
            Person.forgotten_at.is_(None),
            Person.slack_user_id.is_not(None),
        )
    ).all()
    today = local_day(now, tz)
    asked_today = set(
        conn.execute(
            select(SavedTimeAsk.person_id).where(
                SavedTimeAsk.workspace_id == workspace_id, SavedTimeAsk.ask_day == today
            )
        ).scalars()
    )
    since = {
        pid: max(as_utc(opted_at) if opted_at else now, now - timedelta(days=LOOKBACK_DAYS))
        for pid, opted_at, snoozed, _ in rows
        if pid not in asked_today and not (snoozed and as_utc(snoozed) > now)
    }
    if not since:
        return []
    slack_ids = {pid: slack for pid, _, _, slack in rows}
    asked = select(SavedTimeAsk.id).where(
        SavedTimeAsk.workspace_id == workspace_id,
        SavedTimeAsk.repo == PullRequest.repo,
        SavedTimeAsk.number == PullRequest.number,
    )
    prs = conn.execute(
        select(PullRequest.person_id, PullRequest.repo, PullRequest.number, PullRequest.merged_at)
        .where(
            PullRequest.workspace_id == workspace_id,
            PullRequest.person_id.in_(sorted(since)),
            PullRequest.ai_confidence == HIGH,
            PullRequest.merged_at >= min(since.values()),
            PullRequest.merged_at <= now,
            ~asked.exists(),
        )
        .order_by(PullRequest.merged_at, PullRequest.repo, PullRequest.number)
    ).all()
    due: dict[int, DueAsk] = {}
    for pid, repo, number, merged_at in prs:
        merged_at = as_utc(merged_at)
        if pid not in due and merged_at >= since[pid]:
            due[pid] = DueAsk(pid, slack_ids[pid], repo, int(number), merged_at)
    return [due[pid] for pid in sorted(due)]


def claim_ask(conn: Connection, *, workspace_id: str, ask: DueAsk, now: datetime, tz: ZoneInfo) -> int | None:
    """Insert the ledger row BEFORE the DM; its id only for the claimer. The row is unique per
    PR and per person and day, so neither a replica nor a second PR that day gets one."""
    row = conn.execute(
        insert_for(conn, SavedTimeAsk.__table__)
        .on_conflict_do_nothing()
        .values(
            workspace_id=workspace_id,
            person_id=ask.person_id,
            repo=ask.repo,
            number=ask.number,
            merged_at=ask.merged_at,
            ask_day=local_day(now, tz),
            recipient=ask.recipient,
            status=CLAIMED,
            channel="",
            message_ts="",
            claimed_at=now,
        )
        .returning(SavedTimeAsk.id)
    ).first()
    return None if row is None else int(row[0])


def finish_ask(
    conn: Connection, *, ask_id: int, status: str, channel: str = "", ts: str = "", error: str | None = None
) -> None:
    """A DM Slack refused stays ``failed``: it used the person's question of the day."""
    conn.execute(
        update(SavedTimeAsk)
        .where(SavedTimeAsk.id == ask_id)
        .values(status=status, channel=channel, message_ts=ts, error=error)
    )


# -- the answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    outcome: str  # recorded | changed | snoozed | refused | unknown
    bucket: str = ""
    repo: str = ""
    number: int = 0
    snoozed_until: datetime | None = None


def _own_ask(conn: Connection, workspace_id: str, ask_id: int, user_id: str) -> tuple[Answer | None, tuple]:
    """The ask's row when ``user_id`` is the person it was asked of, else the answer to give.
    Only they may tap its buttons: a click naming someone else's question is refused."""
    row = conn.execute(
        select(SavedTimeAsk.person_id, SavedTimeAsk.repo, SavedTimeAsk.number, SavedTimeAsk.bucket).where(
            SavedTimeAsk.workspace_id == workspace_id, SavedTimeAsk.id == ask_id
        )
    ).first()
    if row is None:
        return Answer("unknown"), ()
    owner = conn.execute(
        select(Person.slack_user_id).where(Person.id == row[0], Person.forgotten_at.is_(None))
    ).scalar_one_or_none()
    if not owner or owner != user_id:
        return Answer("refused"), ()
    return None, tuple(row)


def record_answer(
    conn: Connection, *, workspace_id: str, ask_id: int, user_id: str, bucket: str, now: datetime
) -> Answer:
    """The person's tap: one answer per PR, a second tap changes it."""
    if bucket not in BUCKETS:
        return Answer("unknown")
    refused, row = _own_ask(conn, workspace_id, ask_id, user_id)
    if refused is not None:
        return refused
    _, repo, number, before = row
    conn.execute(update(SavedTimeAsk).where(SavedTimeAsk.id == ask_id).values(bucket=bucket, answered_at=now))
    return Answer("changed" if before else "recorded", bucket, repo, int(number))


def snooze_from_ask(
    conn: Connection, *, workspace_id: str, ask_id: int, user_id: str, days: int, now: datetime
) -> Answer:
    """The DM's "Snooze" button: no questions for ``days``; the opt-in stays."""
    refused, row = _own_ask(conn, workspace_id, ask_id, user_id)
    if refused is not None:
        return refused
    pref = set_pref(conn, workspace_id=workspace_id, person_id=row[0], now=now, snooze_days=days)
    return Answer("snoozed", repo=row[1], number=int(row[2]), snoozed_until=pref.snoozed_until)


# -- what a recap may cite ---------------------------------------------------------------------


@dataclass(frozen=True)
class SavedWeek:
    """Answers about the PRs merged in a week: counts per bucket and who answered."""

    counts: dict[str, int]
    answerers: frozenset[int]

    @property
    def answers(self) -> int:
        return sum(self.counts.values())

    @property
    def saved(self) -> int:
        """Answers that said some time was saved."""
        return self.answers - self.counts.get(NOTHING, 0)


def saved_week(
    conn: Connection, *, workspace_id: str, person_ids: set[int], start: date, end: date
) -> SavedWeek:
    """The answers about PRs of ``person_ids`` merged in ``[start, end)`` (UTC days, as the
    code host's merge times are)."""
    counts: Counter[str] = Counter()
    who: set[int] = set()
    if person_ids:
        rows = conn.execute(
            select(SavedTimeAsk.person_id, SavedTimeAsk.bucket).where(
                SavedTimeAsk.workspace_id == workspace_id,
                SavedTimeAsk.person_id.in_(sorted(person_ids)),
                SavedTimeAsk.bucket.is_not(None),
                SavedTimeAsk.merged_at >= datetime.combine(start, time(0), tzinfo=UTC),
                SavedTimeAsk.merged_at < datetime.combine(end, time(0), tzinfo=UTC),
            )
        ).all()
        for pid, bucket in rows:
            counts[bucket] += 1
            who.add(int(pid))
    return SavedWeek({key: counts.get(key, 0) for key in BUCKETS}, frozenset(who))
