"""Anthropic's Admin API on a loopback server (pytest-httpserver) for the Claude Code Analytics
connector: the fixture pages of tests/fixtures/claude_code and tests/fixtures/anthropic behind the
documented paths and cursors, and the real connector pointed at it."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from werkzeug import Request, Response

from bot.db.models import UsageDaily
from bot.services.sync import run_source
from bot.settings import Settings
from bot.sources import claude_code
from tests.support.files import FIXTURES

KEY = "sk-ant-admin01-test-secret"

DAYS = {
    ("2025-08-01", None): ("claude_code", "day_2025-08-01_1.json"),
    ("2025-08-01", "cc_p2"): ("claude_code", "day_2025-08-01_2.json"),
    ("2025-08-02", None): ("claude_code", "day_2025-08-02.json"),
    ("2025-08-03", None): ("claude_code", "day_empty.json"),
    ("2026-11-02", None): ("anthropic/analytics", "claude_code_2026-11-02.json"),
    ("2026-11-03", None): ("claude_code", "day_empty.json"),
}

LISTS = {
    ("users", None): "users_1.json",
    ("users", "user_02"): "users_2.json",
    ("api_keys", None): "api_keys.json",
}


def fixture_response(vendor: str, name: str) -> Response:
    return Response((FIXTURES / vendor / name).read_bytes(), content_type="application/json")


def no_fixture(path: str, cursor: str | None) -> Response:
    return Response(f"no fixture for {path} {cursor}", status=418)


class AdminApi:
    """A loopback Anthropic Admin API: ``queue`` puts one-off responses (errors) in front of a
    path; any other request is answered by ``route`` (path below ``/v1/organizations/``, cursor)."""

    def __init__(self, httpserver) -> None:
        self.queued: dict[str, list[Response]] = {}
        self.requests: list[Request] = []
        httpserver.expect_request(re.compile(r"^/v1/organizations/.*")).respond_with_handler(self)

    def queue(self, path: str, *responses: Response) -> None:
        self.queued.setdefault(path, []).extend(responses)

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        path = request.path.removeprefix("/v1/organizations/")
        if self.queued.get(path):
            return self.queued[path].pop(0)
        return self.route(request, path, request.args.get("page") or request.args.get("after_id"))

    def route(self, request: Request, path: str, cursor: str | None) -> Response:
        raise NotImplementedError

    def calls(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == f"/v1/organizations/{path}"]


class FakeAdminApi(AdminApi):
    """Serves the Claude Code days, the cost analytics and the user and key lists."""

    def route(self, request: Request, path: str, cursor: str | None) -> Response:
        if path == "usage_report/claude_code":
            found = DAYS.get((request.args.get("starting_at"), cursor))
        elif path == "analytics/cost":
            found = ("anthropic/analytics", "cost_1.json")
        else:
            found = ("anthropic", LISTS[(path, cursor)]) if (path, cursor) in LISTS else None
        return no_fixture(path, cursor) if found is None else fixture_response(*found)


def claude_code_connector(httpserver) -> claude_code.ClaudeCodeConnector:
    settings = Settings(
        ANTHROPIC_ADMIN_KEY=KEY,
        ANTHROPIC_ADMIN_BASE_URL=httpserver.url_for("/"),
        http_max_backoff_seconds=0.01,
    )
    (connector,) = claude_code.from_settings(settings)
    return connector


def failed_run_error(engine, connector, window: dict) -> str:
    """Runs ``connector`` once over ``window`` and closes it: the run fails, stores no usage and
    keeps the admin key out of its error, which it returns."""
    outcome = run_source(engine, connector, workspace_id="W", **window)
    connector.close()
    assert outcome.status == "failed"
    assert KEY not in outcome.error
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(UsageDaily)).scalar() == 0
    return outcome.error
