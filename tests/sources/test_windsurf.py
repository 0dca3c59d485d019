import json
from datetime import date

import pytest
from sqlalchemy import func, select
from werkzeug import Request, Response

from bot.db.models import ActivityDaily, Identity, Person, SyncRun, UsageDaily
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount
from bot.sources.base import SourceError
from bot.sources.windsurf import WindsurfConnector, analytics_queries, from_settings
from tests.support.db import sum_by_email
from tests.support.files import fixture_path

KEY = "ws-service-key-0123456789abcdef"
SINCE, UNTIL, TODAY = date(2026, 3, 1), date(2026, 3, 4), date(2026, 3, 4)
ALICE, BOB, ROBOT = (
    "windsurf_key:aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",
    "windsurf_key:bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb",
    "windsurf_key:eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee",
)


def _fixture(name: str) -> str:
    return fixture_path("windsurf", name).read_text()


def _connector(httpserver, **kwargs) -> WindsurfConnector:
    settings = Settings(
        WINDSURF_SERVICE_KEY=KEY,
        WINDSURF_BASE_URL=httpserver.url_for("/api/v1"),
        http_max_backoff_seconds=0.01,
        http_max_retries=1,
    )
    (connector,) = from_settings(settings)
    for name, value in kwargs.items():
        setattr(connector, name, value)
    return connector


def _json(body: str, status: int = 200) -> Response:
    return Response(body, status=status, content_type="application/json")


def _cascade(request: Request) -> Response:
    body = json.loads(request.data)
    assert "group_name" not in body  # emails and group_name are exclusive
    (email,) = body["emails"]
    return _json(_fixture("cascade_alice.json" if email == "alice@example.com" else "cascade_empty.json"))


def _serve(httpserver, *, analytics: str | None = None) -> None:
    httpserver.expect_request("/api/v1/UserPageAnalytics", method="POST").respond_with_data(
        _fixture("user_page_analytics.json"), content_type="application/json"
    )
    httpserver.expect_request("/api/v1/Analytics", method="POST").respond_with_data(
        analytics if analytics is not None else _fixture("analytics.json"), content_type="application/json"
    )
    httpserver.expect_request("/api/v1/CascadeAnalytics", method="POST").respond_with_handler(_cascade)


def _run(engine, connector):
    return run_source(engine, connector, workspace_id="W", since=SINCE, until=UNTIL, today=TODAY)


def _activity(engine) -> dict[tuple[date, str], tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                ActivityDaily.day,
                ActivityDaily.actor,
                ActivityDaily.acceptances,
                ActivityDaily.lines_accepted,
                ActivityDaily.lines_added,
                ActivityDaily.requests,
                ActivityDaily.lines_suggested,
            )
        ).all()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _lines_by_person(engine) -> dict[str, int]:
    return sum_by_email(engine, ActivityDaily.lines_accepted)


def test_end_to_end_exact_activity_and_rerun_is_stable(engine, httpserver):
    _serve(httpserver)
    outcome = _run(engine, _connector(httpserver))
    assert outcome.status == "ok", outcome.error
    expected = {
        # (acceptances, lines_accepted, lines_added, requests, lines_suggested)
        (date(2026, 3, 1), ALICE): (125, 863 + 157, 74, 5, 0),
        (date(2026, 3, 2), ALICE): (
            0,
            40,
            0,
            0,
            0,
        ),  # acceptances omitted = 0; cascade row lacks linesAccepted
        (date(2026, 3, 1), BOB): (7, 12, 0, 0, 0),
        (date(2026, 3, 2), BOB): (0, 0, 0, 2, 0),  # chat_loc_used omitted
        (date(2026, 3, 3), ROBOT): (2, 0, 0, 0, 0),
    }
    assert _activity(engine) == expected
    assert _lines_by_person(engine) == {"alice@example.com": 1060, "bob@example.com": 12}
    with engine.connect() as conn:
        usage = conn.execute(select(func.count()).select_from(UsageDaily)).scalar()
        people = dict(conn.execute(select(Person.email, Person.display_name)).all())
        robot = conn.execute(select(ActivityDaily.person_id).where(ActivityDaily.actor == ROBOT)).scalar_one()
        links = set(conn.execute(select(Identity.actor)).scalars())
    assert usage == 0  # Windsurf reports credits, never dollars
    assert people == {
        "alice@example.com": "Alice Park",
        "bob@example.com": "Bob Stone",
        "carol@example.com": "Carol Diaz",
        "dan@example.com": "Dan Wu",
    }
    assert robot is None  # a key with no email stays unattributed until an admin links it
    assert {ALICE, BOB, "email:alice@example.com"} <= links

    cascade = [json.loads(r.data)["emails"] for r, _ in httpserver.log if r.path.endswith("CascadeAnalytics")]
    # Bob never used Cascade and Carol's last use is before the window: no call for them.
    assert cascade == [["alice@example.com"], ["dan@example.com"]]

    first = _activity(engine)
    assert _run(engine, _connector(httpserver)).status == "ok"
    assert _activity(engine) == first
    assert _lines_by_person(engine) == {"alice@example.com": 1060, "bob@example.com": 12}


def test_every_call_is_a_post_with_the_key_in_the_body(httpserver):
    _serve(httpserver)
    list(_connector(httpserver).fetch(SINCE, UNTIL))
    assert httpserver.log
    for request, _ in httpserver.log:
        assert request.method == "POST"
        assert json.loads(request.data)["service_key"] == KEY
        assert KEY not in request.full_path and all(KEY not in v for v in request.headers.values())
    (analytics,) = [json.loads(r.data) for r, _ in httpserver.log if r.path.endswith("/Analytics")]
    assert analytics["query_requests"] == analytics_queries(SINCE, UNTIL)
    user_query, chat_query = analytics["query_requests"]
    assert user_query["data_source"] == "QUERY_DATA_SOURCE_USER_DATA"
    assert chat_query["data_source"] == "QUERY_DATA_SOURCE_CHAT_DATA"
    for query in (user_query, chat_query):
        assert {s["aggregation_function"] for s in query["selections"]} == {"QUERY_AGGREGATION_SUM"}
        assert [a["field"] for a in query["aggregations"]] == ["api_key", "date"]
        assert query["filters"] == [
            {"name": "date", "filter": "QUERY_FILTER_GE", "value": "2026-03-01"},
            {"name": "date", "filter": "QUERY_FILTER_LESS_THAN", "value": "2026-03-04"},
        ]
    cascade = [json.loads(r.data) for r, _ in httpserver.log if r.path.endswith("CascadeAnalytics")]
    assert {(c["start_timestamp"], c["end_timestamp"]) for c in cascade} == {
        ("2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z")
    }
    assert all(c["query_requests"] == [{"cascade_lines": {}}] for c in cascade)


@pytest.mark.parametrize("status", [401, 200])
def test_service_key_never_appears_in_an_error(engine, httpserver, status):
    echoed = _fixture("error_bad_key.json").replace("__KEY__", KEY)
    httpserver.expect_request("/api/v1/UserPageAnalytics").respond_with_data(
        echoed, status=status, content_type="application/json"
    )
    connector = _connector(httpserver)
    with pytest.raises(SourceError) as caught:
        list(connector.fetch(SINCE, UNTIL))
    assert "invalid service key" in str(caught.value)
    assert "UserPageAnalytics" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in repr(caught.value.args)
    outcome = _run(engine, _connector(httpserver))
    assert outcome.status == "failed"
    assert KEY not in outcome.error
    with engine.connect() as conn:
        stored_errors = conn.execute(select(SyncRun.error)).scalars().all()
    assert stored_errors and all(KEY not in e for e in stored_errors)


def test_key_is_scrubbed_from_other_failures_too(httpserver):
    _serve(httpserver, analytics=json.dumps({"error": f"bad query for {KEY}"}))
    with pytest.raises(SourceError) as caught:
        list(_connector(httpserver).fetch(SINCE, UNTIL))
    assert str(caught.value) == "windsurf: Analytics: bad query for [service key]"
    httpserver.clear()
    httpserver.expect_request("/api/v1/UserPageAnalytics").respond_with_data(
        f"<html>{KEY}</html>", status=500
    )
    with pytest.raises(SourceError) as caught:
        list(_connector(httpserver).fetch(SINCE, UNTIL))
    assert str(caught.value) == "windsurf: UserPageAnalytics: HTTP 500 after 2 attempts"


def test_invalid_json_fails_the_run_and_stores_nothing(engine, httpserver):
    _serve(httpserver, analytics='{"queryResults": [')
    outcome = _run(engine, _connector(httpserver))
    assert outcome.status == "failed"
    assert outcome.error == "windsurf: Analytics: response is not valid JSON"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ActivityDaily)).scalar() == 0


SECRET_LIKE = "sk-live-0123456789abcd"


def test_unreadable_number_fails_with_the_endpoint(httpserver):
    bad = {
        "queryResults": [
            {"responseItems": [{"item": {"api_key": "k", "date": "2026-03-01", "acceptances": SECRET_LIKE}}]},
            {},
        ]
    }
    _serve(httpserver, analytics=json.dumps(bad))
    with pytest.raises(SourceError, match="Analytics: unreadable number: a text of 22 characters") as raised:
        list(_connector(httpserver).fetch(SINCE, UNTIL))
    assert SECRET_LIKE not in str(raised.value)  # a value from outside may be a secret: never echoed


def test_429_with_retry_after_then_success(httpserver):
    httpserver.expect_oneshot_request("/api/v1/Analytics").respond_with_data(
        '{"error": "rate limit exceeded"}', status=429, headers={"Retry-After": "0"}
    )
    _serve(httpserver)
    (batch,) = list(_connector(httpserver).fetch(SINCE, UNTIL))
    assert sum(r.lines_accepted for r in batch.activity) == 1072
    assert [r.path for r, _ in httpserver.log].count("/api/v1/Analytics") == 2


def test_cascade_calls_are_bounded(httpserver):
    _serve(httpserver)
    with pytest.raises(SourceError, match="2 users used Cascade since 2026-03-01, more than the 1"):
        list(_connector(httpserver, max_cascade_calls=1).fetch(SINCE, UNTIL))
    assert not [r for r, _ in httpserver.log if r.path.endswith("CascadeAnalytics")]


def test_from_settings():
    assert from_settings(Settings()) == []
    settings = Settings(
        WINDSURF_SERVICE_KEY=KEY,
        accounts=[
            SourceAccount(name="windsurf-eu", vendor="windsurf", key="other", base_url="http://eu/api/v1")
        ],
    )
    connectors = from_settings(settings)
    assert [c.name for c in connectors] == ["windsurf", "windsurf-eu"]
    assert str(connectors[0].http.client.base_url) == "https://server.codeium.com/api/v1/"
    assert (connectors[0].lag.total_seconds(), connectors[0].trailing_days) == (3 * 3600, 3)
    assert "service_key" not in connectors[0].http.client.headers
    for connector in connectors:
        connector.close()


def _documented_analytics(request: Request) -> Response:
    """A fake ``/Analytics`` that answers like Windsurf only to a request built from the documented
    names (data sources, fields per source, filter operators, aggregation functions) and 400s
    otherwise, naming the offending value."""
    documented = json.loads(_fixture("custom_analytics_documented.json"))
    body = json.loads(request.data)
    problems = []
    for query in body.get("query_requests", []):
        fields = documented["data_sources"].get(query.get("data_source"))
        if fields is None:
            problems.append(f"data_source {query.get('data_source')!r}")
            continue
        for selection in query.get("selections", []):
            if selection.get("field") not in fields:
                problems.append(f"selection field {selection.get('field')!r}")
            function = selection.get("aggregation_function", "QUERY_AGGREGATION_UNSPECIFIED")
            if function not in documented["aggregation_functions"]:
                problems.append(f"aggregation_function {function!r}")
        for condition in query.get("filters", []):
            if condition.get("name") not in fields:
                problems.append(f"filter name {condition.get('name')!r}")
            if condition.get("filter") not in documented["filters"]:
                problems.append(f"filter {condition.get('filter')!r}")
        for group in query.get("aggregations", []):
            if group.get("field") not in fields:
                problems.append(f"aggregation field {group.get('field')!r}")
    if problems or not body.get("query_requests"):
        return _json(
            json.dumps({"error": "invalid query: " + ", ".join(problems or ["no query_requests"])}), 400
        )
    return _json(_fixture("analytics.json"))


def _serve_documented(httpserver) -> None:
    httpserver.expect_request("/api/v1/UserPageAnalytics", method="POST").respond_with_data(
        _fixture("user_page_analytics.json"), content_type="application/json"
    )
    httpserver.expect_request("/api/v1/Analytics", method="POST").respond_with_handler(_documented_analytics)
    httpserver.expect_request("/api/v1/CascadeAnalytics", method="POST").respond_with_handler(_cascade)


def test_every_name_in_the_custom_query_is_documented(engine, httpserver):
    _serve_documented(httpserver)
    outcome = _run(engine, _connector(httpserver))
    assert outcome.status == "ok", outcome.error
    assert _lines_by_person(engine) == {"alice@example.com": 1060, "bob@example.com": 12}


def test_the_documented_server_refuses_an_undocumented_operator(httpserver, monkeypatch):
    """The check above can fail: the old ``QUERY_FILTER_LT`` gets the 400 it would get live."""
    import bot.sources.windsurf as windsurf

    def undocumented(start, end):
        return [
            {"name": "date", "filter": "QUERY_FILTER_GE", "value": start.isoformat()},
            {"name": "date", "filter": "QUERY_FILTER_LT", "value": end.isoformat()},
        ]

    monkeypatch.setattr(windsurf, "_date_filters", undocumented)
    _serve_documented(httpserver)
    with pytest.raises(SourceError, match="QUERY_FILTER_LT"):
        list(_connector(httpserver).fetch(SINCE, UNTIL))
