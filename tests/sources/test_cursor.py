import base64
import json
import logging
from datetime import date

import pytest
from sqlalchemy import func, select

from bot.db.models import ActivityDaily, Identity, Person, SyncRun, UsageDaily, VendorTotalRow
from bot.domain.money import Money
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount
from bot.sources.base import SourceError
from bot.sources.cursor import epoch_ms, from_settings
from tests.support.cursor_admin import (
    KEY,
    SINCE,
    TODAY,
    UNTIL,
    cursor_connector,
    cursor_fixture,
    serve_cursor,
)
from tests.support.db import count_and_sums, usage_by_email


def _run(engine, connector):
    return run_source(engine, connector, workspace_id="W", since=SINCE, until=UNTIL, today=TODAY)


def _totals(engine):
    usage = "cost_micros input_tokens output_tokens cache_read_tokens cache_write_tokens requests"
    activity = "lines_accepted lines_added lines_removed suggestions_shown acceptances rejections requests"
    return count_and_sums(engine, UsageDaily, *usage.split()), count_and_sums(
        engine, ActivityDaily, *activity.split()
    )


def test_end_to_end_exact_totals_and_rerun_is_stable(engine, httpserver):
    serve_cursor(httpserver)
    outcome = _run(engine, cursor_connector(httpserver))
    assert outcome.status == "ok", outcome.error
    usage, activity = _totals(engine)
    # 6 (day, email, model) rows; the event repeated across pages 1 and 2 is counted once.
    assert usage == (6, 126456 + 401670 + 201823 + 75000, 7042, 1483, 12014, 18076, 8)
    assert activity == (4, 1102 + 1876 + 4, 1543 + 2104 + 10, 892 + 1203, 342 + 456 + 5, 362 + 489, 25, 590)
    assert usage_by_email(engine) == {
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
    assert bases == {("billed", "usd_cents"), ("estimated", "usd_cents")}  # "Included in Business"
    assert in_total == {True, False}
    assert carol_active == 0  # isActive false and no numbers: skipped
    assert actors == {"email:alice@example.com", "email:bob@example.com", "email:carol@example.com"}

    first = _totals(engine)
    again = _run(engine, cursor_connector(httpserver))
    assert again.status == "ok"
    assert _totals(engine) == first
    assert usage_by_email(engine)["bob@example.com"] == 476670


def test_requests_use_basic_auth_epoch_ms_and_every_page(httpserver):
    serve_cursor(httpserver)
    connector = cursor_connector(httpserver)
    list(connector.fetch(SINCE, UNTIL))
    expected_auth = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    assert {request.headers["Authorization"] for request, _ in httpserver.log} == {expected_auth}
    bodies = [json.loads(r.data) for r, _ in httpserver.log if r.path == "/teams/filtered-usage-events"]
    assert [b["page"] for b in bodies] == [1, 2, 3]
    assert {(b["startDate"], b["endDate"]) for b in bodies} == {(1772323200000, 1772582400000 - 1)}
    (daily,) = [json.loads(r.data) for r, _ in httpserver.log if r.path == "/teams/daily-usage-data"]
    assert daily == {"startDate": epoch_ms(SINCE), "endDate": epoch_ms(UNTIL) - 1, "page": 1, "pageSize": 500}


def test_float_cents_sum_exactly_and_keep_the_raw_amount(httpserver):
    serve_cursor(httpserver)
    (batch,) = list(cursor_connector(httpserver).fetch(SINCE, UNTIL))
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
    assert (included.cost_basis, included.in_org_total) == ("estimated", False)  # the seat covers it


def test_429_with_retry_after_then_success(engine, httpserver):
    httpserver.expect_oneshot_request("/teams/members").respond_with_data(
        cursor_fixture("rate_limited.json"),
        status=429,
        headers={"Retry-After": "0"},
        content_type="application/json",
    )
    serve_cursor(httpserver)
    outcome = _run(engine, cursor_connector(httpserver))
    assert outcome.status == "ok", outcome.error
    assert [r.path for r, _ in httpserver.log].count("/teams/members") == 2
    assert _totals(engine)[0][1] == 804949


def test_invalid_json_fails_the_run_and_stores_nothing(engine, httpserver):
    pages = {
        1: cursor_fixture("events_page1.json"),
        2: '{"usageEvents": [',
        3: cursor_fixture("events_page3.json"),
    }
    serve_cursor(httpserver, events=pages)
    outcome = _run(engine, cursor_connector(httpserver))
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
    serve_cursor(httpserver, events={1: empty})
    with pytest.raises(SourceError, match="page 1 is empty but hasNextPage is true"):
        list(cursor_connector(httpserver).fetch(SINCE, UNTIL))


def test_windows_are_at_most_30_days(httpserver):
    httpserver.expect_request("/teams/members").respond_with_json({"teamMembers": []})
    httpserver.expect_request("/teams/daily-usage-data").respond_with_json({"data": []})
    httpserver.expect_request("/teams/filtered-usage-events").respond_with_json(
        {"usageEvents": [], "pagination": {"hasNextPage": False}}
    )
    batches = list(cursor_connector(httpserver).fetch(date(2026, 1, 1), date(2026, 3, 1)))
    assert [(b.window_start, b.window_end) for b in batches] == [
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 1, 31), date(2026, 3, 1)),
    ]
    ranges = [json.loads(r.data) for r, _ in httpserver.log if r.path == "/teams/daily-usage-data"]
    assert all(r["endDate"] - r["startDate"] < 30 * 86_400_000 for r in ranges)
    assert len(ranges) == 2


CHARGED = {1: "events_charged_page1.json", 2: "events_charged_page2.json"}
DAILY_PAGES = {1: "daily_usage_page1.json", 2: "daily_usage_page2.json"}


def _pages(names: dict[int, str]) -> dict[int, str]:
    return {page: cursor_fixture(name) for page, name in names.items()}


def _rows(engine) -> dict[tuple, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                UsageDaily.day,
                UsageDaily.actor,
                UsageDaily.model,
                UsageDaily.cost_basis,
                UsageDaily.cost_micros,
                UsageDaily.raw_amount,
                UsageDaily.in_org_total,
                UsageDaily.input_tokens,
                UsageDaily.requests,
            )
        ).all()
    return {tuple(r[:4]): tuple(r[4:]) for r in rows}


def test_charged_cents_included_usage_and_nulls(engine, httpserver):
    """Current events: ``chargedCents`` (model cost plus Cursor's fee) is the charge; a null one
    falls back to ``totalCents``; included usage (``isChargeable: false`` or an "Included in" kind)
    is estimated and outside the org total; a null ``tokenUsage`` still counts its charge."""
    serve_cursor(httpserver, events=_pages(CHARGED), spend={1: cursor_fixture("spend_current.json")})
    assert _run(engine, cursor_connector(httpserver)).status == "ok"
    alice, bob = "email:alice@example.com", "email:bob@example.com"
    d1, d2 = date(2026, 3, 1), date(2026, 3, 2)
    assert _rows(engine) == {
        (d1, alice, "claude-4.5-sonnet", "billed"): (105000, "10.5", True, 1000, 1),  # not 10.0
        (d1, alice, "claude-4.5-sonnet", "estimated"): (42000, "4.2", False, 400, 1),
        (d1, bob, "gpt-5", "billed"): (200000, "20.0", True, 500, 1),  # chargedCents null
        (d2, bob, "auto", "estimated"): (0, "0", False, 0, 1),  # no isChargeable, kind "Included in"
        (d2, bob, "gpt-5", "billed"): (333330, "33.333", True, 0, 1),  # tokenUsage null
    }


def test_spend_becomes_vendor_totals_on_the_last_batch(httpserver):
    serve_cursor(httpserver, events=_pages(CHARGED), spend={1: cursor_fixture("spend_current.json")})
    connector = cursor_connector(httpserver)
    connector.today = lambda: date(2026, 3, 3)
    (batch,) = list(connector.fetch(SINCE, UNTIL))
    assert [(t.start, t.end, t.what, t.amount.micros, t.amount.raw_amount) for t in batch.vendor_totals] == [
        (date(2026, 3, 1), date(2026, 3, 4), "billed", 638330, "63.833"),
        (date(2026, 3, 1), date(2026, 3, 4), "billed_and_estimated", 680330, "68.033"),
    ]


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("spend_current.json", (638330, 680330)),  # spendCents on-demand, overallSpendCents overall
        ("spend_included.json", (638330, 680330)),  # spendCents overall, includedSpendCents inside it
        ("spend_page1.json", (927800, None)),  # older docs: spendCents alone (two pages)
    ],
)
def test_both_spend_shapes_read_the_same(httpserver, fixture, expected):
    pages = {1: cursor_fixture(fixture)}
    if fixture == "spend_page1.json":
        pages[2] = cursor_fixture("spend_page2.json")
    serve_cursor(httpserver, spend=pages)
    on_demand, overall, cycle = cursor_connector(httpserver).spend()
    assert (Money.from_cents(on_demand).micros, overall and Money.from_cents(overall).micros) == expected
    assert cycle == 1772323200000


def test_daily_usage_follows_its_pages(engine, httpserver):
    serve_cursor(httpserver, daily=_pages(DAILY_PAGES))
    assert _run(engine, cursor_connector(httpserver)).status == "ok"
    pages = [json.loads(r.data)["page"] for r, _ in httpserver.log if r.path == "/teams/daily-usage-data"]
    assert pages == [1, 2]
    with engine.connect() as conn:
        rows = conn.execute(
            select(ActivityDaily.actor, ActivityDaily.lines_accepted, ActivityDaily.lines_removed)
        ).all()
    assert sorted(rows) == [("email:alice@example.com", 80, 10), ("email:bob@example.com", 40, 0)]


def test_unreadable_spend_is_a_warning_and_reports_nothing(engine, httpserver, caplog):
    """The published example has a trailing comma: invalid JSON is a clear error, and it never
    fails the sync (the events are stored, no vendor total is)."""
    serve_cursor(httpserver, spend={1: cursor_fixture("spend_doc_example.json")})
    with pytest.raises(SourceError) as caught:
        cursor_connector(httpserver).spend()
    assert str(caught.value) == "cursor: teams/spend: response is not valid JSON"
    with caplog.at_level(logging.WARNING, logger="bot.sources.cursor"):
        assert _run(engine, cursor_connector(httpserver)).status == "ok"
    assert any("no spend to reconcile against" in r.getMessage() for r in caplog.records)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(VendorTotalRow)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(UsageDaily)).scalar() == 6


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
