"""GitHub Copilot source against a loopback fake of the GitHub REST API and the signed-URL blob store."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from werkzeug import Response

from bot.db.models import ActivityDaily, Budget, Identity, Person, SyncState, TeamMembership, UsageDaily
from bot.domain.periods import Period
from bot.services import budgets, teams
from bot.services.recap import load_recap, team_scope
from bot.services.reports import org_report, team_report
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount
from bot.sources.base import SourceError
from bot.sources.github_copilot import daily_seat_micros, from_settings, parse_report
from tests.support.db import count_and_sums
from tests.support.files import fixture_path

REPORTS = "/orgs/acme/copilot/metrics/reports/users-1-day"
SEATS = "/orgs/acme/copilot/billing/seats"
BILLING = "/organizations/acme/settings/billing"
TOKEN = "ghp_test_token_value"
TODAY = date(2026, 3, 4)


def _fixture(name: str) -> bytes:
    return fixture_path("github_copilot", name).read_bytes()


def _connector(httpserver, **extra):
    settings = Settings(
        GITHUB_COPILOT_TOKEN=TOKEN,
        GITHUB_COPILOT_ORG="acme",
        GITHUB_API_BASE_URL=httpserver.url_for("/"),
        TOKENWISE_HTTP_MAX_BACKOFF=0.01,
        **extra,
    )
    (connector,) = from_settings(settings)
    return connector


def _report(httpserver, day: str, files: list[str]) -> None:
    links = []
    for index, name in enumerate(files):
        path = f"/blob/{day}/{index}"
        httpserver.expect_request(path, query_string={"sig": f"s{index}"}).respond_with_data(_fixture(name))
        links.append(httpserver.url_for(path) + f"?sig=s{index}")
    httpserver.expect_request(REPORTS, query_string={"day": day}).respond_with_json(
        {"download_links": links, "report_day": day}
    )


def _no_report(httpserver, day: str) -> None:
    httpserver.expect_request(REPORTS, query_string={"day": day}).respond_with_data("", status=204)


def _seats(httpserver) -> None:
    page2 = httpserver.url_for(SEATS) + "?per_page=100&page=2"
    httpserver.expect_request(SEATS, query_string={"per_page": "100"}).respond_with_data(
        _fixture("seats-page1.json"),
        content_type="application/json",
        headers={"Link": f'<{page2}>; rel="next", <{page2}>; rel="last"'},
    )
    httpserver.expect_request(SEATS, query_string={"per_page": "100", "page": "2"}).respond_with_data(
        _fixture("seats-page2.json"), content_type="application/json"
    )


def _billing_query(day: date, user: str | None = None) -> dict[str, str]:
    query = {"year": str(day.year), "month": str(day.month), "day": str(day.day)}
    return {**query, "user": user} if user else query


def _billing(httpserver, report: str, day: date, name: str, user: str | None = None, **headers) -> None:
    httpserver.expect_request(
        f"{BILLING}/{report}/usage", query_string=_billing_query(day, user)
    ).respond_with_data(_fixture(name), content_type="application/json", headers=headers)


def _no_billing(httpserver) -> None:
    """Every billing report question not set up before: no metered usage (the documented shape)."""

    def empty(request):
        body = json.loads(_fixture("billing-empty.json"))
        body["timePeriod"] = {name: int(request.args[name]) for name in ("year", "month", "day")}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request(re.compile(f"^{BILLING}/")).respond_with_handler(empty)


def _standard(httpserver) -> None:
    _report(httpserver, "2026-03-01", ["users-2026-03-01-part1.ndjson", "users-2026-03-01-part2.ndjson"])
    _report(httpserver, "2026-03-02", ["users-2026-03-02.json"])
    _no_report(httpserver, "2026-03-03")  # not generated yet: held back
    _seats(httpserver)
    _no_billing(httpserver)


def _link(engine, login: str, email: str) -> int:
    with engine.begin() as conn:
        person_id = conn.execute(
            Person.__table__.insert().values(workspace_id="W", email=email, display_name=login)
        ).inserted_primary_key[0]
        conn.execute(
            Identity.__table__.insert().values(
                workspace_id="W", actor=f"github:{login}", person_id=person_id, origin="admin"
            )
        )
    return person_id


def _usage(engine):
    with engine.connect() as conn:
        return conn.execute(
            select(
                UsageDaily.kind,
                func.count(),
                func.sum(UsageDaily.cost_micros),
                func.sum(UsageDaily.input_tokens),
                func.sum(UsageDaily.output_tokens),
                func.sum(UsageDaily.requests),
            )
            .group_by(UsageDaily.kind)
            .order_by(UsageDaily.kind)
        ).all()


def _activity(engine):
    sums = "suggestions_shown acceptances lines_suggested lines_accepted lines_removed requests"
    return count_and_sums(engine, ActivityDaily, *sums.split())


def test_end_to_end_reports_and_seats(engine, httpserver):
    _standard(httpserver)
    octocat = _link(engine, "octocat", "octo@example.com")
    connector = _connector(httpserver)
    kwargs = dict(workspace_id="W", since=date(2026, 3, 1), until=date(2026, 3, 4), today=TODAY)

    outcome = run_source(engine, connector, **kwargs)
    assert outcome.status == "ok", outcome.error

    # Seats: $19/month business and unknown, $39 enterprise, March has 31 days.
    # Day 1: octocat, monalisa (cancels that day), DevOne = 3 x 612,903. hubot's seat starts on
    # 2026-03-02 UTC (created 20:00 -06:00 on the 1st). Day 2: octocat, DevOne + hubot 1,258,065.
    seat_micros = 3 * 612_903 + 2 * 612_903 + 1_258_065
    assert _usage(engine) == [("seat", 6, seat_micros, 0, 0, 0), ("usage", 2, 0, 4_800, 5_200, 3)]
    assert _activity(engine) == (4, 23, 10, 104, 44, 4, 11)

    with engine.connect() as conn:
        rows = conn.execute(
            select(UsageDaily.day, UsageDaily.actor, UsageDaily.cost_basis, UsageDaily.raw_unit)
            .where(UsageDaily.kind == "seat")
            .order_by(UsageDaily.day, UsageDaily.actor)
        ).all()
        watermark = conn.execute(
            select(SyncState.watermark).where(SyncState.source == "github_copilot")
        ).scalar()
        octo_cost = conn.execute(
            select(func.sum(UsageDaily.cost_micros)).where(UsageDaily.person_id == octocat)
        ).scalar()
        octo_activity = conn.execute(
            select(func.sum(ActivityDaily.acceptances)).where(ActivityDaily.person_id == octocat)
        ).scalar()
        unlinked = conn.execute(select(func.count()).where(ActivityDaily.person_id.is_(None))).scalar()
    assert [(r.day.day, r.actor) for r in rows] == [
        (1, "github:devone"),
        (1, "github:monalisa"),
        (1, "github:octocat"),
        (2, "github:devone"),
        (2, "github:hubot"),
        (2, "github:octocat"),
    ]
    assert {(r.cost_basis, r.raw_unit) for r in rows} == {("estimated", "estimate:copilot-seat-list-price")}
    assert watermark == date(2026, 3, 3)  # the 204 day is asked again next run
    assert octo_cost == 2 * 612_903  # "Octocat" and "octocat" are one actor, linked to a person
    assert octo_activity == 6
    assert unlinked == 2  # monalisa and hubot: GitHub gives no email, an admin links them

    # Downloads never carry the GitHub token; API calls carry the documented headers.
    assert sum(r.path.startswith(BILLING) for r, _ in httpserver.log) == 4  # 2 reports x 2 days, no usage
    for request, _ in httpserver.log:
        if request.path.startswith("/blob/"):
            assert "Authorization" not in request.headers
        else:
            assert request.headers["Authorization"] == f"Bearer {TOKEN}"
            assert request.headers["Accept"] == "application/vnd.github+json"
            assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"

    again = run_source(engine, connector, **kwargs)
    assert again.status == "ok"
    assert _usage(engine) == [("seat", 6, seat_micros, 0, 0, 0), ("usage", 2, 0, 4_800, 5_200, 3)]
    assert _activity(engine) == (4, 23, 10, 104, 44, 4, 11)
    connector.close()


def test_204_between_reports_is_an_empty_day_and_trailing_204s_are_held_back(httpserver):
    _no_report(httpserver, "2026-03-01")
    _report(httpserver, "2026-03-02", ["users-2026-03-02.json"])
    _no_report(httpserver, "2026-03-03")
    _seats(httpserver)
    _no_billing(httpserver)
    connector = _connector(httpserver)
    batches = list(connector.fetch(date(2026, 3, 1), date(2026, 3, 4)))
    assert [(b.window_start.day, b.window_end.day) for b in batches] == [(1, 2), (2, 3)]
    assert batches[0].activity == []
    assert sorted(u.actor for u in batches[0].usage) == ["github:devone", "github:monalisa", "github:octocat"]
    assert sorted(a.actor for a in batches[1].activity) == ["github:hubot", "github:octocat"]
    assert all(h.email is None for b in batches for h in b.identities)


def test_only_204_yields_nothing_and_skips_seats(httpserver):
    _no_report(httpserver, "2026-03-03")
    connector = _connector(httpserver)
    assert list(connector.fetch(date(2026, 3, 3), date(2026, 3, 4))) == []
    assert [r.path for r, _ in httpserver.log] == [REPORTS]


def test_expired_download_link_fails_and_stores_nothing(engine, httpserver):
    httpserver.expect_request("/blob/old").respond_with_data(
        "<Error><Code>AuthenticationFailed</Code></Error>", status=403
    )
    httpserver.expect_request(REPORTS, query_string={"day": "2026-03-01"}).respond_with_json(
        {"download_links": [httpserver.url_for("/blob/old")], "report_day": "2026-03-01"}
    )
    connector = _connector(httpserver)
    outcome = run_source(
        engine, connector, workspace_id="W", since=date(2026, 3, 1), until=date(2026, 3, 2), today=TODAY
    )
    assert outcome.status == "failed"
    assert "download link expired; will retry next run" in outcome.error
    assert "/blob/old" not in outcome.error and TOKEN not in outcome.error
    assert _usage(engine) == [] and _activity(engine)[0] == 0


def test_invalid_report_file_fails_and_stores_nothing(engine, httpserver):
    _report(httpserver, "2026-03-01", ["users-invalid.ndjson"])
    _seats(httpserver)
    connector = _connector(httpserver)
    outcome = run_source(
        engine, connector, workspace_id="W", since=date(2026, 3, 1), until=date(2026, 3, 2), today=TODAY
    )
    assert outcome.status == "failed"
    assert "not valid NDJSON or JSON" in outcome.error
    assert "users-1-day" in outcome.error
    assert _activity(engine)[0] == 0


def test_invalid_json_from_the_api_fails(engine, httpserver):
    httpserver.expect_request(REPORTS).respond_with_data("{download_links:", content_type="application/json")
    connector = _connector(httpserver)
    outcome = run_source(
        engine, connector, workspace_id="W", since=date(2026, 3, 1), until=date(2026, 3, 2), today=TODAY
    )
    assert outcome.status == "failed"
    assert "copilot/metrics/reports/users-1-day: response is not valid JSON" in outcome.error
    assert _usage(engine) == []


def test_429_with_retry_after_then_success(httpserver):
    httpserver.expect_oneshot_request(REPORTS).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "0"}
    )
    _report(httpserver, "2026-03-02", ["users-2026-03-02.json"])
    _seats(httpserver)
    _no_billing(httpserver)
    connector = _connector(httpserver)
    (batch,) = connector.fetch(date(2026, 3, 2), date(2026, 3, 3))
    assert sorted((a.actor, a.suggestions_shown) for a in batch.activity) == [
        ("github:hubot", 1),
        ("github:octocat", 5),
    ]
    assert [r.path for r, _ in httpserver.log].count(REPORTS) == 2


def test_missing_permissions_error_is_clear(httpserver):
    httpserver.expect_request(REPORTS).respond_with_json(
        {"message": "Resource not accessible by integration"}, status=403
    )
    connector = _connector(httpserver)
    with pytest.raises(SourceError, match="Resource not accessible by integration; the token lacks access"):
        list(connector.fetch(date(2026, 3, 1), date(2026, 3, 2)))


def test_seat_link_to_another_host_is_refused(httpserver):
    httpserver.expect_request(SEATS).respond_with_json(
        {"total_seats": 1, "seats": []},
        headers={"Link": '<https://evil.example.com/seats?page=2>; rel="next"'},
    )
    connector = _connector(httpserver)
    with pytest.raises(SourceError, match="another host"):
        connector.seats()


def test_idle_seats(httpserver):
    _seats(httpserver)
    connector = _connector(httpserver)
    now = datetime(2026, 3, 4, 12, tzinfo=UTC)
    assert connector.idle_seats(30, now=now) == ["hubot", "monalisa"]
    assert connector.idle_seats(10, now=now) == ["devone", "hubot", "monalisa"]


def test_seat_prices_are_configurable(httpserver):
    _seats(httpserver)
    connector = _connector(httpserver, COPILOT_SEAT_PRICES={"business": "10", "enterprise": "39"})
    seats = [seat for seat in connector.seats() if seat.get("plan_type")]  # DevOne has no plan
    costs = connector.seat_costs(date(2026, 3, 2), seats)
    by_actor = {c.actor: c for c in costs}
    assert by_actor["github:octocat"].cost.micros == daily_seat_micros(Decimal(10), date(2026, 3, 2))
    with pytest.raises(SourceError, match="no price for Copilot plan 'unknown'"):
        connector.seat_costs(date(2026, 3, 2), [{"assignee": {"login": "x"}, "created_at": "2026-01-01"}])


@pytest.mark.parametrize("month", [date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1), date(2028, 2, 1)])
def test_daily_seat_cost_adds_up_to_the_monthly_price(month):
    days = [month.replace(day=d) for d in range(1, 32) if _valid(month, d)]
    assert sum(daily_seat_micros(Decimal("19"), d) for d in days) == 19_000_000
    assert sum(daily_seat_micros(Decimal("39.99"), d) for d in days) == 39_990_000


def _valid(month: date, day: int) -> bool:
    try:
        month.replace(day=day)
    except ValueError:
        return False
    return True


def test_parse_report_formats():
    ndjson = b'{"user_login":"a"}\n\n{"user_login":"b"}\n'
    array = json.dumps([{"user_login": "a"}, {"user_login": "b"}], indent=2).encode()
    pretty_object = b'{\n  "user_login": "a"\n}\n'
    assert [r["user_login"] for r in parse_report(ndjson)] == ["a", "b"]
    assert [r["user_login"] for r in parse_report(array)] == ["a", "b"]
    assert [r["user_login"] for r in parse_report(pretty_object)] == ["a"]
    assert parse_report(b"") == []
    with pytest.raises(ValueError):
        parse_report(b"[1, 2]")


def test_from_settings():
    assert from_settings(Settings()) == []
    settings = Settings(
        GITHUB_COPILOT_TOKEN="t",
        GITHUB_COPILOT_ORG="acme",
        accounts=[
            SourceAccount(name="copilot-labs", vendor="github_copilot", key="k2", org="acme-labs"),
            SourceAccount(name="openai-eu", vendor="openai", key="k3"),
        ],
    )
    connectors = from_settings(settings)
    assert [(c.name, c.org) for c in connectors] == [
        ("github_copilot", "acme"),
        ("copilot-labs", "acme-labs"),
    ]
    assert connectors[0].lag.days == 1 and connectors[0].trailing_days == 3
    for connector in connectors:
        connector.close()


def test_missing_org_is_a_clear_error():
    (connector,) = from_settings(Settings(GITHUB_COPILOT_TOKEN="t"))
    with pytest.raises(SourceError, match="GITHUB_COPILOT_ORG"):
        list(connector.fetch(date(2026, 3, 1), date(2026, 3, 2)))


# -- metered usage: the billing usage reports (AI credits, legacy premium requests) ----------------
JUNE_1, JUNE_2 = date(2026, 6, 1), date(2026, 6, 2)


def _june(httpserver) -> None:
    """Two days of reports and of billing, written from the documented examples:

    June 1, AI credits: the org's Sonnet 4.6 $3 is Octocat's $2.25 + DevOne's $0.50 + $0.25 that no
    report user accounts for; GPT-5 is all within the included allowance (net $0, not stored);
    Haiku $0.123456789 is Octocat's; Spark's line has a null netAmount (gross $0.50, null discount)
    and no model. hubot's record says ``ai_credits_used: 0``, so he is not asked.
    June 2: the org's AI credits come in two pages (Link header); the legacy premium-request
    report carries GPT-4.1 2 x $0.04. Octocat accounts for all of it.
    """
    _report(httpserver, "2026-06-01", ["users-2026-06-01.ndjson"])
    _report(httpserver, "2026-06-02", ["users-2026-06-02.ndjson"])
    _no_report(httpserver, "2026-06-03")
    _seats(httpserver)
    _billing(httpserver, "ai_credit", JUNE_1, "billing-ai_credit-2026-06-01-org.json")
    _billing(httpserver, "ai_credit", JUNE_1, "billing-ai_credit-2026-06-01-octocat.json", user="Octocat")
    _billing(httpserver, "ai_credit", JUNE_1, "billing-ai_credit-2026-06-01-devone.json", user="DevOne")
    page2 = f"{BILLING}/ai_credit/usage"
    next_link = httpserver.url_for(page2) + "?year=2026&month=6&day=2&page=2"
    _billing(
        httpserver,
        "ai_credit",
        JUNE_2,
        "billing-ai_credit-2026-06-02-org-page1.json",
        Link=f'<{next_link}>; rel="next"',
    )
    httpserver.expect_request(page2, query_string={**_billing_query(JUNE_2), "page": "2"}).respond_with_data(
        _fixture("billing-ai_credit-2026-06-02-org-page2.json"), content_type="application/json"
    )
    _billing(httpserver, "ai_credit", JUNE_2, "billing-ai_credit-2026-06-02-octocat.json", user="octocat")
    _billing(httpserver, "premium_request", JUNE_2, "billing-premium_request-2026-06-02-org.json")
    _billing(
        httpserver,
        "premium_request",
        JUNE_2,
        "billing-premium_request-2026-06-02-octocat.json",
        user="octocat",
    )
    _no_billing(httpserver)  # June 1's premium requests: none


BILLED_JUNE = [
    (JUNE_1, "github:devone", "Claude Sonnet 4.6", 500_000, "0.5"),
    (JUNE_1, "github:octocat", "Auto: Claude Haiku 4.5", 123_457, "0.123456789"),
    (JUNE_1, "github:octocat", "Claude Sonnet 4.6", 2_250_000, "2.25"),
    (JUNE_1, "github_copilot:unattributed", "Claude Sonnet 4.6", 250_000, "0.25"),
    (JUNE_1, "github_copilot:unattributed", "Spark AI Credits", 500_000, "0.5"),
    (JUNE_2, "github:octocat", "Claude Opus 4.8", 600_000, "0.6"),
    (JUNE_2, "github:octocat", "GPT-4.1", 80_000, "0.08"),
    (JUNE_2, "github:octocat", "GPT-5", 1_000_000, "1.0"),
]


def _billed(engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                UsageDaily.day,
                UsageDaily.actor,
                UsageDaily.model,
                UsageDaily.cost_micros,
                UsageDaily.raw_amount,
            )
            .where(UsageDaily.kind == "usage", UsageDaily.cost_basis == "billed", UsageDaily.cost_micros != 0)
            .order_by(UsageDaily.day, UsageDaily.actor, UsageDaily.model)
        ).all()
        units = set(conn.execute(select(UsageDaily.raw_unit).where(UsageDaily.kind == "usage")).scalars())
    assert units <= {"usd"}
    return [tuple(row) for row in rows]


def test_metered_usage_is_billed_per_user_and_model_and_the_day_adds_up_to_the_org(engine, httpserver):
    _june(httpserver)
    octocat = _link(engine, "octocat", "octo@example.com")
    connector = _connector(httpserver)
    kwargs = dict(workspace_id="W", since=JUNE_1, until=date(2026, 6, 4), today=date(2026, 6, 4))

    outcome = run_source(engine, connector, **kwargs)
    assert outcome.status == "ok", outcome.error
    assert _billed(engine) == BILLED_JUNE
    # Each day's stored dollars are exactly GitHub's org net total (3.623456789 -> 3_623_457; 1.68).
    by_day: dict[date, int] = {}
    for day, _, _, micros, _ in BILLED_JUNE:
        by_day[day] = by_day.get(day, 0) + micros
    assert by_day == {JUNE_1: 3_623_457, JUNE_2: 1_680_000}
    with engine.connect() as conn:
        octo_billed = conn.execute(
            select(func.sum(UsageDaily.cost_micros)).where(
                UsageDaily.person_id == octocat, UsageDaily.kind == "usage"
            )
        ).scalar()
    assert octo_billed == 2_250_000 + 123_457 + 600_000 + 80_000 + 1_000_000

    # Who was asked: the report's users (as the report spells them), never hubot (0 credits), and
    # per user only the reports that have net usage that day.
    asked = sorted(
        (r.path.rsplit("/", 2)[-2], r.args["day"], r.args.get("user", ""))
        for r, _ in httpserver.log
        if r.path.startswith(BILLING) and "page" not in r.args
    )
    assert asked == [
        ("ai_credit", "1", ""),
        ("ai_credit", "1", "DevOne"),
        ("ai_credit", "1", "Octocat"),
        ("ai_credit", "2", ""),
        ("ai_credit", "2", "octocat"),
        ("premium_request", "1", ""),
        ("premium_request", "2", ""),
        ("premium_request", "2", "octocat"),
    ]

    again = run_source(engine, connector, **kwargs)  # a re-sync never double counts
    assert again.status == "ok", again.error
    assert _billed(engine) == BILLED_JUNE
    connector.close()


def test_metered_usage_counts_in_the_team_budget_and_recap_views(engine, httpserver):
    """The views read the rollups with no Copilot special case: check each one sees the billed
    credits (octocat $4.053457, DevOne $0.50, $0.75 nobody's) beside the seats."""
    _june(httpserver)
    octocat, devone = _link(engine, "octocat", "octo@example.com"), _link(engine, "devone", "dev@example.com")
    connector = _connector(httpserver)
    outcome = run_source(
        engine, connector, workspace_id="W", since=JUNE_1, until=date(2026, 6, 3), today=date(2026, 6, 4)
    )
    assert outcome.status == "ok", outcome.error
    credits = {octocat: 4_053_457, devone: 500_000}
    june = Period(JUNE_1, date(2026, 6, 3), "June 1-2")
    with engine.begin() as conn:
        seats = dict(
            conn.execute(
                select(UsageDaily.person_id, func.sum(UsageDaily.cost_micros))
                .where(UsageDaily.kind == "seat")
                .group_by(UsageDaily.person_id)
            ).all()
        )
        team = teams.ensure_team(
            conn, workspace_id="W", kind=teams.CHANNEL, slack_id="CPLAT", name="platform"
        )
        for person in (octocat, devone):
            conn.execute(
                TeamMembership.__table__.insert().values(
                    workspace_id="W", team_id=team.id, person_id=person, joined_on=date(2026, 1, 1)
                )
            )
        team_copilot = {
            v.vendor: v for v in team_report(conn, workspace_id="W", team_id=team.id, period=june).vendors
        }["github_copilot"]
        org_copilot = {v.vendor: v for v in org_report(conn, workspace_id="W", period=june).vendors}[
            "github_copilot"
        ]
        budget = Budget(
            id=0,
            target_kind=budgets.PERSON,
            target_id=str(octocat),
            vendor="github_copilot",
            period="month",
            amount_micros=10_000_000,
            floor_micros=None,
            thresholds=(80,),
            include_seats=False,
        )
        spent = budgets.daily_spend(
            conn, workspace_id="W", budget=budget, team=None, start=JUNE_1, end=date(2026, 7, 1)
        )
        recap_lines = {
            line.label: line
            for line in load_recap(
                conn,
                workspace_id="W",
                scope=team_scope(team),
                end=date(2026, 6, 3),
                min_group_size=1,
                today=date(2026, 6, 4),
            ).vendors
        }
    assert team_copilot.cost_micros == sum(credits.values()) + seats[octocat] + seats[devone]
    assert team_copilot.seat_micros == seats[octocat] + seats[devone]
    # The org: the team plus what is nobody's, the leftover credits and hubot's seat.
    assert org_copilot.unattributed_micros == 750_000 + seats[None]
    assert org_copilot.cost_micros == team_copilot.cost_micros + org_copilot.unattributed_micros
    assert spent == {JUNE_1: 2_373_457, JUNE_2: 1_680_000}  # credits only: the budget leaves seats out
    copilot_line = recap_lines["github_copilot"]
    assert copilot_line.this_micros == team_copilot.cost_micros
    assert copilot_line.seat_micros == team_copilot.seat_micros
    connector.close()


def test_no_billing_access_keeps_seats_syncing_and_the_billed_rows_and_fails_clearly(engine, httpserver):
    _june(httpserver)
    connector = _connector(httpserver)
    kwargs = dict(workspace_id="W", since=JUNE_1, until=date(2026, 6, 3), today=date(2026, 6, 4))
    assert run_source(engine, connector, **kwargs).status == "ok"
    seats_before = _usage(engine)[0]

    httpserver.clear()  # now the token lost its billing access (403)
    _report(httpserver, "2026-06-01", ["users-2026-06-01.ndjson"])
    _report(httpserver, "2026-06-02", ["users-2026-06-02.ndjson"])
    _seats(httpserver)
    httpserver.expect_request(re.compile(f"^{BILLING}/")).respond_with_json(
        {"message": "Resource not accessible by personal access token", "status": "403"}, status=403
    )
    outcome = run_source(engine, connector, **kwargs)
    assert outcome.status == "failed"
    assert "settings/billing/ai_credit/usage: HTTP 403: Resource not accessible" in outcome.error
    assert "'Administration' organization permission (read)" in outcome.error
    assert "seats, activity and CLI tokens were stored" in outcome.error and TOKEN not in outcome.error
    assert _billed(engine) == BILLED_JUNE  # nothing billed lost to a denied report
    assert _usage(engine)[0] == seats_before
    # Asked once, then not again that run.
    assert sum(r.path.startswith(BILLING) for r, _ in httpserver.log) == 1
    connector.close()


def test_a_missing_legacy_report_is_no_premium_requests(httpserver):
    """The AI-credit report answered; the premium-request report answers 404: no legacy usage."""
    _report(httpserver, "2026-06-02", ["users-2026-06-02.ndjson"])
    _seats(httpserver)
    _billing(httpserver, "ai_credit", JUNE_2, "billing-ai_credit-2026-06-02-org-page2.json")
    _billing(httpserver, "ai_credit", JUNE_2, "billing-ai_credit-2026-06-02-octocat.json", user="octocat")
    httpserver.expect_request(f"{BILLING}/premium_request/usage").respond_with_json(
        {"message": "Not Found"}, status=404
    )
    connector = _connector(httpserver)
    (batch,) = connector.fetch(JUNE_2, JUNE_2 + timedelta(days=1))
    billed = sorted(
        (u.actor, u.model, u.cost.micros) for u in batch.usage if u.kind == "usage" and u.cost.micros
    )
    # The org's day is Opus $0.60 only: octocat's GPT-5 line is beyond it and not stored.
    assert billed == [("github:octocat", "Claude Opus 4.8", 600_000)]
    assert batch.complete_kinds == frozenset({"usage"})
    connector.close()


def test_billing_switched_off_asks_no_billing_report(httpserver):
    _report(httpserver, "2026-06-01", ["users-2026-06-01.ndjson"])
    _seats(httpserver)
    connector = _connector(httpserver, GITHUB_COPILOT_BILLING=False)
    (batch,) = connector.fetch(JUNE_1, JUNE_2)
    assert not any(r.path.startswith(BILLING) for r, _ in httpserver.log)
    assert {u.kind for u in batch.usage} == {"seat"} and batch.complete_kinds == frozenset({"usage"})
    connector.close()


def test_billing_answer_for_another_day_or_without_amounts_fails_and_stores_nothing(engine, httpserver):
    _report(httpserver, "2026-06-01", ["users-2026-06-01.ndjson"])
    _seats(httpserver)
    month = json.loads(_fixture("billing-ai_credit-2026-06-01-org.json"))
    month["timePeriod"] = {"year": 2026, "month": 5}
    httpserver.expect_oneshot_request(f"{BILLING}/ai_credit/usage").respond_with_json(month)
    connector = _connector(httpserver)
    kwargs = dict(workspace_id="W", since=JUNE_1, until=date(2026, 6, 2), today=date(2026, 6, 4))
    outcome = run_source(engine, connector, **kwargs)
    assert outcome.status == "failed" and "asked for 2026-06-01, got timePeriod" in outcome.error

    no_amount = json.loads(_fixture("billing-ai_credit-2026-06-01-org.json"))
    no_amount["usageItems"][0].pop("netAmount")
    no_amount["usageItems"][0].pop("grossAmount")
    httpserver.expect_oneshot_request(f"{BILLING}/ai_credit/usage").respond_with_json(no_amount)
    outcome = run_source(engine, connector, **kwargs)
    assert outcome.status == "failed"
    assert "bad usage item: usage item without netAmount or grossAmount" in outcome.error
    assert _usage(engine) == [] and _activity(engine)[0] == 0
    connector.close()


def test_users_beyond_the_org_total_are_stored_unattributed(httpserver):
    """An allowance pooled at org level could make the users' net add up to more than the org's:
    the bill stays exact (the org's figure, unattributed)."""
    octocat = json.loads(_fixture("billing-ai_credit-2026-06-02-octocat.json"))
    octocat["usageItems"][1]["netAmount"] = 0.75  # Opus: more than the org's $0.60
    _report(httpserver, "2026-06-02", ["users-2026-06-02.ndjson"])
    _seats(httpserver)
    _billing(httpserver, "ai_credit", JUNE_2, "billing-ai_credit-2026-06-02-org-page2.json")
    httpserver.expect_request(
        f"{BILLING}/ai_credit/usage", query_string=_billing_query(JUNE_2, "octocat")
    ).respond_with_json(octocat)
    _no_billing(httpserver)
    connector = _connector(httpserver)
    (batch,) = connector.fetch(JUNE_2, JUNE_2 + timedelta(days=1))
    billed = sorted(
        (u.actor, u.model, u.cost.micros) for u in batch.usage if u.kind == "usage" and u.cost.micros
    )
    assert billed == [("github_copilot:unattributed", "Claude Opus 4.8", 600_000)]
    assert batch.complete_kinds == frozenset({"usage"})
    connector.close()


# -- seats as observed: a removed seat keeps the days it was seen ----------------------------------
def _seat(login: str, plan: str = "business", created: str = "2026-02-01T00:00:00Z") -> dict:
    return {
        "assignee": {"login": login, "id": 1},
        "created_at": created,
        "plan_type": plan,
        "pending_cancellation_date": None,
        "last_activity_at": None,
    }


def _seat_list(httpserver, seats: list[dict]) -> None:
    httpserver.expect_request(SEATS).respond_with_json({"total_seats": len(seats), "seats": seats})


def _march(httpserver, seats: list[dict]) -> None:
    _report(httpserver, "2026-03-01", ["users-2026-03-01-part1.ndjson", "users-2026-03-01-part2.ndjson"])
    _report(httpserver, "2026-03-02", ["users-2026-03-02.json"])
    _no_report(httpserver, "2026-03-03")
    _seat_list(httpserver, seats)
    _no_billing(httpserver)


def _seat_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(UsageDaily.day, UsageDaily.actor, UsageDaily.model, UsageDaily.cost_micros)
            .where(UsageDaily.kind == "seat")
            .order_by(UsageDaily.day, UsageDaily.actor, UsageDaily.model)
        ).all()
    return [(day.day, actor, model, micros) for day, actor, model, micros in rows]


def test_a_removed_seat_keeps_the_days_it_was_observed_and_resyncs_never_double_count(engine, httpserver):
    day = 612_903  # $19 in March, 31 days (612,903 or 612,904 a day; both days here are 612,903)
    # Synced on March 2: octocat and monalisa hold seats; March 1 is stored for both.
    _march(httpserver, [_seat("octocat"), _seat("monalisa")])
    connector = _connector(httpserver)
    first = run_source(
        engine,
        connector,
        workspace_id="W",
        since=date(2026, 3, 1),
        until=date(2026, 3, 2),
        today=date(2026, 3, 2),
    )
    assert first.status == "ok", first.error
    assert _seat_rows(engine) == [
        (1, "github:monalisa", "copilot-business", day),
        (1, "github:octocat", "copilot-business", day),
    ]

    # Synced on March 3 with a backfill window from March 1: monalisa's seat is gone from the list,
    # and the org moved octocat to Enterprise ($39 a month).
    httpserver.clear()
    _march(httpserver, [_seat("octocat", plan="enterprise")])
    for _ in range(2):  # and again: a re-sync never double counts
        outcome = run_source(
            engine, connector, workspace_id="W", since=date(2026, 3, 1), today=date(2026, 3, 3)
        )
        assert outcome.status == "ok", outcome.error
        assert _seat_rows(engine) == [
            (1, "github:monalisa", "copilot-business", day),  # observed on March 1: kept
            (1, "github:octocat", "copilot-enterprise", 1_258_064),  # replaced, not doubled
            (2, "github:octocat", "copilot-enterprise", 1_258_065),
        ]
    # Usage rows of the window are still replaced as a whole: one CLI row per user and day.
    assert _usage(engine)[1] == ("usage", 2, 0, 4_800, 5_200, 3)
    connector.close()
