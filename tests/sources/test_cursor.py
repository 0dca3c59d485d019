import base64
import json
import logging
from datetime import date

import pytest
from sqlalchemy import func, select
from werkzeug import Request, Response

from bot.db.models import ActivityDaily, Identity, Person, SyncRun, UsageDaily
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount
from bot.sources.base import SourceError
from bot.sources.cursor import CursorConnector, epoch_ms, from_settings
from tests.conftest import fixture_path

KEY = "key_" + "c" * 64
SINCE, UNTIL, TODAY = date(2026, 3, 1), date(2026, 3, 4), date(2026, 3, 4)


def _fixture(name: str) -> str:
    return fixture_path("cursor", name).read_text()


def _connector(httpserver, **overrides) -> CursorConnector:
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


def _events_handler(pages: dict[int, str]):
    def handler(request: Request) -> Response:
        page = json.loads(request.data)["page"]
        return Response(pages[page], status=200, content_type="application/json")

    return handler


def _serve(httpserver, *, events: dict[int, str] | None = None) -> None:
    pages = events or {n: _fixture(f"events_page{n}.json") for n in (1, 2, 3)}
    httpserver.expect_request("/teams/members", method="GET").respond_with_data(
        _fixture("members.json"), content_type="application/json"
    )
    httpserver.expect_request("/teams/daily-usage-data", method="POST").respond_with_data(
        _fixture("daily_usage.json"), content_type="application/json"
    )
    httpserver.expect_request("/teams/filtered-usage-events", method="POST").respond_with_handler(
        _events_handler(pages)
    )


def _run(engine, connector):
    return run_source(engine, connector, workspace_id="W", since=SINCE, until=UNTIL, today=TODAY)


def _usage_by_person(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Person.email, func.sum(UsageDaily.cost_micros))
            .join(Person, Person.id == UsageDaily.person_id)
            .group_by(Person.email)
        ).all()
    return {email: int(total) for email, total in rows}


def _totals(engine):
    with engine.connect() as conn:
        usage = conn.execute(
            select(
                func.count(),
                func.sum(UsageDaily.cost_micros),
                func.sum(UsageDaily.input_tokens),
                func.sum(UsageDaily.output_tokens),
                func.sum(UsageDaily.cache_read_tokens),
                func.sum(UsageDaily.cache_write_tokens),
                func.sum(UsageDaily.requests),
            )
        ).one()
        activity = conn.execute(
            select(
                func.count(),
                func.sum(ActivityDaily.lines_accepted),
                func.sum(ActivityDaily.lines_added),
                func.sum(ActivityDaily.lines_removed),
                func.sum(ActivityDaily.suggestions_shown),
                func.sum(ActivityDaily.acceptances),
                func.sum(ActivityDaily.rejections),
                func.sum(ActivityDaily.requests),
            )
        ).one()
    return tuple(usage), tuple(activity)


def test_end_to_end_exact_totals_and_rerun_is_stable(engine, httpserver):
    _serve(httpserver)
    outcome = _run(engine, _connector(httpserver))
    assert outcome.status == "ok", outcome.error
    usage, activity = _totals(engine)
    # 6 (day, email, model) rows; the event repeated across pages 1 and 2 is counted once.
    assert usage == (6, 126456 + 401670 + 201823 + 75000, 7042, 1483, 12014, 18076, 8)
    assert activity == (4, 1102 + 1876 + 4, 1543 + 2104 + 10, 892 + 1203, 342 + 456 + 5, 362 + 489, 25, 590)
    assert _usage_by_person(engine) == {
        "alice@example.com": 126456,
        "bob@example.com": 401670 + 75000,
        "carol@example.com": 201823,
    }
    with engine.connect() as conn:
        people = dict(conn.execute(select(Person.email, Person.display_name)).all())
        unattributed = conn.execute(select(func.count()).where(UsageDaily.person_id.is_(None))).scalar()
        bases = set(conn.execute(select(UsageDaily.cost_basis, UsageDaily.raw_unit)).all())
        in_total = set(conn.execute(select(UsageDaily.in_org_total)).scalars())
        carol_active = conn.execute(
            select(func.count())
            .select_from(ActivityDaily)
            .where(ActivityDaily.actor == "email:carol@example.com")
        ).scalar()
        actors = set(conn.execute(select(Identity.actor)).scalars())
    assert people == {
        "alice@example.com": "Alice Park",
        "bob@example.com": "Bob Stone",
        "carol@example.com": "Carol Diaz",
    }
    assert unattributed == 0
    assert bases == {("billed", "usd_cents")}
    assert in_total == {True}
    assert carol_active == 0  # isActive false and no numbers: skipped
    assert actors == {"email:alice@example.com", "email:bob@example.com", "email:carol@example.com"}

    first = _totals(engine)
    again = _run(engine, _connector(httpserver))
    assert again.status == "ok"
    assert _totals(engine) == first
    assert _usage_by_person(engine)["bob@example.com"] == 476670


def test_requests_use_basic_auth_epoch_ms_and_every_page(httpserver):
    _serve(httpserver)
    connector = _connector(httpserver)
    list(connector.fetch(SINCE, UNTIL))
    expected_auth = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    assert {request.headers["Authorization"] for request, _ in httpserver.log} == {expected_auth}
    bodies = [json.loads(r.data) for r, _ in httpserver.log if r.path == "/teams/filtered-usage-events"]
    assert [b["page"] for b in bodies] == [1, 2, 3]
    assert {(b["startDate"], b["endDate"]) for b in bodies} == {(1772323200000, 1772582400000 - 1)}
    (daily,) = [json.loads(r.data) for r, _ in httpserver.log if r.path == "/teams/daily-usage-data"]
    assert daily == {"startDate": epoch_ms(SINCE), "endDate": epoch_ms(UNTIL) - 1}


def test_float_cents_sum_exactly_and_keep_the_raw_amount(httpserver):
    _serve(httpserver)
    (batch,) = list(_connector(httpserver).fetch(SINCE, UNTIL))
    rows = {(r.day, r.actor, r.model): r for r in batch.usage}
    alice = rows[(date(2026, 3, 1), "email:alice@example.com", "claude-4-opus")]
    # 12.3456 + 0.1 + 0.2 cents: as floats this is 12.645600000000002.
    assert alice.cost.raw_amount == "12.6456"
    assert alice.cost.micros == 126456
    assert (alice.input_tokens, alice.output_tokens, alice.cache_read_tokens, alice.cache_write_tokens) == (
        236,
        670,
        12014,
        6112,
    )
    assert alice.requests == 3
    bob = rows[(date(2026, 3, 1), "email:bob@example.com", "gpt-5")]
    assert bob.cost.raw_amount == "40.16699999999999"
    assert bob.cost.micros == 401670
    assert bob.requests == 1  # the copy on page 2 is the same event
    included = rows[(date(2026, 3, 2), "email:alice@example.com", "claude-4-sonnet-thinking")]
    assert (included.cost.micros, included.requests, included.input_tokens) == (0, 1, 0)


def test_429_with_retry_after_then_success(engine, httpserver):
    httpserver.expect_oneshot_request("/teams/members").respond_with_data(
        _fixture("rate_limited.json"),
        status=429,
        headers={"Retry-After": "0"},
        content_type="application/json",
    )
    _serve(httpserver)
    outcome = _run(engine, _connector(httpserver))
    assert outcome.status == "ok", outcome.error
    assert [r.path for r, _ in httpserver.log].count("/teams/members") == 2
    assert _totals(engine)[0][1] == 804949


def test_invalid_json_fails_the_run_and_stores_nothing(engine, httpserver):
    pages = {1: _fixture("events_page1.json"), 2: '{"usageEvents": [', 3: _fixture("events_page3.json")}
    _serve(httpserver, events=pages)
    outcome = _run(engine, _connector(httpserver))
    assert outcome.status == "failed"
    assert outcome.error == "cursor: teams/filtered-usage-events: response is not valid JSON"
    assert _totals(engine) == (
        (0, None, None, None, None, None, None),
        (0, None, None, None, None, None, None, None),
    )
    with engine.connect() as conn:
        run = conn.execute(select(SyncRun.status, SyncRun.error)).one()
    assert run == ("failed", outcome.error)
    assert KEY not in outcome.error


def test_next_page_promised_but_empty_is_an_error(httpserver):
    empty = json.dumps({"pagination": {"numPages": 5, "hasNextPage": True}, "usageEvents": []})
    _serve(httpserver, events={1: empty})
    with pytest.raises(SourceError, match="page 1 is empty but hasNextPage is true"):
        list(_connector(httpserver).fetch(SINCE, UNTIL))


def test_windows_are_at_most_30_days(httpserver):
    httpserver.expect_request("/teams/members").respond_with_json({"teamMembers": []})
    httpserver.expect_request("/teams/daily-usage-data").respond_with_json({"data": []})
    httpserver.expect_request("/teams/filtered-usage-events").respond_with_json(
        {"usageEvents": [], "pagination": {"hasNextPage": False}}
    )
    batches = list(_connector(httpserver).fetch(date(2026, 1, 1), date(2026, 3, 1)))
    assert [(b.window_start, b.window_end) for b in batches] == [
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 1, 31), date(2026, 3, 1)),
    ]
    ranges = [json.loads(r.data) for r, _ in httpserver.log if r.path == "/teams/daily-usage-data"]
    assert all(r["endDate"] - r["startDate"] < 30 * 86_400_000 for r in ranges)
    assert len(ranges) == 2


def test_reconcile_compares_cycle_spend_with_stored_events(engine, httpserver, caplog):
    _serve(httpserver)
    connector = _connector(httpserver)
    assert _run(engine, connector).status == "ok"
    pages = {1: _fixture("spend_page1.json"), 2: _fixture("spend_page2.json")}
    httpserver.expect_request("/teams/spend", method="POST").respond_with_handler(_events_handler(pages))
    with caplog.at_level(logging.WARNING, logger="bot.sources.cursor"):
        checks = connector.reconcile(engine, workspace_id="W")
    by_email = {c.email: c for c in checks}
    assert set(by_email) == {"alice@example.com", "bob@example.com", "carol@example.com", "dev@example.com"}
    assert (by_email["alice@example.com"].api_micros, by_email["alice@example.com"].stored_micros) == (
        126000,
        126456,
    )
    assert [c.email for c in checks if c.differs] == ["bob@example.com"]
    assert by_email["bob@example.com"].api_micros == 600000
    assert by_email["bob@example.com"].stored_micros == 476670
    assert all(c.cycle_start == date(2026, 3, 1) for c in checks)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "bob@example.com" in warnings[0]
    spend_pages = [json.loads(r.data)["page"] for r, _ in httpserver.log if r.path == "/teams/spend"]
    assert spend_pages == [1, 2]
    with engine.connect() as conn:  # reconciling stores nothing
        assert conn.execute(select(func.count()).select_from(UsageDaily)).scalar() == 6


def test_reconcile_rejects_the_doc_example_with_a_trailing_comma(engine, httpserver):
    httpserver.expect_request("/teams/spend", method="POST").respond_with_data(
        _fixture("spend_doc_example.json"), content_type="application/json"
    )
    with pytest.raises(SourceError) as caught:
        _connector(httpserver).reconcile(engine, workspace_id="W")
    assert str(caught.value) == "cursor: teams/spend: response is not valid JSON"


def test_from_settings():
    assert from_settings(Settings()) == []
    settings = Settings(
        CURSOR_ADMIN_KEY=KEY,
        accounts=[SourceAccount(name="cursor-eu", vendor="cursor", key="key_other", base_url="http://eu")],
    )
    connectors = from_settings(settings)
    assert [c.name for c in connectors] == ["cursor", "cursor-eu"]
    assert connectors[0].http.pacer.interval == 3.0  # 20 requests per minute by default
    assert str(connectors[1].http.client.base_url) == "http://eu/"
    assert (
        connectors[0].lag.total_seconds(),
        connectors[0].trailing_days,
        connectors[0].max_window_days,
    ) == (
        3600,
        3,
        30,
    )
    for connector in connectors:
        connector.close()
