"""OpenAI connector against a loopback fake of the admin API (pytest-httpserver).

The fake serves the fixture pages in tests/fixtures/openai (written from OpenAI's documented
``UsageResponse`` / list schemas), follows the ``page`` and ``after`` cursors, and drops buckets
outside the requested ``[start_time, end_time)`` so split windows see only their own days.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug import Request, Response

from bot.db.models import Identity, Person, SyncRun, SyncState, UsageDaily
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount
from bot.sources import openai as openai_source
from bot.sources.base import SourceError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "openai"
KEY = "sk-admin-TESTKEY-0123456789abcdef0123456789"
API = "/v1/organization"
USAGE = f"{API}/usage/completions"
COSTS = f"{API}/costs"
USERS = f"{API}/users"
PROJECTS = f"{API}/projects"
KEYS_A = f"{API}/projects/proj_a/api_keys"
KEYS_B = f"{API}/projects/proj_b/api_keys"

# path -> (cursor parameter, cursor value -> fixture file)
PAGES: dict[str, tuple[str, dict[str | None, str]]] = {
    USAGE: (
        "page",
        {
            None: "usage_completions_page1.json",
            "page_AAAA": "usage_completions_page2.json",
            "page_BBBB": "usage_completions_page3.json",
        },
    ),
    COSTS: ("page", {None: "costs_page1.json", "page_COST2": "costs_page2.json"}),
    USERS: ("after", {None: "users_page1.json", "user-bob": "users_page2.json"}),
    PROJECTS: ("after", {None: "projects_page1.json", "proj_a": "projects_page2.json"}),
    KEYS_A: ("after", {None: "api_keys_proj_a_page1.json", "key_alice": "api_keys_proj_a_page2.json"}),
    KEYS_B: ("after", {None: "api_keys_proj_b.json"}),
}

SINCE, UNTIL, TODAY = date(2026, 3, 1), date(2026, 3, 4), date(2026, 3, 4)
D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
GPT4O, MINI, O3 = "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "o3-mini-2025-01-31"
FT = "ft-gpt-4o-mini-2024-07-18"
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"


def row(day, actor, model, email, tokens=(0, 0, 0, 0, 0), micros=0, raw="0") -> tuple:
    """A stored usage row: tokens are (uncached input, cache read, cache write, output, requests)."""
    return (day, actor, model, *tokens, micros, raw, "usd", "billed", "usage", True, email)


EXPECTED = sorted(
    [
        row(D1, "openai_user:user-alice", GPT4O, ALICE, tokens=(1000, 300, 200, 400, 5)),
        row(D1, "openai_key:key_bob", MINI, BOB, tokens=(800, 0, 0, 100, 2), micros=120, raw="0.00012"),
        row(D1, "openai:unattributed", GPT4O, None, tokens=(50, 0, 0, 10, 1)),
        row(D1, "openai_key:key_alice", GPT4O, ALICE, micros=100_000, raw="0.10"),
        row(D1, "openai_project:org", FT, None, micros=1_500_000, raw="1.5"),
        row(D2, "openai_user:user-alice", GPT4O, ALICE, tokens=(1500, 500, 0, 600, 7)),
        row(D2, "openai_user:user-carol", O3, CAROL, tokens=(800, 100, 100, 2000, 3)),
        row(D2, "openai_key:key_alice", GPT4O, ALICE, micros=1235, raw="0.0012345678"),
        row(D2, "openai_key:key_service", O3, None, micros=1100, raw="0.0011"),
        row(D2, "openai_key:key_bob", MINI, BOB, micros=2_000_000, raw="2"),
        row(D3, "openai_user:user-alice", GPT4O, ALICE, tokens=(1200, 0, 0, 300, 4)),
        row(D3, "openai_user:user-ghost", MINI, None, tokens=(90, 0, 0, 9, 1)),
        row(D3, "openai_key:key_bob", GPT4O, BOB, micros=10_000, raw="0.01"),
    ],
    key=lambda r: (r[0], r[1], r[2]),
)


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def json_response(body: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


class FakeOpenAI:
    """The fixture pages behind the real paths; ``faults[(path, cursor)]`` may answer first."""

    def __init__(self, httpserver) -> None:
        self.server = httpserver
        self.faults: dict[tuple[str, str | None], Callable[[Request], Response | None]] = {}
        for path in PAGES:
            httpserver.expect_request(path, method="GET").respond_with_handler(partial(self._serve, path))

    def base_url(self) -> str:
        return self.server.url_for("/v1")

    def _serve(self, path: str, request: Request) -> Response:
        cursor_name, pages = PAGES[path]
        cursor = request.args.get(cursor_name)
        fault = self.faults.get((path, cursor))
        if fault is not None:
            answer = fault(request)
            if answer is not None:
                return answer
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return json_response({"error": {"message": "Incorrect API key provided"}}, 401)
        name = pages.get(cursor)
        if name is None:
            return json_response({"error": {"message": f"invalid cursor {cursor}"}}, 400)
        raw = (FIXTURES / name).read_bytes()
        if "start_time" in request.args:
            raw = window_filter(raw, int(request.args["start_time"]), request.args.get("end_time"))
        return Response(raw, status=200, content_type="application/json")

    def hits(self, path: str, cursor: str | None) -> int:
        """Requests made for one page (``cursor`` None: the first)."""
        name = PAGES[path][0]
        return sum(1 for req, _ in self.server.log if req.path == path and req.args.get(name) == cursor)

    def requests(self, path: str | None = None) -> list[tuple[str, dict[str, list[str]]]]:
        return [
            (req.path, req.args.to_dict(flat=False))
            for req, _ in self.server.log
            if path is None or req.path == path
        ]


def window_filter(raw: bytes, start: int, end: str | None) -> bytes:
    """Drop buckets outside the requested window (served unchanged when nothing is dropped)."""
    body = json.loads(raw)
    stop = int(end) if end else 2**62
    kept = [b for b in body["data"] if start <= b["start_time"] < stop]
    if len(kept) == len(body["data"]):
        return raw
    body["data"] = kept
    return json.dumps(body).encode()


class Fault:
    """Answer ``times`` requests (all, when None) with ``make(request)``; then let the fake serve."""

    def __init__(self, make: Callable[[Request], Response], times: int | None = None) -> None:
        self.make = make
        self.times = times
        self.calls = 0

    def __call__(self, request: Request) -> Response | None:
        if self.times is not None and self.calls >= self.times:
            return None
        self.calls += 1
        return self.make(request)


def make_settings(base_url: str, **overrides) -> Settings:
    values = dict(
        openai_admin_key=KEY,
        openai_admin_base_url=base_url,
        http_max_retries=3,
        http_max_backoff_seconds=0.01,
        http_timeout_seconds=5.0,
    )
    values.update(overrides)
    return Settings(**values)


def connector_for(fake: FakeOpenAI, **overrides) -> openai_source.OpenAIConnector:
    (connector,) = openai_source.from_settings(make_settings(fake.base_url(), **overrides))
    return connector


def snapshot(engine, workspace_id: str = "W") -> list[tuple]:
    columns = (
        UsageDaily.day,
        UsageDaily.actor,
        UsageDaily.model,
        UsageDaily.input_tokens,
        UsageDaily.cache_read_tokens,
        UsageDaily.cache_write_tokens,
        UsageDaily.output_tokens,
        UsageDaily.requests,
        UsageDaily.cost_micros,
        UsageDaily.raw_amount,
        UsageDaily.raw_unit,
        UsageDaily.cost_basis,
        UsageDaily.kind,
        UsageDaily.in_org_total,
        Person.email,
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(*columns)
            .select_from(UsageDaily)
            .outerjoin(Person, Person.id == UsageDaily.person_id)
            .where(UsageDaily.workspace_id == workspace_id)
        ).all()
    return sorted((tuple(row) for row in rows), key=lambda row: (row[0], row[1], row[2]))


def run(engine, connector, **kwargs):
    kwargs = {"workspace_id": "W", "since": SINCE, "until": UNTIL, "today": TODAY, **kwargs}
    return run_source(engine, connector, **kwargs)


@pytest.fixture
def fake(httpserver) -> FakeOpenAI:
    return FakeOpenAI(httpserver)


# -- settings ----------------------------------------------------------------------------------


def test_from_settings_disabled_without_key_and_one_connector_per_account():
    assert openai_source.from_settings(Settings()) == []
    settings = Settings(
        openai_admin_key=KEY,
        openai_admin_base_url="http://127.0.0.1:9/v1",
        accounts=[
            SourceAccount(
                name="openai-eu", vendor="openai", key="sk-admin-eu", base_url="http://127.0.0.1:9/eu"
            ),
            SourceAccount(name="other", vendor="anthropic", key="sk-ant-admin-x"),
            SourceAccount(name="openai-us", vendor="openai", key="sk-admin-us"),
        ],
    )
    connectors = openai_source.from_settings(settings)
    try:
        assert [c.name for c in connectors] == ["openai", "openai-eu", "openai-us"]
        assert [str(c.http.client.base_url) for c in connectors] == [
            "http://127.0.0.1:9/v1/",
            "http://127.0.0.1:9/eu/",
            "http://127.0.0.1:9/v1/",
        ]
        assert [c.http.client.headers["Authorization"] for c in connectors] == [
            f"Bearer {KEY}",
            "Bearer sk-admin-eu",
            "Bearer sk-admin-us",
        ]
        assert all(c.vendor == "openai" for c in connectors)
    finally:
        for connector in connectors:
            connector.close()
    # An account alone (no top-level key) is enough.
    only_account = Settings(accounts=[SourceAccount(name="openai-eu", vendor="openai", key="sk-admin-eu")])
    (connector,) = openai_source.from_settings(only_account)
    connector.close()
    assert connector.name == "openai-eu"


def test_model_of_line_item():
    assert openai_source.model_of_line_item("gpt-4o-2024-08-06, input") == GPT4O
    assert openai_source.model_of_line_item("gpt-4o-2024-08-06, cached input") == GPT4O
    assert openai_source.model_of_line_item(None) == ""


# -- the wire --------------------------------------------------------------------------------


def test_exact_queries_and_cursors(fake):
    connector = connector_for(fake)
    try:
        batches = list(connector.fetch(SINCE, UNTIL))
    finally:
        connector.close()
    assert len(batches) == 1 and (batches[0].window_start, batches[0].window_end) == (SINCE, UNTIL)

    window = {"start_time": [str(_epoch(SINCE))], "end_time": [str(_epoch(UNTIL))], "bucket_width": ["1d"]}
    usage = {**window, "limit": ["31"], "group_by": ["user_id", "api_key_id", "model"]}
    costs = {**window, "limit": ["180"], "group_by": ["api_key_id", "line_item"]}
    assert fake.requests() == [
        (USERS, {"limit": ["100"]}),
        (USERS, {"limit": ["100"], "after": ["user-bob"]}),
        (PROJECTS, {"limit": ["100"]}),
        (KEYS_A, {"limit": ["100"]}),
        (KEYS_A, {"limit": ["100"], "after": ["key_alice"]}),
        (PROJECTS, {"limit": ["100"], "after": ["proj_a"]}),
        (KEYS_B, {"limit": ["100"]}),
        (USAGE, usage),
        (USAGE, {**usage, "page": ["page_AAAA"]}),
        (USAGE, {**usage, "page": ["page_BBBB"]}),
        (COSTS, costs),
        (COSTS, {**costs, "page": ["page_COST2"]}),
    ]
    assert fake.server.log[0][0].headers["Authorization"] == f"Bearer {KEY}"
    # Identities: users by id, keys by owner email; the service-account key has no email.
    hints = {(h.actor, h.email) for h in batches[0].identities}
    assert hints == {
        ("openai_user:user-alice", "Alice@Example.com"),
        ("openai_user:user-bob", "bob@example.com"),
        ("openai_user:user-carol", "carol@example.com"),
        ("openai_key:key_alice", "alice@example.com"),
        ("openai_key:key_bob", "BOB@example.com"),
        ("openai_key:key_dave", "dave@example.com"),
    }


def test_long_window_is_split_and_identities_are_fetched_once(fake):
    connector = connector_for(fake)
    try:
        batches = list(connector.fetch(date(2026, 1, 15), UNTIL))
    finally:
        connector.close()
    assert [(b.window_start, b.window_end) for b in batches] == [
        (date(2026, 1, 15), date(2026, 2, 15)),
        (date(2026, 2, 15), UNTIL),
    ]
    assert batches[0].usage == [] and len(batches[0].identities) == 6
    assert batches[1].identities == [] and len(batches[1].usage) == 15  # 7 usage results + 8 cost results
    assert len(fake.requests(USERS)) == 2
    starts = [(q["start_time"], q["end_time"]) for _, q in fake.requests(USAGE) if "page" not in q]
    assert starts == [
        ([str(_epoch(date(2026, 1, 15)))], [str(_epoch(date(2026, 2, 15)))]),
        ([str(_epoch(date(2026, 2, 15)))], [str(_epoch(UNTIL))]),
    ]


def test_token_split_and_exact_money_in_records(fake):
    connector = connector_for(fake)
    try:
        (batch,) = connector.fetch(SINCE, UNTIL)
    finally:
        connector.close()
    alice_d1 = next(r for r in batch.usage if r.actor == "openai_user:user-alice" and r.day == D1)
    # input_tokens 1500 includes 300 cached and 200 cache-write tokens.
    assert (alice_d1.input_tokens, alice_d1.cache_read_tokens, alice_d1.cache_write_tokens) == (
        1000,
        300,
        200,
    )
    # input_uncached_tokens wins when the vendor sends it.
    alice_d2 = next(r for r in batch.usage if r.actor == "openai_user:user-alice" and r.day == D2)
    assert (alice_d2.input_tokens, alice_d2.cache_read_tokens, alice_d2.cache_write_tokens) == (1500, 500, 0)
    cents = [r.cost for r in batch.usage if r.cost.micros]
    assert sum(m.micros for m in cents) == 3_612_455
    assert {(m.raw_amount, m.micros) for m in cents} >= {
        ("0.0012345678", 1235),
        ("0.00012", 120),
        ("2", 2_000_000),
    }


# -- end to end through the engine ------------------------------------------------------------


def test_end_to_end_exact_totals_attribution_and_idempotent_rerun(engine, fake):
    connector = connector_for(fake)
    try:
        first = run(engine, connector)
        assert (first.status, first.error) == ("ok", None)
        assert first.usage_rows == len(EXPECTED)
        assert snapshot(engine) == EXPECTED
        second = run(engine, connector)
        assert second.status == "ok"
    finally:
        connector.close()
    assert snapshot(engine) == EXPECTED

    with engine.connect() as conn:
        per_person = dict(
            conn.execute(
                select(Person.email, func.sum(UsageDaily.cost_micros))
                .select_from(UsageDaily)
                .outerjoin(Person, Person.id == UsageDaily.person_id)
                .group_by(Person.email)
            ).all()
        )
        totals = conn.execute(
            select(
                func.sum(UsageDaily.cost_micros),
                func.sum(UsageDaily.input_tokens),
                func.sum(UsageDaily.cache_read_tokens),
                func.sum(UsageDaily.cache_write_tokens),
                func.sum(UsageDaily.output_tokens),
                func.sum(UsageDaily.requests),
            )
        ).one()
        people = sorted(conn.execute(select(Person.email)).scalars())
        links = dict(conn.execute(select(Identity.actor, Person.email).join(Person)).all())
        runs = conn.execute(select(SyncRun.status, SyncRun.usage_rows).order_by(SyncRun.id)).all()
        state = conn.execute(
            select(SyncState.watermark, SyncState.last_error, SyncState.consecutive_failures)
        ).one()
    assert per_person == {ALICE: 101_235, BOB: 2_010_120, CAROL: 0, None: 1_501_100}
    assert tuple(totals) == (3_612_455, 5440, 900, 300, 3419, 23)
    # Dave owns a key without usage: still a person (from the key owner), with no rows.
    assert people == [ALICE, BOB, CAROL, "dave@example.com"]
    assert links["openai_user:user-alice"] == links["openai_key:key_alice"] == ALICE
    assert links["openai_key:key_bob"] == BOB
    assert "openai_key:key_service" not in links and "openai_user:user-ghost" not in links
    assert [tuple(r) for r in runs] == [("ok", 13), ("ok", 13)]
    assert tuple(state) == (TODAY, None, 0)


def test_429_with_retry_after_then_success(engine, fake):
    throttle = Fault(
        lambda _: json_response({"error": {"message": "Rate limit"}}, 429, {"Retry-After": "0"}), times=1
    )
    fake.faults[(USAGE, "page_AAAA")] = throttle
    connector = connector_for(fake, http_max_backoff_seconds=30.0)  # Retry-After: 0 is what keeps it fast
    began = time.monotonic()
    try:
        outcome = run(engine, connector)
    finally:
        connector.close()
    assert time.monotonic() - began < 5
    assert outcome.status == "ok", outcome.error
    assert throttle.calls == 1
    assert [q.get("page") for _, q in fake.requests(USAGE)] == [
        None,
        ["page_AAAA"],
        ["page_AAAA"],
        ["page_BBBB"],
    ]
    assert snapshot(engine) == EXPECTED


@pytest.mark.parametrize("path", [COSTS, USERS])
def test_500_then_success(engine, fake, path):
    boom = Fault(lambda _: json_response({"error": {"message": "server error"}}, 500), times=2)
    fake.faults[(path, None)] = boom
    connector = connector_for(fake)
    try:
        outcome = run(engine, connector)
    finally:
        connector.close()
    assert outcome.status == "ok", outcome.error
    assert boom.calls == 2
    cursor = PAGES[path][0]
    assert len([q for _, q in fake.requests(path) if cursor not in q]) == 3  # two 500s, then the page
    assert snapshot(engine) == EXPECTED


def test_invalid_json_fails_the_run_and_stores_nothing(engine, fake):
    fake.faults[(COSTS, "page_COST2")] = lambda _: Response(b'{"object": "page", "data": [', 200)
    connector = connector_for(fake)
    try:
        outcome = run(engine, connector)
    finally:
        connector.close()
    assert outcome.status == "failed"
    assert outcome.error == "openai: organization/costs: response is not valid JSON"
    assert snapshot(engine) == []
    with engine.connect() as conn:
        state = conn.execute(select(SyncState.last_error, SyncState.watermark)).one()
    assert tuple(state) == (outcome.error, None)


def test_non_usd_currency_fails_naming_costs(fake):
    def euro(request: Request) -> Response:
        body = json.loads((FIXTURES / "costs_page2.json").read_bytes())
        body["data"][0]["results"][0]["amount"]["currency"] = "eur"
        return json_response(body)

    fake.faults[(COSTS, "page_COST2")] = euro
    connector = connector_for(fake)
    try:
        with pytest.raises(SourceError, match=r"^openai: organization/costs: unsupported currency 'eur'$"):
            list(connector.fetch(SINCE, UNTIL))
    finally:
        connector.close()


@pytest.mark.parametrize(
    ("path", "mutate"),
    [
        (USAGE, lambda body: body["data"][0].pop("start_time")),
        (USAGE, lambda body: body["data"][0]["results"][0].update(output_tokens="lots")),
        (USAGE, lambda body: body["data"][0].update(results={"not": "a list"})),
        (
            COSTS,
            lambda body: body["data"][0]["results"][0].update(amount={"value": "n/a", "currency": "usd"}),
        ),
        (COSTS, lambda body: body["data"][0]["results"][0].update(amount=[0.06])),
        (COSTS, lambda body: body["data"].append("not a bucket")),
    ],
    ids=[
        "no-start-time",
        "string-tokens",
        "results-not-list",
        "bad-amount",
        "amount-not-object",
        "bad-bucket",
    ],
)
def test_unparseable_page_is_a_source_error_naming_the_endpoint(engine, fake, path, mutate):
    file = PAGES[path][1][None]

    def broken(request: Request) -> Response:
        body = json.loads((FIXTURES / file).read_bytes())
        mutate(body)
        return json_response(body)

    fake.faults[(path, None)] = broken
    connector = connector_for(fake)
    try:
        outcome = run(engine, connector)
    finally:
        connector.close()
    assert outcome.status == "failed"
    assert outcome.error.startswith(f"openai: {path.removeprefix('/v1/')}: "), outcome.error
    assert snapshot(engine) == []
