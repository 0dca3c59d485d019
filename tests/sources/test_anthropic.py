"""Anthropic Usage and Cost reports against a loopback fake of the Admin API (fixtures written from
the documented schema), through the real sync engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from werkzeug import Request, Response

from bot.db.models import Identity, SyncRun, UsageDaily
from bot.domain.money import Money
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount
from bot.sources import anthropic, claude_code
from bot.sources.base import SourceError
from bot.sources.prices import ESTIMATE_UNIT
from tests.support.anthropic_admin import AdminApi, failed_run_error, fixture_response, no_fixture
from tests.support.db import USAGE_SUMS, usage_by_email

FIXTURES = Path(__file__).parent.parent / "fixtures"
KEY = "sk-ant-admin01-test-secret"
TODAY = date(2025, 8, 3)
WINDOW = {"since": date(2025, 8, 1), "until": date(2025, 8, 3), "today": TODAY}

CLAUDE_CODE_PAGES = {
    ("2025-08-01", None): "day_2025-08-01_1.json",
    ("2025-08-01", "cc_p2"): "day_2025-08-01_2.json",
    ("2025-08-02", None): "day_2025-08-02.json",
}
ANTHROPIC_PAGES = {
    ("users", None): "users_1.json",
    ("users", "user_02"): "users_2.json",
    ("api_keys", None): "api_keys.json",
    ("usage_report/messages", None): "usage_1.json",
    ("usage_report/messages", "page_2"): "usage_2.json",
    ("cost_report", None): "cost_1.json",
    ("cost_report", "cost_page_2"): "cost_2.json",
}
#: Requests for days from 2026 on (the Usage & Cost Analytics API's range) read these instead.
ANALYTICS_PAGES = {
    ("analytics/cost", None): "cost_1.json",
    ("analytics/cost", "acost_p2"): "cost_2.json",
    ("usage_report/messages", None): "usage.json",
    ("cost_report", None): "legacy_cost.json",
    ("usage_report/claude_code", None): "claude_code_2026-11-02.json",
}


class FakeAdminApi(AdminApi):
    """Serves the fixture pages: the legacy reports before 2026, the analytics ones from 2026 on."""

    def route(self, request: Request, path: str, cursor: str | None) -> Response:
        if request.args.get("starting_at", "").startswith("2026"):
            if path == "usage_report/claude_code" and request.args["starting_at"] != "2026-11-02":
                return _file("claude_code", "day_empty.json")
            name = ANALYTICS_PAGES.get((path, cursor))
            if name is None:
                return no_fixture(path, cursor)
            return _file("anthropic/analytics", name)
        if path == "usage_report/claude_code":
            name = CLAUDE_CODE_PAGES.get((request.args["starting_at"], cursor), "day_empty.json")
            return _file("claude_code", name)
        name = ANTHROPIC_PAGES.get((path, cursor))
        if name is None:
            return no_fixture(path, cursor)
        return _file("anthropic", name)


_file = fixture_response


def _settings(httpserver, **extra) -> Settings:
    return Settings(
        ANTHROPIC_ADMIN_KEY=KEY,
        ANTHROPIC_ADMIN_BASE_URL=httpserver.url_for("/"),
        http_max_backoff_seconds=0.01,
        **extra,
    )


def _connector(httpserver) -> anthropic.AnthropicConnector:
    (connector,) = anthropic.from_settings(_settings(httpserver))
    return connector


def _fetch(connector, start=date(2025, 8, 1), end=date(2025, 8, 3)):
    try:
        return list(connector.fetch(start, end))
    finally:
        connector.close()


def _by_key(batch):
    return {(r.day.isoformat(), r.actor, r.model, r.cost_basis): r for r in batch.usage}


# -- parsing --------------------------------------------------------------------------------
def test_fetch_parses_usage_costs_and_identities(httpserver):
    api = FakeAdminApi(httpserver)
    (batch,) = _fetch(_connector(httpserver))
    assert (batch.window_start, batch.window_end) == (date(2025, 8, 1), date(2025, 8, 3))
    rows = _by_key(batch)

    alice_day1 = rows[("2025-08-01", "anthropic_user:user_01", "claude-sonnet-4-20250514", "estimated")]
    assert (
        alice_day1.input_tokens,
        alice_day1.output_tokens,
        alice_day1.cache_read_tokens,
        alice_day1.cache_write_tokens,  # 1h + 5m cache creation
    ) == (1_000_000, 200_000, 2_000_000, 500_000)
    assert alice_day1.cache_write_1h_tokens == 100_000  # of which 1-hour writes
    # Alice used Claude Code through the API that day: tokens stay, dollars come from Claude Code.
    assert alice_day1.cost == Money(0, "0", anthropic.TOKENS_ONLY)
    assert alice_day1.in_org_total is False
    # Her own key is covered too (its creator is a Claude Code user that day).
    assert rows[("2025-08-01", "anthropic_key:apikey_01", "claude-3-5-haiku-20241022", "estimated")].cost == (
        Money(0, "0", anthropic.TOKENS_ONLY)
    )
    # ci-bot had no Claude Code usage on day 1 (Carol's record has no models): estimated, not billed.
    ci_day1 = rows[("2025-08-01", "anthropic_key:apikey_02", "claude-opus-4-1-20250805", "estimated")]
    assert ci_day1.cost == Money(225_000, "0.225", ESTIMATE_UNIT)
    assert (ci_day1.cache_read_tokens, ci_day1.cache_write_tokens) == (0, 0)  # null and omitted fields
    # A model with no price: its tokens are kept, its row says "unpriced", never an estimated $0.
    console = rows[("2025-08-01", "anthropic:console", "claude-experimental-9", "unpriced")]
    assert console.cost == Money(0, "0", "unpriced")
    assert (console.input_tokens, console.cache_write_tokens) == (700, 30)

    # Day 2: a standard and a batch row of one account/model, each priced at its tier, then summed:
    # (60k x $3 + 6k x $15) + (40k x $3 + 4k x $15) x 50% = $0.27 + $0.09.
    alice_day2 = rows[("2025-08-02", "anthropic_user:user_01", "claude-sonnet-4-20250514", "estimated")]
    assert (alice_day2.input_tokens, alice_day2.output_tokens) == (100_000, 10_000)
    assert alice_day2.cost == Money(360_000, "0.36", ESTIMATE_UNIT)
    # ci-bot is a Claude Code api_actor on day 2 (joined on the key name).
    ci_day2 = rows[("2025-08-02", "anthropic_key:apikey_02", "claude-opus-4-20250514", "estimated")]
    assert ci_day2.cost.raw_unit == anthropic.TOKENS_ONLY and ci_day2.input_tokens == 20_000
    # Bob's Claude Code that day ran on a subscription, which is not in the Usage report.
    assert rows[("2025-08-02", "anthropic_key:apikey_03", "claude-3-5-haiku-20241022", "estimated")].cost == (
        Money(800_000, "0.8", ESTIMATE_UNIT)
    )

    billed = [r for r in batch.usage if r.cost_basis == "billed"]
    assert all(r.in_org_total for r in billed)
    assert all(not r.in_org_total for r in batch.usage if r.cost_basis in ("estimated", "unpriced"))
    assert {(r.day.isoformat(), r.actor, r.model, r.cost.raw_amount, r.cost.micros) for r in billed} == {
        ("2025-08-01", "anthropic_workspace:default", "claude-sonnet-4-20250514", "123.45", 1_234_500),
        ("2025-08-01", "anthropic_workspace:default", "claude-sonnet-4-20250514", "300.5", 3_005_000),
        ("2025-08-01", "anthropic_workspace:wrkspc_01", "web_search", "1000", 10_000_000),
        ("2025-08-02", "anthropic_workspace:wrkspc_01", "claude-opus-4-20250514", "45.678", 456_780),
        ("2025-08-02", "anthropic_workspace:wrkspc_01", "claude-opus-4-20250514", "0.001", 10),
    }
    assert all(r.cost.raw_unit == "usd_cents" for r in billed)

    hints = {h.actor: (h.email, h.name) for h in batch.identities}
    assert hints == {
        "anthropic_user:user_01": ("alice@example.com", "Alice Adams"),
        "anthropic_user:user_02": ("bob@example.com", "Bob Brown"),
        "anthropic_user:user_03": ("carol@example.com", "Carol Chen"),
        "anthropic_key:apikey_01": ("alice@example.com", "Alice Adams"),
        "anthropic_key:apikey_02": ("carol@example.com", "Carol Chen"),
        "anthropic_key:apikey_03": ("bob@example.com", "Bob Brown"),
        "anthropic_key:apikey_04": ("carol@example.com", "Carol Chen"),
    }

    usage = api.calls("usage_report/messages")[0]
    assert usage.headers["x-api-key"] == KEY
    assert usage.headers["anthropic-version"] == "2023-06-01"
    assert usage.args.getlist("group_by[]") == ["account_id", "api_key_id", "model", "service_tier"]
    assert (
        b"group_by%5B%5D=account_id" in usage.query_string or b"group_by[]=account_id" in usage.query_string
    )
    assert usage.args["starting_at"] == "2025-08-01T00:00:00Z"
    assert usage.args["ending_at"] == "2025-08-03T00:00:00Z"
    assert usage.args["bucket_width"] == "1d"
    assert [r.args.get("page") for r in api.calls("usage_report/messages")] == [None, "page_2"]
    cost = api.calls("cost_report")[0]
    assert cost.args.getlist("group_by[]") == ["workspace_id", "description"]
    assert [r.args.get("page") for r in api.calls("cost_report")] == [None, "cost_page_2"]
    assert [r.args.get("after_id") for r in api.calls("users")] == [None, "user_02"]
    cc = api.calls("usage_report/claude_code")
    assert [(r.args["starting_at"], r.args.get("page")) for r in cc] == [
        ("2025-08-01", None),
        ("2025-08-01", "cc_p2"),
        ("2025-08-02", None),
    ]


def test_claude_code_report_missing_means_no_overlap(httpserver):
    api = FakeAdminApi(httpserver)
    api.queue("usage_report/claude_code", Response('{"error": {"type": "not_found_error"}}', status=404))
    api.queue("usage_report/claude_code", Response('{"error": {"type": "not_found_error"}}', status=404))
    (batch,) = _fetch(_connector(httpserver))
    rows = _by_key(batch)
    alice_day1 = rows[("2025-08-01", "anthropic_user:user_01", "claude-sonnet-4-20250514", "estimated")]
    # 1M x $3 + 0.2M x $15 + 2M x $0.30 + 0.4M 5-minute writes x $3.75 + 0.1M 1-hour writes x $6
    assert alice_day1.cost == Money(8_700_000, "8.7", ESTIMATE_UNIT)


def test_claude_code_report_error_fails_the_run(httpserver):
    api = FakeAdminApi(httpserver)
    api.queue("usage_report/claude_code", Response('{"error": {"message": "bad request"}}', status=400))
    with pytest.raises(SourceError, match="usage_report/claude_code: HTTP 400: bad request"):
        _fetch(_connector(httpserver))


def test_cursor_that_repeats_is_an_error_not_a_hang(httpserver):
    api = FakeAdminApi(httpserver)
    looping = json.dumps({"data": [], "has_more": True, "next_page": "same"})
    api.queue("cost_report", *(Response(looping, content_type="application/json") for _ in range(3)))
    with pytest.raises(SourceError, match="cost_report: has_more is true but the next page cursor"):
        _fetch(_connector(httpserver))


def test_unparseable_bucket_and_currency_fail_clearly(httpserver):
    api = FakeAdminApi(httpserver)
    bad = {"data": [{"starting_at": "yesterday", "results": []}], "has_more": False, "next_page": None}
    api.queue("usage_report/messages", Response(json.dumps(bad), content_type="application/json"))
    with pytest.raises(SourceError, match="usage_report/messages: cannot parse bucket"):
        _fetch(_connector(httpserver))

    api.queued.clear()
    euros = json.loads((FIXTURES / "anthropic" / "cost_2.json").read_text())
    euros["data"][0]["results"][0]["currency"] = "EUR"
    api.queue("cost_report", Response(json.dumps(euros), content_type="application/json"))
    with pytest.raises(SourceError, match="cost_report: unsupported currency 'EUR'"):
        _fetch(_connector(httpserver))


def test_from_settings_needs_the_key_and_covers_accounts(httpserver):
    assert anthropic.from_settings(Settings()) == []
    assert claude_code.from_settings(Settings()) == []
    settings = _settings(
        httpserver,
        accounts=[
            SourceAccount(name="anthropic-eu", vendor="anthropic", key="sk-ant-admin-eu"),
            SourceAccount(name="openai-eu", vendor="openai", key="sk-admin-x"),
        ],
    )
    connectors = anthropic.from_settings(settings)
    assert [(c.name, c.vendor, c.trailing_days, c.max_window_days) for c in connectors] == [
        ("anthropic", "anthropic", 3, 31),
        ("anthropic-eu", "anthropic", 3, 31),
    ]
    assert connectors[0].lag.total_seconds() == 300
    for connector in connectors:
        connector.close()


# -- through the engine ---------------------------------------------------------------------
def _usage_totals(engine, source: str):
    with engine.connect() as conn:
        return conn.execute(
            select(UsageDaily.cost_basis, *USAGE_SUMS)
            .where(UsageDaily.source == source)
            .group_by(UsageDaily.cost_basis)
            .order_by(UsageDaily.cost_basis)
        ).all()


def _org_total(engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.sum(UsageDaily.cost_micros)).where(UsageDaily.in_org_total)).scalar()
        )


def test_end_to_end_totals_and_idempotence(engine, httpserver):
    FakeAdminApi(httpserver)
    for _ in range(2):
        connector = _connector(httpserver)
        outcome = run_source(engine, connector, workspace_id="W", **WINDOW)
        connector.close()
        assert outcome.status == "ok", outcome.error
        assert [tuple(row) for row in _usage_totals(engine, "anthropic")] == [
            ("billed", 14_696_290, 0, 0, 0, 0, 3),  # cost lines of one workspace/model/day fold
            ("estimated", 1_385_000, 2_170_000, 218_000, 2_000_000, 500_000, 6),
            ("unpriced", 0, 700, 70, 0, 30, 1),  # counted, never a silent estimated $0
        ]
        assert _org_total(engine) == 14_696_290  # billed only: estimates are not org dollars
        assert usage_by_email(engine) == {
            "alice@example.com": 360_000,
            "bob@example.com": 800_000,
            "carol@example.com": 225_000,
        }
    with engine.connect() as conn:
        unattributed = conn.execute(
            select(UsageDaily.actor).where(UsageDaily.person_id.is_(None)).order_by(UsageDaily.actor)
        ).scalars()
        assert sorted(set(unattributed)) == [
            "anthropic:console",
            "anthropic_workspace:default",
            "anthropic_workspace:wrkspc_01",
        ]
        links = conn.execute(select(func.count()).select_from(Identity)).scalar()
    assert links == 10  # 7 vendor actors + 3 email actors


def test_with_claude_code_no_dollar_is_counted_twice(engine, httpserver):
    FakeAdminApi(httpserver)
    settings = _settings(httpserver)
    for module in (anthropic, claude_code):
        (connector,) = module.from_settings(settings)
        outcome = run_source(engine, connector, workspace_id="W", **WINDOW)
        connector.close()
        assert outcome.status == "ok", outcome.error
    # Org: the billed Cost report alone.
    assert _org_total(engine) == 14_696_290
    # People: Anthropic estimates only where Claude Code did not report the same usage.
    assert usage_by_email(engine) == {
        "alice@example.com": 360_000 + 9_527_000,  # day-1 API usage is Claude Code's estimate only
        "bob@example.com": 800_000 + 300_000,  # his Claude Code ran on a subscription
        "carol@example.com": 225_000 + 450_000,  # ci-bot: day 1 Anthropic estimate, day 2 Claude Code
    }


def test_invalid_json_fails_the_run_and_stores_nothing(engine, httpserver):
    api = FakeAdminApi(httpserver)
    api.queue("cost_report", Response('{"data": [', content_type="application/json"))
    error = failed_run_error(engine, _connector(httpserver), WINDOW)
    assert error == "anthropic: v1/organizations/cost_report: response is not valid JSON"
    with engine.connect() as conn:
        run = conn.execute(select(SyncRun.status, SyncRun.error)).one()
    assert run == ("failed", error)


def test_rate_limit_is_retried_after_retry_after(engine, httpserver):
    api = FakeAdminApi(httpserver)
    limited = Response('{"error": {"type": "rate_limit_error"}}', status=429, headers={"Retry-After": "0"})
    api.queue("usage_report/messages", limited)
    connector = _connector(httpserver)
    outcome = run_source(engine, connector, workspace_id="W", **WINDOW)
    connector.close()
    assert outcome.status == "ok", outcome.error
    assert [r.args.get("page") for r in api.calls("usage_report/messages")] == [None, None, "page_2"]
    assert _org_total(engine) == 14_696_290


# -- the Usage & Cost Analytics API (billed per actor) ----------------------------------------
NOV = (date(2026, 11, 2), date(2026, 11, 4))
NOV_TODAY = date(2026, 11, 4)
NOV_SPLIT = (date(2026, 11, 3), date(2026, 11, 4))
NOV_WINDOW = {"since": NOV[0], "until": NOV[1], "today": NOV_TODAY}
BETA_REFUSED = (
    '{"type": "error", "error": {"type": "invalid_request_error", "message": "Unknown anthropic-beta value"}}'
)


def _on(connector, today=NOV_TODAY):
    connector.analytics.today = lambda: today
    return connector


def test_analytics_bills_each_actor_and_keeps_the_tokens(httpserver):
    api = FakeAdminApi(httpserver)
    (batch,) = _fetch(_on(_connector(httpserver)), *NOV)
    rows = {(r.day.isoformat(), r.actor, r.model): r for r in batch.usage}
    assert {r.cost_basis for r in batch.usage} == {"billed"}
    assert all(r.in_org_total for r in batch.usage)
    assert all(r.cost.raw_unit == "usd_cents" for r in batch.usage)  # fractional cents, kept exact

    # Alice's Opus 4.7 day: billed 812.3456 cents (post-discount), her Usage-report tokens on it.
    alice = rows[("2026-11-02", "anthropic_user:user_01", "claude-opus-4-7")]
    assert alice.cost == Money(8_123_456, "812.3456", "usd_cents")
    assert (alice.input_tokens, alice.output_tokens, alice.cache_read_tokens) == (300_000, 50_000, 1_000_000)
    assert (alice.cache_write_tokens, alice.cache_write_1h_tokens) == (300_000, 200_000)

    def micros(day, actor, model):
        return rows[(f"2026-11-{day}", actor, model)].cost.micros

    assert micros("02", "anthropic_user:user_01", "web_search") == 10_000_000  # a cost with no model
    ci = rows[("2026-11-02", "anthropic_key:apikey_02", "claude-sonnet-5-5")]  # an API key actor
    assert (ci.cost.micros, ci.input_tokens) == (1_505_000, 40_000)
    assert micros("02", "anthropic_service_account:svac_01", "claude-haiku-5-5") == 200_000
    assert micros("02", "anthropic:unattributed", "claude-opus-4-7") == 52_500  # no actor
    assert rows[("2026-11-03", "anthropic_user:user_09", "claude-opus-5-5")].cost.raw_amount == "0.0125"
    assert micros("03", "anthropic_user:user_09", "claude-opus-5-5") == 125
    # A bare tagged id; priority-tier usage, billed (not guessed: it has no list price).
    bob_key = rows[("2026-11-03", "anthropic_key:apikey_03", "claude-haiku-4-5-20251001")]
    assert (bob_key.cost.micros, bob_key.input_tokens) == (999_900, 70_000)
    # Tokens of a key with no cost row of its own: kept, no dollars.
    stray = rows[("2026-11-02", "anthropic_key:apikey_05", "claude-haiku-5-5")]
    assert (stray.cost.micros, stray.input_tokens, stray.output_tokens) == (0, 1000, 100)
    assert ("2026-11-02", "anthropic_user:user_02", "claude-sonnet-5") not in rows  # null amount: skipped
    assert len(rows) == 8

    hints = {h.actor: (h.email, h.name) for h in batch.identities}
    assert hints["anthropic_user:user_09"] == (
        "erin@example.com",
        "Erin Evans",
    )  # deleted: email from the row
    assert hints["anthropic_user:user_01"] == ("alice@example.com", "Alice Adams")
    assert "anthropic_service_account:svac_01" not in hints  # service accounts stay unattributed

    cost = api.calls("analytics/cost")
    assert [r.args.get("page") for r in cost] == [None, "acost_p2"]
    assert all(r.headers["anthropic-beta"] == "analytics-usage-cost-2026-08-24" for r in cost)
    assert cost[0].headers["x-api-key"] == KEY and cost[0].headers["anthropic-version"] == "2023-06-01"
    assert cost[0].args.getlist("group_by[]") == ["actor", "model"]
    assert (cost[0].args["starting_at"], cost[0].args["ending_at"]) == (
        "2026-11-02T00:00:00Z",
        "2026-11-04T00:00:00Z",
    )
    assert cost[0].args["time_bucket_width"] == "1d"
    # Billed per actor: neither the workspace Cost report nor the Claude Code overlap is read.
    assert api.calls("cost_report") == [] and api.calls("usage_report/claude_code") == []


@pytest.mark.parametrize(
    "refusal",
    [
        Response('{"error": {"type": "permission_error", "message": "forbidden"}}', status=403),
        Response('{"error": {"type": "not_found_error", "message": "not found"}}', status=404),
        Response(BETA_REFUSED, status=400),
    ],
    ids=["403", "404", "beta refused"],
)
def test_analytics_refused_falls_back_to_the_legacy_reports_once_per_run(httpserver, caplog, refusal):
    api = FakeAdminApi(httpserver)
    api.queue("analytics/cost", refusal)
    connector = _on(_connector(httpserver))
    with caplog.at_level("WARNING", logger="bot.sources.anthropic"):
        (batch,) = list(connector.fetch(*NOV))
        (again,) = _fetch(connector, *NOV)  # the same run: not asked again
    assert len(api.calls("analytics/cost")) == 1
    assert [r.getMessage() for r in caplog.records if "Analytics API" in r.getMessage()] == [
        f"anthropic: Usage & Cost Analytics API not available (HTTP {refusal.status_code}: "
        f"{json.loads(refusal.get_data())['error']['message']}); using the legacy usage and cost "
        "reports (estimated per person) for this run"
    ]
    rows = {(r.day.isoformat(), r.actor, r.model, r.cost_basis): r for r in batch.usage}
    assert rows == {(r.day.isoformat(), r.actor, r.model, r.cost_basis): r for r in again.usage}
    # Legacy: workspace dollars billed, people estimated (Claude Code's estimate for Alice's API day).
    assert (
        rows[("2026-11-02", "anthropic_workspace:default", "claude-opus-4-7", "billed")].cost.micros
        == 20_005_000
    )
    alice = rows[("2026-11-02", "anthropic_user:user_01", "claude-opus-4-7", "estimated")]
    assert alice.cost.raw_unit == "tokens_only" and alice.cache_write_1h_tokens == 200_000
    # Sonnet 5.5 on the batch tier: (40k x $2 + 8k x $10) x 50%.
    assert (
        rows[("2026-11-02", "anthropic_key:apikey_02", "claude-sonnet-5-5", "estimated")].cost.micros
        == 80_000
    )
    assert rows[("2026-11-02", "anthropic_key:apikey_05", "claude-haiku-5-5", "estimated")].cost.micros == 150
    # Priority tier has no list price: unpriced, tokens kept.
    priority = rows[("2026-11-03", "anthropic_key:apikey_03", "claude-haiku-4-5-20251001", "unpriced")]
    assert (priority.cost, priority.input_tokens) == (Money(0, "0", "unpriced"), 70_000)


def test_analytics_errors_that_are_not_a_refusal_fail_the_run(httpserver):
    api = FakeAdminApi(httpserver)
    api.queue("analytics/cost", Response('{"error": {"message": "group_by[] is invalid"}}', status=400))
    with pytest.raises(SourceError, match=r"analytics/cost: HTTP 400: group_by\[\] is invalid"):
        _fetch(_on(_connector(httpserver)), *NOV)
    api.queued.clear()
    broken = json.loads((FIXTURES / "anthropic" / "analytics" / "cost_2.json").read_text())
    broken["data"][0]["cost"]["currency"] = "EUR"
    api.queue("analytics/cost", _file("anthropic/analytics", "cost_1.json"))
    api.queue("analytics/cost", Response(json.dumps(broken), content_type="application/json"))
    with pytest.raises(SourceError, match="analytics/cost: unsupported currency 'EUR'"):
        _fetch(_on(_connector(httpserver)), *NOV)


def test_days_older_than_the_analytics_api_keeps_use_the_legacy_reports(httpserver):
    api = FakeAdminApi(httpserver)
    # A year and a day later the window is outside "the last 365 days": not even asked.
    (batch,) = _fetch(_on(_connector(httpserver), today=date(2027, 11, 3)), *NOV)
    assert api.calls("analytics/cost") == []
    assert {r.cost_basis for r in batch.usage} == {"billed", "estimated", "unpriced"}
    (batch,) = _fetch(_on(_connector(httpserver)))  # 2025: before the API's first day
    assert api.calls("analytics/cost") == []
    # A window across the start of the range is cut there: each day billed one way, as Claude Code
    # (which decides per day) sees it too.
    connector = _on(_connector(httpserver), today=date(2027, 11, 2))  # the range starts 2026-11-03
    assert list(connector.windows(*NOV)) == [(date(2026, 11, 2), date(2026, 11, 3)), NOV_SPLIT]
    connector.close()


def test_analytics_end_to_end_billed_people_and_claude_code_counted_once(engine, httpserver):
    """Both sources of one admin key over the analytics days, twice: the org total is what Anthropic
    bills, each person's Anthropic dollars are their billed cost, and Claude Code's estimates for
    API users add no dollars (a subscription user's estimate stays, nothing else holds it)."""
    api = FakeAdminApi(httpserver)
    settings = _settings(httpserver)
    for _ in range(2):
        for module in (anthropic, claude_code):
            (connector,) = module.from_settings(settings)
            outcome = run_source(engine, _on(connector), workspace_id="W", **NOV_WINDOW)
            connector.close()
            assert outcome.status == "ok", outcome.error
        assert _org_total(engine) == 20_880_981
        assert usage_by_email(engine) == {
            "alice@example.com": 8_123_456 + 10_000_000,  # billed; her Claude Code rows carry tokens only
            "bob@example.com": 999_900 + 32_000,  # billed key + his subscription Claude Code estimate
            "carol@example.com": 1_505_000,  # ci-bot's creator
            "erin@example.com": 125,
        }
    with engine.connect() as conn:
        claude = conn.execute(
            select(UsageDaily.actor, UsageDaily.raw_unit, UsageDaily.cost_micros, UsageDaily.input_tokens)
            .where(UsageDaily.source == "claude_code")
            .order_by(UsageDaily.actor)
        ).all()
    assert [tuple(r) for r in claude] == [
        ("email:alice@example.com", "tokens_only", 0, 300_000),
        ("email:bob@example.com", "usd_cents", 32_000, 10_000),
    ]
    # The Claude Code source asked the Analytics API once for its whole run (per run, not per day).
    assert len([r for r in api.calls("analytics/cost") if r.args.get("page") is None]) == 4


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("sk-ant-api03-0123456789abcdef", "an Anthropic API key (sk-ant-api…)"),
        ("sk-admin-0123456789abcdef", "an OpenAI Admin key (sk-admin-…)"),
    ],
)
def test_a_key_of_the_wrong_kind_is_named_before_any_request(httpserver, key, kind):
    settings = _settings(httpserver).model_copy(update={"anthropic_admin_key": SecretStr(key)})
    connectors = [*anthropic.from_settings(settings), *claude_code.from_settings(settings)]
    for connector in connectors:
        with pytest.raises(SourceError) as caught:
            _fetch(connector)
        assert str(caught.value) == (
            f"{connector.name}: the key is {kind}: the Admin API needs an Anthropic Admin key "
            "(sk-ant-admin…, created by an organization admin in the Console)"
        )
    assert [c.name for c in connectors] == ["anthropic", "claude_code"]
    assert httpserver.log == []
