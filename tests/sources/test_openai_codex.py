"""The Codex Enterprise Analytics connector against a loopback fake speaking the documented
``page`` format (fixtures in tests/fixtures/codex/), through the real sync engine and database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from werkzeug import Request, Response

from bot.db.models import ActivityDaily, Identity, Person, UsageDaily
from bot.services import otel
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount
from bot.sources.base import SourceError
from bot.sources.openai_codex import epoch, from_settings, parse_row
from bot.sources.otel.base import Person as AgentPerson
from bot.sources.otel.otlp import NANOS, Decoded, Point
from bot.sources.registry import enabled_connectors
from tests.support.files import fixture_path

KEY = "sk-proj-" + "x" * 40
WORKSPACE = "3f2c6a4e-1b7d-4c1a-9e55-0d8a2b6c7f10"
PATH = f"/workspaces/{WORKSPACE}/usage"
SINCE, UNTIL, TODAY = date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 3)


def _fixture(name: str) -> str:
    return fixture_path("codex", name).read_text()


def _connector(httpserver, **overrides):
    settings = Settings(
        CODEX_ANALYTICS_KEY=KEY,
        CODEX_WORKSPACE_ID=WORKSPACE,
        CODEX_ANALYTICS_BASE_URL=httpserver.url_for("/"),
        http_max_backoff_seconds=0.01,
        http_max_retries=1,
        **overrides,
    )
    (connector,) = from_settings(settings)
    connector.today = lambda: TODAY  # the fixtures' days are within the 90-day lookback
    return connector


def _serve(httpserver, pages: dict[str | None, str]) -> list[dict]:
    """Answer each request by its ``page`` cursor; returns the query strings seen."""
    seen: list[dict] = []

    def handler(request: Request) -> Response:
        seen.append({**request.args, "authorization": request.headers.get("Authorization")})
        return Response(_fixture(pages[request.args.get("page")]), content_type="application/json")

    httpserver.expect_request(PATH, method="GET").respond_with_handler(handler)
    return seen


def _run(engine, connector):
    return run_source(engine, connector, workspace_id="W", since=SINCE, until=UNTIL, today=TODAY)


def test_pages_are_read_per_user_and_day_with_credits_kept_unpriced(engine, httpserver):
    seen = _serve(httpserver, {None: "usage_page1.json", "cursor-2": "usage_page2.json"})
    outcome = _run(engine, _connector(httpserver))
    assert outcome.status == "ok", outcome.error

    assert [s.get("page") for s in seen] == [None, "cursor-2"]
    first = seen[0]
    assert first["start_time"] == str(epoch(SINCE)) and first["end_time"] == str(epoch(UNTIL))
    assert first["group_by"] == "day" and first["limit"] == "1000" and "group" not in first
    assert first["authorization"] == f"Bearer {KEY}"

    with engine.connect() as conn:
        usage = conn.execute(
            select(
                UsageDaily.day,
                UsageDaily.actor,
                UsageDaily.vendor,
                UsageDaily.cost_micros,
                UsageDaily.cost_basis,
                UsageDaily.raw_amount,
                UsageDaily.raw_unit,
                UsageDaily.input_tokens,
                UsageDaily.cache_read_tokens,
                UsageDaily.output_tokens,
                UsageDaily.in_org_total,
            ).order_by(UsageDaily.day, UsageDaily.actor)
        ).all()
        activity = conn.execute(
            select(
                ActivityDaily.day,
                ActivityDaily.actor,
                ActivityDaily.sessions,
                ActivityDaily.requests,
                ActivityDaily.lines_added,
                ActivityDaily.lines_removed,
            ).order_by(ActivityDaily.day, ActivityDaily.actor)
        ).all()
        links = dict(
            conn.execute(
                select(Identity.actor, Person.email).join(Person, Person.id == Identity.person_id)
            ).all()
        )

    # Credits as reported, cost unknown: never a silent $0 billed.
    def unpriced(day, actor, credits, uncached, cached, output):
        return (day, actor, "codex", 0, "unpriced", credits, "codex_credits", uncached, cached, output, False)

    assert usage == [
        unpriced(date(2026, 3, 1), "codex_user:user-bo", "8", 3000, 0, 400),
        unpriced(date(2026, 3, 1), "email:ana@example.com", "125.5", 42000, 180000, 9100),
        unpriced(date(2026, 3, 2), "email:ana@example.com", "40", 10000, 50000, 2500),
    ]
    assert activity == [
        (date(2026, 3, 1), "codex_user:user-bo", 1, 3, 0, 0),
        (date(2026, 3, 1), "email:ana@example.com", 4, 31, 240, 35),
        (date(2026, 3, 2), "email:ana@example.com", 2, 9, 60, 0),
    ]
    # The workspace user id is linked to the person its email names; a user without an email
    # stays an identity to link.
    assert links["codex_user:user-ana"] == "ana@example.com"
    assert "codex_user:user-bo" not in links or links["codex_user:user-bo"] is None

    # Re-running the sync replaces the window: nothing is counted twice.
    assert _run(engine, _connector(httpserver)).status == "ok"
    with engine.connect() as conn:
        assert len(conn.execute(select(UsageDaily.id)).all()) == 3


def test_a_documented_contract_rate_prices_credits_as_an_estimate(engine, httpserver):
    _serve(httpserver, {None: "usage_page2.json"})
    assert _run(engine, _connector(httpserver, CODEX_USD_PER_CREDIT="0.04")).status == "ok"
    with engine.connect() as conn:
        row = conn.execute(
            select(UsageDaily.cost_micros, UsageDaily.cost_basis, UsageDaily.raw_amount, UsageDaily.raw_unit)
        ).one()
    assert row == (1_600_000, "estimated", "40", "codex_credits")  # 40 credits x $0.04


def test_the_vendors_own_estimate_is_used_when_no_rate_is_set(engine, httpserver):
    _serve(httpserver, {None: "usage_estimated_cost.json"})
    assert _run(engine, _connector(httpserver)).status == "ok"
    with engine.connect() as conn:
        row = conn.execute(select(UsageDaily.cost_micros, UsageDaily.cost_basis, UsageDaily.raw_amount)).one()
    assert row == (1_600_000, "estimated", "40")


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("usage_unknown_money_field.json", "unknown money field(s) overage_credits"),
        ("usage_week_bucket.json", "is not one UTC day"),
    ],
)
def test_unreadable_rows_fail_the_run_and_store_nothing(engine, httpserver, fixture, reason):
    _serve(httpserver, {None: fixture})
    outcome = _run(engine, _connector(httpserver))
    assert outcome.status == "failed"
    assert reason in outcome.error and PATH.lstrip("/") in outcome.error
    assert KEY not in outcome.error
    with engine.connect() as conn:
        assert conn.execute(select(UsageDaily.id)).all() == []


def test_an_undocumented_cost_usd_is_refused_not_stored(httpserver):
    page = _fixture("usage_page2.json").replace('"credits": 40', '"credits": 40, "cost_usd": 2.5')
    httpserver.expect_request(PATH).respond_with_data(page, content_type="application/json")
    with pytest.raises(SourceError, match="cost_usd is set"):
        list(_connector(httpserver).fetch(SINCE, UNTIL))


def test_a_cursor_that_repeats_is_an_error_not_a_loop(httpserver):
    _serve(httpserver, {None: "usage_page1.json", "cursor-2": "usage_page1.json"})
    with pytest.raises(SourceError, match="repeats an earlier cursor"):
        list(_connector(httpserver).fetch(SINCE, UNTIL))


def test_without_a_workspace_id_nothing_is_sent(httpserver):
    settings = Settings(CODEX_ANALYTICS_KEY=KEY, CODEX_ANALYTICS_BASE_URL=httpserver.url_for("/"))
    (connector,) = from_settings(settings)
    connector.today = lambda: TODAY
    with pytest.raises(SourceError, match="set CODEX_WORKSPACE_ID"):
        list(connector.fetch(SINCE, UNTIL))
    assert httpserver.log == []


def test_enabled_by_its_key_and_by_accounts_with_the_workspace_as_org():
    assert [c.name for c in enabled_connectors(Settings(), only=None) if c.vendor == "codex"] == []
    settings = Settings(
        CODEX_ANALYTICS_KEY=KEY,
        CODEX_WORKSPACE_ID=WORKSPACE,
        accounts=[SourceAccount(name="codex-eu", vendor="codex", key=KEY, org="ws-eu")],
    )
    connectors = [c for c in enabled_connectors(settings) if c.vendor == "codex"]
    assert [(c.name, c.workspace_id) for c in connectors] == [("codex", WORKSPACE), ("codex-eu", "ws-eu")]
    assert settings.codex_usd_per_credit is None and Settings(
        CODEX_USD_PER_CREDIT="0.04"
    ).codex_usd_per_credit == Decimal("0.04")
    for connector in connectors:
        connector.close()


def _codex_otel_point(day: date, tokens: int):
    at = int(datetime(day.year, day.month, day.day, 15, tzinfo=UTC).timestamp()) * NANOS
    return Point(
        "codex",
        f"s{day}",
        "codex.sse_event",
        at,
        at,
        "email:ana@example.com",
        "input_tokens",
        "",
        False,
        tokens,
    )


def test_the_analytics_figure_wins_over_the_cli_telemetry_for_the_same_person_and_day(engine, httpserver):
    ana = "email:ana@example.com"
    covered, uncovered = date(2026, 3, 1), date(2026, 3, 5)
    decoded = Decoded(
        points=[_codex_otel_point(covered, 111), _codex_otel_point(uncovered, 222)],
        people={ana: AgentPerson(ana, "ana@example.com")},
    )
    otel.ingest(engine, workspace_id="W", decoded=decoded)
    _serve(httpserver, {None: "usage_page1.json", "cursor-2": "usage_page2.json"})
    assert _run(engine, _connector(httpserver)).status == "ok"
    with engine.connect() as conn:
        rows = conn.execute(
            select(UsageDaily.source, UsageDaily.day, UsageDaily.input_tokens)
            .where(UsageDaily.actor == ana)
            .order_by(UsageDaily.day, UsageDaily.source)
        ).all()
    # 1 March: Codex analytics reports Ana, so the CLI's own count is left out (no double count);
    # 5 March: only the CLI saw her, so its figure counts.
    assert rows == [
        ("codex", covered, 42000),
        ("codex", date(2026, 3, 2), 10000),
        ("otel_codex", uncovered, 222),
    ]


def test_a_rate_limited_answer_is_retried_after_the_wait_it_asks_for(httpserver):
    answers = [Response("slow down", status=429, headers={"Retry-After": "0"})]

    def handler(request: Request) -> Response:
        if answers:
            return answers.pop()
        return Response(_fixture("usage_page2.json"), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(handler)
    (batch,) = list(_connector(httpserver).fetch(SINCE, UNTIL))
    assert len(httpserver.log) == 2
    assert [(r.day, r.actor, r.cost.raw_amount) for r in batch.usage] == [
        (date(2026, 3, 2), "email:ana@example.com", "40")
    ]
    assert [h.actor for h in batch.identities] == ["codex_user:user-ana"]


def test_a_window_beyond_the_90_day_lookback_is_refused_before_any_request(httpserver):
    connector = _connector(httpserver)
    connector.today = lambda: date(2026, 6, 1)
    with pytest.raises(SourceError, match="looks back at most 90 days"):
        list(connector.fetch(date(2026, 3, 1), date(2026, 3, 3)))
    assert httpserver.log == []
    _serve(httpserver, {None: "usage_page2.json"})
    connector.today = lambda: date(2026, 5, 30)  # 1 March is 90 days back: answered
    assert len(list(connector.fetch(date(2026, 3, 1), date(2026, 3, 3)))) == 1


def test_an_unreadable_row_or_amount_is_described_never_echoed():
    secret = "sk-proj-0123456789abcdefghij"
    for row in (secret, {"start_time": 0, "user_id": "u", "totals": {"credits": secret}}):
        with pytest.raises(ValueError) as raised:
            parse_row(row)
        assert secret[:8] not in str(raised.value)
