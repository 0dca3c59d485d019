"""Vendor keys per workspace: the ``/tokens sources`` modal through signed Slack payloads, Fernet
encryption at rest with rotation, and connectors built from the stored keys (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
import logging
import re

import pytest
from cryptography.fernet import Fernet
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.db.models import AuditLog, SourceSecret
from bot.services import secrets
from bot.services.secrets import SecretChange, SecretInputError, SecretKeyError
from bot.services.sync import run_all
from bot.settings import Settings
from bot.slack.blocks.sources import (
    build_no_secret_key_modal,
    build_sources_modal,
    extra_block_id,
    key_block_id,
    url_block_id,
)
from bot.sources.overrides import CONFIGURABLE, VendorSecret
from bot.sources.registry import enabled_connectors
from tests.support.inbound import command_body, form_body, view_submission
from tests.support.slack_app import slack_client
from tests.support.slack_fake import signed_headers

KEY_1 = Fernet.generate_key().decode()
KEY_2 = Fernet.generate_key().decode()
VENDOR_KEY = "sk-admin-0123456789abcdefSECRET"
VENDOR_URL = "http://127.0.0.1:9/v1"


@pytest.fixture
def client(engine, fake_slack):
    with slack_client(engine, fake_slack, TOKENWISE_SECRET_KEY=KEY_1) as c:
        yield c


def command(client, text: str, user_id: str):
    body = command_body(text, user_id=user_id)
    response = client.post("/slack/events", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    return response


def submission(values: dict[str, str | None], *, user_id: str, remove: list[str] = ()) -> dict:
    state = {}
    for source, spec in CONFIGURABLE.items():
        blocks = (
            key_block_id(source),
            url_block_id(source),
            *([extra_block_id(source)] if spec.extra_field else []),
        )
        for block_id in blocks:
            state[block_id] = {"value": {"type": "plain_text_input", "value": values.get(block_id)}}
    if remove:
        state["remove"] = {
            "value": {"type": "checkboxes", "selected_options": [{"value": s, "text": {}} for s in remove]}
        }
    return view_submission(state, user_id=user_id)


def submit(client, payload: dict):
    body = form_body(payload)
    response = client.post("/slack/events", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    return response


def stored(engine) -> dict[str, SourceSecret]:
    with engine.connect() as conn:
        return {
            row.source: row
            for row in conn.execute(select(SourceSecret.__table__)).all()  # raw columns, as stored
        }


def settings_with(key: str | None) -> Settings:
    return Settings(TOKENWISE_SECRET_KEY=key) if key else Settings()


# -- the modal, end to end ----------------------------------------------------------------------


def test_admin_opens_the_modal_with_the_commands_trigger(client, fake_slack):
    response = command(client, "sources", "UADMIN")
    body = response.json()  # the modal is the answer; the channel only gets an ephemeral note
    assert body["response_type"] == "ephemeral" and "form" in body["text"]
    (opened,) = fake_slack.calls_to("views.open")
    assert opened.params["trigger_id"] == "123.456.abc"
    view = opened.params["view"]
    labels = [b["label"]["text"] for b in view["blocks"] if b["type"] == "input"]
    assert "OpenAI key (not set)" in labels and "Cursor base URL" in labels
    assert view["callback_id"] == "tokenwise_sources" and json.loads(view["private_metadata"]) == {
        "channel": "C1"
    }


def test_non_admins_are_refused_and_no_modal_opens(client, fake_slack):
    reply = command(client, "sources", "UANA").json()
    assert reply["response_type"] == "ephemeral" and "managed by admins" in reply["text"]
    assert fake_slack.calls_to("views.open") == []


def test_listed_admins_may_open_it_too_and_arguments_are_refused(client, fake_slack):
    command(client, "sources", "ULISTED")
    assert len(fake_slack.calls_to("views.open")) == 1
    reply = command(client, "sources openai", "UADMIN").json()
    assert "takes no arguments" in reply["text"]
    assert len(fake_slack.calls_to("views.open")) == 1


def test_without_a_secret_key_the_modal_says_how_to_make_one(engine, fake_slack):
    with slack_client(engine, fake_slack) as client:
        command(client, "sources", "UADMIN")
        view = fake_slack.calls_to("views.open")[0].params["view"]
        texts = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
        assert any(secrets.GENERATE_KEY_COMMAND in t for t in texts) and "submit" not in view
        # A submission that slipped through stores nothing either.
        reply = submit(client, submission({key_block_id("openai"): VENDOR_KEY}, user_id="UADMIN")).json()
        assert reply["response_action"] == "update" and "TOKENWISE_SECRET_KEY" in json.dumps(reply["view"])
    assert stored(engine) == {}


def test_admin_saves_a_key_encrypted_and_it_is_never_shown_or_logged(client, engine, fake_slack, caplog):
    caplog.set_level(logging.DEBUG)
    response = submit(
        client,
        submission(
            {key_block_id("openai"): f"  {VENDOR_KEY} ", url_block_id("openai"): VENDOR_URL}, user_id="UADMIN"
        ),
    )
    assert response.text == ""  # an empty ack closes the modal
    row = stored(engine)["openai"]
    assert row.encrypted_key != VENDOR_KEY and VENDOR_KEY not in row.encrypted_key
    assert Fernet(KEY_1.encode()).decrypt(row.encrypted_key.encode()).decode() == VENDOR_KEY
    assert (row.base_url, row.updated_by, row.workspace_id) == (VENDOR_URL, "UADMIN", "default")
    (confirmation,) = fake_slack.wait_for("chat.postEphemeral")  # sent after the ack
    assert confirmation.params["channel"] == "C1" and "OpenAI key saved" in confirmation.params["text"]

    command(client, "sources", "UADMIN")  # reopening shows "set", never the key
    view = fake_slack.calls_to("views.open")[-1].params["view"]
    labels = [b["label"]["text"] for b in view["blocks"] if b["type"] == "input"]
    assert "OpenAI key (set)" in labels and "Anthropic + Claude Code key (not set)" in labels

    with engine.connect() as conn:
        audit = conn.execute(select(AuditLog.action, AuditLog.target, AuditLog.detail)).all()
    assert ("secret.set", "source:openai", "") in audit
    everything = json.dumps([(c.method, c.params, c.headers) for c in fake_slack.calls]) + caplog.text
    everything += response.text + json.dumps([tuple(a) for a in audit])
    assert VENDOR_KEY not in everything and VENDOR_KEY[-8:] not in everything


def test_non_admin_submission_is_refused_and_stores_nothing(client, engine):
    reply = submit(client, submission({key_block_id("openai"): VENDOR_KEY}, user_id="UANA")).json()
    assert reply["response_action"] == "update" and "managed by admins" in json.dumps(reply["view"])
    assert stored(engine) == {}


@pytest.mark.parametrize(
    ("values", "block", "words"),
    [
        ({url_block_id("openai"): "ftp://example.com"}, url_block_id("openai"), "full URL"),
        ({url_block_id("cursor"): "http://api.example.com"}, url_block_id("cursor"), "https://"),
        ({key_block_id("anthropic"): "sk ant admin"}, key_block_id("anthropic"), "no spaces"),
        ({url_block_id("windsurf"): "https://eu.example.com"}, key_block_id("windsurf"), "Enter the key too"),
    ],
)
def test_bad_input_is_shown_under_its_field_and_changes_nothing(client, engine, values, block, words):
    values = {key_block_id("openai"): VENDOR_KEY, **values}  # a good key beside the bad input
    reply = submit(client, submission(values, user_id="UADMIN")).json()
    assert reply["response_action"] == "errors" and words in reply["errors"][block]
    assert stored(engine) == {}


def test_remove_and_base_url_changes(client, engine, fake_slack):
    submit(
        client,
        submission(
            {key_block_id("openai"): VENDOR_KEY, key_block_id("cursor"): "key_cursor_1"}, user_id="UADMIN"
        ),
    )
    before = stored(engine)["openai"].encrypted_key
    submit(
        client,
        submission(
            {url_block_id("openai"): "https://api.openai.com/v2/"}, user_id="UADMIN", remove=["cursor"]
        ),
    )
    after = stored(engine)
    assert set(after) == {"openai"}
    said = fake_slack.wait_for("chat.postEphemeral", count=2)[-1].params["text"]
    assert "OpenAI base URL changed, Cursor key removed" in said  # same host: the key may follow
    assert after["openai"].base_url == "https://api.openai.com/v2" and after["openai"].encrypted_key == before
    reply = submit(
        client, submission({key_block_id("openai"): "sk-new"}, user_id="UADMIN", remove=["openai"])
    ).json()
    assert "not both" in reply["errors"][key_block_id("openai")]
    command(client, "sources", "UADMIN")
    view = fake_slack.calls_to("views.open")[-1].params["view"]
    url_input = next(b for b in view["blocks"] if b.get("block_id") == url_block_id("openai"))
    assert url_input["element"]["initial_value"] == "https://api.openai.com/v2"
    remove = next(b for b in view["blocks"] if b.get("block_id") == "remove")
    assert [o["value"] for o in remove["element"]["options"]] == ["openai"]


@pytest.mark.parametrize(
    "new_url",
    ["https://eu.api.openai.com/v1", "http://127.0.0.1:8080/v1", "https://api.openai.com:8443/v1"],
)
def test_a_stored_key_never_moves_to_another_host_without_being_entered_again(client, engine, new_url):
    submit(client, submission({key_block_id("openai"): VENDOR_KEY}, user_id="UADMIN"))
    before = stored(engine)["openai"]
    reply = submit(client, submission({url_block_id("openai"): new_url}, user_id="UADMIN")).json()
    assert reply["response_action"] == "errors"
    assert "Paste the key again" in reply["errors"][key_block_id("openai")]
    after = stored(engine)["openai"]
    assert (after.base_url, after.encrypted_key) == (before.base_url, before.encrypted_key)


@pytest.fixture
def two_vendors():
    """Two loopback vendor hosts (two ports) that refuse every call and record it."""
    servers = [HTTPServer(host="127.0.0.1", port=0) for _ in range(2)]
    for server in servers:
        server.start()
        server.expect_request(re.compile(".*")).respond_with_json({"error": {"message": "no"}}, status=401)
    yield servers
    for server in servers:
        server.clear()
        server.stop()


def test_the_old_key_is_never_sent_to_the_new_host(client, engine, two_vendors):
    """Moving the stored key's base URL from the first host to the second is refused, the sync
    keeps calling the first, and the second never sees the key."""
    first, second = two_vendors
    first_url, second_url = first.url_for("/v1"), second.url_for("/v1")
    values = {key_block_id("openai"): VENDOR_KEY, url_block_id("openai"): first_url}
    submit(client, submission(values, user_id="UADMIN"))
    reply = submit(client, submission({url_block_id("openai"): second_url}, user_id="UADMIN")).json()
    assert reply["response_action"] == "errors"
    settings = Settings(TOKENWISE_SECRET_KEY=KEY_1)

    def sync() -> None:
        run_all(engine, secrets.connectors_for_workspace(settings, engine, "default"), workspace_id="default")

    sync()
    sent = [request.headers.get("Authorization", "") for request, _ in first.log]
    assert sent and all(header == f"Bearer {VENDOR_KEY}" for header in sent)  # the sync ran, to the first
    assert second.log == []
    # Entering a key with the new URL moves it: from then on only the second host is called.
    values = {key_block_id("openai"): "sk-other-key-0123456789", url_block_id("openai"): second_url}
    submit(client, submission(values, user_id="UADMIN"))
    calls_to_first = len(first.log)
    sync()
    assert second.log and len(first.log) == calls_to_first
    assert all(VENDOR_KEY not in str(request.headers) for request, _ in second.log)


# -- encryption and rotation --------------------------------------------------------------------


def test_secret_key_errors_never_echo_the_key():
    with pytest.raises(SecretKeyError, match="not set") as unset:
        secrets.keyring(Settings())
    assert secrets.GENERATE_KEY_COMMAND in str(unset.value)
    with pytest.raises(SecretKeyError, match="key 2 of 2 is not a Fernet key") as bad:
        secrets.keyring(settings_with(f"{KEY_1},not-a-fernet-key-xyz"))
    assert "not-a-fernet-key-xyz" not in str(bad.value) and KEY_1 not in str(bad.value)


def store_key(engine, key_setting: str, source: str = "openai", value: str = VENDOR_KEY) -> None:
    with engine.begin() as conn:
        secrets.apply_changes(
            conn,
            secrets.keyring(settings_with(key_setting)),
            workspace_id="default",
            changes=[SecretChange(source, key=value)],
            updated_by="UADMIN",
        )


def load(engine, key_setting: str) -> dict[str, VendorSecret]:
    with engine.connect() as conn:
        return secrets.load_overrides(
            conn, secrets.keyring(settings_with(key_setting)), workspace_id="default"
        )


def test_rotation_with_multifernet(engine, caplog):
    store_key(engine, KEY_1)
    assert load(engine, KEY_1)["openai"].key == VENDOR_KEY
    assert load(engine, f"{KEY_2},{KEY_1}")["openai"].key == VENDOR_KEY  # every key decrypts
    with caplog.at_level(logging.WARNING):
        assert load(engine, KEY_2) == {}  # the old key dropped too early: the source stays off
    assert "cannot be decrypted" in caplog.text and VENDOR_KEY not in caplog.text
    with engine.begin() as conn:
        assert secrets.rotate(conn, secrets.keyring(settings_with(f"{KEY_2},{KEY_1}"))) == (1, 0)
    assert load(engine, KEY_2)["openai"].key == VENDOR_KEY  # now the new key alone suffices
    raw = stored(engine)["openai"].encrypted_key
    assert Fernet(KEY_2.encode()).decrypt(raw.encode()).decode() == VENDOR_KEY


def test_cli_rotate(tmp_path, monkeypatch, sqlite_url):
    from bot.db.engine import make_engine

    engine = make_engine(sqlite_url)
    store_key(engine, KEY_1)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TOKENWISE_SECRET_KEY", f"{KEY_2},{KEY_1}")
    result = CliRunner().invoke(cli, ["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 stored key" in result.output and KEY_2 not in result.output
    assert load(engine, KEY_2)["openai"].key == VENDOR_KEY
    monkeypatch.setenv("TOKENWISE_SECRET_KEY", Fernet.generate_key().decode())  # neither old key
    result = CliRunner().invoke(cli, ["secrets", "rotate"])
    assert result.exit_code == 1 and "1 stored key(s) open with none" in result.output
    engine.dispose()


def test_input_cleaning():
    assert secrets.clean_base_url("openai", "https://api.openai.com/v1/") is None  # the default
    assert secrets.clean_base_url("openai", " ") is None
    assert secrets.clean_base_url("openai", "http://localhost:8080/v1") == "http://localhost:8080/v1"
    with pytest.raises(SecretInputError, match="credentials"):
        secrets.clean_base_url("openai", "https://user:pw@api.example.com")
    with pytest.raises(SecretInputError, match="longer than"):
        secrets.clean_key("openai", "x" * 1001)
    assert "sk-x" not in repr(SecretChange("openai", key="sk-x")) and "sk-x" not in repr(VendorSecret("sk-x"))


# -- connectors from stored keys ----------------------------------------------------------------


def test_stored_keys_build_connectors_over_the_environment():
    env = Settings(OPENAI_ADMIN_KEY="sk-admin-env", CURSOR_ADMIN_KEY="key_env_cursor")
    assert [c.name for c in enabled_connectors(env)] == ["openai", "cursor"]  # the old signature
    connectors = enabled_connectors(
        env, secret_overrides={"openai": VendorSecret("sk-admin-stored", "http://127.0.0.1:9/v1")}
    )
    openai = next(c for c in connectors if c.name == "openai")
    assert openai.http.client.headers["Authorization"] == "Bearer sk-admin-stored"
    assert str(openai.http.client.base_url).startswith("http://127.0.0.1:9/v1")
    assert {c.name for c in connectors} == {"openai", "cursor"}
    for connector in connectors:
        connector.close()


def test_each_workspace_syncs_with_its_own_keys(engine):
    with engine.begin() as conn:
        for workspace_id, value in (("T2", "sk-admin-t2"), ("default", "sk-admin-default")):
            secrets.apply_changes(
                conn,
                secrets.keyring(settings_with(KEY_1)),
                workspace_id=workspace_id,
                changes=[SecretChange("openai", key=value)],
                updated_by="UADMIN",
            )
    multi = Settings(
        SLACK_CLIENT_ID="1.2",
        TOKENWISE_SECRET_KEY=KEY_1,
        CURSOR_ADMIN_KEY="key_env_cursor",
        TOKENWISE_WORKSPACE_ID="T1",
    )
    t2 = secrets.connectors_for_workspace(multi, engine, "T2")
    # T2 gets its own OpenAI key and never the environment's Cursor key, which belongs to T1.
    assert [(c.name, c.http.client.headers["Authorization"]) for c in t2] == [
        ("openai", "Bearer sk-admin-t2")
    ]
    t1 = secrets.connectors_for_workspace(multi, engine, "T1")
    assert [c.name for c in t1] == ["cursor"]
    single = Settings(TOKENWISE_SECRET_KEY=KEY_1, CURSOR_ADMIN_KEY="key_env_cursor")
    default = secrets.connectors_for_workspace(single, engine, "default")
    # Each connector's credential (VendorHttp keeps them to redact errors): OpenAI's stored key,
    # Cursor's environment key (HTTP Basic).
    assert {c.name: c.http.secrets[-1] for c in default} == {
        "openai": "sk-admin-default",
        "cursor": "key_env_cursor",
    }
    for connector in [*t2, *t1, *default]:
        connector.close()


# -- builders as data ---------------------------------------------------------------------------


def test_saved_confirmation_names_changes_never_values():
    from bot.slack.blocks.sources import build_saved

    nothing = build_saved([], sync_minutes=60)
    assert nothing.text.startswith("Nothing changed")
    saved = build_saved([("anthropic", "secret.set"), ("windsurf", "secret.remove")], sync_minutes=30)
    assert "Anthropic + Claude Code key saved, Windsurf key removed" in saved.text
    assert "within 30 minutes" in saved.text
    from bot.slack.blocks.common import validate

    assert validate(saved.blocks) == [] and validate(nothing.blocks) == []


def test_modal_builders_stay_within_slack_limits():
    statuses = {s: secrets.SecretStatus(s, True, "https://example.com/" + "x" * 400) for s in CONFIGURABLE}
    for view in (build_sources_modal(statuses, channel_id="C1"), build_no_secret_key_modal()):
        assert len(view["title"]["text"]) <= 24 and len(view["blocks"]) <= 100
        assert len(view.get("private_metadata", "")) <= 3000
        for block in view["blocks"]:
            assert len(block.get("block_id", "")) <= 255
            element = block.get("element", {})
            assert len(element.get("placeholder", {}).get("text", "")) <= 150
            assert "initial_value" not in element or block["block_id"].startswith("url:")
        from bot.slack.blocks.common import validate

        assert validate(view["blocks"], max_blocks=100) == []


def test_the_sync_runs_each_active_workspace_with_its_own_keys(engine):
    from bot.db.models import SyncRun
    from bot.services import workspaces

    with engine.begin() as conn:
        for workspace_id in ("T2", "T3"):
            workspaces.activate(
                conn, workspace_id=workspace_id, enterprise_id=None, name="", installed_by="U"
            )
        workspaces.deactivate(conn, workspace_id="T3")  # uninstalled: never synced
        for workspace_id in ("T2", "T3"):
            secrets.apply_changes(
                conn,
                secrets.keyring(settings_with(KEY_1)),
                workspace_id=workspace_id,
                changes=[SecretChange("openai", key=VENDOR_KEY, base_url=VENDOR_URL)],  # nothing listens
                updated_by="UADMIN",
            )
    multi = Settings(
        SLACK_CLIENT_ID="1.2",
        TOKENWISE_SECRET_KEY=KEY_1,
        TOKENWISE_HTTP_MAX_RETRIES=0,
        CURSOR_ADMIN_KEY="key_env_cursor",  # TOKENWISE_WORKSPACE_ID's ("default"), not installed here
    )
    outcomes = workspaces.sync_every_workspace(multi, engine, tick="sync:test")
    assert {w: [(o.source, o.status) for o in runs] for w, runs in outcomes.items()} == {
        "T2": [("openai", "failed")]
    }
    assert VENDOR_KEY not in (outcomes["T2"][0].error or "")
    with engine.connect() as conn:
        assert conn.execute(select(SyncRun.workspace_id, SyncRun.source)).all() == [("T2", "openai")]


def test_percent_escapes_and_hex_of_a_secret_are_masked_in_either_case():
    from bot.observability import SecretMask

    secret = "sk-admin/Key+With=Symbols-0123456789"
    mask = SecretMask()
    mask.add([secret])
    for echoed in (
        secret.encode().hex().upper(),
        secret.encode().hex(),
        "sk-admin%2fKey%2bWith%3dSymbols-0123456789",
        "sk-admin%2FKey%2BWith%3DSymbols-0123456789",
    ):
        assert mask.mask(f"error: {echoed}!") == "error: [redacted]!", echoed


# -- Codex: a key and the ChatGPT workspace it reads ------------------------------------------

CODEX_KEY = "sk-proj-codexAnalytics0123SECRET"
CODEX_WORKSPACE = "3f2c6a4e-9b1d-4e7a-8c55-0d2f1a6b7c89"


def test_codex_key_and_workspace_id_are_stored_together_encrypted_and_never_shown(
    client, engine, fake_slack, caplog
):
    caplog.set_level(logging.DEBUG)
    values = {key_block_id("codex"): CODEX_KEY, extra_block_id("codex"): f" {CODEX_WORKSPACE} "}
    response = submit(client, submission(values, user_id="UADMIN"))
    assert response.text == ""  # saved: the modal closes
    row = stored(engine)["codex"]
    assert CODEX_KEY not in row.encrypted_key and CODEX_WORKSPACE not in row.encrypted_key
    (confirmation,) = fake_slack.wait_for("chat.postEphemeral")
    assert "OpenAI Codex key saved" in confirmation.params["text"]

    command(client, "sources", "UADMIN")  # reopened: "set", never the key nor the id
    view = fake_slack.calls_to("views.open")[-1].params["view"]
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert inputs[key_block_id("codex")]["label"]["text"] == "OpenAI Codex key (set)"
    assert inputs[extra_block_id("codex")]["label"]["text"] == "OpenAI Codex ChatGPT workspace id (set)"
    assert "initial_value" not in inputs[extra_block_id("codex")]["element"]
    everything = json.dumps([(c.method, c.params, c.headers) for c in fake_slack.calls]) + caplog.text
    assert (
        CODEX_KEY not in everything and CODEX_KEY[-8:] not in everything and CODEX_WORKSPACE not in everything
    )

    # The sync's connector reads that workspace with that key (over the environment's none).
    [codex] = [
        c
        for c in secrets.connectors_for_workspace(settings_with(KEY_1), engine, "default")
        if c.name == "codex"
    ]
    try:
        assert codex.workspace_id == CODEX_WORKSPACE
        assert codex.http.client.headers["Authorization"] == f"Bearer {CODEX_KEY}"
    finally:
        codex.close()


@pytest.mark.parametrize(
    ("values", "block", "words"),
    [
        ({key_block_id("codex"): CODEX_KEY}, extra_block_id("codex"), "Enter the ChatGPT workspace id too"),
        ({extra_block_id("codex"): CODEX_WORKSPACE}, key_block_id("codex"), "Paste the key too"),
        (
            {key_block_id("codex"): CODEX_KEY, extra_block_id("codex"): "ws 1; drop"},
            extra_block_id("codex"),
            "letters, digits and dashes",
        ),
    ],
)
def test_codex_needs_its_workspace_id_with_the_key(client, engine, fake_slack, values, block, words):
    reply = submit(client, submission(values, user_id="UADMIN")).json()
    assert reply["response_action"] == "errors" and words in reply["errors"][block]
    assert stored(engine) == {}
    assert CODEX_KEY not in json.dumps(reply)
