"""Cross-vendor integration: one person using seven tools, end to end.

Seven tools (OpenAI, Anthropic, Claude Code, Cursor, Windsurf, GitHub Copilot, OpenRouter; plus
github_delivery, which the Copilot token also enables, with an org of no repos) are served at once
from loopback fakes (one pytest-httpserver, a path prefix per vendor set through the
``*_BASE_URL`` settings). Mira Costa reaches every one of them through that vendor's own identity
mechanism: OpenAI user and key owner, Anthropic user and key creator, Claude Code ``user_actor``
email, Cursor member email, OpenRouter key name, Windsurf user email, and a GitHub login linked by
``tokenwise people import``. Emails arrive in mixed case on purpose. Ben Ode uses a few tools so
the org view has more than one person, and some spend belongs to nobody.

The sync runs through ``tokenwise sync`` (typer's CliRunner) and through the scheduler's
``sync_job``; the numbers are then read through ``bot.services.reports`` and through signed
``/tokens me`` and ``/tokens status`` requests into the real HTTP app (Slack faked on loopback).

The fixtures (tests/fixtures/cross_vendor, documented vendor shapes) hold recent days as
placeholders, because OpenRouter serves only the last 30 completed days and the scheduler backfills
30 days from the real today: D1 = today - 3, D2 = today - 2 (UTC), D3 = today - 1 (exclusive end).
"""

from __future__ import annotations

import calendar
import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient
from typer.testing import CliRunner
from werkzeug import Request, Response

from bot.cli import app
from bot.db.engine import make_engine
from bot.db.models import ActivityDaily, Identity, Person, UsageDaily
from bot.domain.money import format_usd
from bot.domain.periods import Period
from bot.domain.records import SEAT
from bot.jobs.sync import sync_job
from bot.services.people import find_by_email
from bot.services.reports import org_report, person_report
from bot.services.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.slack.app import build_app
from bot.web import build_web_app
from tests.support.cursor_admin import paged_by_body
from tests.support.openai_admin import json_response, window_filter
from tests.support.slack_app import all_text, send
from tests.support.slack_fake import BOT_TOKEN, SIGNING_SECRET, start_fake_slack

FIXTURES = Path(__file__).parent.parent / "fixtures"
CROSS = FIXTURES / "cross_vendor"
WORKSPACE = "default"
runner = CliRunner()

OPENAI_KEY = "sk-admin-cross-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-admin01-cross-secret"
CURSOR_KEY = "key_" + "c" * 64
GITHUB_TOKEN = "ghp_cross_token_value"
OPENROUTER_KEY = "sk-or-v1-management-cross"
WINDSURF_KEY = "ws-service-key-cross-0123456789"

SOURCES = (
    "anthropic",
    "claude_code",
    "cursor",
    "github_copilot",
    "github_delivery",  # enabled by GITHUB_COPILOT_TOKEN too; no repos here, so no rows
    "openai",
    "openrouter",
    "windsurf",
)
MIRA, BEN = "mira@example.com", "ben@example.com"
MIRA_OPENROUTER_KEY = "ab" * 32
BEN_OPENROUTER_KEY = "b0" * 32
MIRA_WINDSURF_KEY = "1a1a1a1a-aaaa-4aaa-8aaa-aaaaaaaaaaaa"

# -- the expected money, worked out by hand from tests/fixtures/cross_vendor ----------------------
# OpenAI (billed, costs.json, per API key): key_mira 0.125 + 0.5 (D1) + 0.0012345678 (D2 = 1234.5678
# micros, rounds to 1235); key_ben 0.75 (D1); 1.5 for a fine-tuning job with no key (unattributed).
MIRA_OPENAI = 626_235  # 125_000 + 500_000 + 1_235
BEN_OPENAI = 750_000
OPENAI_UNATTRIBUTED = 1_500_000
ORG_OPENAI = 2_876_235  # 626_235 + 750_000 + 1_500_000
# Claude Code (estimated, not in the org total): Mira's D1 record, 412.3456 cents = $4.123456.
MIRA_CLAUDE_CODE = 4_123_456
# Anthropic Usage report (estimated from list prices, not in the org total):
#   D1 Mira's account, Sonnet 4: she used Claude Code through the API that day, so the row keeps its
#      tokens and carries $0 (Claude Code's estimate above holds those dollars);
#   D2 Mira's key, Haiku 3.5, 1M input x $0.80/M = 800_000;
#   D1 Ben's account, Opus 4.1, 10k input x $15/M + 1k output x $75/M = 150_000 + 75_000 = 225_000.
MIRA_ANTHROPIC = 800_000
BEN_ANTHROPIC = 225_000
# Anthropic Cost report (billed, workspaces, no person): 412.3456 + 22.5 + 80 cents (a null amount
# is skipped) = the very dollars estimated above: 4_123_456 + 225_000 + 800_000.
ORG_ANTHROPIC = 5_148_456
# Cursor (billed usage events, cents): Mira D1 12.3456 + 0.1 = 12.4456 cents = 124_456; D2
# 40.16699999999999 cents = 401_669.9999999999 micros, rounds to 401_670; her "Included in Business"
# event has no tokenUsage ($0). Ben D1 7.5 cents = 75_000.
MIRA_CURSOR = 526_126  # 124_456 + 401_670
BEN_CURSOR = 75_000
ORG_CURSOR = 601_126  # 526_126 + 75_000
# OpenRouter (billed /activity, USD): D1 org = gpt-4.1 0.0300000001 + Sonnet 1.25; Mira's key D1 =
# gpt-4.1 0.0300000001 (30_000.0001 micros -> 30_000) + Sonnet 1.0; the Sonnet 0.25 left over is
# unattributed. D2 org = Ben's key 0.5 (linked to Ben by the people CSV).
MIRA_OPENROUTER = 1_030_000  # 30_000 + 1_000_000
BEN_OPENROUTER = 500_000
OPENROUTER_UNATTRIBUTED = 250_000
ORG_OPENROUTER = 1_780_000  # 1_030_000 + 500_000 + 250_000
# GitHub Copilot seats (estimated, in the org total): COPILOT_SEAT_PRICES business = $3.7758 a month
# = 3_775_800 micros, a multiple of 28, 29, 30 and 31, so every day of a month costs exactly
# 3_775_800 / days-in-month micros whichever month the test runs in. Mira-GH and hubot each hold a
# seat created on D1, so each pays for D1 and D2; hubot is no one's (unattributed).
# Cursor's seats cost the same (CURSOR_SEAT_PRICE_USD): Mira and Ben are paid members, and a sync
# through today (the scheduler's) stores their seats for today, the one day the member list tells.
SEAT_PRICE_USD = "3.7758"
SEAT_DAY_MICROS = {28: 134_850, 29: 130_200, 30: 125_860, 31: 121_800}  # 3_775_800 / n
# Windsurf reports no dollars (credits are not money): value signals only.


def seat_day(day: date) -> int:
    return SEAT_DAY_MICROS[calendar.monthrange(day.year, day.month)[1]]


def expected(days: dict[str, date]) -> dict[str, dict[str, int]]:
    seats = seat_day(days["D1"]) + seat_day(days["D2"])  # one seat, two days
    return {
        "mira": {
            "openai": MIRA_OPENAI,
            "anthropic": MIRA_ANTHROPIC,
            "claude_code": MIRA_CLAUDE_CODE,
            "cursor": MIRA_CURSOR,
            "openrouter": MIRA_OPENROUTER,
            "github_copilot": seats,
        },
        "ben": {
            "openai": BEN_OPENAI,
            "anthropic": BEN_ANTHROPIC,
            "cursor": BEN_CURSOR,
            "openrouter": BEN_OPENROUTER,
        },
        # Org: each dollar once. Anthropic's and Claude Code's estimates count 0 (the Cost report
        # bills them); Claude Code still appears, with nothing counted.
        "org": {
            "openai": ORG_OPENAI,
            "anthropic": ORG_ANTHROPIC,
            "claude_code": 0,
            "cursor": ORG_CURSOR,
            "openrouter": ORG_OPENROUTER,
            "github_copilot": 2 * seats,
        },
    }


# Mira's total without Copilot: 626_235 + 800_000 + 4_123_456 + 526_126 + 1_030_000.
MIRA_TOTAL_WITHOUT_SEATS = 7_105_817
# Ben: 750_000 + 225_000 + 75_000 + 500_000.
BEN_TOTAL = 1_550_000
# Org without Copilot: 2_876_235 + 5_148_456 + 601_126 + 1_780_000.
ORG_TOTAL_WITHOUT_SEATS = 10_405_817


# -- the fake vendors ------------------------------------------------------------------------------
PLACEHOLDER = re.compile(r'("?)@(D[123])(?:_(EPOCH|MS|MSTEXT))?([+-]\d+)?@("?)')


def render(text: str, days: dict[str, date]) -> str:
    """Fill the day placeholders of a fixture (see tests/fixtures/cross_vendor/README.md)."""

    def fill(match: re.Match) -> str:
        open_quote, name, kind, offset, close_quote = match.groups()
        day = days[name]
        if kind is None:
            return f"{open_quote}{day.isoformat()}{close_quote}"
        seconds = int(datetime.combine(day, time(), UTC).timestamp())
        value = (seconds if kind == "EPOCH" else seconds * 1000) + int(offset or 0)
        if kind == "MSTEXT":
            return f"{open_quote}{value}{close_quote}"
        assert open_quote and close_quote, f"a numeric placeholder must be a whole JSON value: {match[0]}"
        return str(value)  # a JSON number: the quotes go

    return PLACEHOLDER.sub(fill, text)


def _day_of(value: str) -> date:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).date()


class FakeVendors:
    """Every vendor's admin API on one loopback server, each under its own path prefix.

    Each handler checks the vendor's own credential (so a key sent to the wrong vendor fails the
    sync), serves the rendered fixture and, like the real APIs, answers only for the asked window.
    """

    def __init__(self, server, days: dict[str, date]) -> None:
        self.server = server
        self.days = days
        self.iso = {name: day.isoformat() for name, day in days.items()}
        self.calls: dict[str, int] = {}
        #: Serve Anthropic's Usage & Cost Analytics API (else 404, like an organisation without it).
        self.anthropic_analytics = False
        self.leaks: list[str] = []  # requests to the blob store that carried the GitHub token
        # Copilot's billing usage reports: (report, day, user or None) -> fixture; else no usage.
        self.copilot_billing: dict[tuple[str, str, str | None], str] = {}
        routes = {
            "openai": self.openai,
            "anthropic": self.anthropic,
            "cursor": self.cursor,
            "github": self.github,
            "copilot-blob": self.copilot_blob,
            "openrouter": self.openrouter,
            "windsurf": self.windsurf,
        }
        for prefix, handler in routes.items():
            server.expect_request(re.compile(f"^/{prefix}/")).respond_with_handler(
                self._count(prefix, handler)
            )
        events = self.text("cursor", "events.json")
        self.cursor_events = paged_by_body({1: events})  # one page; page 2 would be a KeyError (500)

    def env(self) -> dict[str, str]:
        url = self.server.url_for
        return {
            "OPENAI_ADMIN_KEY": OPENAI_KEY,
            "OPENAI_ADMIN_BASE_URL": url("/openai/v1"),
            "ANTHROPIC_ADMIN_KEY": ANTHROPIC_KEY,  # enables anthropic and claude_code
            "ANTHROPIC_ADMIN_BASE_URL": url("/anthropic"),
            "CURSOR_ADMIN_KEY": CURSOR_KEY,
            "CURSOR_ADMIN_BASE_URL": url("/cursor"),
            "CURSOR_REQUESTS_PER_MINUTE": "60000",
            "OPENROUTER_REQUESTS_PER_MINUTE": "60000",
            "GITHUB_COPILOT_TOKEN": GITHUB_TOKEN,
            "GITHUB_COPILOT_ORG": "acme",
            "GITHUB_API_BASE_URL": url("/github"),
            "COPILOT_SEAT_PRICES": json.dumps({"business": SEAT_PRICE_USD}),
            "CURSOR_SEAT_PRICE_USD": SEAT_PRICE_USD,
            "OPENROUTER_MANAGEMENT_KEY": OPENROUTER_KEY,
            "OPENROUTER_BASE_URL": url("/openrouter/api/v1"),
            "WINDSURF_SERVICE_KEY": WINDSURF_KEY,
            "WINDSURF_BASE_URL": url("/windsurf/api/v1"),
            "TOKENWISE_HTTP_MAX_BACKOFF": "0.01",
            "TOKENWISE_HTTP_MAX_RETRIES": "1",
        }

    def _count(self, prefix, handler):
        def counted(request: Request) -> Response:
            self.calls[prefix] = self.calls.get(prefix, 0) + 1
            return handler(request)

        return counted

    def text(self, vendor: str, name: str) -> str:
        return render((CROSS / vendor / name).read_text(), self.days)

    def json_file(self, vendor: str, name: str) -> Response:
        return Response(self.text(vendor, name), content_type="application/json")

    @staticmethod
    def shared(vendor: str, name: str) -> Response:
        """An empty answer from the vendor's own test fixtures."""
        return Response((FIXTURES / vendor / name).read_bytes(), content_type="application/json")

    # OpenAI: Bearer admin key; usage and costs buckets cut to [start_time, end_time).
    def openai(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            return json_response({"error": {"message": "Incorrect API key provided"}}, 401)
        path = request.path.removeprefix("/openai/v1/organization/")
        name = {
            "users": "users.json",
            "projects": "projects.json",
            "projects/proj_main/api_keys": "api_keys_proj_main.json",
            "usage/completions": "usage_completions.json",
            "costs": "costs.json",
        }.get(path)
        if name is None:
            return json_response({"error": {"message": f"no route {path}"}}, 404)
        raw = self.text("openai", name).encode()
        if "start_time" in request.args:
            raw = window_filter(raw, int(request.args["start_time"]), request.args.get("end_time"))
        return Response(raw, content_type="application/json")

    # Anthropic Admin API: x-api-key; reports cut to [starting_at, ending_at); Claude Code per day.
    def anthropic(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != ANTHROPIC_KEY:
            return json_response({"type": "error", "error": {"type": "authentication_error"}}, 401)
        path = request.path.removeprefix("/anthropic/v1/organizations/")
        if path == "usage_report/claude_code":
            if request.args["starting_at"] == self.iso["D1"]:
                return self.json_file("anthropic", "claude_code_D1.json")
            return self.shared("claude_code", "day_empty.json")
        if path in ("users", "api_keys"):
            return self.json_file("anthropic", f"{path}.json")
        if path == "analytics/cost" and self.anthropic_analytics:
            if request.headers.get("anthropic-beta") != "analytics-usage-cost-2026-08-24":
                return json_response(
                    {"error": {"message": "this endpoint needs an anthropic-beta header"}}, 400
                )
        elif path == "analytics/cost":
            return json_response({"type": "error", "error": {"type": "not_found_error"}}, 404)
        name = {
            "usage_report/messages": "usage.json",
            "cost_report": "cost.json",
            "analytics/cost": "analytics_cost.json",
        }.get(path)
        if name is None:
            return json_response({"type": "error", "error": {"type": "not_found_error"}}, 404)
        body = json.loads(self.text("anthropic", name))
        start, end = _day_of(request.args["starting_at"]), _day_of(request.args["ending_at"])
        body["data"] = [b for b in body["data"] if start <= _day_of(b["starting_at"]) < end]
        return json_response(body)

    # Cursor Admin API: HTTP Basic with the key as user name; the connector keeps its window's days.
    def cursor(self, request: Request) -> Response:
        auth = request.authorization
        if auth is None or auth.username != CURSOR_KEY:
            return json_response({"error": "Unauthorized"}, 401)
        path = request.path.removeprefix("/cursor/teams/")
        if path == "members" and request.method == "GET":
            return self.json_file("cursor", "members.json")
        if path == "daily-usage-data" and request.method == "POST":
            return self.json_file("cursor", "daily_usage.json")
        if path == "filtered-usage-events" and request.method == "POST":
            return self.cursor_events(request)
        return json_response({"error": f"no route {path}"}, 404)

    # GitHub REST: a report (signed download link) for D1 and D2, 204 (no report yet) otherwise.
    def github(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {GITHUB_TOKEN}":
            return json_response({"message": "Bad credentials"}, 401)
        if request.path.startswith("/github/organizations/acme/settings/billing/"):
            return self.copilot_billing_report(request)
        if request.path == "/github/orgs/acme/repos":
            # GITHUB_COPILOT_TOKEN also enables github_delivery (documented): an org with no repos.
            return self.shared("github_delivery", "empty-list.json")
        path = request.path.removeprefix("/github/orgs/acme/copilot/")
        if path == "billing/seats":
            return self.json_file("github_copilot", "seats.json")
        if path == "metrics/reports/users-1-day":
            day = request.args["day"]
            if day not in (self.iso["D1"], self.iso["D2"]):
                return Response("", status=204)
            link = self.server.url_for(f"/copilot-blob/{day}") + "?sig=signed"
            return json_response({"download_links": [link], "report_day": day})
        return json_response({"message": "Not Found"}, 404)

    def copilot_billing_report(self, request: Request) -> Response:
        report = request.path.removeprefix("/github/organizations/acme/settings/billing/").split("/")[0]
        period = {name: int(request.args[name]) for name in ("year", "month", "day")}
        day = date(period["year"], period["month"], period["day"]).isoformat()
        user = request.args.get("user")
        name = self.copilot_billing.get((report, day, user.lower() if user else None), "billing_empty.json")
        return json_response({"timePeriod": period, **json.loads(self.text("github_copilot", name))})

    def copilot_blob(self, request: Request) -> Response:
        if "Authorization" in request.headers:
            self.leaks.append(request.path)
        day = request.path.removeprefix("/copilot-blob/")
        name = "users_D1.ndjson" if day == self.iso["D1"] else "users_D2.json"
        return Response(self.text("github_copilot", name), content_type="application/octet-stream")

    # OpenRouter management API: /keys (offset pages), /activity per day, org-wide or per key.
    def openrouter(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {OPENROUTER_KEY}":
            return json_response({"error": {"code": 401, "message": "No auth credentials found"}}, 401)
        path = request.path.removeprefix("/openrouter/api/v1/")
        if path == "keys":
            if request.args.get("offset", "0") == "0":
                return self.json_file("openrouter", "keys.json")
            return self.shared("openrouter", "keys-empty.json")
        if path == "activity":
            name = {
                (self.iso["D1"], None): "activity_D1_org.json",
                (self.iso["D1"], MIRA_OPENROUTER_KEY): "activity_D1_mira.json",
                (self.iso["D2"], None): "activity_D2_org.json",
                (self.iso["D2"], BEN_OPENROUTER_KEY): "activity_D2_ben.json",
            }.get((request.args["date"], request.args.get("api_key_hash")))
            if name is None:
                return self.shared("openrouter", "activity-empty.json")
            return self.json_file("openrouter", name)
        return json_response({"error": {"code": 404, "message": "Not Found"}}, 404)

    # Windsurf: POST with the service key in the body; Cascade once per user.
    def windsurf(self, request: Request) -> Response:
        body = json.loads(request.data or b"{}")
        if body.get("service_key") != WINDSURF_KEY:
            return json_response({"error": "invalid service key"}, 401)
        path = request.path.removeprefix("/windsurf/api/v1/")
        if path == "UserPageAnalytics":
            return self.json_file("windsurf", "user_page_analytics.json")
        if path == "Analytics":
            return self.json_file("windsurf", "analytics.json")
        if path == "CascadeAnalytics":
            if body.get("emails") == [MIRA]:
                return self.json_file("windsurf", "cascade_mira.json")
            return self.shared("windsurf", "cascade_empty.json")
        return json_response({"error": f"no route {path}"}, 404)


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture
def days() -> dict[str, date]:
    today = datetime.now(UTC).date()
    return {"D1": today - timedelta(days=3), "D2": today - timedelta(days=2), "D3": today - timedelta(days=1)}


@pytest.fixture
def vendors(httpserver, days) -> FakeVendors:
    return FakeVendors(httpserver, days)


@pytest.fixture
def configured(db_url, vendors, monkeypatch, tmp_path):
    """The database, every vendor configured through the environment, and the people CSV imported
    (Mira's GitHub login and Ben's OpenRouter key: those vendors send no email)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    for name, value in vendors.env().items():
        monkeypatch.setenv(name, value)
    people = tmp_path / "people.csv"
    people.write_text(
        f"email,name,github,openrouter_key\nmira@example.com,Mira Costa,Mira-GH,\n"
        f"Ben@Example.com,Ben Ode,,{BEN_OPENROUTER_KEY}\n"
    )
    result = runner.invoke(app, ["people", "import", str(people)])
    assert result.exit_code == 0, result.output
    assert "people.csv: people 2 created, 0 updated, 0 unchanged; 2 identity links added" in result.output
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def cli_sync(days: dict[str, date], vendors: FakeVendors) -> str:
    result = runner.invoke(
        app, ["sync", "--since", days["D1"].isoformat(), "--until", days["D3"].isoformat()]
    )
    assert result.exit_code == 0, result.output
    for source in SOURCES:
        # --until is exclusive: the line names the days covered, D1 and D2.
        covered = f"{days['D1']} to {days['D2']} (2 days)"
        assert f"✓ {source}: ok, {covered}:" in result.output, result.output
    assert set(vendors.calls) == {
        "openai",
        "anthropic",
        "cursor",
        "github",
        "copilot-blob",
        "openrouter",
        "windsurf",
    }
    assert vendors.leaks == []  # the GitHub token never goes to the signed download links
    return result.output


# -- the checks ------------------------------------------------------------------------------------
def assert_totals(engine, days: dict[str, date], *, cursor_seats: bool = False) -> None:
    """``cursor_seats``: a sync ran through today, so Mira's and Ben's Cursor seats of today are
    stored (estimated, in the org total) beside the Cursor usage of D1 and D2."""
    want = expected(days)
    today = datetime.now(UTC).date()
    seat = seat_day(today) if cursor_seats else 0
    want["mira"]["cursor"] += seat
    want["ben"]["cursor"] += seat
    want["org"]["cursor"] += 2 * seat
    mira_total = MIRA_TOTAL_WITHOUT_SEATS + want["mira"]["github_copilot"] + seat
    org_total = ORG_TOTAL_WITHOUT_SEATS + want["org"]["github_copilot"] + 2 * seat
    assert sum(want["mira"].values()) == mira_total and sum(want["ben"].values()) == BEN_TOTAL + seat
    assert sum(want["org"].values()) == org_total
    # A period much wider than the data: nothing may land outside D1..D2 (e.g. a backfill's stray
    # seat days) but today's Cursor seats, so the wide totals must be exactly the hand-computed ones.
    wide = Period(today - timedelta(days=40), today + timedelta(days=1), "wide")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(Person.email == MIRA)).scalar_one() == 1
        assert sorted(conn.execute(select(Person.email)).scalars()) == [BEN, MIRA]
        mira = find_by_email(conn, workspace_id=WORKSPACE, email=MIRA)
        ben = find_by_email(conn, workspace_id=WORKSPACE, email=BEN)
        # Every vendor's identity mechanism joined the same person.
        assert set(conn.execute(select(Identity.actor).where(Identity.person_id == mira.id)).scalars()) == {
            "email:mira@example.com",  # Claude Code user_actor, Cursor, Windsurf's email
            "openai_user:user-mira",
            "openai_key:key_mira",
            "anthropic_user:user_mira",
            "anthropic_key:apikey_mira",
            f"openrouter_key:{MIRA_OPENROUTER_KEY}",
            f"windsurf_key:{MIRA_WINDSURF_KEY}",
            "github:mira-gh",  # people CSV
        }
        todays_seats = (UsageDaily.vendor == "cursor") & (UsageDaily.kind == SEAT) & (UsageDaily.day == today)
        seat_rows = conn.execute(select(func.count()).where(todays_seats)).scalar_one()
        assert seat_rows == (2 if cursor_seats else 0)
        stray = (
            conn.execute(
                select(func.count()).where(UsageDaily.day.not_in([days["D1"], days["D2"]]), ~todays_seats)
            ).scalar_one()
            + conn.execute(
                select(func.count()).where(ActivityDaily.day.not_in([days["D1"], days["D2"]]))
            ).scalar_one()
        )
        assert stray == 0

        me = person_report(conn, workspace_id=WORKSPACE, person_ids=[mira.id], period=wide)
        assert {v.vendor: v.cost_micros for v in me.vendors} == want["mira"]
        assert me.total_micros == mira_total
        # The estimates in her total, labelled: Anthropic, Claude Code and the seats.
        estimates = MIRA_ANTHROPIC + MIRA_CLAUDE_CODE + want["mira"]["github_copilot"] + seat
        assert me.estimated_micros == estimates
        spend = {v.vendor: v for v in me.vendors}
        # Tokens where vendors send them: OpenAI uncached 1200 + 1500, cached 300 + 500, output
        # 400 + 600; Anthropic 1M + 200k (Claude Code's day, $0) + 1M; Copilot CLI 3800 + 5000.
        assert (spend["openai"].tokens, spend["openai"].requests) == (4_500, 12)
        assert spend["anthropic"].tokens == 2_200_000
        assert (spend["github_copilot"].tokens, spend["github_copilot"].requests) == (8_800, 2)
        value = {v.vendor: v for v in me.value}
        assert set(value) == {"claude_code", "cursor", "github_copilot", "windsurf"}
        cc = value["claude_code"]
        assert (cc.lines_added, cc.commits, cc.pull_requests, cc.sessions, cc.acceptances, cc.rejections) == (
            300,
            2,
            1,
            4,
            13,  # edit 10 + write 3
            2,
        )
        # Cursor: accepts = tabs 289 + 73; requests = 45 + 128 + 12 + 67.
        cur = value["cursor"]
        assert (cur.lines_accepted, cur.acceptances, cur.rejections, cur.requests) == (1_102, 362, 14, 252)
        # Windsurf: autocomplete 863 + Cascade 157 lines accepted; chat 74 lines used.
        assert (value["windsurf"].lines_accepted, value["windsurf"].lines_added) == (1_020, 74)
        gh = value["github_copilot"]
        assert (gh.lines_accepted, gh.suggestions_shown, gh.acceptances) == (28, 15, 6)  # 20+8, 10+5, 4+2

        ben_report = person_report(conn, workspace_id=WORKSPACE, person_ids=[ben.id], period=wide)
        assert {v.vendor: v.cost_micros for v in ben_report.vendors} == want["ben"]

        org = org_report(conn, workspace_id=WORKSPACE, period=wide)
        assert {v.vendor: v.cost_micros for v in org.vendors} == want["org"]
        assert org.total_micros == org_total
        covered = {v.vendor: v.covered_micros for v in org.vendors if v.covered_micros}
        # Left out of the org total because Anthropic's Cost report bills them.
        assert covered == {"anthropic": MIRA_ANTHROPIC + BEN_ANTHROPIC, "claude_code": MIRA_CLAUDE_CODE}
        # No person: OpenAI's fine-tuning job, OpenRouter's leftover, all of Anthropic's Cost report
        # (workspaces, not people) and hubot's seat.
        seats = want["org"]["github_copilot"] // 2
        assert (
            org.unattributed_micros == OPENAI_UNATTRIBUTED + OPENROUTER_UNATTRIBUTED + ORG_ANTHROPIC + seats
        )
        # Each dollar once: what people are billed in the org + what is nobody's = the org total.
        attributed = (
            (MIRA_OPENAI + MIRA_CURSOR + MIRA_OPENROUTER + want["mira"]["github_copilot"])
            + (BEN_OPENAI + BEN_CURSOR + BEN_OPENROUTER)
            + 2 * seat
        )
        assert attributed + org.unattributed_micros == org.total_micros
        assert org.active_people == 2


def assert_all_ok(outcomes) -> None:
    assert sorted((o.source, o.status, o.error) for o in outcomes) == [(s, "ok", None) for s in SOURCES]


# -- tests -----------------------------------------------------------------------------------------
def test_cli_sync_joins_one_person_across_tools_and_the_scheduler_changes_nothing(configured, days, vendors):
    engine = configured
    cli_sync(days, vendors)
    assert_totals(engine, days)
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(UsageDaily)).scalar_one()

    # The scheduler's path over the same database: its windows overlap the CLI's (trailing days),
    # replace those days and must leave every total as it was; it also reaches today, so Cursor's
    # two seats of today are stored beside them.
    outcomes = sync_job(Runtime(settings=Settings(), engine=engine))
    assert_all_ok(outcomes)
    assert_totals(engine, days, cursor_seats=True)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(UsageDaily)).scalar_one() == before + 2


def test_scheduler_on_a_fresh_database_gives_the_same_totals(configured, days, vendors):
    engine = configured
    # No --since: every source backfills 30 days from the real today (OpenRouter: its 30 days).
    outcomes = sync_job(Runtime(settings=Settings(), engine=engine))
    assert_all_ok(outcomes)
    assert_totals(engine, days, cursor_seats=True)


def _slack_knowing_mira(httpserver, engine, email: str):
    """The fake Slack, its directory holding Mira with ``email``, and a runtime talking to it.
    Started after the vendor routes: its catch-all gets only the rest."""
    fake = start_fake_slack(httpserver)
    fake.users["UMIRA"] = {
        "id": "UMIRA",
        "name": "mira",
        "real_name": "Mira Costa",
        "is_admin": False,
        "is_owner": False,
        "deleted": False,
        "profile": {"email": email, "real_name": "Mira Costa"},
    }
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url
    )
    return fake, build_runtime(settings, engine)


def test_tokens_me_and_status_show_every_vendor(configured, days, vendors, httpserver):
    engine = configured
    cli_sync(days, vendors)
    fake, runtime = _slack_knowing_mira(httpserver, engine, "Mira@example.com")
    assert sorted(runtime.source_lags) == sorted(SOURCES)
    want = expected(days)["mira"]
    with TestClient(build_web_app(runtime, build_app(runtime))) as client:
        reply = send(client, f"me {days['D1']}..{days['D2']}", user_id="UMIRA")
        status = send(client, "status", user_id="UMIRA")

    assert reply["response_type"] == "ephemeral"
    text = all_text(reply)
    assert f"*{format_usd(MIRA_TOTAL_WITHOUT_SEATS + want['github_copilot'])}*" in text
    usd = {vendor: format_usd(micros) for vendor, micros in want.items()}
    # One line per vendor with spend: dollars (estimates labelled), tokens and requests as stored.
    for line in (
        f"*OpenAI*: {usd['openai']} · 4,500 tokens · 12 requests",
        f"*Anthropic API*: {usd['anthropic']} _(est.)_ · 2.20M tokens",
        f"*Claude Code*: {usd['claude_code']} _(est.)_ · 1.20M tokens",
        f"*Cursor*: {usd['cursor']} · 20.5k tokens · 4 requests",  # 18,652 + 350 + 1,500 tokens
        f"*OpenRouter*: {usd['openrouter']} · 3,400 tokens · 5 requests",  # 100 + 200 + 2,500 + 600
        f"*GitHub Copilot*: {usd['github_copilot']} _(est., {usd['github_copilot']} seats)_ · 8,800 tokens",
    ):
        assert line in text, (line, text)
    # Value signals of the vendors that report them (Windsurf has no dollars, only these).
    assert "*Claude Code*: 300 lines added, 87% acceptance, 2 commits, 1 PRs by the tool, 4 sessions" in text
    assert "*Cursor*: 1,102 lines accepted, 1,543 lines added, 96% acceptance" in text  # 362 / (362 + 14)
    assert "*Windsurf*: 1,020 lines accepted, 74 lines added" in text
    assert "*GitHub Copilot*: 28 lines accepted, 40% acceptance" in text  # 6 of 15 shown
    # Personal numbers never go to a channel.
    assert fake.calls_to("chat.postMessage") == []

    assert status["response_type"] == "ephemeral"
    status_text = all_text(status)
    assert f"{len(SOURCES)} of {len(SOURCES)} healthy" in status_text
    for source in SOURCES:
        line = rf":white_check_mark: \*{source}\*\nlast success \d{{4}}-\d{{2}}-\d{{2}} \d{{2}}:\d{{2}} UTC"
        assert re.search(line, status_text), (source, status_text)
    assert "last success never" not in status_text


# -- GitHub Copilot's metered usage (AI credits), billed per person ---------------------------------
# D1: the org's AI credits net $1.25 on Claude Sonnet 4.6 (GPT-5 is within the included allowance:
# net $0); Mira-GH accounts for $1.00 of it, the $0.25 left is nobody's. Billed, in the org total.
MIRA_COPILOT_CREDITS = 1_000_000
COPILOT_CREDITS_UNATTRIBUTED = 250_000


def test_copilot_ai_credits_are_billed_to_the_person_in_tokens_me_and_the_org(
    configured, days, vendors, httpserver
):
    engine = configured
    d1 = days["D1"].isoformat()
    vendors.copilot_billing = {
        ("ai_credit", d1, None): "billing_ai_credit_D1_org.json",
        ("ai_credit", d1, "mira-gh"): "billing_ai_credit_D1_mira.json",
    }
    cli_sync(days, vendors)
    seats = expected(days)["mira"]["github_copilot"]  # Mira's seat on D1 and D2 (estimated)
    mira_copilot = seats + MIRA_COPILOT_CREDITS
    org_copilot = 2 * seats + MIRA_COPILOT_CREDITS + COPILOT_CREDITS_UNATTRIBUTED
    today = datetime.now(UTC).date()
    wide = Period(today - timedelta(days=40), today + timedelta(days=1), "wide")
    with engine.connect() as conn:
        mira = find_by_email(conn, workspace_id=WORKSPACE, email=MIRA)
        me = person_report(conn, workspace_id=WORKSPACE, person_ids=[mira.id], period=wide)
        org = org_report(conn, workspace_id=WORKSPACE, period=wide)
    copilot = {v.vendor: v for v in me.vendors}["github_copilot"]
    assert (copilot.cost_micros, copilot.estimated_micros, copilot.seat_micros) == (
        mira_copilot,
        seats,
        seats,
    )
    assert me.total_micros == MIRA_TOTAL_WITHOUT_SEATS + mira_copilot
    org_spend = {v.vendor: v for v in org.vendors}["github_copilot"]
    assert org_spend.cost_micros == org_copilot
    assert org_spend.unattributed_micros == seats + COPILOT_CREDITS_UNATTRIBUTED  # hubot's seat + leftover
    assert org.total_micros == ORG_TOTAL_WITHOUT_SEATS + org_copilot

    fake = start_fake_slack(httpserver)
    for user_id, name, email, admin in (
        ("UMIRA", "mira", "Mira@example.com", False),
        ("UADMIN", "ada", "ada@example.com", True),
    ):
        fake.users[user_id] = {
            "id": user_id,
            "name": name,
            "real_name": name,
            "is_admin": admin,
            "is_owner": False,
            "deleted": False,
            "profile": {"email": email, "real_name": name},
        }
    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url
    )
    runtime = build_runtime(settings, engine)
    period = f"{days['D1']}..{days['D2']}"
    with TestClient(build_web_app(runtime, build_app(runtime))) as client:
        reply = send(client, f"me {period}", user_id="UMIRA")
        org_reply = send(client, f"org {period}", user_id="UADMIN")
    text = all_text(reply)
    assert f"*{format_usd(MIRA_TOTAL_WITHOUT_SEATS + mira_copilot)}*" in text
    seat_usd = format_usd(seats)
    assert f"*GitHub Copilot*: {format_usd(mira_copilot)} _({seat_usd} est., {seat_usd} seats)_" in text, text
    assert org_reply["response_type"] == "ephemeral"
    org_text = all_text(org_reply)
    assert f"*GitHub Copilot*: {format_usd(org_copilot)} _(" in org_text, org_text
    assert f"{format_usd(seats + COPILOT_CREDITS_UNATTRIBUTED)} unattributed" in org_text
    assert f"*{format_usd(ORG_TOTAL_WITHOUT_SEATS + org_copilot)}*" in org_text, org_text
    assert fake.calls_to("chat.postMessage") == []


# -- Anthropic billed per person (Usage & Cost Analytics API) ---------------------------------------
# analytics_cost.json, post-discount fractional cents per actor: Mira's account D1 390.1234 (her
# Claude Code day, list 600) = 3_901_234; her key D2 72 = 720_000; Ben's account D1 22.5 = 225_000;
# a service account D2 10.5 = 105_000 (nobody's).
MIRA_ANTHROPIC_BILLED = 4_621_234  # 3_901_234 + 720_000
BEN_ANTHROPIC_BILLED = 225_000
ORG_ANTHROPIC_BILLED = 4_951_234  # + 105_000 for the service account


def test_anthropic_billed_per_person_through_the_analytics_api(configured, days, vendors, httpserver):
    """The same org with an admin key that reads the Analytics API: each person's Anthropic dollars
    are billed (not estimated), Claude Code's estimate for Mira's API day adds nothing (its tokens
    count once), and the org total is Anthropic's bill, exactly, in /tokens me and in the org view."""
    engine = configured
    vendors.anthropic_analytics = True
    cli_sync(days, vendors)
    want = expected(days)
    mira_total = (
        MIRA_TOTAL_WITHOUT_SEATS - MIRA_ANTHROPIC - MIRA_CLAUDE_CODE + MIRA_ANTHROPIC_BILLED
    ) + want["mira"]["github_copilot"]
    today = datetime.now(UTC).date()
    wide = Period(today - timedelta(days=40), today + timedelta(days=1), "wide")
    with engine.connect() as conn:
        mira = find_by_email(conn, workspace_id=WORKSPACE, email=MIRA)
        ben = find_by_email(conn, workspace_id=WORKSPACE, email=BEN)
        me = person_report(conn, workspace_id=WORKSPACE, person_ids=[mira.id], period=wide)
        spend = {v.vendor: v for v in me.vendors}
        assert spend["anthropic"].cost_micros == MIRA_ANTHROPIC_BILLED
        assert spend["anthropic"].estimated_micros == 0  # billed, not estimated
        assert spend["claude_code"].cost_micros == 0  # its estimate is in Anthropic's bill
        assert spend["anthropic"].tokens == 2_200_000  # the Usage report's tokens, on the billed rows
        assert me.total_micros == mira_total
        assert me.estimated_micros == want["mira"]["github_copilot"]  # only the seats are estimates now
        ben_report = person_report(conn, workspace_id=WORKSPACE, person_ids=[ben.id], period=wide)
        assert {v.vendor: v.cost_micros for v in ben_report.vendors}["anthropic"] == BEN_ANTHROPIC_BILLED

        org = org_report(conn, workspace_id=WORKSPACE, period=wide)
        by_vendor = {v.vendor: v for v in org.vendors}
        assert by_vendor["anthropic"].cost_micros == ORG_ANTHROPIC_BILLED
        assert by_vendor["anthropic"].covered_micros == 0  # nothing estimated beside the bill
        assert by_vendor["anthropic"].unattributed_micros == 105_000  # the service account only
        assert by_vendor["claude_code"].cost_micros == 0
        assert (
            org.total_micros
            == ORG_TOTAL_WITHOUT_SEATS
            - ORG_ANTHROPIC
            + ORG_ANTHROPIC_BILLED
            + (want["org"]["github_copilot"])
        )

    _, runtime = _slack_knowing_mira(httpserver, engine, "mira@example.com")
    with TestClient(build_web_app(runtime, build_app(runtime))) as client:
        reply = send(client, f"me {days['D1']}..{days['D2']}", user_id="UMIRA")
    assert reply["response_type"] == "ephemeral"
    text = all_text(reply)
    assert f"*{format_usd(mira_total)}*" in text
    assert f"*Anthropic API*: {format_usd(MIRA_ANTHROPIC_BILLED)} · 2.20M tokens" in text, text
    # Claude Code: tokens and value signals, no estimated dollars beside the bill.
    assert "*Claude Code*: $0.00 · 1.20M tokens" in text, text
