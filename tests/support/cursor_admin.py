"""Cursor's Admin API on a loopback server (pytest-httpserver): the fixture pages of
tests/fixtures/cursor behind the documented paths, each paged by the ``page`` of the JSON body,
and the real connector pointed at it."""

from __future__ import annotations

import json
from datetime import date, timedelta

from werkzeug import Request, Response

from bot.services.sync import SyncOutcome, run_source
from bot.settings import Settings
from bot.sources.cursor import CursorConnector, from_settings
from tests.support.files import fixture_path

KEY = "key_" + "c" * 64

SINCE, UNTIL, TODAY = date(2026, 3, 1), date(2026, 3, 4), date(2026, 3, 4)


def cursor_fixture(name: str) -> str:
    return fixture_path("cursor", name).read_text()


def cursor_connector(httpserver, **overrides) -> CursorConnector:
    settings = Settings(
        CURSOR_ADMIN_KEY=KEY,
        CURSOR_ADMIN_BASE_URL=httpserver.url_for("/"),
        CURSOR_REQUESTS_PER_MINUTE=60_000,  # pacing on, but too fast to slow the tests
        http_max_backoff_seconds=0.01,
        http_max_retries=2,
        **overrides,
    )
    (connector,) = from_settings(settings)
    return connector


def paged_by_body(pages: dict[int, str]):
    """A handler answering the page named by the request's JSON body (Cursor's POST paging)."""

    def handler(request: Request) -> Response:
        page = json.loads(request.data)["page"]
        return Response(pages[page], status=200, content_type="application/json")

    return handler


def serve_cursor(
    httpserver,
    *,
    events: dict[int, str] | None = None,
    daily: dict[int, str] | None = None,
    spend: dict[int, str] | None = None,
    members: str = "members.json",
) -> None:
    pages = events or {n: cursor_fixture(f"events_page{n}.json") for n in (1, 2, 3)}
    httpserver.expect_request("/teams/members", method="GET").respond_with_data(
        cursor_fixture(members), content_type="application/json"
    )
    httpserver.expect_request("/teams/daily-usage-data", method="POST").respond_with_handler(
        paged_by_body(daily or {1: cursor_fixture("daily_usage.json")})
    )
    httpserver.expect_request("/teams/filtered-usage-events", method="POST").respond_with_handler(
        paged_by_body(pages)
    )
    spend_pages = spend or {1: cursor_fixture("spend_page1.json"), 2: cursor_fixture("spend_page2.json")}
    httpserver.expect_request("/teams/spend", method="POST").respond_with_handler(paged_by_body(spend_pages))


def serve_cursor_team(httpserver, *, daily: str = "daily_usage_team.json") -> None:
    """The team of tests/support/value.py's seat holders as Cursor members: Ana (owner) and Dana
    and Gus (members) hold paid seats, Ben is an Unpaid Admin, Erin was removed; no usage events;
    the billing cycle starts on the 15th."""
    serve_cursor(
        httpserver,
        members="members_team.json",
        events={1: cursor_fixture("events_none.json")},
        daily={1: cursor_fixture(daily)},
        spend={1: cursor_fixture("spend_cycle.json")},
    )


def sync_cursor_days(
    engine, httpserver, runs: list[tuple[date, date]], *, workspace_id: str = "default"
) -> list[SyncOutcome]:
    """One sync of ``[since, today]`` per (since, today), the member list read as of ``today``."""
    outcomes = []
    for since, today in runs:
        connector = cursor_connector(httpserver)
        connector.today = lambda today=today: today
        outcome = run_source(
            engine,
            connector,
            workspace_id=workspace_id,
            since=since,
            until=today + timedelta(days=1),
            today=today,
        )
        assert outcome.status == "ok", outcome.error
        outcomes.append(outcome)
    return outcomes


DAY_MS = 1772323200000  # 2026-03-01T00:00Z

EVENT = {
    "timestamp": str(DAY_MS + 3_600_000),
    "model": "claude-4-opus",
    "kind": "Usage-based",
    "maxMode": False,
    "requestsCosts": 1,
    "isTokenBasedCall": True,
    "tokenUsage": {
        "inputTokens": 100,
        "outputTokens": 200,
        "cacheWriteTokens": 30,
        "cacheReadTokens": 40,
        "totalCents": 1.2345,
    },
    "isFreeBugbot": False,
    "userEmail": "alice@example.com",
}


def serve_event_pages(httpserver, pages: list[list[dict]]) -> None:
    """Usage events served as the given pages (no members, no daily rows)."""
    bodies = {
        number: json.dumps(
            {
                "totalUsageEventsCount": sum(len(p) for p in pages),
                "pagination": {
                    "numPages": len(pages),
                    "currentPage": number,
                    "hasNextPage": number < len(pages),
                },
                "usageEvents": events,
            }
        )
        for number, events in enumerate(pages, start=1)
    }
    httpserver.expect_request("/teams/members").respond_with_json({"teamMembers": []})
    httpserver.expect_request("/teams/daily-usage-data").respond_with_json({"data": []})
    httpserver.expect_request("/teams/filtered-usage-events").respond_with_handler(
        lambda request: json_body(bodies[json.loads(request.data)["page"]])
    )


def json_body(body: str) -> Response:
    return Response(body, status=200, content_type="application/json")
