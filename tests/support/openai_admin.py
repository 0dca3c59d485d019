"""A loopback fake of OpenAI's admin API (pytest-httpserver) serving the fixture pages in
tests/fixtures/openai (written from OpenAI's documented ``UsageResponse`` / list schemas).

It follows the ``page`` and ``after`` cursors and drops buckets outside the requested
``[start_time, end_time)`` so split windows see only their own days. Like the live API it lists
archived projects only with ``include_archived=true`` and keys whose owner lost project access
only with ``owner_project_access=any``; with ``reject_key_grouping`` it answers costs grouped by
``api_key_id`` with the live API's 400 (PostHog/posthog#71784) and serves costs grouped by
``project_id`` from their own pages. ``faults[(path, cursor)]`` may answer a page first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from functools import partial

from werkzeug import Request, Response

from bot.services.sync import run_source
from bot.settings import Settings
from bot.sources import openai as openai_source
from tests.support.files import fixture_path

FIXTURES = fixture_path("openai")
KEY = "sk-admin-TESTKEY-0123456789abcdef0123456789"
API = "/v1/organization"
USAGE = f"{API}/usage/completions"
COSTS = f"{API}/costs"
USERS = f"{API}/users"
PROJECTS = f"{API}/projects"
KEYS_A = f"{API}/projects/proj_a/api_keys"
KEYS_B = f"{API}/projects/proj_b/api_keys"
KEYS_OLD = f"{API}/projects/proj_old/api_keys"
SINCE, UNTIL, TODAY = date(2026, 3, 1), date(2026, 3, 4), date(2026, 3, 4)

# path -> (cursor parameter, cursor value -> fixture file)
PAGES: dict[str, tuple[str, dict[str | None, str]]] = {
    USAGE: (
        "page",
        {
            None: "usage_completions_page1.json",
            "page_AAAA": "usage_completions_page2.json",
            "page_BBBB": "usage_completions_page3.json",
        },
    ),
    COSTS: ("page", {None: "costs_page1.json", "page_COST2": "costs_page2.json"}),
    USERS: ("after", {None: "users_page1.json", "user-bob": "users_page2.json"}),
    PROJECTS: ("after", {None: "projects_page1.json", "proj_a": "projects_page2.json"}),
    KEYS_A: ("after", {None: "api_keys_proj_a_page1.json", "key_alice": "api_keys_proj_a_page2.json"}),
    KEYS_B: ("after", {None: "api_keys_proj_b.json"}),
    KEYS_OLD: ("after", {None: "api_keys_proj_old.json"}),
}

#: Costs grouped by project_id and line_item (the fallback when api_key_id grouping is refused).
COSTS_BY_PROJECT = {None: "costs_by_project_page1.json", "page_PCOST2": "costs_by_project_page2.json"}


def json_response(body: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


class FakeOpenAI:
    """The fixture pages behind the real paths; ``faults[(path, cursor)]`` may answer first."""

    def __init__(self, httpserver) -> None:
        self.server = httpserver
        self.faults: dict[tuple[str, str | None], Callable[[Request], Response | None]] = {}
        self.reject_key_grouping = False
        for path in PAGES:
            httpserver.expect_request(path, method="GET").respond_with_handler(partial(self._serve, path))

    def base_url(self) -> str:
        return self.server.url_for("/v1")

    def _serve(self, path: str, request: Request) -> Response:
        cursor_name, pages = PAGES[path]
        cursor = request.args.get(cursor_name)
        fault = self.faults.get((path, cursor))
        if fault is not None:
            answer = fault(request)
            if answer is not None:
                return answer
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return json_response({"error": {"message": "Incorrect API key provided"}}, 401)
        groups = request.args.getlist("group_by")
        if path == COSTS and "api_key_id" in groups and self.reject_key_grouping:
            return Response((FIXTURES / "costs_group_by_api_key_id_400.json").read_bytes(), status=400)
        if path == COSTS and "project_id" in groups:
            pages = COSTS_BY_PROJECT
        name = pages.get(cursor)
        if name is None:
            return json_response({"error": {"message": f"invalid cursor {cursor}"}}, 400)
        raw = (FIXTURES / name).read_bytes()
        if path == PROJECTS and request.args.get("include_archived") != "true":
            raw = without(raw, lambda project: project["archived_at"] is not None)
        if path.endswith("/api_keys") and request.args.get("owner_project_access") != "any":
            raw = without(raw, lambda key: key.get("owner_project_access") == "inactive")
        if "start_time" in request.args:
            raw = window_filter(raw, int(request.args["start_time"]), request.args.get("end_time"))
        return Response(raw, status=200, content_type="application/json")

    def hits(self, path: str, cursor: str | None) -> int:
        """Requests made for one page (``cursor`` None: the first)."""
        name = PAGES[path][0]
        return sum(1 for req, _ in self.server.log if req.path == path and req.args.get(name) == cursor)

    def requests(self, path: str | None = None) -> list[tuple[str, dict[str, list[str]]]]:
        return [
            (req.path, req.args.to_dict(flat=False))
            for req, _ in self.server.log
            if path is None or req.path == path
        ]


def without(raw: bytes, hidden: Callable[[dict], bool]) -> bytes:
    """A list page minus the items the live API hides without the parameter that includes them."""
    body = json.loads(raw)
    body["data"] = [item for item in body["data"] if not hidden(item)]
    return json.dumps(body).encode()


def window_filter(raw: bytes, start: int, end: str | None) -> bytes:
    """Drop buckets outside the requested window (served unchanged when nothing is dropped)."""
    body = json.loads(raw)
    stop = int(end) if end else 2**62
    kept = [b for b in body["data"] if start <= b["start_time"] < stop]
    if len(kept) == len(body["data"]):
        return raw
    body["data"] = kept
    return json.dumps(body).encode()


class Fault:
    """Answer ``times`` requests (all, when None) with ``make(request)``; then let the fake serve."""

    def __init__(self, make: Callable[[Request], Response], times: int | None = None) -> None:
        self.make = make
        self.times = times
        self.calls = 0

    def __call__(self, request: Request) -> Response | None:
        if self.times is not None and self.calls >= self.times:
            return None
        self.calls += 1
        return self.make(request)


def make_settings(base_url: str, **overrides) -> Settings:
    values = dict(
        openai_admin_key=KEY,
        openai_admin_base_url=base_url,
        http_max_retries=3,
        http_max_backoff_seconds=0.01,
        http_timeout_seconds=5.0,
    )
    values.update(overrides)
    return Settings(**values)


def connector_for(fake: FakeOpenAI, **overrides) -> openai_source.OpenAIConnector:
    (connector,) = openai_source.from_settings(make_settings(fake.base_url(), **overrides))
    return connector


def run(engine, connector, **kwargs):
    kwargs = {"workspace_id": "W", "since": SINCE, "until": UNTIL, "today": TODAY, **kwargs}
    return run_source(engine, connector, **kwargs)


def run_once(engine, fake: FakeOpenAI, **overrides):
    """One run of a fresh connector (settings ``overrides``), closed afterwards."""
    connector = connector_for(fake, **overrides)
    try:
        return run(engine, connector)
    finally:
        connector.close()
