"""OpenRouter source against a loopback fake of the management API (/workspaces, /keys per
workspace, /organization/members, /activity). Fixtures follow OpenRouter's documented examples;
``_keys`` serves an account without the workspaces and members endpoints (404), ``_org`` an
organization with three workspaces and its members, each on two pages."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from bot.db.models import Identity, Person, SyncState, UsageDaily
from bot.domain.records import NAME_GUESS
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount
from bot.sources.base import SourceError
from bot.sources.openrouter import UNATTRIBUTED, OpenRouterConnector, from_settings
from tests.support.db import usage_by_email
from tests.support.files import fixture_path

KEY = "sk-or-v1-management-test"
ALICE, CI, BOB, UNUSED, NEW = ("a1" * 32, "c1" * 32, "b0" * 32, "d0" * 32, "e0" * 32)
RESEARCH_BOT, MALLORY_NAMED = "f0" * 32, "a0" * 32  # keys of the Research workspace
DEFAULT_WS, RESEARCH_WS = "0df9e665-d932-5740-b2c7-b52af166bc11", "550e8400-e29b-41d4-a716-446655440000"
PROD_WS = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
TODAY = date(2026, 3, 3)


def _fixture(name: str) -> bytes:
    return fixture_path("openrouter", name).read_bytes()


def _serve(httpserver, path: str, query: dict | None, name: str, status: int = 200) -> None:
    httpserver.expect_request(path, query_string=query).respond_with_data(
        _fixture(name), status=status, content_type="application/json"
    )


def _connector(httpserver, today: date = TODAY):
    settings = Settings(
        OPENROUTER_MANAGEMENT_KEY=KEY,
        OPENROUTER_BASE_URL=httpserver.url_for("/api/v1"),
        TOKENWISE_HTTP_MAX_BACKOFF=0.01,
    )
    (connector,) = from_settings(settings)
    connector.today = lambda: today
    connector.http.pacer.interval = 0  # production paces at 120/min
    return connector


def _not_offered(httpserver) -> None:
    """An account without the workspaces and members endpoints (older API, not an organization)."""
    for path in ("/api/v1/workspaces", "/api/v1/organization/members"):
        _serve(httpserver, path, None, "not-found-404.json", status=404)


def _default_keys(httpserver, workspace: str | None = None) -> None:
    where = {"include_disabled": "true"} | ({"workspace_id": workspace} if workspace else {})
    _serve(httpserver, "/api/v1/keys", {**where, "offset": "0"}, "keys-page0.json")
    _serve(httpserver, "/api/v1/keys", {**where, "offset": "2"}, "keys-page1.json")
    _serve(httpserver, "/api/v1/keys", {**where, "offset": "5"}, "keys-empty.json")


def _keys(httpserver) -> None:
    _not_offered(httpserver)
    _default_keys(httpserver)


def _org(httpserver) -> None:
    """Three workspaces and three members, each list on two pages; keys in two workspaces."""
    for path, name in (("/api/v1/workspaces", "workspaces"), ("/api/v1/organization/members", "members")):
        _serve(httpserver, path, {"limit": "100", "offset": "0"}, f"{name}-page0.json")
        _serve(httpserver, path, {"limit": "100", "offset": "2"}, f"{name}-page1.json")
    _default_keys(httpserver, DEFAULT_WS)
    research = {"include_disabled": "true", "workspace_id": RESEARCH_WS}
    _serve(httpserver, "/api/v1/keys", {**research, "offset": "0"}, "keys-research.json")
    _serve(httpserver, "/api/v1/keys", {**research, "offset": "2"}, "keys-empty.json")
    prod = {"include_disabled": "true", "workspace_id": PROD_WS, "offset": "0"}
    _serve(httpserver, "/api/v1/keys", prod, "keys-empty.json")


def _activity(httpserver, day: str, who: str | None, name: str) -> None:
    query = {"date": day} if who is None else {"date": day, "api_key_hash": who}
    _serve(httpserver, "/api/v1/activity", query, name)


def _standard(httpserver, keys=_keys) -> None:
    keys(httpserver)
    _activity(httpserver, "2026-03-01", None, "activity-2026-03-01-org.json")
    _activity(httpserver, "2026-03-01", ALICE, "activity-2026-03-01-alice.json")
    _activity(httpserver, "2026-03-01", CI, "activity-2026-03-01-ci.json")
    _activity(httpserver, "2026-03-01", BOB, "activity-empty.json")
    _activity(httpserver, "2026-03-02", None, "activity-2026-03-02-org.json")
    _activity(httpserver, "2026-03-02", ALICE, "activity-2026-03-02-alice.json")
    _activity(httpserver, "2026-03-02", CI, "activity-empty.json")
    _activity(httpserver, "2026-03-02", BOB, "activity-2026-03-02-bob.json")


def _totals(engine):
    with engine.connect() as conn:
        return conn.execute(
            select(
                func.count(),
                func.sum(UsageDaily.cost_micros),
                func.sum(UsageDaily.input_tokens),
                func.sum(UsageDaily.output_tokens),
                func.sum(UsageDaily.requests),
            )
        ).one()


def _by_actor(engine):
    with engine.connect() as conn:
        rows = conn.execute(
            select(UsageDaily.actor, func.sum(UsageDaily.cost_micros), func.sum(UsageDaily.input_tokens))
            .group_by(UsageDaily.actor)
            .order_by(UsageDaily.actor)
        ).all()
    return {actor: (cost, tokens) for actor, cost, tokens in rows}


EXPECTED_TOTALS = (7, 1_795_123, 5_450, 1_615, 33)
#: What the keys /keys names hold (micro-USD, tokens), whether or not the workspaces are read.
BY_KEY = {
    f"openrouter_key:{ALICE}": (1_015_123, 50 + 2_500 + 900),
    f"openrouter_key:{BOB}": (500_000, 1_000),
    f"openrouter_key:{CI}": (30_000, 100),
}


def test_end_to_end(engine, httpserver):
    _standard(httpserver)
    connector = _connector(httpserver)
    kwargs = dict(workspace_id="W", since=date(2026, 3, 1), today=TODAY)  # until = tomorrow

    outcome = run_source(engine, connector, **kwargs)
    assert outcome.status == "ok", outcome.error
    # Org activity: day 1 $0.015 + $0.0300000001 + $1.25 + free; day 2 $0.5 + $0.000123.
    assert _totals(engine) == EXPECTED_TOTALS
    assert _by_actor(engine) == {
        **BY_KEY,
        UNATTRIBUTED: (250_000, 500 + 400),  # claude remainder + the free model
    }
    assert usage_by_email(engine) == {"alice@example.com": 1_015_123, "bob@example.com": 500_000}

    with engine.connect() as conn:
        raw = conn.execute(
            select(UsageDaily.raw_amount, UsageDaily.raw_unit, UsageDaily.cost_basis).where(
                UsageDaily.actor == f"openrouter_key:{CI}"
            )
        ).one()
        watermark = conn.execute(select(SyncState.watermark).where(SyncState.source == "openrouter")).scalar()
    assert tuple(raw) == ("0.0300000001", "usd", "billed")
    assert watermark == TODAY  # today is incomplete: never requested

    requested = [
        (r.args.get("date"), r.args.get("api_key_hash"))
        for r, _ in httpserver.log
        if r.path.endswith("activity")
    ]
    assert ("2026-03-03", None) not in requested
    assert not any(hash_ in (UNUSED, NEW) for _, hash_ in requested)  # never spent / not yet created
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r, _ in httpserver.log)

    again = run_source(engine, connector, **kwargs)
    assert again.status == "ok"
    assert _totals(engine) == EXPECTED_TOTALS
    connector.close()


def test_bounded_key_calls_keep_org_totals_exact(engine, httpserver):
    _standard(httpserver)
    connector = _connector(httpserver)
    connector.max_keys_per_day = 1  # only the biggest spender (alice) is asked for
    outcome = run_source(
        engine, connector, workspace_id="W", since=date(2026, 3, 1), until=date(2026, 3, 3), today=TODAY
    )
    assert outcome.status == "ok", outcome.error
    assert _totals(engine)[1:] == EXPECTED_TOTALS[1:]
    assert _by_actor(engine)[UNATTRIBUTED][0] == 250_000 + 30_000 + 500_000
    asked = {r.args.get("api_key_hash") for r, _ in httpserver.log if r.path.endswith("activity")}
    assert asked == {None, ALICE}


def test_keys_exceeding_the_org_total_give_no_unattributed_row(httpserver):
    _keys(httpserver)
    httpserver.expect_request("/api/v1/activity", query_string={"date": "2026-03-01"}).respond_with_json(
        {"data": [{"date": "2026-03-01", "model": "openai/gpt-4.1", "usage": 0.015, "requests": 5}]}
    )
    _activity(httpserver, "2026-03-01", ALICE, "activity-2026-03-01-alice.json")
    _activity(httpserver, "2026-03-01", CI, "activity-empty.json")
    _activity(httpserver, "2026-03-01", BOB, "activity-empty.json")
    connector = _connector(httpserver)
    (batch,) = connector.fetch(date(2026, 3, 1), date(2026, 3, 2))
    assert {u.actor for u in batch.usage} == {f"openrouter_key:{ALICE}"}
    hints = {h.actor: (h.email, h.name) for h in batch.identities}
    assert hints[f"openrouter_key:{ALICE}"] == ("alice@example.com", "Alice@Example.com")
    assert hints[f"openrouter_key:{BOB}"] == ("bob@example.com", "Bob laptop")
    assert hints[f"openrouter_key:{CI}"] == (None, "CI pipeline")
    # No members to ask: the emails were read from the keys' names and labels, and say so.
    origins = {h.actor: h.origin for h in batch.identities}
    assert origins[f"openrouter_key:{ALICE}"] == origins[f"openrouter_key:{BOB}"] == NAME_GUESS
    assert origins[f"openrouter_key:{CI}"] == "auto"  # no email: no link is made at all


def test_window_is_clamped_to_the_last_30_completed_days(httpserver):
    _not_offered(httpserver)
    _serve(httpserver, "/api/v1/keys", None, "keys-empty.json")
    _serve(httpserver, "/api/v1/activity", None, "activity-empty.json")
    connector = _connector(httpserver)
    batches = list(connector.fetch(date(2025, 12, 1), date(2026, 3, 10)))
    days = [r.args["date"] for r, _ in httpserver.log if r.path.endswith("activity")]
    expected = [(TODAY - timedelta(days=n)).isoformat() for n in range(30, 0, -1)]
    assert days == expected
    assert [b.window_start.isoformat() for b in batches] == expected
    assert list(connector.fetch(date(2026, 3, 3), date(2026, 3, 4))) == []  # only today: nothing


def test_non_management_key_is_a_clear_error(engine, httpserver):
    _serve(httpserver, "/api/v1/workspaces", None, "error-403.json", status=403)
    connector = _connector(httpserver)
    outcome = run_source(engine, connector, workspace_id="W", since=date(2026, 3, 1), today=TODAY)
    assert outcome.status == "failed"
    assert "a management key is required" in outcome.error
    assert "Only management keys can perform this operation" in outcome.error
    assert KEY not in outcome.error
    assert _totals(engine)[0] == 0


def test_429_with_retry_after_then_success(httpserver):
    httpserver.expect_oneshot_request("/api/v1/keys").respond_with_json(
        {"error": {"code": 429, "message": "Rate limit exceeded"}}, status=429, headers={"Retry-After": "0"}
    )
    _standard(httpserver)
    connector = _connector(httpserver)
    batches = list(connector.fetch(date(2026, 3, 1), date(2026, 3, 3)))
    assert sum(u.cost.micros for b in batches for u in b.usage) == 1_795_123
    assert [r.path for r, _ in httpserver.log].count("/api/v1/keys") == 4  # 429 + three pages


def test_invalid_json_fails_and_stores_nothing(engine, httpserver):
    _keys(httpserver)
    httpserver.expect_request("/api/v1/activity").respond_with_data('{"data": [{"usage": 0.1,', status=200)
    connector = _connector(httpserver)
    outcome = run_source(engine, connector, workspace_id="W", since=date(2026, 3, 1), today=TODAY)
    assert outcome.status == "failed"
    assert "openrouter: activity: response is not valid JSON" in outcome.error
    assert _totals(engine)[0] == 0


def test_bad_row_fails(httpserver):
    _keys(httpserver)
    httpserver.expect_request("/api/v1/activity").respond_with_json(
        {"data": [{"date": "2026-03-01", "model": "m", "usage": "lots", "requests": 1}]}
    )
    connector = _connector(httpserver)
    with pytest.raises(SourceError, match="activity: bad activity row"):
        list(connector.fetch(date(2026, 3, 1), date(2026, 3, 2)))


def test_from_settings():
    assert from_settings(Settings()) == []
    settings = Settings(
        OPENROUTER_MANAGEMENT_KEY="k",
        accounts=[
            SourceAccount(name="openrouter-lab", vendor="openrouter", key="k2", base_url="http://x/api")
        ],
    )
    connectors = from_settings(settings)
    assert [c.name for c in connectors] == ["openrouter", "openrouter-lab"]
    assert str(connectors[1].http.client.base_url) == "http://x/api/"
    assert connectors[0].trailing_days == 2 and connectors[0].lag == timedelta(days=1)
    for connector in connectors:
        connector.close()


def _links(engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Identity.actor, Person.email, Identity.origin)
            .join(Person, Person.id == Identity.person_id)
            .where(Identity.actor.like("openrouter_key:%"))
        ).all()
    return {actor.removeprefix("openrouter_key:"): (email, origin) for actor, email, origin in rows}


def test_every_workspace_and_creator_attribution(engine, httpserver):
    _standard(httpserver, keys=_org)
    _activity(httpserver, "2026-03-01", RESEARCH_BOT, "activity-2026-03-01-research.json")
    _activity(httpserver, "2026-03-02", RESEARCH_BOT, "activity-empty.json")
    connector = _connector(httpserver)
    kwargs = dict(workspace_id="W", since=date(2026, 3, 1), today=TODAY)
    try:
        outcome = run_source(engine, connector, **kwargs)
        assert outcome.status == "ok", outcome.error
        # The Research workspace's key takes what /keys alone left unattributed: the org total holds.
        assert _totals(engine) == EXPECTED_TOTALS
        assert _by_actor(engine) == {
            **BY_KEY,
            f"openrouter_key:{RESEARCH_BOT}": (250_000, 500),
            UNATTRIBUTED: (0, 400),  # only the free model's tokens
        }
        assert usage_by_email(engine) == {
            "alice@example.com": 1_015_123,
            "bob@example.com": 500_000,
            "dana@example.com": 250_000,
        }
        assert run_source(engine, connector, **kwargs).status == "ok"
        assert _totals(engine) == EXPECTED_TOTALS
    finally:
        connector.close()
    assert _links(engine) == {
        ALICE: ("alice@example.com", "auto"),  # her creator id is a member: stated, not guessed
        RESEARCH_BOT: ("dana@example.com", "auto"),
        MALLORY_NAMED: ("erik@example.com", "auto"),  # the creator wins over an email-like name
        BOB: ("bob@example.com", NAME_GUESS),  # no creator: the label's email, marked as a guess
        NEW: ("carol@example.com", NAME_GUESS),
    }
    with engine.connect() as conn:
        emails = set(conn.execute(select(Person.email)).scalars())
    assert "mallory@example.com" not in emails
    keys_asked = [
        (r.args.get("workspace_id"), r.args.get("offset"))
        for r, _ in httpserver.log
        if r.path.endswith("/keys")
    ]
    assert keys_asked[:6] == [
        (DEFAULT_WS, "0"),
        (DEFAULT_WS, "2"),
        (DEFAULT_WS, "5"),
        (RESEARCH_WS, "0"),
        (RESEARCH_WS, "2"),
        (PROD_WS, "0"),
    ]


def test_identities_prefer_the_creator_and_accept_both_spellings():
    members = {
        "user_dana": {
            "id": "user_dana",
            "email": "Dana@Example.com",
            "first_name": "Dana",
            "last_name": None,
        },
        "user_nomail": {"id": "user_nomail", "email": None},
    }
    keys = [
        {"hash": "h1", "name": "x@example.com", "creator_user_id": "user_dana"},
        {"hash": "h2", "name": "ci", "creatorUserId": "user_dana"},
        {"hash": "h3", "name": "y@example.com", "creator_user_id": "user_gone"},  # not a member
        {"hash": "h4", "label": "z@example.com", "creator_user_id": "user_nomail"},
        {"hash": "h5", "name": "shared", "creator_user_id": None},
    ]
    hints = {
        h.actor.removeprefix("openrouter_key:"): (h.email, h.name, h.origin)
        for h in OpenRouterConnector.identities(keys, members)
    }
    assert hints == {
        "h1": ("dana@example.com", "Dana", "auto"),
        "h2": ("dana@example.com", "Dana", "auto"),
        "h3": ("y@example.com", "y@example.com", NAME_GUESS),
        "h4": ("z@example.com", "z@example.com", NAME_GUESS),
        "h5": (None, "shared", "auto"),
    }


def test_a_name_guess_gives_way_to_the_creator_history_included(engine, httpserver):
    """First no members endpoint: the key named mallory@… is guessed to be Mallory's. Once the
    members are listable, its creator (Erik) takes it, and its stored history moves with it."""
    research = json.loads(_fixture("keys-research.json"))
    research["data"][1]["usage"] = 1.0  # the mallory-named key has spent
    activity = "activity-2026-03-01-research.json"

    def serve(members: bool) -> None:
        httpserver.clear()
        _serve(httpserver, "/api/v1/workspaces", None, "not-found-404.json", status=404)
        if members:
            for offset in ("0", "2"):
                query = {"limit": "100", "offset": offset}
                name = f"members-page{int(offset) // 2}.json"
                _serve(httpserver, "/api/v1/organization/members", query, name)
        else:
            _serve(httpserver, "/api/v1/organization/members", None, "not-found-404.json", status=404)
        keys = {"include_disabled": "true"}
        httpserver.expect_request("/api/v1/keys", query_string={**keys, "offset": "0"}).respond_with_json(
            research
        )
        _serve(httpserver, "/api/v1/keys", {**keys, "offset": "2"}, "keys-empty.json")
        _activity(httpserver, "2026-03-01", None, activity)
        _activity(httpserver, "2026-03-01", MALLORY_NAMED, activity)
        _serve(httpserver, "/api/v1/activity", None, "activity-empty.json")  # every other query

    serve(members=False)
    connector = _connector(httpserver)
    try:
        first = run_source(engine, connector, workspace_id="W", since=date(2026, 3, 1), today=TODAY)
        assert first.status == "ok", first.error
        assert _links(engine)[MALLORY_NAMED] == ("mallory@example.com", NAME_GUESS)
        assert usage_by_email(engine) == {"mallory@example.com": 250_000}

        serve(members=True)
        # Only 2026-03-02 is fetched again: the 03-01 row moves by re-attribution, not by re-fetch.
        second = run_source(engine, connector, workspace_id="W", since=date(2026, 3, 2), today=TODAY)
        assert second.status == "ok", second.error
    finally:
        connector.close()
    assert _links(engine)[MALLORY_NAMED] == ("erik@example.com", "auto")
    assert _links(engine)[RESEARCH_BOT] == ("dana@example.com", "auto")
    assert usage_by_email(engine) == {"erik@example.com": 250_000}
    assert _totals(engine)[1] == 250_000
