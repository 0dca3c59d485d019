"""Incidents, not messages: detections open or update one incident per (subject, rule), an
incident closes itself when its rule no longer fires on the recent days, "expected" mutes the
rule for the subject, and every DM is claimed in a ledger row before it is sent.

Who is told (docs/anomalies.md): the person first, privately; their managers only once the
incident has stayed open and unanswered past ``TOKENWISE_ANOMALY_ESCALATE_HOURS`` (at once when
the person cannot be reached on Slack); the admins for actors that map to nobody. Never a channel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Unpack

from sqlalchemy import Connection, select, update

from bot.db.ledger import Outcome, finish_effect
from bot.db.models import AnomalyIncident, AnomalyMute, AnomalyNotice, Person, Team, as_utc
from bot.db.upsert import insert_for
from bot.domain.clock import utcnow
from bot.services import access, privacy, teams
from bot.services.anomalies import daily
from bot.services.anomalies.detectors import ACTOR, PERSON, TEAM, Detection, Thresholds, detect
from bot.services.budgets import admin_user_ids
from bot.settings import Settings

OPEN = "open"
CLOSED = "closed"
EXPECTED = "expected"

#: Ledger statuses. ``retry``: Slack refused for now (rate limit, outage); a later run claims the
#: row again. ``failed``: a refusal that stands (``cannot_dm_bot``, ``user_not_found``); not retried.
CLAIMED, SENT, RETRY, FAILED = "claimed", "sent", "retry", "failed"

TO_PERSON = "person"
TO_MANAGER = "manager"
TO_ADMIN = "admin"

#: The mute spans the "Expected" buttons offer, in days.
MUTE_DAYS = (1, 7, 30)
MAX_LISTED = 25


def _load(conn: Connection, *where) -> list[AnomalyIncident]:
    rows = conn.execute(select(AnomalyIncident.__table__).where(*where)).mappings().all()
    return [_incident(row) for row in rows]


def _incident(row) -> AnomalyIncident:
    values = dict(row)
    for name in ("first_seen_at", "last_seen_at", "closed_at"):
        values[name] = as_utc(values[name])
    return AnomalyIncident(**values)


def figures_of(incident: AnomalyIncident) -> dict[str, int]:
    return json.loads(incident.figures or "{}")


def open_key(kind: str, key: str, rule: str) -> str:
    return f"{kind}:{rule}:{key}"


# -- detecting ------------------------------------------------------------------------------


def detect_now(conn: Connection, *, workspace_id: str, today: date, settings: Settings) -> list[Detection]:
    """Run every rule on the workspace's daily rows (``today`` is the UTC day)."""
    th = Thresholds.from_settings(settings)
    histories, reported = daily.load_histories(
        conn,
        workspace_id=workspace_id,
        today=today,
        th=th,
        is_premium=daily.premium_rule(settings.anomaly_premium_output_usd),
    )
    histories += daily.team_histories(
        conn, workspace_id=workspace_id, people=histories, min_people=settings.min_group_size
    )
    return detect(histories, today=today, th=th, reported_days=reported)


@dataclass(frozen=True)
class Applied:
    opened: list[int]
    updated: list[int]
    closed: list[int]


def _muted(conn: Connection, workspace_id: str, now: datetime) -> tuple[set, dict]:
    """(subject kind, key, rule) muted now; and for each, the newest day someone answered
    "expected" for, which stays answered after the mute ends (a 1-day mute must not bring
    back yesterday's incident while yesterday is still a recent day)."""
    rows = conn.execute(
        select(
            AnomalyMute.subject_kind,
            AnomalyMute.subject_key,
            AnomalyMute.rule,
            AnomalyMute.until,
            AnomalyIncident.day,
        )
        .join(AnomalyIncident, AnomalyIncident.id == AnomalyMute.incident_id, isouter=True)
        .where(AnomalyMute.workspace_id == workspace_id)
    ).all()
    muted, answered = set(), {}
    for kind, key, rule, until, day in rows:
        if as_utc(until) > now:
            muted.add((kind, key, rule))
        if day is not None and day > answered.get((kind, key, rule), date.min):
            answered[kind, key, rule] = day
    return muted, answered


def _close(conn: Connection, incident: AnomalyIncident, now: datetime, status: str, by: str = "") -> bool:
    """Close an open incident once (``WHERE status = 'open'``): True for the call that did."""
    done = conn.execute(
        update(AnomalyIncident)
        .where(AnomalyIncident.id == incident.id, AnomalyIncident.status == OPEN)
        .values(
            status=status,
            open_key=None,
            closed_at=now,
            close_seconds=int((now - incident.first_seen_at).total_seconds()),
            answered_by=by[:32],
        )
        .returning(AnomalyIncident.id)
    ).first()
    return done is not None


def apply_detections(
    conn: Connection, *, workspace_id: str, detections: list[Detection], now: datetime
) -> Applied:
    """Open, update and close incidents to match this run's detections. Opening is an INSERT
    ... ON CONFLICT DO NOTHING on the open key, so two replicas open one incident."""
    current = {
        open_key(i.subject_kind, i.subject_key, i.rule): i
        for i in _load(conn, AnomalyIncident.workspace_id == workspace_id, AnomalyIncident.status == OPEN)
    }
    muted, answered = _muted(conn, workspace_id, now)
    opened, updated, seen = [], [], set()
    for hit in detections:
        subject = (hit.kind, hit.key, hit.rule)
        if subject in muted or hit.day <= answered.get(subject, date.min):
            continue
        key = open_key(hit.kind, hit.key, hit.rule)
        seen.add(key)
        found = current.get(key)
        figures = json.dumps(hit.figures, sort_keys=True)
        if found is not None:
            conn.execute(
                update(AnomalyIncident)
                .where(AnomalyIncident.id == found.id, AnomalyIncident.status == OPEN)
                .values(
                    day=hit.day,
                    spend_micros=hit.spend_micros,
                    peak_micros=max(found.peak_micros, hit.spend_micros),
                    figures=figures,
                    last_seen_at=now,
                )
            )
            updated.append(found.id)
            continue
        day_start = datetime.combine(hit.day, time(0), tzinfo=UTC)
        row = conn.execute(
            insert_for(conn, AnomalyIncident.__table__)
            .on_conflict_do_nothing(index_elements=["workspace_id", "open_key"])
            .values(
                workspace_id=workspace_id,
                subject_kind=hit.kind,
                subject_key=hit.key,
                person_id=hit.person_id,
                rule=hit.rule,
                open_key=key,
                status=OPEN,
                day=hit.day,
                spend_micros=hit.spend_micros,
                peak_micros=hit.spend_micros,
                figures=figures,
                first_seen_at=now,
                last_seen_at=now,
                detect_seconds=max(0, int((now - day_start).total_seconds())),
                answered_by="",
            )
            .returning(AnomalyIncident.id)
        ).first()
        if row is not None:
            opened.append(row[0])
    closed = [i.id for key, i in current.items() if key not in seen and _close(conn, i, now, CLOSED)]
    return Applied(opened, updated, closed)


# -- who is told ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DueNotice:
    incident: AnomalyIncident
    audience: str  # person | manager | admin
    recipient: str  # Slack user id
    unreachable: bool = False  # the person could not be told (no Slack id, or the DM failed)


def _ledger(conn: Connection, incident_ids: list[int]) -> dict[tuple[int, str, str], str]:
    """(incident, audience, recipient) -> status of every DM claimed for these incidents."""
    if not incident_ids:
        return {}
    rows = conn.execute(
        select(
            AnomalyNotice.incident_id, AnomalyNotice.audience, AnomalyNotice.recipient, AnomalyNotice.status
        ).where(AnomalyNotice.incident_id.in_(incident_ids))
    ).all()
    return {(incident_id, audience, recipient): status for incident_id, audience, recipient, status in rows}


def due_notices(conn: Connection, *, workspace_id: str, now: datetime, settings: Settings) -> list[DueNotice]:
    """The DMs owed for the open incidents, minus what the ledger already holds."""
    incidents = _load(conn, AnomalyIncident.workspace_id == workspace_id, AnomalyIncident.status == OPEN)
    ledger = _ledger(conn, [i.id for i in incidents])
    escalate_after = timedelta(hours=settings.anomaly_escalate_hours)
    admins: list[str] | None = None
    due = []
    for incident in sorted(incidents, key=lambda i: i.id):
        wanted: list[tuple[str, str]] = []
        slack_id, unreachable = None, False
        if incident.subject_kind == PERSON and incident.person_id is not None:
            slack_id = conn.execute(
                select(Person.slack_user_id).where(
                    Person.id == incident.person_id, Person.forgotten_at.is_(None)
                )
            ).scalar_one_or_none()
            if slack_id:
                wanted.append((TO_PERSON, slack_id))
            # Unanswered past the delay, or nobody to ask first (no Slack id, or Slack refused
            # the DM): the managers whose grant reaches them.
            unreachable = not slack_id or ledger.get((incident.id, TO_PERSON, slack_id)) == FAILED
            if unreachable or now - incident.first_seen_at >= escalate_after:
                managers = access.managers_of(conn, workspace_id, incident.person_id)
                wanted.extend((TO_MANAGER, m) for m in managers if m != slack_id)
        elif incident.subject_kind == ACTOR:
            if admins is None:
                admins = admin_user_ids(conn, workspace_id=workspace_id, settings=settings)
            wanted.extend((TO_ADMIN, a) for a in admins)
        elif incident.subject_kind == TEAM:
            # A team's figures go to its managers only, never to a channel nor to its members.
            managers = teams.team_managers(conn, workspace_id=workspace_id, team_id=int(incident.subject_key))
            wanted.extend((TO_MANAGER, m) for m in managers)
        for audience, recipient in wanted:
            if ledger.get((incident.id, audience, recipient), RETRY) == RETRY:
                due.append(DueNotice(incident, audience, recipient, unreachable))
    return due


def claim_notice(conn: Connection, *, workspace_id: str, notice: DueNotice) -> bool:
    """Insert the ledger row BEFORE the DM, or take back one left to retry; True only for the
    claimer (one across replicas: the insert conflicts, the update matches ``retry`` once)."""
    row = conn.execute(
        insert_for(conn, AnomalyNotice.__table__)
        .on_conflict_do_nothing(index_elements=["incident_id", "audience", "recipient"])
        .values(
            workspace_id=workspace_id,
            incident_id=notice.incident.id,
            audience=notice.audience,
            recipient=notice.recipient,
            status=CLAIMED,
            channel="",
            message_ts="",
            claimed_at=utcnow(),
        )
        .returning(AnomalyNotice.id)
    ).first()
    if row is None:
        retried = conn.execute(
            update(AnomalyNotice)
            .where(*_notice_key(notice), AnomalyNotice.status == RETRY)
            .values(status=CLAIMED, claimed_at=utcnow())
        )
        return retried.rowcount == 1  # the manager's view was recorded at the first claim
    if notice.audience == TO_MANAGER and notice.incident.person_id is not None:
        # A manager is shown the person's figures: the person can see that in `/tokens audit me`.
        privacy.record_views(
            conn,
            workspace_id=workspace_id,
            actor_user_id=notice.recipient,
            action="anomaly.escalated",
            person_ids=[notice.incident.person_id],
            detail=f"incident={notice.incident.id} rule={notice.incident.rule}",
        )
    return True


def _notice_key(notice: DueNotice) -> tuple:
    return (
        AnomalyNotice.incident_id == notice.incident.id,
        AnomalyNotice.audience == notice.audience,
        AnomalyNotice.recipient == notice.recipient,
    )


def finish_notice(conn: Connection, *, notice: DueNotice, **outcome: Unpack[Outcome]) -> None:
    finish_effect(
        conn,
        AnomalyNotice,
        *_notice_key(notice),
        **outcome,
    )


# -- "expected" -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    outcome: str  # muted | already | refused | unknown
    incident: AnomalyIncident | None = None
    until: datetime | None = None


def get_incident(conn: Connection, *, workspace_id: str, incident_id: int) -> AnomalyIncident | None:
    found = _load(conn, AnomalyIncident.workspace_id == workspace_id, AnomalyIncident.id == incident_id)
    return found[0] if found else None


def mark_expected(
    conn: Connection,
    *,
    workspace_id: str,
    incident_id: int,
    user_id: str,
    is_admin: bool,
    days: int,
    now: datetime | None = None,
) -> Answer:
    """The subject (or, for an actor that maps to nobody, an admin) says the anomaly is
    expected (for a team, one of its managers): the incident closes as ``expected`` and the rule
    is muted for the subject for
    ``days``. Only the first answer counts; a replayed click changes nothing."""
    now = now or utcnow()
    incident = get_incident(conn, workspace_id=workspace_id, incident_id=incident_id)
    if incident is None:
        return Answer("unknown")
    if incident.subject_kind == PERSON:
        owner = conn.execute(
            select(Person.slack_user_id).where(Person.id == incident.person_id)
        ).scalar_one_or_none()
        allowed = owner == user_id
    elif incident.subject_kind == TEAM:
        allowed = is_admin or user_id in teams.team_managers(
            conn, workspace_id=workspace_id, team_id=int(incident.subject_key)
        )
    else:
        allowed = is_admin
    if not allowed:
        return Answer("refused", incident)
    if days not in MUTE_DAYS:
        days = MUTE_DAYS[0]
    if not _close(conn, incident, now, EXPECTED, user_id):
        return Answer("already", incident)
    until = now + timedelta(days=days)
    conn.execute(
        AnomalyMute.__table__.insert().values(
            workspace_id=workspace_id,
            subject_kind=incident.subject_kind,
            subject_key=incident.subject_key,
            rule=incident.rule,
            until=until,
            incident_id=incident.id,
            created_by=user_id[:32],
            created_at=now,
        )
    )
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=user_id,
        action="anomaly.expected",
        target=f"anomaly:{incident.id}",
        detail=f"rule={incident.rule} muted_days={days}",
    )
    return Answer("muted", incident, until)


# -- views ----------------------------------------------------------------------------------


def visible_incidents(
    conn: Connection, *, workspace_id: str, viewer: access.Viewer, since: datetime
) -> list[AnomalyIncident]:
    """Open incidents and those closed since ``since``, newest first, that ``viewer`` may see:
    their own; as a manager, the people their grants reach and their teams' own incidents; as an
    admin, all (actors too)."""
    recent = _load(
        conn,
        AnomalyIncident.workspace_id == workspace_id,
        (AnomalyIncident.status == OPEN) | (AnomalyIncident.closed_at >= since),
    )
    recent.sort(key=lambda i: (i.status != OPEN, -i.last_seen_at.timestamp(), -i.id))
    if viewer.is_admin:
        return recent[:MAX_LISTED]
    reach: dict[int, bool] = {}
    managed = {
        str(t.id) for t in teams.managed_teams(conn, workspace_id=workspace_id, slack_user_id=viewer.user_id)
    }
    shown = []
    for incident in recent:
        pid = incident.person_id
        if incident.subject_kind == TEAM:
            if incident.subject_key in managed:
                shown.append(incident)
            continue
        if pid is None or incident.subject_kind != PERSON:
            continue
        if pid not in reach:
            reach[pid] = pid == viewer.person_id or access.manages_person(
                conn, workspace_id, viewer.user_id, pid
            )
        if reach[pid]:
            shown.append(incident)
    return shown[:MAX_LISTED]


def open_for_person(conn: Connection, *, workspace_id: str, person_id: int) -> list[AnomalyIncident]:
    found = _load(
        conn,
        AnomalyIncident.workspace_id == workspace_id,
        AnomalyIncident.person_id == person_id,
        AnomalyIncident.subject_kind == PERSON,
        AnomalyIncident.status == OPEN,
    )
    return sorted(found, key=lambda i: i.id)


def subjects(conn: Connection, incidents: list[AnomalyIncident]) -> dict[int | str, Person | Team]:
    """The rows behind the incidents: their people (by id) and teams (by ``"team:<id>"``), for
    slack/blocks to draw (``anomalies.subject_label``)."""
    found: dict[int | str, Person | Team] = {}
    person_ids = sorted({i.person_id for i in incidents if i.person_id})
    if person_ids:
        rows = conn.execute(select(Person.__table__).where(Person.id.in_(person_ids))).all()
        found.update({row.id: Person.model_validate(row._mapping) for row in rows})
    for key in sorted({i.subject_key for i in incidents if i.subject_kind == TEAM}):
        if team := teams.team_by_id(conn, int(key)):
            found[f"team:{key}"] = team
    return found
