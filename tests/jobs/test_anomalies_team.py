"""A team's model drift end to end: the members' daily rows summed, the incident told to the
team's managers only (a DM, never a channel, no member named), "Expected" through the signed
button (a member is refused, a manager mutes), `/tokens anomalies` for the manager, and no team
incident for a team smaller than the minimum group."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.db import rollups
from bot.db.models import ActivityDaily, AnomalyIncident, AnomalyMute, AnomalyNotice, Person, UsageDaily
from bot.jobs.anomalies import check_anomalies
from bot.jobs.scheduler import build_scheduler
from bot.services import teams
from bot.slack.app import make_web_client
from bot.slack.blocks import anomalies as views
from tests.factories import activity_values
from tests.support.slack_app import all_text, make_runtime, send, slack_client
from tests.support.slack_fake import signed_headers

USD = 1_000_000
W = "default"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
TODAY = NOW.date()
MEMBERS = ("UANA", "UBEN", "UCAL", "UDEV", "UEVE")


pytestmark = pytest.mark.usefixtures("slack_team")


@pytest.fixture
def fake(slack_team):
    """The fake Slack with the demo org's whole team in its directory (conftest ``slack_team``)."""
    return slack_team


def _usage(pid: int, day, micros: int, model: str) -> dict:
    return dict(
        workspace_id=W, source="anthropic", vendor="anthropic", day=day, actor=f"api:{pid}:{model}",
        person_id=pid, model=model, cost_basis="billed", kind="usage", cost_micros=micros,
        raw_amount="0", raw_unit="usd", in_org_total=True,
    )  # fmt: skip


def _seed(engine, members: tuple[str, ...]) -> int:
    """Each member: $20 a day on Sonnet for 20 days, sessions every day; today $10 on Sonnet and
    $10 on Opus 4 each: nobody's own drift (under the $25 floor), the team's is $50 of Opus."""
    usage, activity, known = [], [], {}
    with engine.begin() as conn:
        for slack_id in members:
            conn.execute(
                Person.__table__.insert().values(
                    workspace_id=W, email=f"{slack_id}@example.com", slack_user_id=slack_id
                )
            )
            pid = conn.execute(select(Person.id).where(Person.slack_user_id == slack_id)).scalar_one()
            known[slack_id] = pid
            for n in range(21):
                day = TODAY - timedelta(days=n)
                activity.append(
                    activity_values(pid, day, workspace_id=W, vendor="cursor", actor=f"e:{pid}", sessions=1)
                )
                if n:
                    usage.append(_usage(pid, day, 20 * USD, "claude-sonnet-4-5"))
            usage += [
                _usage(pid, TODAY, 10 * USD, "claude-sonnet-4-5"),
                _usage(pid, TODAY, 10 * USD, "claude-opus-4"),
            ]
        conn.execute(UsageDaily.__table__.insert(), usage)
        conn.execute(ActivityDaily.__table__.insert(), activity)
        team = teams.ensure_team(
            conn, workspace_id=W, kind=teams.USERGROUP, slack_id="SPLATFORM", name="platform"
        )
        teams.apply_refresh(
            conn,
            workspace_id=W,
            team_id=team.id,
            known=known,
            new_members=[],
            today=TODAY - timedelta(days=30),
        )
        teams.grant_role(
            conn, workspace_id=W, role="manager", slack_user_id="UMGR", team_id=team.id, granted_by="UADMIN"
        )
        rollups.rebuild(conn)
    return team.id


def _check(runtime):
    return asyncio.run(check_anomalies(runtime, make_web_client(runtime), workspace_id=W, clock=lambda: NOW))


def _click(client, fake, user_id: str, incident_id: int) -> str:
    payload = {
        "type": "block_actions", "team": {"id": "T1", "domain": "test"}, "api_app_id": "A1",
        "token": "legacy",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T1"},
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": f"D{user_id}"},
        "trigger_id": "1.2.abc", "channel": {"id": f"D{user_id}", "name": "directmessage"},
        "response_url": fake.server.url_for(f"/response_url/{user_id}"),
        "actions": [{"action_id": f"{views.EXPECTED_ACTION}_7", "block_id": views.EXPECTED_BLOCK,
                     "type": "button", "value": str(incident_id), "action_ts": "1700000001.000001"}],
    }  # fmt: skip
    before = len(fake.calls_to("response_url"))
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    assert client.post("/slack/events", content=body, headers=signed_headers(body)).status_code == 200
    return fake.wait_for("response_url", before + 1)[before].params["text"]


def test_a_teams_drift_goes_to_its_managers_only_and_a_manager_can_mute_it(engine, fake):
    team_id = _seed(engine, MEMBERS)
    runtime = make_runtime(engine, fake)
    # The check as the scheduler runs it (its table entry, guarded): one DM sent.
    job = {j.id: j for j in build_scheduler(runtime).get_jobs()}["anomalies"]
    assert job.func(*job.args) == 1
    with engine.connect() as conn:
        [incident] = conn.execute(select(AnomalyIncident.__table__)).all()
    assert (incident.subject_kind, incident.subject_key, incident.rule) == ("team", str(team_id), "drift")
    assert incident.person_id is None and incident.spend_micros == 100 * USD
    assert json.loads(incident.figures)["share_percent"] == 50
    with engine.connect() as conn:
        told = conn.execute(
            select(AnomalyNotice.audience, AnomalyNotice.recipient, AnomalyNotice.status)
        ).all()
    assert told == [("manager", "UMGR", "sent")]
    [dm] = fake.calls_to("chat.postMessage")
    assert dm.params["channel"] == "DUMGR"  # a DM: nothing is posted to a channel
    blocks = dm.params["blocks"]
    text = all_text(
        {"text": dm.params["text"], "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks}
    )
    assert "<!subteam^SPLATFORM" in text and "the team's last 20 active days" in text
    assert not any(f"<@{member}>" in text for member in MEMBERS)
    assert _check(runtime).sent == []  # updated, nobody told again

    with slack_client(engine, fake) as client:
        assert "Shift to the most expensive models" in all_text(send(client, "anomalies", user_id="UMGR"))
        assert "only the person" in _click(client, fake, "UANA", incident.id).lower()
        assert "muted for the team" in _click(client, fake, "UMGR", incident.id)
    with engine.connect() as conn:
        [mute] = conn.execute(select(AnomalyMute.__table__)).all()
    assert (mute.subject_kind, mute.subject_key, mute.created_by) == ("team", str(team_id), "UMGR")
    assert _check(runtime).applied.opened == []


def test_no_team_incident_below_the_minimum_group(engine, fake):
    _seed(engine, MEMBERS[:4])  # four members spent today; the minimum group is five
    result = _check(make_runtime(engine, fake))
    assert result.applied.opened == [] and fake.calls_to("chat.postMessage") == []
