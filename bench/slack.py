"""A fake Slack Web API on loopback (the methods a /tokens answer needs) and signed slash
commands, for driving the real Starlette + Bolt app in process (B2, B3) or under uvicorn (B5).

Bench people are ``UB000001``..: users.info answers with their bench email, so the app finds
their person row exactly as in production. ``UADMIN`` is a workspace admin with no usage.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from slack_sdk.signature import SignatureVerifier

from bench.synth import DOMAIN

BOT_TOKEN = "xoxb-bench-token"
SIGNING_SECRET = "bench-signing-secret"
ADMIN = "UADMIN"


def user_record(user_id: str) -> dict | None:
    if user_id == ADMIN:
        return {
            "id": ADMIN,
            "name": "admin",
            "real_name": "Bench Admin",
            "is_admin": True,
            "deleted": False,
            "profile": {"email": f"admin@{DOMAIN}", "real_name": "Bench Admin"},
        }
    if user_id.startswith("UB") and user_id[2:].isdigit():
        index = int(user_id[2:])
        return {
            "id": user_id,
            "name": f"p{index}",
            "real_name": f"Person {index}",
            "is_admin": False,
            "deleted": False,
            "profile": {"email": f"p{index}@{DOMAIN}", "real_name": f"Person {index}"},
        }
    return None


class FakeSlack:
    """Counts the calls it answers, so a run can show users.info was cached after the first."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        # Late answers (the ack said "working on it") arrive on the response_url: token -> (when, body).
        self.late: dict[str, tuple[float, dict]] = {}
        self.late_arrived = threading.Condition(self.lock)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or "{}")
                else:
                    params = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                params.update(
                    {
                        k: v[0]
                        for k, v in urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).items()
                    }
                )
                path = urllib.parse.urlparse(self.path).path
                if path.startswith("/response_url/"):
                    with fake.lock:
                        fake.late[path.removeprefix("/response_url/")] = (
                            time.perf_counter(),
                            json.loads(raw or "{}"),
                        )
                        fake.late_arrived.notify_all()
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                    return
                method = path.removeprefix("/api/")
                with fake.lock:
                    fake.calls[method] = fake.calls.get(method, 0) + 1
                body = json.dumps(fake.answer(method, params, self.headers.get("Authorization"))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def answer(self, method: str, params: dict, authorization: str | None) -> dict:
        if authorization != f"Bearer {BOT_TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": "UBOT",
                "bot_id": "BBOT",
                "team_id": "T1",
                "team": "Bench",
                "url": "x",
            }
        if method == "users.info":
            user = user_record(params.get("user", ""))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        return {"ok": True}

    def response_url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/response_url/{token}"

    def wait_late(self, token: str, timeout: float = 120.0) -> tuple[float, dict]:
        with self.lock:
            if not self.late_arrived.wait_for(lambda: token in self.late, timeout):
                raise TimeoutError(f"no late answer on response_url {token} within {timeout:.0f} s")
            return self.late.pop(token)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def command_body(text: str, user_id: str, response_url: str = "http://127.0.0.1:9/response_url/none") -> str:
    return urllib.parse.urlencode(
        {
            "token": "legacy",
            "team_id": "T1",
            "team_domain": "bench",
            "channel_id": "C1",
            "channel_name": "general",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": "/tokens",
            "text": text,
            "response_url": response_url,
            "trigger_id": "123.456.abc",
            "api_app_id": "A1",
        }
    )


_VERIFIER = SignatureVerifier(SIGNING_SECRET)


def signed_headers(body: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": _VERIFIER.generate_signature(timestamp=timestamp, body=body),
    }


def reply_text(reply: dict) -> str:
    """Every text of an ephemeral answer (fallback text and blocks), for checking its content."""
    parts = [reply.get("text", "")]
    for block in reply.get("blocks", []):
        if isinstance(block.get("text"), dict):
            parts.append(block["text"].get("text", ""))
        for item in block.get("fields", []) + block.get("elements", []):
            if isinstance(item, dict) and "text" in item:
                parts.append(item["text"] if isinstance(item["text"], str) else item["text"].get("text", ""))
    return "\n".join(parts)


def app_settings(fake: FakeSlack, database_url: str):
    from bot.settings import Settings

    return Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
        DATABASE_URL=database_url,
        TOKENWISE_ADMINS=ADMIN,
    )


def server_env(fake: FakeSlack, database_url: str) -> dict[str, str]:
    """The environment ``tokenwise run`` gets in B5 (same settings as the in-process app)."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        "DATABASE_URL": database_url,
        "TOKENWISE_ADMINS": ADMIN,
        "TOKENWISE_HOST": "127.0.0.1",
    }
