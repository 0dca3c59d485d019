"""Claude Code Analytics against a loopback fake of the Admin API (fixtures written from the
documented schema), through the real sync engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug import Response

from bot.db.models import ActivityDaily, Person, UsageDaily
from bot.domain.money import Money
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount
from bot.sources import claude_code
from bot.sources.base import SourceError
from tests.support.anthropic_admin import KEY, FakeAdminApi, claude_code_connector, failed_run_error
from tests.support.db import USAGE_SUMS

FIXTURES = Path(__file__).parent.parent / "fixtures"
TODAY = date(2025, 8, 3)
WINDOW = {"since": date(2025, 8, 1), "until": date(2025, 8, 4), "today": TODAY}


def _fetch(connector, start=date(2025, 8, 1), end=date(2025, 8, 4)):
    try:
        return list(connector.fetch(start, end))
    finally:
        connector.close()


def _record(**changes) -> dict:
    body = json.loads((FIXTURES / "claude_code" / "day_2025-08-02.json").read_text())
    body["data"][0].update(changes)
    return body


def test_one_request_series_per_day_and_parsing(httpserver):
    api = FakeAdminApi(httpserver)
    batches = _fetch(claude_code_connector(httpserver))
    assert [(b.window_start.isoformat(), b.window_end.isoformat()) for b in batches] == [
        ("2025-08-01", "2025-08-02"),
        ("2025-08-02", "2025-08-03"),
        ("2025-08-03", "2025-08-04"),
    ]
    calls = api.calls("usage_report/claude_code")
    assert [(r.args["starting_at"], r.args.get("page")) for r in calls] == [
        ("2025-08-01", None),
        ("2025-08-01", "cc_p2"),
        ("2025-08-02", None),
        ("2025-08-03", None),
    ]
    assert all(r.args["limit"] == "1000" for r in calls)
    assert calls[0].headers["x-api-key"] == KEY
    assert calls[0].headers["anthropic-version"] == "2023-06-01"

    day1, day2, day3 = batches
    # Alice appears on both pages (RFC 3339 and YYYY-MM-DD dates): one row per model, summed.
    usage = {(r.actor, r.model): r for r in day1.usage}
    sonnet = usage[("email:alice@example.com", "claude-sonnet-4-20250514")]
    assert sonnet.cost == Money(9_475_000, "947.5", "usd_cents")  # 847.5 + 100 cents, exact
    assert (sonnet.input_tokens, sonnet.output_tokens) == (1_000_010, 200_000)
    assert (sonnet.cache_read_tokens, sonnet.cache_write_tokens) == (2_000_000, 500_000)
    assert (sonnet.cost_basis, sonnet.in_org_total) == ("estimated", False)
    assert usage[("email:alice@example.com", "claude-3-5-haiku-20241022")].cost == Money(
        52_000, "5.2", "usd_cents"
    )
    assert len(day1.usage) == 2  # Carol's record has no models

    (alice,) = [a for a in day1.activity if a.actor == "email:alice@example.com"]
    assert (alice.sessions, alice.lines_added, alice.lines_removed) == (6, 320, 50)
    assert (alice.commits, alice.pull_requests, alice.acceptances, alice.rejections) == (2, 1, 13, 2)

    activity = {a.actor: a for a in day2.activity}
    assert set(activity) == {"claude_code_key:ci-bot", "email:bob@example.com", "email:dave@example.com"}
    ci = activity["claude_code_key:ci-bot"]
    assert (ci.sessions, ci.commits, ci.pull_requests, ci.acceptances, ci.rejections) == (3, 1, 1, 5, 1)
    assert activity["email:dave@example.com"].lines_added == 7
    assert {(r.actor, r.cost.micros) for r in day2.usage} == {
        ("claude_code_key:ci-bot", 450_000),
        ("email:bob@example.com", 300_000),
    }
    assert (day3.usage, day3.activity) == ([], [])

    # The key name is shared by two keys of one creator: still unambiguous, so it joins to Carol.
    hints = {h.actor: (h.email, h.name) for b in batches for h in b.identities}
    assert hints == {
        "email:alice@example.com": ("alice@example.com", "Alice Adams"),
        "email:carol@example.com": ("carol@example.com", "Carol Chen"),
        "email:bob@example.com": ("bob@example.com", "Bob Brown"),
        "claude_code_key:ci-bot": ("carol@example.com", "Carol Chen"),
    }
    assert len(api.calls("users")) == 2 and len(api.calls("api_keys")) == 1  # directory read once


def test_ambiguous_key_name_is_not_joined(httpserver):
    from bot.sources.anthropic import Directory

    directory = Directory(
        users={"u1": ("a@example.com", "A"), "u2": ("b@example.com", "B")},
        keys={"k1": ("shared", "u1"), "k2": ("shared", "u2"), "k3": ("solo", "u2")},
    )
    assert directory.creator_of_key_named("shared") is None
    assert directory.creator_of_key_named("solo") == ("b@example.com", "B")
    assert directory.creator_of_key_named("missing") is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"date": "2025-08-05"}, "record dated '2025-08-05' in the report for 2025-08-02"),
        ({"core_metrics": {"num_sessions": "three"}}, "cannot parse record"),
        ({"model_breakdown": [{"model": "m", "estimated_cost": {"amount": 1, "currency": "EUR"}}]}, "EUR"),
        ({"tool_actions": ["edit_tool"]}, "cannot parse record"),
    ],
)
def test_bad_records_fail_with_the_endpoint_named(httpserver, changes, message):
    api = FakeAdminApi(httpserver)
    api.queue("usage_report/claude_code", Response(json.dumps(_record(**changes))))
    connector = claude_code_connector(httpserver)
    with pytest.raises(SourceError) as error:
        _fetch(connector, date(2025, 8, 2), date(2025, 8, 3))
    assert str(error.value).startswith("claude_code: v1/organizations/usage_report/claude_code: ")
    assert message in str(error.value)


def test_missing_actor_and_string_counts_are_tolerated(httpserver):
    api = FakeAdminApi(httpserver)
    body = _record(actor=None, core_metrics={"num_sessions": "4", "lines_of_code": None})
    api.queue("usage_report/claude_code", Response(json.dumps(body)))
    (batch,) = _fetch(claude_code_connector(httpserver), date(2025, 8, 2), date(2025, 8, 3))
    unattributed = {a.actor: a for a in batch.activity}[claude_code.UNATTRIBUTED]
    assert (unattributed.sessions, unattributed.lines_added) == (4, 0)


def test_from_settings_accounts(httpserver):
    settings = Settings(
        ANTHROPIC_ADMIN_KEY=KEY,
        accounts=[
            SourceAccount(name="acme-eu", vendor="anthropic", key="k1", base_url=httpserver.url_for("/")),
            SourceAccount(name="cc-only", vendor="claude_code", key="k2"),
            SourceAccount(name="openai-eu", vendor="openai", key="k3"),
        ],
    )
    connectors = claude_code.from_settings(settings)
    assert [(c.name, c.vendor) for c in connectors] == [
        ("claude_code", "claude_code"),
        ("acme-eu-claude-code", "claude_code"),
        ("cc-only", "claude_code"),
    ]
    assert connectors[0].lag.total_seconds() == 3600 and connectors[0].trailing_days == 3
    for connector in connectors:
        connector.close()


# -- through the engine ---------------------------------------------------------------------
def _totals(engine):
    with engine.connect() as conn:
        usage = conn.execute(
            select(*USAGE_SUMS).where(UsageDaily.source == "claude_code", ~UsageDaily.in_org_total)
        ).one()
        in_org = conn.execute(select(func.count()).where(UsageDaily.in_org_total)).scalar()
        activity = conn.execute(
            select(
                func.sum(ActivityDaily.sessions),
                func.sum(ActivityDaily.lines_added),
                func.sum(ActivityDaily.lines_removed),
                func.sum(ActivityDaily.commits),
                func.sum(ActivityDaily.pull_requests),
                func.sum(ActivityDaily.acceptances),
                func.sum(ActivityDaily.rejections),
                func.count(),
            )
        ).one()
        people = conn.execute(
            select(Person.email, func.sum(UsageDaily.cost_micros))
            .join(Person, Person.id == UsageDaily.person_id)
            .group_by(Person.email)
        ).all()
        sessions = conn.execute(
            select(Person.email, func.sum(ActivityDaily.sessions))
            .join(Person, Person.id == ActivityDaily.person_id)
            .group_by(Person.email)
        ).all()
    return tuple(usage), in_org, tuple(activity), dict(people), dict(sessions)


def test_end_to_end_totals_and_idempotence(engine, httpserver):
    FakeAdminApi(httpserver)
    results = []
    for _ in range(2):
        connector = claude_code_connector(httpserver)
        outcome = run_source(engine, connector, workspace_id="W", **WINDOW)
        connector.close()
        assert outcome.status == "ok", outcome.error
        assert (outcome.usage_rows, outcome.activity_rows) == (4, 5)
        results.append(_totals(engine))
    assert results[0] == results[1]
    usage, in_org, activity, people, sessions = results[0]
    assert usage == (10_277_000, 1_110_010, 212_000, 2_000_000, 500_000, 4)
    assert in_org == 0  # estimates never reach the org total
    assert activity == (13, 367, 54, 3, 2, 18, 3, 5)
    assert people == {
        "alice@example.com": 9_527_000,
        "bob@example.com": 300_000,
        "carol@example.com": 450_000,  # via the ci-bot key she created
    }
    assert sessions == {
        "alice@example.com": 6,
        "bob@example.com": 2,
        "carol@example.com": 1 + 3,
        "dave@example.com": 1,  # email actors create people even without a directory entry
    }


def test_invalid_json_fails_the_run_and_stores_nothing(engine, httpserver):
    api = FakeAdminApi(httpserver)
    api.queue("usage_report/claude_code", Response("<html>gateway</html>", content_type="text/html"))
    error = failed_run_error(engine, claude_code_connector(httpserver), WINDOW)
    assert error == "claude_code: v1/organizations/usage_report/claude_code: response is not valid JSON"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ActivityDaily)).scalar() == 0


def test_rate_limit_is_retried_after_retry_after(engine, httpserver):
    api = FakeAdminApi(httpserver)
    api.queue(
        "usage_report/claude_code",
        Response('{"error": {"type": "rate_limit_error"}}', status=429, headers={"Retry-After": "0"}),
        Response('{"error": {"type": "overloaded_error"}}', status=503),
    )
    connector = claude_code_connector(httpserver)
    outcome = run_source(engine, connector, workspace_id="W", **WINDOW)
    connector.close()
    assert outcome.status == "ok", outcome.error
    starts = [r.args["starting_at"] for r in api.calls("usage_report/claude_code")]
    assert starts[:3] == ["2025-08-01"] * 3
    assert _totals(engine)[0][0] == 10_277_000


# -- when Anthropic bills each person (Usage & Cost Analytics API) -----------------------------
def _november(httpserver):
    connector = claude_code_connector(httpserver)
    connector.analytics.today = lambda: date(2026, 11, 4)
    return _fetch(connector, date(2026, 11, 2), date(2026, 11, 4))


def test_api_customers_carry_tokens_only_when_anthropic_bills_them(httpserver):
    api = FakeAdminApi(httpserver)
    day, _ = _november(httpserver)
    rows = {r.actor: r for r in day.usage}
    alice = rows["email:alice@example.com"]  # customer_type "api": in Anthropic's bill per actor
    assert alice.cost == Money(0, "900", "tokens_only")  # no dollars; Claude Code's 900 cents kept
    assert (alice.input_tokens, alice.cache_read_tokens, alice.cache_write_tokens) == (
        300_000,
        1_000_000,
        300_000,
    )
    assert alice.cost_basis == "estimated" and alice.in_org_total is False
    bob = rows["email:bob@example.com"]  # a subscription: no token bill holds it, the estimate stays
    assert bob.cost == Money(32_000, "3.2", "usd_cents")
    assert {a.actor: a.commits for a in day.activity}["email:alice@example.com"] == 2  # value signals kept
    # Asked once for the run (first page of one day), with the beta header.
    (probe,) = api.calls("analytics/cost")
    assert probe.headers["anthropic-beta"] == "analytics-usage-cost-2026-08-24"
    assert (probe.args["starting_at"], probe.args["ending_at"]) == (
        "2026-11-02T00:00:00Z",
        "2026-11-03T00:00:00Z",
    )


def test_estimates_stay_when_the_analytics_api_is_refused(httpserver):
    api = FakeAdminApi(httpserver)
    api.queue("analytics/cost", Response('{"error": {"type": "permission_error"}}', status=403))
    day, _ = _november(httpserver)
    rows = {r.actor: r for r in day.usage}
    assert rows["email:alice@example.com"].cost == Money(9_000_000, "900", "usd_cents")
    assert len(api.calls("analytics/cost")) == 1  # remembered for the run


def test_days_before_the_analytics_api_are_not_asked_about(httpserver):
    api = FakeAdminApi(httpserver)
    batches = _fetch(claude_code_connector(httpserver))  # 2025
    assert api.calls("analytics/cost") == []
    assert all(r.cost.raw_unit == "usd_cents" for b in batches for r in b.usage)
