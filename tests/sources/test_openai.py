"""OpenAI connector against a loopback fake of the admin API (tests/support/openai_admin.py:
the fixture pages of tests/fixtures/openai behind the real paths, cursors, windows and the live
API's quirks)."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from werkzeug import Request, Response

from bot.db.models import Identity, Person, SyncRun, SyncState, UsageDaily
from bot.domain.records import COST, ESTIMATED
from bot.settings import Settings, SourceAccount
from bot.sources import openai as openai_source
from bot.sources.base import SourceError
from tests.support.db import USAGE_FIGURES, usage_rows
from tests.support.openai_admin import (
    COSTS,
    FIXTURES,
    KEY,
    KEYS_A,
    KEYS_B,
    KEYS_OLD,
    PAGES,
    PROJECTS,
    SINCE,
    TODAY,
    UNTIL,
    USAGE,
    USERS,
    FakeOpenAI,
    Fault,
    connector_for,
    json_response,
    run,
    run_once,
)

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
GPT4O, MINI, O3 = "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "o3-mini-2025-01-31"
FT = "ft-gpt-4o-mini-2024-07-18"
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
ERIN = "erin@example.com"  # owns a key in an archived project, without access to it any more


def row(day, actor, model, email, tokens=(0, 0, 0, 0, 0), micros=0, raw="0", basis="billed") -> tuple:
    """A stored row: tokens are (uncached input, cache read, cache write, output, requests).
    Rows with dollars come from the Costs API (kind "cost"), the others from the Usage API."""
    kind = COST if micros else "usage"
    return (day, actor, model, *tokens, micros, raw, "usd", basis, kind, True, email)


def by_day_actor_model(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda r: (r[0], r[1], r[2], r[12]))


USAGE_ROWS = [
    row(D1, "openai_user:user-alice", GPT4O, ALICE, tokens=(1000, 300, 200, 400, 5)),
    row(D1, "openai_key:key_bob", MINI, BOB, tokens=(800, 0, 0, 100, 2)),
    row(D1, "openai:unattributed", GPT4O, None, tokens=(50, 0, 0, 10, 1)),
    row(D2, "openai_user:user-alice", GPT4O, ALICE, tokens=(1500, 500, 0, 600, 7)),
    row(D2, "openai_user:user-carol", O3, CAROL, tokens=(800, 100, 100, 2000, 3)),
    row(D2, "openai_key:key_erin", GPT4O, ERIN, tokens=(400, 0, 0, 100, 2)),
    row(D3, "openai_user:user-alice", GPT4O, ALICE, tokens=(1200, 0, 0, 300, 4)),
    row(D3, "openai_user:user-ghost", MINI, None, tokens=(90, 0, 0, 9, 1)),
]
#: Costs grouped by api_key_id: the vendor's own figure per key, billed.
COST_ROWS = [
    row(D1, "openai_key:key_bob", MINI, BOB, micros=120, raw="0.00012"),
    row(D1, "openai_key:key_alice", GPT4O, ALICE, micros=100_000, raw="0.10"),
    row(D1, "openai_project:org", FT, None, micros=1_500_000, raw="1.5"),
    row(D2, "openai_key:key_alice", GPT4O, ALICE, micros=1235, raw="0.0012345678"),
    row(D2, "openai_key:key_service", O3, None, micros=1100, raw="0.0011"),
    row(D2, "openai_key:key_bob", MINI, BOB, micros=2_000_000, raw="2"),
    row(D2, "openai_key:key_erin", GPT4O, ERIN, micros=2000, raw="0.002"),
    row(D3, "openai_key:key_bob", GPT4O, BOB, micros=10_000, raw="0.01"),
]
EXPECTED = by_day_actor_model(USAGE_ROWS + COST_ROWS)


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def snapshot(engine, workspace_id: str = "W") -> list[tuple]:
    columns = (
        *USAGE_FIGURES,
        UsageDaily.raw_unit,
        UsageDaily.cost_basis,
        UsageDaily.kind,
        UsageDaily.in_org_total,
        Person.email,
    )
    return by_day_actor_model(usage_rows(engine, workspace_id, *columns))


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
    usage = {**window, "limit": ["31"], "group_by": ["user_id", "api_key_id", "model", "project_id"]}
    costs = {**window, "limit": ["180"], "group_by": ["api_key_id", "line_item"]}
    projects = {"limit": ["100"], "include_archived": ["true"]}
    keys = {"limit": ["100"], "owner_project_access": ["any"]}
    assert fake.requests() == [
        (USERS, {"limit": ["100"]}),
        (USERS, {"limit": ["100"], "after": ["user-bob"]}),
        (PROJECTS, projects),
        (KEYS_A, keys),
        (KEYS_A, {**keys, "after": ["key_alice"]}),
        (PROJECTS, {**projects, "after": ["proj_a"]}),
        (KEYS_B, keys),
        (KEYS_OLD, keys),
        (USAGE, usage),
        (USAGE, {**usage, "page": ["page_AAAA"]}),
        (USAGE, {**usage, "page": ["page_BBBB"]}),
        (COSTS, costs),
        (COSTS, {**costs, "page": ["page_COST2"]}),
    ]
    assert fake.server.log[0][0].headers["Authorization"] == f"Bearer {KEY}"
    # Identities: users by id, keys by owner email; the service-account key has no email; the
    # archived project's key whose owner lost access is listed too.
    hints = {(h.actor, h.email) for h in batches[0].identities}
    assert hints == {
        ("openai_key:key_erin", ERIN),
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
    assert batches[0].usage == [] and len(batches[0].identities) == 7
    # 8 usage results + 8 cost records: 9 line items, key_alice's gpt-4o input and output of a day
    # merged into one (test_line_items_of_a_key_and_model_merge_exactly).
    assert batches[1].identities == [] and len(batches[1].usage) == 16
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
    assert sum(m.micros for m in cents) == 3_614_455
    assert {(m.raw_amount, m.micros) for m in cents} >= {
        ("0.0012345678", 1235),
        ("0.00012", 120),
        ("2", 2_000_000),
    }


def test_line_items_of_a_key_and_model_merge_exactly(fake):
    """The connector merges a day's line items of one (key, model) as the engine's fold does:
    one record, the items' micros summed, the vendor's dollars summed exactly as the raw amount."""
    connector = connector_for(fake)
    try:
        (batch,) = connector.fetch(SINCE, UNTIL)
    finally:
        connector.close()
    alice = [
        r
        for r in batch.usage
        if r.kind == COST and r.actor == "openai_key:key_alice" and r.model == "gpt-4o-2024-08-06"
    ]
    first_day = [r for r in alice if r.day == min(r.day for r in alice)]
    assert len(first_day) == 1  # "gpt-4o-2024-08-06, input" 0.06 + "…, output" 0.04
    assert (first_day[0].cost.micros, first_day[0].cost.raw_amount) == (100_000, "0.10")
    keys = [r.key() for r in batch.usage]
    assert len(keys) == len(set(keys))  # nothing left for the engine's fold to merge


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
    assert per_person == {ALICE: 101_235, BOB: 2_010_120, CAROL: 0, ERIN: 2000, None: 1_501_100}
    assert tuple(totals) == (3_614_455, 5840, 900, 300, 3519, 25)
    # Dave owns a key without usage: still a person (from the key owner), with no rows.
    assert people == [ALICE, BOB, CAROL, "dave@example.com", ERIN]
    assert links["openai_user:user-alice"] == links["openai_key:key_alice"] == ALICE
    assert links["openai_key:key_bob"] == BOB
    assert links["openai_key:key_erin"] == ERIN  # an archived project's key, its owner without access
    assert "openai_key:key_service" not in links and "openai_user:user-ghost" not in links
    assert [tuple(r) for r in runs] == [("ok", 16), ("ok", 16)]
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
    outcome = run_once(engine, fake)
    assert outcome.status == "ok", outcome.error
    assert boom.calls == 2
    cursor = PAGES[path][0]
    assert len([q for _, q in fake.requests(path) if cursor not in q]) == 3  # two 500s, then the page
    assert snapshot(engine) == EXPECTED


def test_invalid_json_in_costs_fails_the_run_but_stores_the_usage(engine, fake):
    fake.faults[(COSTS, "page_COST2")] = lambda _: Response(b'{"object": "page", "data": [', 200)
    outcome = run_once(engine, fake)
    assert outcome.status == "failed"
    assert outcome.error == "openai: organization/costs: response is not valid JSON"
    assert snapshot(engine) == by_day_actor_model(USAGE_ROWS)  # no cost row from the half-read pages
    with engine.connect() as conn:
        state = conn.execute(select(SyncState.last_error, SyncState.watermark)).one()
    assert tuple(state) == (outcome.error, None)  # the window is fetched again next run


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
    outcome = run_once(engine, fake)
    assert outcome.status == "failed"
    assert outcome.error.startswith(f"openai: {path.removeprefix('/v1/')}: "), outcome.error
    # The other endpoint's rows are stored; none of the broken endpoint's.
    assert snapshot(engine) == by_day_actor_model(COST_ROWS if path == USAGE else USAGE_ROWS)


# -- apportioning -----------------------------------------------------------------------------


def test_apportion_is_exact_and_gives_leftover_micros_to_the_largest_remainders():
    # 50,000 split 400:10 -> 48,780.49 and 1,219.51: the one micro left goes to the larger remainder.
    assert openai_source.apportion(50_000, {"a": 400, "b": 10}) == {"a": 48_780, "b": 1_220}
    # Equal remainders: ties go by actor, deterministically.
    assert openai_source.apportion(1, {"b": 1, "a": 1}) == {"a": 1, "b": 0}
    # A credit (negative) splits exactly too; zero weights take nothing; no weight, no split.
    assert openai_source.apportion(-7, {"a": 1, "b": 2, "c": 0}) == {"a": -2, "b": -5}
    assert openai_source.apportion(5, {"a": 0}) == {}
    for total in (0, 1, 3, 999_999, 10**12 + 7):
        assert sum(openai_source.apportion(total, {"x": 3, "y": 5, "z": 11}).values()) == total


def test_token_kind_of_line_item():
    kind = openai_source.token_kind_of_line_item
    assert [kind(f"{GPT4O}, input"), kind(f"{GPT4O}, cached input"), kind(f"{GPT4O}, output")] == [0, 1, 2]
    assert kind(f"{FT}, training") is None and kind(None) is None and kind(GPT4O) is None


#: Costs per project and line item, apportioned to keys by their tokens in the Usage API (see the
#: costs_by_project fixtures): estimated where split, billed where no key's tokens explain it.
APPORTIONED_ROWS = [
    # D1 gpt-4o input $0.070001 by uncached + cache-write input 1200 (Alice's key) : 50 (no key);
    # output $0.05 by output tokens 400 : 10.
    row(D1, "openai_key:key_alice", GPT4O, ALICE, micros=67_201 + 48_780, raw="0.115981", basis=ESTIMATED),
    row(D1, "openai_project:proj_a", GPT4O, None, micros=2_800 + 1_220, raw="0.00402", basis=ESTIMATED),
    row(D1, "openai_key:key_bob", MINI, BOB, micros=120, raw="0.00012", basis=ESTIMATED),
    # Fine-tuning training: no usage row explains it, so it stays the project's, as billed.
    row(D1, "openai_project:proj_a", FT, None, micros=1_500_000, raw="1.5"),
    row(D2, "openai_key:key_alice", GPT4O, ALICE, micros=1235, raw="0.001235", basis=ESTIMATED),
    row(D2, "openai_key:key_service", O3, None, micros=1100 + 33, raw="0.001133", basis=ESTIMATED),
    # The archived project's key, whose owner lost access: attributed to Erin.
    row(D2, "openai_key:key_erin", GPT4O, ERIN, micros=2000, raw="0.002", basis=ESTIMATED),
    row(D3, "openai_key:key_bob", GPT4O, BOB, micros=10_000, raw="0.01", basis=ESTIMATED),
    row(D3, "openai_key:key_alice", MINI, ALICE, micros=1, raw="0.000001", basis=ESTIMATED),
]
BILL_MICROS = 1_634_490  # the sum of the costs_by_project fixtures' amounts, in micro-USD


def test_key_grouping_rejected_falls_back_to_projects_with_exact_totals(engine, fake, caplog):
    fake.reject_key_grouping = True
    outcome = run_once(engine, fake)
    assert (outcome.status, outcome.error) == ("ok", None)
    assert snapshot(engine) == by_day_actor_model(USAGE_ROWS + APPORTIONED_ROWS)
    costs = [row for row in snapshot(engine) if row[12] == COST]
    assert sum(row[8] for row in costs) == BILL_MICROS  # every micro of the bill, exactly once
    window = {"start_time": [str(_epoch(SINCE))], "end_time": [str(_epoch(UNTIL))], "bucket_width": ["1d"]}
    by_project = {**window, "limit": ["180"], "group_by": ["project_id", "line_item"]}
    assert fake.requests(COSTS) == [
        (COSTS, {**window, "limit": ["180"], "group_by": ["api_key_id", "line_item"]}),
        (COSTS, by_project),
        (COSTS, {**by_project, "page": ["page_PCOST2"]}),
    ]
    warnings = [r for r in caplog.records if "api_key_id were rejected" in r.getMessage()]
    assert len(warnings) == 1 and "HTTP 400" in warnings[0].getMessage()


def test_rejected_grouping_is_remembered_for_the_run_and_logged_once(fake, caplog):
    fake.reject_key_grouping = True
    connector = connector_for(fake)
    try:
        batches = list(connector.fetch(date(2026, 1, 15), UNTIL))  # two windows
    finally:
        connector.close()
    assert len(batches) == 2
    asked = [q["group_by"] for _, q in fake.requests(COSTS) if "page" not in q]
    assert asked == [["api_key_id", "line_item"], ["project_id", "line_item"], ["project_id", "line_item"]]
    assert len([r for r in caplog.records if "api_key_id were rejected" in r.getMessage()]) == 1
    assert sum(r.cost.micros for r in batches[1].usage) == BILL_MICROS


def test_rejected_grouping_with_usage_down_keeps_the_bill_per_project(engine, fake):
    fake.reject_key_grouping = True
    fake.faults[(USAGE, None)] = lambda _: json_response({"error": {"message": "server error"}}, 500)
    outcome = run_once(engine, fake, http_max_retries=0)
    assert outcome.status == "failed" and outcome.error.startswith("openai: organization/usage/completions:")
    rows = snapshot(engine)
    assert {row[12] for row in rows} == {COST} and sum(row[8] for row in rows) == BILL_MICROS
    # Without key shares nothing is split: each project's line items, billed, as OpenAI reports them.
    assert {(row[1], row[11]) for row in rows} == {
        ("openai_project:proj_a", "billed"),
        ("openai_project:proj_b", "billed"),
        ("openai_project:proj_old", "billed"),
    }


# -- one endpoint failing --------------------------------------------------------------------


def _run_ids(engine) -> dict[str, set[int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(UsageDaily.kind, UsageDaily.sync_run_id)).all()
    found: dict[str, set[int]] = {}
    for kind, run_id in rows:
        found.setdefault(kind, set()).add(run_id)
    return found


@pytest.mark.parametrize(("failing", "kept", "rewritten"), [(COSTS, COST, "usage"), (USAGE, "usage", COST)])
def test_one_endpoint_failing_stores_the_other_and_keeps_what_it_stored(
    engine, fake, failing, kept, rewritten
):
    connector = connector_for(fake, http_max_retries=0)
    try:
        good = run(engine, connector)
        assert good.status == "ok" and snapshot(engine) == EXPECTED
        fake.faults[(failing, None)] = lambda _: json_response({"error": {"message": "server error"}}, 503)
        bad = run(engine, connector)
    finally:
        connector.close()
    assert bad.status == "failed"
    assert bad.error == f"openai: {failing.removeprefix('/v1/')}: HTTP 503 after 1 attempts"
    # Nothing lost: the failed endpoint's rows are the first run's, untouched; the other's were
    # written again by the failed run.
    assert snapshot(engine) == EXPECTED
    assert _run_ids(engine) == {kept: {good.run_id}, rewritten: {bad.run_id}}
    with engine.connect() as conn:
        state = conn.execute(select(SyncState.watermark, SyncState.consecutive_failures)).one()
    assert tuple(state) == (TODAY, 1)  # the watermark stays where the good run left it


def test_both_endpoints_failing_store_nothing(engine, fake):
    for path in (USAGE, COSTS):
        fake.faults[(path, None)] = lambda _: json_response({"error": {"message": "server error"}}, 500)
    outcome = run_once(engine, fake, http_max_retries=0)
    assert outcome.status == "failed" and outcome.error.startswith("openai: organization/usage/completions:")
    assert snapshot(engine) == []


def test_a_costs_failure_after_a_fallback_switch_keeps_stored_costs(engine, fake):
    """First the API takes key grouping; later it refuses it and the fallback fails too: the
    billed per-key rows stored by the first run stay, and the usage is refreshed."""
    connector = connector_for(fake, http_max_retries=0)
    try:
        assert run(engine, connector).status == "ok"
    finally:
        connector.close()
    fake.reject_key_grouping = True
    fake.faults[(COSTS, "page_PCOST2")] = lambda _: Response(b"not json", 200)
    outcome = run_once(engine, fake, http_max_retries=0)
    assert outcome.error == "openai: organization/costs: response is not valid JSON"
    assert snapshot(engine) == EXPECTED


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("sk-proj-Abc123-0123456789abcdef", "an OpenAI project key (sk-proj-…)"),
        ("sk-svcacct-Abc123-0123456789abcdef", "an OpenAI service account key (sk-svcacct-…)"),
        ("sk-ant-admin01-0123456789abcdef", "an Anthropic key (sk-ant-…)"),
    ],
)
def test_a_key_of_the_wrong_kind_is_named_before_any_request(fake, engine, key, kind):
    outcome = run(engine, connector_for(fake, openai_admin_key=key))
    assert outcome.status == "failed"
    assert outcome.error == (
        f"openai: the key is {kind}: usage and costs need an OpenAI Admin key (sk-admin-…, "
        "Organization settings → Admin keys)"
    )
    assert fake.server.log == []  # nothing was sent with it
