"""Multi-workspace install end to end: the real Starlette + Bolt app, Slack's OAuth and Web API
faked on loopback (tests/slack_fake.py), installations in the real database (SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import html
import json
import re
import time
import urllib.parse
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import MetaData, inspect, select
from starlette.testclient import TestClient

from bot.db import rollups
from bot.db.models import Person, UsageDaily, Workspace
from bot.services import workspaces
from bot.services.runtime import Runtime
from bot.settings import Settings
from bot.slack.app import ConfigError, build_app
from bot.slack.clients import WorkspaceNotInstalled, bot_client_for
from bot.slack.oauth import BOT_SCOPES
from bot.web import build_web_app
from tests.support.inbound import command_body, event_body, form_body, inbound
from tests.support.slack_fake import (
    BOT_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    OAUTH_CODE,
    SIGNING_SECRET,
    T2_BOT_TOKEN,
    signed_headers,
)

REDIRECT_URI = "https://bot.example.com/slack/oauth_redirect"
TODAY = date.today()


def oauth_settings(fake_slack, **more) -> Settings:
    return Settings(
        SLACK_CLIENT_ID=CLIENT_ID,
        SLACK_CLIENT_SECRET=CLIENT_SECRET,
        SLACK_REDIRECT_URI=REDIRECT_URI,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        **more,
    )


@pytest.fixture
def runtime(engine, fake_slack) -> Runtime:
    return Runtime(settings=oauth_settings(fake_slack), engine=engine)


@pytest.fixture
def client(runtime):
    # https: Bolt sets the OAuth state cookie Secure, so a browser sends it back only over TLS.
    with TestClient(build_web_app(runtime, build_app(runtime)), base_url="https://testserver") as c:
        yield c


def start_install(client) -> str:
    page = client.get("/slack/install")
    assert page.status_code == 200, page.text
    link = html.unescape(
        re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text).group(1)
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"] == [",".join(BOT_SCOPES)]
    assert query["redirect_uri"] == [REDIRECT_URI]
    return query["state"][0]


def install(client) -> None:
    state = start_install(client)
    done = client.get("/slack/oauth_redirect", params={"code": OAUTH_CODE, "state": state})
    assert done.status_code == 200, done.text


def rows(engine, table: str) -> list[dict]:
    metadata = MetaData()
    metadata.reflect(engine, only=[table])
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(metadata.tables[table]))]


def send_command(client, text: str, *, team_id: str, user_id: str = "UANA", response_url: str = ""):
    body = command_body(text, team_id=team_id, user_id=user_id, response_url=response_url)
    response = client.post("/slack/events", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    return response


def send_event(client, event: dict, *, team_id: str = "T2"):
    body = event_body(event, event_id="Ev1", event_time=1_700_000_000, team_id=team_id)
    headers = {**signed_headers(body), "content-type": "application/json"}
    response = client.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 200, response.text


def wait_until_inactive(engine, workspace_id: str, timeout: float = 5.0) -> None:
    """Bolt acks an event before its listener runs, so the effects land shortly after the 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if workspaces.get(conn, workspace_id).status == "inactive":
                return
        time.sleep(0.02)
    raise AssertionError(f"workspace {workspace_id} is still active")


def test_install_page_links_to_slack_with_a_state_stored_in_the_database(client, engine):
    state = start_install(client)
    stored = [r["state"] for r in rows(engine, "slack_oauth_states")]
    assert stored == [state]
    assert client.cookies.get("slack-app-oauth-state") == state


def test_redirect_exchanges_the_code_and_saves_the_installation(client, engine, fake_slack):
    install(client)
    (exchange,) = fake_slack.calls_to("oauth.v2.access")
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert exchange.headers["Authorization"] == f"Basic {basic}"
    assert exchange.params["code"] == OAUTH_CODE and exchange.params["redirect_uri"] == REDIRECT_URI
    (bot,) = rows(engine, "slack_bots")
    assert (bot["team_id"], bot["bot_token"], bot["bot_id"], bot["client_id"]) == (
        "T2",
        T2_BOT_TOKEN,
        "BBOT2",
        CLIENT_ID,
    )
    (installation,) = rows(engine, "slack_installations")
    assert (installation["team_id"], installation["user_id"]) == ("T2", "UADMIN")
    assert rows(engine, "slack_oauth_states") == []  # a state is good for one redirect only
    with engine.connect() as conn:
        workspace = workspaces.get(conn, "T2")
        assert (workspace.status, workspace.name, workspace.installed_by) == ("active", "Second", "UADMIN")
        assert workspaces.active_workspace_ids(conn, Settings(SLACK_CLIENT_ID=CLIENT_ID)) == ["T2"]


def test_redirect_without_a_valid_state_installs_nothing(client, engine, fake_slack):
    start_install(client)
    forged = client.get("/slack/oauth_redirect", params={"code": OAUTH_CODE, "state": "not-issued"})
    assert forged.status_code in (400, 401)
    assert fake_slack.calls_to("oauth.v2.access") == []
    assert rows(engine, "slack_bots") == [] and rows(engine, "slack_installations") == []


def test_commands_from_an_installed_workspace_use_its_token_and_its_data(client, engine, fake_slack):
    install(client)
    for workspace_id, micros in (("T2", 12_340_000), ("default", 99_000_000)):
        spend_in(engine, workspace_id, micros)
    reply = send_command(client, "me 7d", team_id="T2").json()
    text = json.dumps(reply)
    assert "$12.34" in text and "$99" not in text
    lookups = fake_slack.calls_to("users.info")
    assert lookups and all(c.headers["Authorization"] == f"Bearer {T2_BOT_TOKEN}" for c in lookups)
    send_command(client, "help", team_id="T2")
    # auth.test once at install and once for the first command; later commands reuse the answer.
    checks = [
        c for c in fake_slack.calls_to("auth.test") if c.headers["Authorization"] == f"Bearer {T2_BOT_TOKEN}"
    ]
    assert len(checks) == 2
    with engine.connect() as conn:
        linked = (
            conn.execute(select(Person.workspace_id).where(Person.slack_user_id == "UANA")).scalars().all()
        )
    assert linked == ["T2"]  # the caller was matched in their own workspace only


def test_a_workspace_that_never_installed_is_refused(client, fake_slack):
    install(client)
    send_command(client, "me", team_id="T9", response_url=fake_slack.server.url_for("/response_url/t9"))
    (refusal,) = fake_slack.wait_for("response_url")
    assert "reinstall" in refusal.params["text"]
    assert fake_slack.calls_to("users.info") == []


def test_app_uninstalled_deletes_the_installation_and_deactivates(client, engine, runtime, fake_slack):
    install(client)
    send_event(client, inbound("app_uninstalled"))
    wait_until_inactive(engine, "T2")  # set after the installation is deleted
    assert rows(engine, "slack_bots") == [] and rows(engine, "slack_installations") == []
    with engine.connect() as conn:
        workspace = workspaces.get(conn, "T2")
        assert workspace.status == "inactive" and workspace.uninstalled_at is not None
        assert workspaces.active_workspace_ids(conn, runtime.settings) == []
    with pytest.raises(WorkspaceNotInstalled):
        asyncio.run(bot_client_for(runtime, "T2"))
    send_command(client, "me", team_id="T2", response_url=fake_slack.server.url_for("/response_url/t2"))
    assert "reinstall" in fake_slack.wait_for("response_url")[0].params["text"]
    assert fake_slack.calls_to("users.info") == []


def test_bot_token_revoked_deletes_the_bot_and_deactivates(client, engine):
    install(client)
    send_event(client, inbound("tokens_revoked"))
    wait_until_inactive(engine, "T2")
    assert rows(engine, "slack_bots") == []


def test_reinstall_reactivates_the_workspace(client, engine):
    install(client)
    send_event(client, inbound("app_uninstalled"))
    wait_until_inactive(engine, "T2")
    install(client)
    with engine.connect() as conn:
        assert workspaces.get(conn, "T2").status == "active"
        assert len(conn.execute(select(Workspace.id)).all()) == 1


async def test_bot_client_for_uses_each_workspaces_token(runtime, engine, fake_slack):
    with pytest.raises(WorkspaceNotInstalled):
        await bot_client_for(runtime, "T2")
    from slack_sdk.oauth.installation_store import Installation

    from bot.slack.oauth import installation_store

    installation_store(runtime).save(
        Installation(
            app_id="A1",
            team_id="T2",
            team_name="Second",
            bot_token=T2_BOT_TOKEN,
            bot_id="BBOT2",
            bot_user_id="UBOT2",
            user_id="UADMIN",
        )
    )
    with pytest.raises(WorkspaceNotInstalled):  # a bot row alone is not an active workspace
        await bot_client_for(runtime, "T2")
    with engine.begin() as conn:
        workspaces.activate(conn, workspace_id="T2", enterprise_id=None, name="Second", installed_by="UADMIN")
    client = await bot_client_for(runtime, "T2")
    fake_slack.tokens[T2_BOT_TOKEN] = {
        "team_id": "T2",
        "team": "Second",
        "user_id": "UBOT2",
        "bot_id": "BBOT2",
    }
    assert client.token == T2_BOT_TOKEN and client.base_url == fake_slack.api_url
    assert (await client.auth_test())["team_id"] == "T2"

    single = Runtime(
        settings=Settings(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=fake_slack.api_url), engine=engine
    )
    assert (await bot_client_for(single, "default")).token == BOT_TOKEN
    with pytest.raises(WorkspaceNotInstalled):
        await bot_client_for(single, "T2")


def test_workspace_for_scopes_by_team_only_in_oauth_mode(engine, fake_slack):
    single = Runtime(settings=Settings(SLACK_BOT_TOKEN=BOT_TOKEN), engine=engine)
    assert single.workspace_for("T2") == "default"
    multi = Runtime(settings=oauth_settings(fake_slack), engine=engine)
    assert multi.workspace_for("T2") == "T2"
    with pytest.raises(ValueError, match="team id"):
        multi.workspace_for(None)


def test_single_workspace_mode_has_no_install_pages(engine, fake_slack):
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.api_url
    )
    runtime = Runtime(settings=settings, engine=engine)
    with TestClient(build_web_app(runtime, build_app(runtime))) as client:
        assert client.get("/slack/install").status_code == 404


def test_oauth_configuration_errors_name_what_to_fix(engine, fake_slack):
    no_secret = Runtime(
        settings=Settings(SLACK_CLIENT_ID=CLIENT_ID, SLACK_SIGNING_SECRET=SIGNING_SECRET), engine=engine
    )
    with pytest.raises(ConfigError, match="SLACK_CLIENT_SECRET is not"):
        build_app(no_secret)
    with pytest.raises(ConfigError, match="unset SLACK_APP_TOKEN"):
        build_app(Runtime(settings=oauth_settings(fake_slack), engine=engine), socket_mode=True)


def test_bot_scopes_are_the_manifests():
    manifest = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())
    assert list(BOT_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]
    assert "app_uninstalled" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert "tokens_revoked" in manifest["settings"]["event_subscriptions"]["bot_events"]


def test_migrated_installation_tables_are_slack_sdks(engine):
    """The migration must create what slack_sdk's stores expect, column for column."""
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    expected = MetaData()
    SQLAlchemyInstallationStore.build_bots_table(expected, "slack_bots")
    SQLAlchemyInstallationStore.build_installations_table(expected, "slack_installations")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(expected, "slack_oauth_states")
    inspector = inspect(engine)
    for name, table in expected.tables.items():
        actual = {c["name"]: c for c in inspector.get_columns(name)}
        assert list(actual) == [c.name for c in table.columns], name
        for column in table.columns:
            found = actual[column.name]
            assert found["nullable"] == column.nullable, (name, column.name)
            assert found["type"]._type_affinity is column.type._type_affinity, (name, column.name)
            assert getattr(found["type"], "length", None) == getattr(column.type, "length", None)
            if column.type._type_affinity.__name__ == "DateTime":  # naive UTC, as slack_sdk writes
                assert not found["type"].timezone, (name, column.name)
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(name)}
        for index in table.indexes:
            assert indexes[index.name] == [c.name for c in index.columns], index.name


# -- the workspace comes from Bolt's authorization, never from the body (issue 14, item 15) ------
T3_BOT_TOKEN = "xoxb-t3"


def install_second_workspace(runtime, engine, fake_slack) -> None:
    """T3, installed beside T2 (as its own OAuth flow would leave it)."""
    from slack_sdk.oauth.installation_store import Installation

    from bot.slack.oauth import installation_store

    installation_store(runtime).save(
        Installation(
            app_id="A1",
            team_id="T3",
            bot_token=T3_BOT_TOKEN,
            bot_id="BBOT3",
            bot_user_id="UBOT3",
            user_id="U3",
        )
    )
    fake_slack.tokens[T3_BOT_TOKEN] = {
        "team_id": "T3",
        "team": "Third",
        "user_id": "UBOT3",
        "bot_id": "BBOT3",
    }
    with engine.begin() as conn:
        workspaces.activate(conn, workspace_id="T3", enterprise_id=None, name="Third", installed_by="U3")


def spend_in(engine, workspace_id: str, micros: int) -> None:
    """Ana in ``workspace_id`` with ``micros`` of OpenAI spend yesterday."""
    with engine.begin() as conn:
        person_id = conn.execute(
            Person.__table__.insert().values(
                workspace_id=workspace_id, email="ana@example.com", display_name="Ana"
            )
        ).inserted_primary_key[0]
        conn.execute(
            UsageDaily.__table__.insert().values(
                workspace_id=workspace_id,
                source="openai",
                vendor="openai",
                day=TODAY - timedelta(days=1),
                actor="email:ana@example.com",
                person_id=person_id,
                model="gpt-4o",
                cost_micros=micros,
                raw_amount=str(micros / 1e6),
            )
        )
        rollups.rebuild(conn)  # written directly: bring the rollups in step


def test_app_home_reads_the_authorized_workspace_not_the_bodys_team_id(client, runtime, engine, fake_slack):
    install(client)
    install_second_workspace(runtime, engine, fake_slack)
    spend_in(engine, "T2", 12_340_000)
    spend_in(engine, "T3", 99_000_000)
    # Signed with the app's secret, authorized as T2 (Bolt reads `authorizations`), but the
    # top-level team_id names T3: the home tab must show T2's numbers, never T3's.
    authorized = [{"enterprise_id": None, "team_id": "T2", "user_id": "UBOT2", "is_bot": True}]
    forged = inbound("app_home_opened", user="UANA")
    body = event_body(
        forged, event_id="EvForged", event_time=1_700_000_000, team_id="T3", authorizations=authorized
    )
    headers = {**signed_headers(body), "content-type": "application/json"}
    assert client.post("/slack/events", content=body, headers=headers).status_code == 200
    published = fake_slack.wait_for("views.publish")[-1]
    assert published.headers["Authorization"] == f"Bearer {T2_BOT_TOKEN}"
    text = json.dumps(published.params)
    assert "$12.34" in text and "$99" not in text
    with engine.connect() as conn:
        linked = (
            conn.execute(select(Person.workspace_id).where(Person.slack_user_id == "UANA")).scalars().all()
        )
    assert linked == ["T2"]  # nothing written in T3 either


def test_sources_modal_writes_the_authorized_workspace_not_the_bodys_team(engine, fake_slack):
    from cryptography.fernet import Fernet

    from bot.db.models import SourceSecret
    from bot.services import secrets
    from bot.slack.blocks.sources import key_block_id

    settings = oauth_settings(
        fake_slack, TOKENWISE_ADMINS="UANA", TOKENWISE_SECRET_KEY=Fernet.generate_key().decode()
    )
    runtime = Runtime(settings=settings, engine=engine)
    with TestClient(build_web_app(runtime, build_app(runtime)), base_url="https://testserver") as client:
        install(client)
        install_second_workspace(runtime, engine, fake_slack)
        fernet = secrets.keyring(settings)
        with engine.begin() as conn:  # T3's own admin stored T3's key
            change = secrets.SecretChange("openai", key="sk-t3-own-key-0123456789")
            secrets.apply_changes(conn, fernet, workspace_id="T3", changes=[change], updated_by="U3")
        # Sent from T3 (team, view.team_id) but installed as T2 (what Bolt authorizes by).
        state = {
            key_block_id("openai"): {"value": {"type": "plain_text_input", "value": "sk-t2-attacker-key"}}
        }
        payload = inbound(
            "view_submission",
            team={"id": "T3", "domain": "third"},
            user={"id": "UANA", "team_id": "T3"},
            view={"id": "V9", "team_id": "T3", "app_installed_team_id": "T2", "state": {"values": state}},
        )
        body = form_body(payload)
        assert client.post("/slack/events", content=body, headers=signed_headers(body)).status_code == 200
        with engine.connect() as conn:
            stored = {r.workspace_id: r for r in conn.execute(select(SourceSecret.__table__)).all()}
            t3 = secrets.load_overrides(conn, fernet, workspace_id="T3")
            t2 = secrets.load_overrides(conn, fernet, workspace_id="T2")
        assert set(stored) == {"T2", "T3"}
        assert t3["openai"].key == "sk-t3-own-key-0123456789"  # T3's key untouched
        assert t2["openai"].key == "sk-t2-attacker-key"  # written where Bolt authorized
