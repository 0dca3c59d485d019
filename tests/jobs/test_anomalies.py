"""Anomalies end to end: the job over real daily rows, the fake Slack receiving the DMs, the
"Expected" button through the real signed interactivity request, and `/tokens anomalies`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import select

from bot.db import rollups
from bot.db.models import (
    AnomalyIncident,
    AnomalyMute,
    AnomalyNotice,
    AuditLog,
    UsageDaily,
)
from bot.jobs.anomalies import check_anomalies
from bot.jobs.scheduler import build_scheduler
from bot.services import home, teams
from bot.slack.app import make_web_client
from bot.slack.blocks import anomalies as views
from bot.slack.blocks.home import build_home
from tests.factories import add_activity, add_person, add_team, add_usage
from tests.support.inbound import button_click, form_body
from tests.support.replicas import at_once
from tests.support.slack_app import all_text, make_runtime, send, slack_client
from tests.support.slack_fake import signed_headers

pytestmark = pytest.mark.usefixtures("slack_team")

USD = 1_000_000
W = "default"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
TODAY = NOW.date()


_person = partial(add_person, workspace_id=W)
# rows only: _seed brings the rollups in step once
_spend = partial(
    add_usage,
    workspace_id=W,
    model="gpt-5",
    actor="openai_user:{person_id}:{day}:{cost_micros}",
    rebuild=False,
)


def _sessions(conn, pid: int, day) -> None:
    add_activity(
        conn, pid, day, workspace_id=W, vendor="cursor", actor="email:{person_id}", sessions=2, rebuild=False
    )


def _history(conn, pid: int, dollars: int = 20, days: int = 20) -> None:
    """A steady habit with sessions every day, today included (so only runaway can fire)."""
    for n in range(0, days + 1):
        day = TODAY - timedelta(days=n)
        if n:
            _spend(conn, pid, day, dollars * USD)
        _sessions(conn, pid, day)


def _managed_by_umgr(conn, pid: int) -> None:
    """The person is in a user group that UMGR manages (a user group: the grant reaches them)."""
    team = add_team(conn, "SPLAT", {"U": pid}, workspace_id=W, today=TODAY, name="platform")
    teams.grant_role(
        conn, workspace_id=W, role="manager", slack_user_id="UMGR", team_id=team.id, granted_by="UADMIN"
    )


def _seed(engine) -> dict[str, int]:
    with engine.begin() as conn:
        ana, ben = _person(conn, "ana", "UANA"), _person(conn, "ben", "UBEN")
        _managed_by_umgr(conn, ana)
        _history(conn, ana)
        _history(conn, ben)
        _spend(conn, ana, TODAY, 300 * USD)  # 15 x her usual day
        rollups.rebuild(conn)  # rows written directly: bring the rollups in step
    return {"ana": ana, "ben": ben}


def _check(runtime, at: datetime):
    async def run():
        return await check_anomalies(runtime, make_web_client(runtime), workspace_id=W, clock=lambda: at)

    return asyncio.run(run())


def _incidents(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(AnomalyIncident.__table__).order_by(AnomalyIncident.id)).all()


def _notices(engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return sorted(
            conn.execute(select(AnomalyNotice.audience, AnomalyNotice.recipient, AnomalyNotice.status)).all()
        )


def click_expected(client, fake_slack, *, user_id: str, incident_id: int, days: int) -> dict:
    """A signed block_actions payload, as Slack posts it when the DM's button is clicked."""
    payload = button_click(
        f"{views.EXPECTED_ACTION}_{days}",
        str(incident_id),
        user_id=user_id,
        block_id=views.EXPECTED_BLOCK,
        response_url=fake_slack.server.url_for(f"/response_url/{user_id}"),
        container={"channel_id": f"D{user_id}", "is_ephemeral": False},  # the DM
        channel={"id": f"D{user_id}", "name": "directmessage"},
        message={"ts": "1700000000.000001", "text": "anomaly"},
    )
    before = len(fake_slack.calls_to("response_url"))
    body = form_body(payload)
    response = client.post("/slack/events", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    return fake_slack.wait_for("response_url", before + 1)[before].params


def test_one_incident_one_dm_an_update_escalation_and_expected(engine, fake_slack):
    ids = _seed(engine)
    runtime = make_runtime(engine, fake_slack)

    result = _check(runtime, NOW)
    [incident] = _incidents(engine)
    assert (incident.rule, incident.person_id, incident.status) == ("runaway", ids["ana"], "open")
    assert incident.spend_micros == 300 * USD and incident.day == TODAY
    assert json.loads(incident.figures)["median_micros"] == 20 * USD
    assert incident.detect_seconds == NOW.hour * 3600  # from the start of the UTC day
    assert result.applied.opened == [incident.id] and result.sent == [(incident.id, "person", "UANA")]
    [(channel, text)] = fake_slack.posted()
    assert channel == "DUANA" and text.startswith("Runaway spend: $300.00")
    blocks = fake_slack.calls_to("chat.postMessage")[0].params["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [b["action_id"] for b in buttons] == [
        "anomaly_expected_1",
        "anomaly_expected_7",
        "anomaly_expected_30",
    ]

    # More spend the same day: the open incident is updated, nobody is told again.
    with engine.begin() as conn:
        _spend(conn, ids["ana"], TODAY, 150 * USD)
        rollups.rebuild(conn)
    result = _check(runtime, NOW + timedelta(hours=1))
    [incident] = _incidents(engine)
    assert result.applied.updated == [incident.id] and result.sent == []
    assert incident.spend_micros == incident.peak_micros == 450 * USD
    assert len(fake_slack.posted()) == 1

    # Still open and unanswered past the delay: the manager is told, once.
    _check(runtime, NOW + timedelta(hours=25))
    _check(runtime, NOW + timedelta(hours=26))
    assert [channel for channel, _ in fake_slack.posted()] == ["DUANA", "DUMGR"]
    assert "<@UANA>" in fake_slack.posted()[1][1]
    assert _notices(engine) == [("manager", "UMGR", "sent"), ("person", "UANA", "sent")]
    with engine.connect() as conn:
        audited = conn.execute(select(AuditLog.actor_user_id, AuditLog.action, AuditLog.target)).all()
    assert ("UMGR", "anomaly.escalated", f"person:{ids['ana']}") in audited

    # Ana says it was expected, through the real signed request: closed, muted for 7 days, recorded.
    with slack_client(engine, fake_slack) as client:
        assert (
            "only the person"
            in click_expected(client, fake_slack, user_id="UBEN", incident_id=incident.id, days=7)[
                "text"
            ].lower()
        )
        answer = click_expected(client, fake_slack, user_id="UANA", incident_id=incident.id, days=7)
        assert answer["text"].startswith(":white_check_mark: Marked expected")
        again = click_expected(client, fake_slack, user_id="UANA", incident_id=incident.id, days=30)
        assert "already closed" in again["text"]
    [incident] = _incidents(engine)
    assert incident.status == "expected" and incident.answered_by == "UANA" and incident.open_key is None
    with engine.connect() as conn:
        [mute] = conn.execute(select(AnomalyMute.__table__)).all()
    assert (mute.rule, mute.subject_key, mute.created_by) == ("runaway", str(ids["ana"]), "UANA")
    # The mute holds: the same figures open nothing and tell nobody.
    result = _check(runtime, NOW + timedelta(hours=27))
    assert result.applied.opened == [] and len(_incidents(engine)) == 1 and len(fake_slack.posted()) == 2


def test_an_incident_closes_when_the_figures_return_to_normal(engine, fake_slack):
    ids = _seed(engine)
    runtime = make_runtime(engine, fake_slack)
    _check(runtime, NOW)
    # The vendor corrects the day (a re-sync replaces the rows): back to her usual $20.
    with engine.begin() as conn:
        conn.execute(UsageDaily.__table__.delete().where(UsageDaily.day == TODAY))
        _spend(conn, ids["ana"], TODAY, 20 * USD)
        rollups.rebuild(conn)
    result = _check(runtime, NOW + timedelta(hours=3))
    [incident] = _incidents(engine)
    assert result.applied.closed == [incident.id]
    assert incident.status == "closed" and incident.open_key is None
    assert incident.close_seconds == 3 * 3600
    assert len(fake_slack.posted()) == 1  # closing tells nobody, and the manager is never told now
    _check(runtime, NOW + timedelta(hours=30))
    assert len(fake_slack.posted()) == 1


def test_a_runaway_day_leaving_the_recent_days_closes_it_and_a_restart_sends_nothing(engine, fake_slack):
    _seed(engine)
    _check(make_runtime(engine, fake_slack), NOW)
    _check(make_runtime(engine, fake_slack), NOW)  # a restart / a second replica: the ledger holds the DM
    assert len(fake_slack.posted()) == 1
    _check(make_runtime(engine, fake_slack, TOKENWISE_ANOMALY_ESCALATE_HOURS="100"), NOW + timedelta(days=2))
    [incident] = _incidents(engine)
    assert incident.status == "closed" and incident.close_seconds == 2 * 86400
    assert len(fake_slack.posted()) == 1


def test_unattributed_surge_tells_the_admins_only(engine, fake_slack):
    with engine.begin() as conn:
        _person(conn, "lead", None)  # no Slack id: admins are named by id in TOKENWISE_ADMINS
        for n in range(1, 11):
            _spend(conn, None, TODAY - timedelta(days=n), 30 * USD, actor="openai_key:key_ci")
        _spend(conn, None, TODAY, 400 * USD, actor="openai_key:key_ci")
        rollups.rebuild(conn)
    runtime = make_runtime(engine, fake_slack, TOKENWISE_ADMINS="ULISTED,UADMIN")
    _check(runtime, NOW)
    [incident] = _incidents(engine)
    assert (incident.rule, incident.subject_kind, incident.subject_key) == (
        "unattributed",
        "actor",
        "openai_key:key_ci",
    )
    assert sorted(channel for channel, _ in fake_slack.posted()) == ["DUADMIN", "DULISTED"]
    assert all("openai_key:key_ci" in text for _, text in fake_slack.posted())
    # No channel post, ever: every message went to a DM.
    assert all(c.params["channel"].startswith("D") for c in fake_slack.calls_to("chat.postMessage"))
    with slack_client(engine, fake_slack, TOKENWISE_ADMINS="ULISTED,UADMIN") as client:
        refused = click_expected(client, fake_slack, user_id="UANA", incident_id=incident.id, days=1)
        answer = click_expected(client, fake_slack, user_id="ULISTED", incident_id=incident.id, days=1)
    assert "Only the person" in refused["text"]
    assert answer["text"].startswith(
        ":white_check_mark: Marked expected. This check is muted for this account"
    )


def test_tokens_anomalies_shows_own_managed_and_all(engine, fake_slack):
    ids = _seed(engine)
    with engine.begin() as conn:
        _spend(conn, None, TODAY, 500 * USD, actor="anthropic_key:orphan")
        rollups.rebuild(conn)
    _check(make_runtime(engine, fake_slack), NOW)
    with slack_client(engine, fake_slack) as client:
        own = all_text(send(client, "anomalies", user_id="UANA"))
        managed = all_text(send(client, "anomalies", user_id="UMGR"))
        other = all_text(send(client, "anomalies", user_id="UBEN"))
        admin = all_text(send(client, "anomalies", user_id="ULISTED"))
        wrong = all_text(send(client, "anomalies everything", user_id="UANA"))
    assert "Runaway spend" in own and "$300.00" in own and "orphan" not in own
    assert "<@UANA>" in managed and "orphan" not in managed
    assert "No anomalies" in other and "$300.00" not in other
    assert "<@UANA>" in admin and "anthropic_key:orphan" in admin
    assert "takes no arguments" in wrong
    with engine.connect() as conn:
        views_logged = conn.execute(
            select(AuditLog.actor_user_id, AuditLog.target).where(AuditLog.action == "view.anomalies")
        ).all()
    assert sorted(views_logged) == [("ULISTED", f"person:{ids['ana']}"), ("UMGR", f"person:{ids['ana']}")]


def test_app_home_lists_the_persons_open_anomalies(engine, fake_slack):
    ids = _seed(engine)
    _check(make_runtime(engine, fake_slack), NOW)
    with engine.connect() as conn:
        ana = home.load_dashboard(
            conn, workspace_id=W, person_id=ids["ana"], who="Ana", slack_user_id="UANA", today=TODAY
        )
        ben = home.load_dashboard(
            conn, workspace_id=W, person_id=ids["ben"], who="Ben", slack_user_id="UBEN", today=TODAY
        )
    view = build_home(ana, tz=UTC, now=NOW)
    assert "Open anomalies" in json.dumps(view) and "$300.00" in json.dumps(view)
    assert "Open anomalies" not in json.dumps(build_home(ben, tz=UTC, now=NOW))


def test_the_scheduler_runs_the_check(engine, fake_slack):
    runtime = make_runtime(engine, fake_slack)
    assert "anomalies" in {job.id for job in build_scheduler(runtime).get_jobs()}
    _seed(engine)
    from bot.jobs.anomalies import anomaly_job

    assert anomaly_job(runtime) == 1
    assert anomaly_job(runtime) == 0
    assert [channel for channel, _ in fake_slack.posted()] == ["DUANA"]


def test_idle_burn_and_drift_read_from_the_daily_rows(engine):
    from bot.services.anomalies.incidents import detect_now
    from bot.settings import Settings

    with engine.begin() as conn:
        ana, ben = _person(conn, "ana", "UANA"), _person(conn, "ben", "UBEN")
        for n in range(1, 21):
            _spend(conn, ana, TODAY - timedelta(days=n), 40 * USD)
            _sessions(conn, ana, TODAY - timedelta(days=n))
        # Today: all of it on Opus 4.1, and not one session or commit; Ben's sessions show the
        # value sources have delivered today.
        _spend(conn, ana, TODAY, 100 * USD, model="claude-opus-4-1")
        _sessions(conn, ben, TODAY)
        rollups.rebuild(conn)
        found = detect_now(conn, workspace_id=W, today=TODAY, settings=Settings())
    assert sorted((hit.rule, hit.person_id, hit.spend_micros) for hit in found) == [
        ("drift", ana, 100 * USD),
        ("idle", ana, 100 * USD),
    ]
    [drift] = [hit for hit in found if hit.rule == "drift"]
    assert drift.figures["share_percent"] == 100 and drift.figures["baseline_percent"] == 0


@pytest.mark.parametrize(("active_seconds", "idle"), [(0, True), (1800, False)])
def test_active_time_alone_is_a_value_signal(engine, active_seconds, idle):
    """A seat-plan user seen only through OTLP: their day's time in the tool (no sessions, no
    commits) says the spend was used; the same day without it is idle burn."""
    from bot.services.anomalies.incidents import detect_now
    from bot.settings import Settings

    def active(conn, pid, day, seconds):
        add_activity(
            conn, pid, day, workspace_id=W, vendor="claude_code", source="otel_claude_code",
            actor="email:{person_id}", active_seconds=seconds, rebuild=False,
        )  # fmt: skip

    with engine.begin() as conn:
        ana, ben = _person(conn, "ana", "UANA"), _person(conn, "ben", "UBEN")
        for n in range(1, 21):
            _spend(conn, ana, TODAY - timedelta(days=n), 40 * USD)
            active(conn, ana, TODAY - timedelta(days=n), 3600)
        _spend(conn, ana, TODAY, 60 * USD)
        active(conn, ben, TODAY, 600)  # the value sources have delivered today
        if active_seconds:
            active(conn, ana, TODAY, active_seconds)
        rollups.rebuild(conn)
        found = detect_now(conn, workspace_id=W, today=TODAY, settings=Settings())
    assert [(hit.rule, hit.person_id) for hit in found if hit.rule == "idle"] == (
        [("idle", ana)] if idle else []
    )


def test_forgetting_a_person_deletes_their_incidents_notices_and_mutes(engine, fake_slack):
    from bot.services import privacy
    from bot.services.anomalies import incidents

    ids = _seed(engine)
    _check(make_runtime(engine, fake_slack), NOW)
    [incident] = _incidents(engine)
    with engine.begin() as conn:
        incidents.mark_expected(
            conn, workspace_id=W, incident_id=incident.id, user_id="UANA", is_admin=False, days=30
        )
        privacy.forget_person(conn, workspace_id=W, person_id=ids["ana"], actor_user_id="UANA")
    assert _incidents(engine) == [] and _notices(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(AnomalyMute.__table__)).all() == []
    # Her spend is now unattributed under a forgotten alias: no surge is raised on it.
    result = _check(make_runtime(engine, fake_slack), NOW + timedelta(hours=1))
    assert result.applied.opened == [] and _incidents(engine) == []


def test_a_person_slack_refuses_to_dm_goes_to_the_managers_at_once(engine, fake_slack):
    _seed(engine)
    runtime = make_runtime(engine, fake_slack)
    fake_slack.fail_next("conversations.open", error="user_not_found")
    result = _check(runtime, NOW)
    assert result.failed and result.sent == []
    _check(runtime, NOW + timedelta(hours=1))  # long before the delay
    assert _notices(engine) == [("manager", "UMGR", "sent"), ("person", "UANA", "failed")]
    assert [channel for channel, _ in fake_slack.posted()] == ["DUMGR"]
    blocks = json.dumps(fake_slack.calls_to("chat.postMessage")[0].params["blocks"])
    assert "could not reach them" in blocks


def test_a_rate_limited_dm_is_sent_by_a_later_run_once(engine, fake_slack):
    ids = _seed(engine)
    runtime = make_runtime(engine, fake_slack)
    for _ in range(3):  # the client's own two retries are spent too
        fake_slack.fail_next("chat.postMessage", status=429, error="ratelimited", retry_after=0)
    first = _check(runtime, NOW)
    [incident] = _incidents(engine)
    assert first.retrying == [(incident.id, "person", "UANA")] and first.sent == first.failed == []
    assert _notices(engine) == [("person", "UANA", "retry")]
    assert len(fake_slack.posted()) == 3  # the three refused attempts (the fake records every call)
    second = _check(runtime, NOW + timedelta(minutes=15))
    assert second.sent == [(incident.id, "person", "UANA")] and ids["ana"] == incident.person_id
    assert _notices(engine) == [("person", "UANA", "sent")]
    assert _check(runtime, NOW + timedelta(minutes=30)).sent == []  # told once
    assert [channel for channel, _ in fake_slack.posted()] == ["DUANA"] * 4


@pytest.mark.parametrize("refusal", ["cannot_dm_bot", "user_not_found", "account_inactive"])
def test_a_refused_dm_is_recorded_and_never_retried(engine, fake_slack, refusal):
    with engine.begin() as conn:  # no manager: nobody else to tell
        ana = _person(conn, "ana", "UANA")
        _history(conn, ana)
        _spend(conn, ana, TODAY, 300 * USD)
        rollups.rebuild(conn)
    runtime = make_runtime(engine, fake_slack)
    fake_slack.fail_next("conversations.open", error=refusal)
    first = _check(runtime, NOW)
    assert len(first.failed) == 1 and first.retrying == [] and first.sent == []
    with engine.connect() as conn:
        [(status, error)] = conn.execute(select(AnomalyNotice.status, AnomalyNotice.error)).all()
    assert (status, error) == ("failed", refusal)
    opened = len(fake_slack.calls_to("conversations.open"))
    later = _check(runtime, NOW + timedelta(hours=1))
    assert later.sent == later.failed == later.retrying == []
    assert len(fake_slack.calls_to("conversations.open")) == opened and fake_slack.posted() == []


def test_a_person_without_a_slack_id_is_escalated_at_once(engine, fake_slack):
    with engine.begin() as conn:
        ana = _person(conn, "ana", None)
        _managed_by_umgr(conn, ana)
        _history(conn, ana)
        _spend(conn, ana, TODAY, 300 * USD)
        rollups.rebuild(conn)
    _check(make_runtime(engine, fake_slack), NOW)
    assert [channel for channel, _ in fake_slack.posted()] == ["DUMGR"]
    assert "Ana" in fake_slack.posted()[0][1]


def test_two_replicas_checking_at_once_open_one_incident_and_send_one_dm(engine, fake_slack):
    _seed(engine)
    # Each replica its own settings, client and event loop.
    at_once(lambda: make_runtime(engine, fake_slack), lambda runtime: _check(runtime, NOW))
    assert len(_incidents(engine)) == 1
    assert _notices(engine) == [("person", "UANA", "sent")]
    assert [channel for channel, _ in fake_slack.posted()] == ["DUANA"]


def test_an_answered_day_stays_answered_after_a_short_mute_ends(engine, fake_slack):
    from bot.services.anomalies import incidents

    ids = _seed(engine)
    runtime = make_runtime(engine, fake_slack)
    _check(runtime, NOW)
    [incident] = _incidents(engine)
    with engine.begin() as conn:
        answer = incidents.mark_expected(
            conn, workspace_id=W, incident_id=incident.id, user_id="UANA", is_admin=False, days=1, now=NOW
        )
    assert answer.outcome == "muted" and answer.until == NOW + timedelta(days=1)
    # A day later the mute is over but the answered day is still a recent day: nothing reopens.
    result = _check(runtime, NOW + timedelta(hours=25))
    assert result.applied.opened == [] and len(_incidents(engine)) == 1
    # A new run-away day after the mute is a new incident, told again.
    with engine.begin() as conn:
        _spend(conn, ids["ana"], TODAY + timedelta(days=1), 500 * USD)
        rollups.rebuild(conn)
    result = _check(runtime, NOW + timedelta(hours=26))
    assert len(result.applied.opened) == 1
    assert [channel for channel, _ in fake_slack.posted()] == ["DUANA", "DUANA"]


def test_every_anomaly_message_is_within_slacks_limits():
    from bot.services.anomalies.incidents import Answer
    from bot.slack.blocks.common import validate

    def incident(n: int, rule: str, **kw) -> AnomalyIncident:
        values = {
            "id": n,
            "workspace_id": W,
            "subject_kind": "person",
            "subject_key": str(n),
            "person_id": n,
            "rule": rule,
            "status": "open",
            "day": TODAY,
            "spend_micros": 123 * USD,
            "figures": json.dumps({"active_days": 9, "median_micros": USD, "limit_micros": 50 * USD}),
            "first_seen_at": NOW,
            "last_seen_at": NOW,
            **kw,
        }
        return AnomalyIncident(**values)

    actor = incident(0, "unattributed", subject_kind="actor", subject_key="k" * 400, person_id=None)
    many = [incident(n, "runaway") for n in range(1, 26)]
    messages = [
        views.build_person_notice(many[0], escalate_hours=24),
        views.build_manager_notice(many[0], who="<@UANA>", unreachable=True),
        views.build_admin_notice(actor),
        views.build_anomalies([actor, *many], labels={}, tz=UTC, scope="the workspace"),
        views.build_answer(Answer("muted", actor, NOW), tz=UTC),
    ]
    for built in messages:
        assert validate(built.blocks) == [], built.text
    assert validate(views.home_blocks(many)) == []
    assert "$123.00" in views.describe(many[0]) and "$1.00" in views.describe(many[0])
    new = incident(1, "runaway", figures=json.dumps({"active_days": 1, "floor_micros": 200 * USD}))
    assert "any day over $200.00 is flagged" in views.describe(new)
    idle = incident(1, "idle", figures=json.dumps({"signal_days": 12, "floor_micros": 25 * USD}))
    assert "no accepted lines" in views.describe(idle) and "12 earlier days" in views.describe(idle)
    drift = incident(
        1,
        "drift",
        figures=json.dumps({"premium_micros": 99 * USD, "share_percent": 80, "baseline_percent": 5}),
    )
    assert "80% of" in views.describe(drift) and "against 5%" in views.describe(drift)
