"""GitHub Copilot source against a loopback fake of the GitHub REST API and the signed-URL blob store."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.db.models import ActivityDaily, Identity, Person, SyncState, UsageDaily
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount
from bot.sources.base import SourceError
from bot.sources.github_copilot import daily_seat_micros, from_settings, parse_report
from tests.conftest import fixture_path

REPORTS = "/orgs/acme/copilot/metrics/reports/users-1-day"
SEATS = "/orgs/acme/copilot/billing/seats"
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


def _standard(httpserver) -> None:
    _report(httpserver, "2026-03-01", ["users-2026-03-01-part1.ndjson", "users-2026-03-01-part2.ndjson"])
    _report(httpserver, "2026-03-02", ["users-2026-03-02.json"])
    _no_report(httpserver, "2026-03-03")  # not generated yet: held back
    _seats(httpserver)


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
    with engine.connect() as conn:
        return conn.execute(
            select(
                func.count(),
                func.sum(ActivityDaily.suggestions_shown),
                func.sum(ActivityDaily.acceptances),
                func.sum(ActivityDaily.lines_suggested),
                func.sum(ActivityDaily.lines_accepted),
                func.sum(ActivityDaily.lines_removed),
                func.sum(ActivityDaily.requests),
            )
        ).one()


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
