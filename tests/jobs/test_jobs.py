"""The scheduled jobs as a whole: ``tokenwise scheduler --once`` runs each of them once (proved by
what each leaves in the database and in the fake Slack), and the per-workspace loop they share
runs in every installed workspace with that workspace's token and skips the others.
Runs on SQLite and, with TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from bot.db.models import AlertSent, RecapDelivery, SyncRun, Team
from bot.jobs.per_workspace import each_workspace
from bot.services import budgets, recap, teams, workspaces
from bot.services.runtime import Runtime
from bot.settings import Settings
from bot.slack.oauth import installation_store
from tests.support.slack_fake import (
    BOT_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    SIGNING_SECRET,
    T2_BOT_TOKEN,
)

pytestmark = pytest.mark.usefixtures("slack_team")

W = "default"
CHANNEL = "CPAYMENTS"

runner = CliRunner()


def _environment(monkeypatch, db_url: str, fake_slack) -> None:
    for name, value in {
        "DATABASE_URL": db_url,
        "TOKENWISE_DEMO": "1",
        "TOKENWISE_BACKFILL_DAYS": "3",
        "TOKENWISE_TIMEZONE": "UTC",
        "TOKENWISE_ADMINS": "ULISTED",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
    }.items():
        monkeypatch.setenv(name, value)


def _one_of_each_due(engine) -> None:
    """Work for every job: an org budget the demo sync crosses at once, a recap due this week,
    and a team whose membership was never read."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        spec = budgets.parse_set(["org", "$0.01/quarter", "thresholds", "100"])
        budgets.set_budget(
            conn, workspace_id=W, kind="org", target_id="org", spec=spec, actor_user_id="UADMIN"
        )
        recap.subscribe(
            conn,
            workspace_id=W,
            channel_id=CHANNEL,
            group_id="SPLATFORM",
            weekday=now.weekday(),
            local_time="00:00",  # today at midnight: already due when the job runs
            post_when_empty=True,
            created_by="UADMIN",
            now=now - timedelta(days=30),
        )
        teams.ensure_team(conn, workspace_id=W, kind=teams.CHANNEL, slack_id=CHANNEL)


def _posts(fake_slack, channel: str) -> list[str]:
    return [
        c.params["text"]
        for c in fake_slack.calls_to("chat.postMessage")
        if c.params.get("channel") == channel
    ]


def test_scheduler_once_runs_every_job_once(monkeypatch, db_url, engine, fake_slack):
    _environment(monkeypatch, db_url, fake_slack)
    _one_of_each_due(engine)

    result = runner.invoke(app, ["scheduler", "--once"])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        syncs = conn.execute(select(SyncRun.source, SyncRun.status)).all()
        alerts = conn.execute(select(AlertSent.kind, AlertSent.threshold, AlertSent.status)).all()
        recaps = conn.execute(select(RecapDelivery.channel_id, RecapDelivery.status)).all()
        channel_team = conn.execute(select(Team).where(Team.slack_id == CHANNEL)).one()
        members = teams.member_count(conn, team_id=channel_team.id)
    # The sync: every demo source, once.
    assert sorted(syncs) == sorted(
        (f"demo-{v}", "ok") for v in ("openai", "claude_code", "cursor", "github_copilot")
    )
    # The budget check: the threshold the sync crossed, claimed and DMed to the admin.
    assert alerts == [("threshold", 100, "sent")]
    [alert] = _posts(fake_slack, "DULISTED")
    assert "(the 100% alert)" in alert
    # The recap delivery: this week's recap posted in its channel.
    assert recaps == [(CHANNEL, "posted")] and len(_posts(fake_slack, CHANNEL)) == 1
    # The team refresh: the never-read channel now has its members.
    assert channel_team.refreshed_at is not None and members == 9
    lines = result.output.splitlines()
    assert "budget alerts: 1 sent" in lines and "recaps due: 1 posted" in lines
    assert "teams re-read: 1" in lines  # the recap's own team was read fresh by the delivery
    assert "anomaly DMs: 0 sent" in lines  # the demo's steady habits hold no anomaly
    assert "saved-time questions: 0 sent" in lines  # nobody opted in
    assert "OTLP points pruned: 0" in lines  # no agent sends here (tests/jobs/test_otel_retention.py)

    again = runner.invoke(app, ["scheduler", "--once"])
    assert again.exit_code == 0, again.output
    assert "budget alerts: 0 sent" in again.output and "recaps due: none" in again.output
    assert "teams re-read: 0" in again.output
    assert len(_posts(fake_slack, "DULISTED")) == 1 and len(_posts(fake_slack, CHANNEL)) == 1


async def test_each_workspace_runs_with_each_installed_workspaces_token(engine, fake_slack):
    runtime = Runtime(
        settings=Settings(
            SLACK_CLIENT_ID=CLIENT_ID,
            SLACK_CLIENT_SECRET=CLIENT_SECRET,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake_slack.api_url,
        ),
        engine=engine,
    )
    installation_store(runtime).save(
        Installation(
            app_id="A1", team_id="T2", team_name="Second", bot_token=T2_BOT_TOKEN, bot_id="B2", user_id="U2"
        )
    )
    fake_slack.tokens[T2_BOT_TOKEN] = {"team_id": "T2", "team": "Second", "user_id": "UBOT2", "bot_id": "B2"}
    with engine.begin() as conn:
        # T3 is active but its installation is gone (uninstalled since the list was read).
        for workspace_id in ("T2", "T3"):
            workspaces.activate(
                conn, workspace_id=workspace_id, enterprise_id=None, name=workspace_id, installed_by="U"
            )

    async def who_am_i(workspace_id, client):
        return (await client.auth_test())["team_id"]

    assert await each_workspace(runtime, who_am_i, what="test") == {"T2": "T2"}
    assert await each_workspace(runtime, who_am_i, what="test", only=["T3"]) == {}
    assert await each_workspace(runtime, who_am_i, what="test", only=[]) == {}
    tokens = [c.headers.get("Authorization") for c in fake_slack.calls_to("auth.test")]
    assert tokens == [f"Bearer {T2_BOT_TOKEN}"]
