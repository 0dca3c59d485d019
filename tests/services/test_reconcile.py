"""Reconciliation end to end: Cursor synced from loopback fakes of its Admin API (current event and
spend shapes), then ``/tokens reconcile`` and ``/tokens status`` through the signed HTTP app with
the recording fake Slack; plus the storage of vendor totals and the service's comparisons."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.db.engine import make_engine
from bot.db.models import VendorTotalRow
from bot.domain.money import Money
from bot.domain.periods import Period
from bot.domain.records import UNPRICED, Batch, UsageRecord, VendorTotal
from bot.services import reconcile
from bot.services.runtime import Runtime
from bot.services.sync import run_all, run_source
from bot.settings import Settings
from bot.slack.app import build_app
from bot.sources.cursor import from_settings
from bot.web import build_web_app
from tests.support.cursor_admin import cursor_fixture, paged_by_body
from tests.support.slack_app import all_text, send
from tests.support.slack_fake import BOT_TOKEN, SIGNING_SECRET

TODAY = date.today()
MARCH = Period(date(2026, 3, 1), date(2026, 4, 1), "March 2026")


def _serve_cursor(httpserver, spend: str) -> None:
    prefix = "/cursor/teams"
    httpserver.expect_request(f"{prefix}/members", method="GET").respond_with_data(
        cursor_fixture("members.json"), content_type="application/json"
    )
    httpserver.expect_request(f"{prefix}/daily-usage-data", method="POST").respond_with_handler(
        paged_by_body(
            {1: cursor_fixture("daily_usage_page1.json"), 2: cursor_fixture("daily_usage_page2.json")}
        )
    )
    httpserver.expect_request(f"{prefix}/filtered-usage-events", method="POST").respond_with_handler(
        paged_by_body(
            {1: cursor_fixture("events_charged_page1.json"), 2: cursor_fixture("events_charged_page2.json")}
        )
    )
    httpserver.expect_request(f"{prefix}/spend", method="POST").respond_with_handler(
        paged_by_body({1: cursor_fixture(spend)})
    )


def _cursor(httpserver):
    settings = Settings(
        CURSOR_ADMIN_KEY="key_" + "c" * 64,
        CURSOR_ADMIN_BASE_URL=httpserver.url_for("/cursor"),
        CURSOR_REQUESTS_PER_MINUTE=60_000,
        http_max_retries=0,
    )
    return from_settings(settings)


def _sync_cursor(engine, httpserver, spend: str):
    return run_all(
        engine, _cursor(httpserver), workspace_id="default", since=date(2026, 3, 1), until=date(2026, 3, 4)
    )


class _Unpriced:
    """A connector whose only row is a model with no price: tokens kept, no dollars."""

    vendor, name, lag, trailing_days, max_window_days = "openai", "openai", timedelta(0), 0, 31

    def fetch(self, start, end):
        record = UsageRecord(
            day=TODAY,
            actor="email:ana@example.com",
            model="gpt-9-preview",
            cost_basis=UNPRICED,
            input_tokens=1200,
        )
        yield Batch(start, end, usage=[record])

    def close(self):
        pass


@pytest.fixture
def engine_with_data(db_url, httpserver):
    engine = make_engine(db_url)
    _serve_cursor(httpserver, "spend_mismatch.json")
    outcomes = _sync_cursor(engine, httpserver, "spend_mismatch.json")
    assert [o.status for o in outcomes] == ["ok"]
    assert run_source(
        engine, _Unpriced(), workspace_id="default", since=TODAY, until=TODAY + timedelta(days=1)
    ).ok
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine_with_data, fake_slack):
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.api_url
    )
    runtime = Runtime(settings=settings, engine=engine_with_data, source_lags={"cursor": timedelta(hours=1)})
    with TestClient(build_web_app(runtime, build_app(runtime))) as test_client:
        yield test_client


def test_admin_sees_each_vendor_total_beside_the_stored_rows(client):
    text = all_text(send(client, "reconcile 2026-03", user_id="UADMIN"))
    assert "Reconciliation: March 2026" in text
    # Billed events 105000 + 200000 + 333330 micro-USD; included usage 42000 (estimated).
    assert "*cursor*: billed $0.64 · estimated $0.04 · unattributed $0.00" in text
    # On-demand spend 20 + 53.333 cents against the billed events: 638330 - 733330 micro-USD.
    assert "vendor *$0.73* · Tokenwise *$0.64* · difference -$0.10 (-13.0%)" in text
    # Overall spend 24.2 + 53.333 cents against billed + estimated: 680330 - 775330.
    assert (
        "billed + estimated" in text and "vendor *$0.78* · Tokenwise *$0.68*" in text and "(-12.3%)" in text
    )
    assert text.count(":warning: billed") == 2  # both checks flagged
    reply = send(client, "reconcile 2026-03", user_id="UADMIN")
    assert reply["response_type"] == "ephemeral"


def test_a_source_without_a_vendor_total_says_so(client):
    text = all_text(send(client, "reconcile", user_id="UADMIN"))  # this month: the unpriced row
    assert "*openai*: billed $0.00 · estimated $0.00 · unattributed $0.00 · unpriced 1,200 tokens" in text
    assert "no vendor total reported" in text
    assert "Unpriced models: gpt-9-preview (1,200 tokens, openai)" in text


def test_members_are_refused_without_a_figure(client):
    refused = all_text(send(client, "reconcile 2026-03"))
    assert "Reconciliation is for admins" in refused and "$" not in refused and "%" not in refused


def test_bad_period_is_a_clear_error(client):
    text = all_text(send(client, "reconcile lastyear", user_id="UADMIN"))
    assert "not a period" in text and "/tokens reconcile [period]" in text


def test_status_shows_the_mismatch_and_the_unpriced_models_to_admins(client):
    text = all_text(send(client, "status", user_id="UADMIN"))
    # The cycle-to-date spend runs to tomorrow, so it overlaps this month.
    assert ":warning: billed" in text and "(-13.0%)" in text and "cursor" in text
    assert "Unpriced models: gpt-9-preview (1,200 tokens, openai)" in text
    member = all_text(send(client, "status"))
    assert "Reconciliation" not in member and "gpt-9-preview" not in member and "13.0%" not in member


def test_spend_views_note_unpriced_tokens(client):
    me = all_text(send(client, "me"))  # UANA is ana@example.com
    assert "+ 1,200 tokens on unpriced models (gpt-9-preview) not in the total" in me
    org = all_text(send(client, "org", user_id="UADMIN"))
    assert "+ 1,200 tokens on unpriced models (gpt-9-preview) not in the total" in org
    march = all_text(send(client, "me 2026-03"))
    assert "unpriced" not in march


def test_resync_replaces_vendor_totals_and_a_match_is_not_flagged(db_url, httpserver):
    engine = make_engine(db_url)
    try:
        _serve_cursor(httpserver, "spend_current.json")
        for _ in range(2):
            assert [o.status for o in _sync_cursor(engine, httpserver, "spend_current.json")] == ["ok"]
        with engine.connect() as conn:
            rows = conn.execute(
                select(VendorTotalRow.what, VendorTotalRow.amount_micros, VendorTotalRow.raw_amount)
            ).all()
            result = reconcile.reconcile(conn, workspace_id="default", period=MARCH)
        assert sorted(rows) == [("billed", 638330, "63.833"), ("billed_and_estimated", 680330, "68.033")]
        (cursor,) = result.sources
        assert [(c.what, c.vendor_micros, c.attributed_micros, c.mismatched) for c in cursor.checks] == [
            ("billed", 638330, 638330, False),
            ("billed_and_estimated", 680330, 680330, False),
        ]
        assert result.mismatches == []
    finally:
        engine.dispose()


def test_latest_observation_of_a_span_wins_and_estimates_sit_beside_bills(engine):
    """Cursor stores its cycle-to-date spend once a day: only the newest is compared. Claude Code
    estimates are shown beside Anthropic's billed cost."""

    class Reporting:
        lag, trailing_days, max_window_days = timedelta(0), 0, 31

        def __init__(self, vendor, name, records, totals):
            self.vendor, self.name, self.records, self.totals = vendor, name, records, totals

        def fetch(self, start, end):
            yield Batch(start, end, usage=self.records, vendor_totals=self.totals)

        def close(self):
            pass

    day = date(2026, 3, 2)
    billed = UsageRecord(day=day, actor="email:a@x.com", cost=Money.from_usd("10"))
    estimate = UsageRecord(
        day=day, actor="email:a@x.com", cost=Money.from_usd("9"), cost_basis="estimated", in_org_total=False
    )
    older = VendorTotal(date(2026, 3, 1), date(2026, 3, 2), Money.from_usd("3"))
    newer = VendorTotal(date(2026, 3, 1), date(2026, 3, 3), Money.from_usd("10.05"))
    window = dict(workspace_id="W", since=date(2026, 3, 1), until=date(2026, 3, 3))
    assert run_source(engine, Reporting("anthropic", "anthropic", [billed], [older]), **window).ok
    assert run_source(engine, Reporting("anthropic", "anthropic", [billed], [newer]), **window).ok
    assert run_source(engine, Reporting("claude_code", "claude_code", [estimate], []), **window).ok
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(VendorTotalRow)).scalar() == 2
        result = reconcile.reconcile(conn, workspace_id="W", period=MARCH)
    anthropic, claude_code = result.sources
    (check,) = anthropic.checks
    assert (check.vendor_micros, check.attributed_micros, check.difference_micros) == (
        10_050_000,
        10_000_000,
        -50_000,
    )
    assert str(check.difference_percent) == "-0.5" and not check.mismatched
    assert claude_code.checks == () and claude_code.estimated_micros == 9_000_000
    (drift,) = result.drift
    assert (drift.estimate_micros, drift.billed_micros, str(drift.difference_percent)) == (
        9_000_000,
        10_000_000,
        "-10.0",
    )


def test_team_unpriced_line_never_shows_one_persons_model(engine):
    """Attack: a model only one member used would tell the team that person's tokens. Members get
    a model only when ``min_people`` people used it; managers (min 1) see all. Days outside a
    person's membership do not count."""
    from bot.db.models import Person, Team, TeamMembership
    from bot.services.reports import team_unpriced_models

    day = date(2026, 3, 10)
    with engine.begin() as conn:
        team_id = conn.execute(
            Team.__table__.insert().values(workspace_id="W", kind="usergroup", slack_id="S1", name="t")
        ).inserted_primary_key[0]
        ids = []
        for n in range(3):
            pid = conn.execute(
                Person.__table__.insert().values(workspace_id="W", email=f"p{n}@x.com", display_name="")
            ).inserted_primary_key[0]
            ids.append(pid)
            conn.execute(
                TeamMembership.__table__.insert().values(
                    workspace_id="W", team_id=team_id, person_id=pid, joined_on=date(2026, 3, 1)
                )
            )

    class Rows:
        vendor, name, lag, trailing_days, max_window_days = "openai", "openai", timedelta(0), 0, 31

        def fetch(self, start, end):
            usage = [
                UsageRecord(
                    day=day,
                    actor=f"email:p{n}@x.com",
                    model="shared-x",
                    cost_basis=UNPRICED,
                    input_tokens=100,
                )
                for n in range(3)
            ]
            usage.append(
                UsageRecord(
                    day=day, actor="email:p0@x.com", model="solo-y", cost_basis=UNPRICED, output_tokens=7
                )
            )
            usage.append(  # before the team existed for p1: never the team's
                UsageRecord(
                    day=date(2026, 2, 20),
                    actor="email:p1@x.com",
                    model="shared-x",
                    cost_basis=UNPRICED,
                    input_tokens=5,
                )
            )
            yield Batch(start, end, usage=usage)

        def close(self):
            pass

    assert run_source(engine, Rows(), workspace_id="W", since=date(2026, 2, 1), until=date(2026, 4, 1)).ok
    with engine.connect() as conn:
        members = team_unpriced_models(conn, workspace_id="W", team_id=team_id, period=MARCH, min_people=3)
        managers = team_unpriced_models(conn, workspace_id="W", team_id=team_id, period=MARCH, min_people=1)
        february = team_unpriced_models(
            conn,
            workspace_id="W",
            team_id=team_id,
            period=Period(date(2026, 2, 1), date(2026, 3, 1), "February"),
            min_people=1,
        )
    assert [(m.model, m.tokens) for m in members] == [("shared-x", 300)]
    assert [(m.model, m.tokens) for m in managers] == [("shared-x", 300), ("solo-y", 7)]
    assert february == []
