"""A recording fake of the Slack Web API on a real loopback HTTP server (pytest-httpserver).

Speaks the Web API's shapes for the methods the bot calls; records every call (method, params)
so tests assert on what Slack would have received. Scripted failures: ``fail_next(method, status,
error, retry_after)``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field

from werkzeug import Request, Response

from tests.support.files import fixture_path

BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"
# Multi-workspace install: the app's credentials, and what oauth.v2.access issues for team T2.
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "test-client-secret"
OAUTH_CODE = "oauth-code-t2"
T2_BOT_TOKEN = "xoxb-t2"


@dataclass
class Call:
    method: str
    params: dict
    headers: dict


@dataclass
class FakeSlack:
    server: object
    users: dict = field(default_factory=lambda: json.loads(fixture_path("slack", "users.json").read_text()))
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[tuple[int, str, int | None]]] = field(default_factory=dict)
    # method (or "response_url") -> seconds every answer to it takes: a slow Slack.
    delays: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    uploads: list[bytes] = field(default_factory=list)
    # Team members: user group id -> user ids; channel id -> user ids or {"error": code}.
    usergroups: dict = field(
        default_factory=lambda: json.loads(fixture_path("slack", "usergroups.json").read_text())
    )
    channels: dict = field(
        default_factory=lambda: json.loads(fixture_path("slack", "channels.json").read_text())
    )
    # conversations.info: channel id -> the channel object Slack returns (documented fields).
    channel_info: dict = field(
        default_factory=lambda: json.loads(fixture_path("slack", "conversations_info.json").read_text())
    )
    ts_counter: int = 0
    # conversations.info says the bot is not a member of these channels; conversations.history
    # answers channel id -> its messages (newest first, as Slack does).
    not_member: set[str] = field(default_factory=set)
    history: dict[str, list[dict]] = field(default_factory=dict)
    # bot token -> its auth.test identity; oauth.v2.access adds T2's token.
    tokens: dict[str, dict] = field(
        default_factory=lambda: {
            BOT_TOKEN: {"team_id": "T1", "team": "Test", "user_id": "UBOT", "bot_id": "BBOT"}
        }
    )

    @property
    def api_url(self) -> str:
        return self.server.url_for("/api/")

    def fail_next(
        self, method: str, status: int = 200, error: str = "ratelimited", retry_after: int | None = None
    ):
        self.failures.setdefault(method, []).append((status, error, retry_after))

    def slow(self, method: str, seconds: float) -> None:
        self.delays[method] = seconds

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posted(self) -> list[tuple[str, str]]:
        """(channel, text) of every chat.postMessage; a DM's channel is "D" + the user id."""
        return [(c.params["channel"], c.params["text"]) for c in self.calls_to("chat.postMessage")]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.calls_to(method)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} call(s) to {method}, got {len(self.calls_to(method))}")

    # -- server side --------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        method = request.path.removeprefix("/api/")
        if request.path.startswith("/upload/"):
            self.uploads.append(request.get_data())
            return Response("OK", 200)
        if request.path.startswith("/response_url/"):
            time.sleep(self.delays.get("response_url", 0))
            params = request.get_json(silent=True) or {}
            with self.lock:
                self.calls.append(Call("response_url", params, dict(request.headers)))
            return Response("ok", 200)
        if request.content_type and "json" in request.content_type:
            params = request.get_json(silent=True) or {}
        else:
            params = {k: v for k, v in request.form.items()}
        params.update({k: v for k, v in request.args.items()})
        for key in ("blocks", "attachments", "view", "files"):
            if isinstance(params.get(key), str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(params[key])
        with self.lock:
            self.calls.append(Call(method, params, dict(request.headers)))
            scripted = self.failures.get(method)
            failure = scripted.pop(0) if scripted else None
        time.sleep(self.delays.get(method, 0))
        if failure:
            status, error, retry_after = failure
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return Response(
                json.dumps({"ok": False, "error": error}), status, headers, content_type="application/json"
            )
        if method == "oauth.v2.access":  # authenticated by the app's client id and secret
            return self._json(self.oauth_v2_access(request, params))
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.tokens:
            return self._json({"ok": False, "error": "invalid_auth"})
        return self._json(self.answer(method, params, token))

    def _json(self, body: dict) -> Response:
        return Response(json.dumps(body), 200, content_type="application/json")

    def oauth_v2_access(self, request: Request, params: dict) -> dict:
        """The documented response for a bot-only install of team T2 (docs.slack.dev,
        oauth.v2.access); the client id and secret arrive as HTTP Basic auth."""
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET):
            return {"ok": False, "error": "invalid_client_id"}
        if params.get("code") != OAUTH_CODE:
            return {"ok": False, "error": "invalid_code"}
        with self.lock:
            self.tokens[T2_BOT_TOKEN] = {
                "team_id": "T2",
                "team": "Second",
                "user_id": "UBOT2",
                "bot_id": "BBOT2",
            }
        return {
            "ok": True,
            "access_token": T2_BOT_TOKEN,
            "token_type": "bot",
            "scope": "commands,chat:write,im:write,users:read,users:read.email",
            "bot_user_id": "UBOT2",
            "app_id": "A1",
            "team": {"name": "Second", "id": "T2"},
            "enterprise": None,
            "authed_user": {"id": "UADMIN"},
            "is_enterprise_install": False,
        }

    def answer(self, method: str, params: dict, token: str = BOT_TOKEN) -> dict:
        if method == "auth.test":
            return {"ok": True, **self.tokens[token], "url": "x"}
        if method == "users.info":
            user = self.users.get(params.get("user", ""))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "users.lookupByEmail":
            for user in self.users.values():
                if user.get("profile", {}).get("email") == params.get("email"):
                    return {"ok": True, "user": user}
            return {"ok": False, "error": "users_not_found"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + params.get("users", "X").split(",")[0]}}
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            self.ts_counter += 1
            return {"ok": True, "channel": params.get("channel"), "ts": f"1700000000.{self.ts_counter:06d}"}
        if method == "usergroups.users.list":
            members = self.usergroups.get(params.get("usergroup", ""))
            if members is None:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": members}
        if method == "conversations.members":
            members = self.channels.get(params.get("channel", ""))
            if members is None:
                return {"ok": False, "error": "channel_not_found"}
            if isinstance(members, dict):
                return {"ok": False, "error": members["error"]}
            start = int(params.get("cursor") or 0)
            limit = int(params.get("limit") or 100)
            rest = members[start + limit :]
            return {
                "ok": True,
                "members": members[start : start + limit],
                "response_metadata": {"next_cursor": str(start + limit) if rest else ""},
            }
        if method == "conversations.info":
            # The documented channel objects of the fixture (names, privacy), else a bare one.
            channel = params.get("channel", "")
            info = self.channel_info.get(channel) or {"id": channel}
            member = info.get("is_member", True) and channel not in self.not_member
            return {"ok": True, "channel": {**info, "is_member": member}}
        if method == "conversations.history":
            return {"ok": True, "messages": self.history.get(params.get("channel"), []), "has_more": False}
        if method == "views.publish":
            return {"ok": True, "view": {"id": "V1"}}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V2", **(params.get("view") or {})}}
        if method == "files.getUploadURLExternal":
            return {"ok": True, "upload_url": self.server.url_for("/upload/F1"), "file_id": "F1"}
        if method == "files.completeUploadExternal":
            return {"ok": True, "files": [{"id": "F1", "title": "chart"}]}
        return {"ok": True}


def start_fake_slack(httpserver) -> FakeSlack:
    fake = FakeSlack(httpserver)
    import re

    httpserver.expect_request(re.compile(r"^/.*$")).respond_with_handler(fake.handle)
    return fake


def signed_headers(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict:
    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": signature,
    }
