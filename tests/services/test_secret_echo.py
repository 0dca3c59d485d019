"""A vendor that echoes the credential back, in every form, for every connector in bot/sources/.

One loopback fake vendor answers every request with 401 and echoes the credential the request
carried (Bearer, x-api-key, Basic, a body field) into its error body and headers: raw, as the
whole header, Basic's base64 blob and its decoded ``key:``, base64 (standard and url-safe, with
and without padding, alone or inside encoded JSON), URL- and form-encoded, and placed across the
200-character cut of error summaries. Each connector syncs against it; the key must then appear
in no log record, no exception text, no stored sync_run/sync_state error, no Slack message
(``/tokens status`` through the signed HTTP app) and no /metrics output. The forms checked are
computed here, independently of the masking code.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import traceback
from datetime import date
from urllib.parse import quote, quote_plus

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from starlette.testclient import TestClient
from werkzeug import Request, Response

from bot.db.models import SyncRun, SyncState
from bot.services.runtime import Runtime
from bot.services.sync import run_all
from bot.settings import Settings
from bot.slack.app import build_app
from bot.sources.registry import enabled_connectors
from bot.web import build_web_app
from tests.support.inbound import command_body
from tests.support.slack_fake import BOT_TOKEN, SIGNING_SECRET, signed_headers, start_fake_slack

# Characters that URL-encode and base64 differently (/, +, =), one key per credential form.
KEYS = {
    "OPENAI_ADMIN_KEY": "sk-admin-Open/Ai+Key=0123456789",  # Bearer
    "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-Anth/ropic+Key=98765",  # x-api-key
    "CURSOR_ADMIN_KEY": "key_cursor/With+Plus=abcdef0123",  # Basic, key as the user name
    "GITHUB_COPILOT_TOKEN": "ghp_Copilot/Token+0123456789abc",  # Bearer
    "GITHUB_DELIVERY_TOKEN": "ghp_Delivery/Token+0123456789xyz",  # Bearer
    "OPENROUTER_MANAGEMENT_KEY": "sk-or-v1-Open/Router+Mgmt=424242",  # Bearer
    "WINDSURF_SERVICE_KEY": "ws-service/Key+With=Signs0123",  # JSON body field service_key
}
TODAY = date(2026, 11, 20)
CONNECTORS = {  # every connector in bot/sources/ that calls a vendor
    "openai",
    "anthropic",
    "claude_code",
    "cursor",
    "windsurf",
    "github_copilot",
    "github_delivery",
    "openrouter",
}


def b64(text: str, *, urlsafe: bool = False, padded: bool = True) -> str:
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(text.encode()).decode()
    return encoded if padded else encoded.rstrip("=")


ECHOES = {
    "raw": lambda key, header: key,
    "whole-header": lambda key, header: header,
    "basic-blob": lambda key, header: f"Basic {b64(key + ':')}",
    "basic-decoded": lambda key, header: f"{key}:",
    "base64": lambda key, header: b64(key),
    "base64-unpadded": lambda key, header: b64(key, padded=False),
    "base64-urlsafe": lambda key, header: b64(key, urlsafe=True),
    "base64-urlsafe-unpadded": lambda key, header: b64(key, urlsafe=True, padded=False),
    "base64-inside-json": lambda key, header: b64(json.dumps({"api_key": key})),
    "url-encoded": lambda key, header: quote(key, safe=""),
    "form-encoded": lambda key, header: quote_plus(key),
    "across-the-cut": lambda key, header: "x" * 190 + key,
}


def revealing(key: str) -> list[str]:
    """Texts that would give the key away (what the echo sends, and a long prefix of the key)."""
    forms = {key, key[:16], quote(key, safe=""), quote_plus(key)}
    for text in (key, key + ":"):
        for urlsafe in (False, True):
            forms |= {b64(text, urlsafe=urlsafe), b64(text, urlsafe=urlsafe, padded=False)}
    return sorted(forms)


def credential_of(request: Request) -> tuple[str, str]:
    """(the key, the header or field that carried it) from whatever the connector sent."""
    header = request.headers.get("Authorization") or request.headers.get("x-api-key") or ""
    if header.startswith("Basic "):
        return base64.b64decode(header.removeprefix("Basic ")).decode().split(":")[0], header
    if header:
        return header.split()[-1], header
    if request.is_json and isinstance(request.get_json(silent=True), dict):
        key = str(request.get_json()["service_key"])
        return key, key
    return "", ""


class EchoVendor:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.form = "raw"
        self.seen: set[str] = set()
        server.expect_request(re.compile(".*")).respond_with_handler(self.answer)

    def answer(self, request: Request) -> Response:
        key, header = credential_of(request)
        self.seen.add(key)
        echo = ECHOES[self.form](key, header)
        message = f"Invalid credentials: {echo}"
        body = {"error": {"message": message, "type": "authentication_error"}, "message": message}
        headers = {"WWW-Authenticate": f'Bearer error="invalid_token" {echo}', "X-Echo": echo}
        return Response(json.dumps(body), status=401, headers=headers, content_type="application/json")


@pytest.fixture
def vendor():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield EchoVendor(server)
    server.clear()
    server.stop()


def vendor_settings(base_url: str, **more) -> Settings:
    return Settings(
        **KEYS,
        OPENAI_ADMIN_BASE_URL=base_url,
        ANTHROPIC_ADMIN_BASE_URL=base_url,
        CURSOR_ADMIN_BASE_URL=base_url,
        GITHUB_API_BASE_URL=base_url,
        GITHUB_COPILOT_ORG="acme",
        GITHUB_DELIVERY_ORG="acme",
        OPENROUTER_BASE_URL=base_url,
        WINDSURF_BASE_URL=base_url,
        TOKENWISE_HTTP_MAX_RETRIES=0,
        **more,
    )


def test_no_connector_lets_an_echoed_credential_out_in_any_form(engine, vendor, httpserver, caplog):
    caplog.set_level(logging.DEBUG)
    fake_slack = start_fake_slack(httpserver)
    settings = vendor_settings(
        vendor.server.url_for("/"),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
    )
    runtime = Runtime(settings=settings, engine=engine)
    texts: list[str] = []
    statuses: list[str] = []
    with TestClient(build_web_app(runtime, build_app(runtime))) as client:
        for form in ECHOES:
            vendor.form = form
            connectors = enabled_connectors(settings)
            assert {c.name for c in connectors} == CONNECTORS
            outcomes = run_all(engine, connectors, workspace_id="default", since=TODAY, today=TODAY)
            assert outcomes and all(o.status == "failed" for o in outcomes), form
            texts += [o.error or "" for o in outcomes]
            for connector in enabled_connectors(settings):  # the exceptions themselves
                try:
                    list(connector.fetch(TODAY, TODAY))
                except Exception as error:
                    texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
                finally:
                    connector.close()
            body = command_body("status", user_id="UADMIN")
            reply = client.post("/slack/events", content=body, headers=signed_headers(body))
            assert reply.status_code == 200
            statuses.append(json.dumps(reply.json()))
        texts.append(client.get("/metrics").text)
    assert vendor.seen >= set(KEYS.values())  # every connector's credential reached the echo
    assert any("[redacted]" in status for status in statuses)  # the errors are shown, masked
    with engine.connect() as conn:
        texts += [e or "" for e in conn.execute(select(SyncRun.error)).scalars()]
        texts += [e or "" for e in conn.execute(select(SyncState.last_error)).scalars()]
    texts += statuses + [json.dumps(call.params) for call in fake_slack.calls]
    formatter = logging.Formatter("%(message)s")
    texts += [formatter.format(record) for record in caplog.records] + [caplog.text]
    leaks = [
        (form, text[:120])
        for key in KEYS.values()
        for form in revealing(key)
        for text in texts
        if form in text
    ]
    assert leaks == []


def test_a_signed_links_signature_and_a_body_field_are_masked_too():
    """What no header carries: a download link's signature (Copilot's signed report links) and a
    key in the JSON body (Windsurf's service_key), echoed back URL-encoded and in base64."""
    from bot.sources.base import SourceError
    from bot.sources.http import VendorHttp

    signature, body_key = "sv=2026&sig=AbC/dEf+GhI=jKl0123", "body-key/with+plus=0123456789"
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:

        def echo(request: Request) -> Response:
            echoed = [quote(value, safe="") for value in request.args.values()]
            if request.is_json:
                echoed.append(b64(request.get_json()["service_key"], urlsafe=True, padded=False))
            return Response(json.dumps({"error": {"message": " ".join(echoed)}}), status=403)

        server.expect_request(re.compile(".*")).respond_with_handler(echo)
        http = VendorHttp(source="test", base_url=server.url_for("/"), max_retries=0)
        sig = signature.split("sig=")[1]
        link_url = server.url_for(f"/report.json?{signature.replace('+', '%2B')}")
        with pytest.raises(SourceError) as link:
            http.json("GET", link_url, endpoint="report")
        with pytest.raises(SourceError) as posted:
            http.json("POST", "usage", json={"service_key": body_key, "group": "all"})
        http.close()
    finally:
        server.clear()
        server.stop()
    texts = [str(link.value), str(posted.value)]
    assert "[redacted]" in texts[0] and "[redacted]" in texts[1]
    assert not [t for t in texts for form in [*revealing(sig), *revealing(body_key)] if form in t]
