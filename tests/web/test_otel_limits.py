"""The OTLP intake's bounds: the per-token rate limit (429 with Retry-After, bounded memory) and
the retention of raw points; and active time folded into the daily activity rows (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.db.models import ActivityDaily, OtelPoint
from bot.domain.clock import utc_today
from bot.services import otel
from bot.services.runtime import Runtime
from bot.settings import Settings
from bot.slack.app import build_app
from bot.sources.otel.base import Person
from bot.sources.otel.otlp import NANOS, Decoded, Point
from bot.web import RateLimit, build_web_app
from tests.support.otel import ClaudeCode, claude_person
from tests.support.slack_fake import BOT_TOKEN, SIGNING_SECRET, start_fake_slack

ANA = "email:ana@example.com"


@pytest.fixture(autouse=True)
def _fresh_prune_ledger():
    otel.PRUNED.days.clear()
    yield
    otel.PRUNED.days.clear()


def _client(engine, httpserver, **settings) -> TestClient:
    fake = start_fake_slack(httpserver)
    config = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url, **settings
    )
    runtime = Runtime(settings=config, engine=engine)
    return TestClient(build_web_app(runtime, build_app(runtime)))


def _post(client, token: str, agent: ClaudeCode | bytes):
    return client.post(
        "/v1/metrics",
        content=agent if isinstance(agent, bytes) else agent.protobuf(),
        headers={"content-type": "application/x-protobuf", "authorization": f"Bearer {token}"},
    )


# -- rate limit -------------------------------------------------------------------------------


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_the_limit_counts_per_token_and_minute_and_says_when_to_retry():
    clock = Clock(600.0 + 15)  # 15 s into a minute
    limit = RateLimit(2, clock=clock)
    assert limit.wait("a") is None and limit.wait("a") is None
    assert limit.wait("a") == 45  # refused: the window reopens in 45 s
    assert limit.wait("b") is None  # another token has its own budget
    clock.at = 660.0  # the next minute
    assert limit.wait("a") is None


def test_memory_stays_bounded_however_many_tokens_arrive():
    clock = Clock(0.0)
    limit = RateLimit(5, max_keys=3, clock=clock)
    for n in range(10):
        assert limit.wait(f"key{n}") is None
        assert len(limit.windows) <= 3
    assert list(limit.windows) == ["key7", "key8", "key9"]  # the oldest were forgotten first
    clock.at = 120.0
    limit.wait("late")
    assert list(limit.windows) == ["late"]  # stale windows go before any current one


def test_a_token_over_its_rate_gets_429_and_retry_after_while_another_is_served(engine, httpserver):
    first = otel.create_token(engine, workspace_id="default")
    other = otel.create_token(engine, workspace_id="T2")
    agent = ClaudeCode()
    agent.use(claude_person("ana@example.com"), input=1)
    body = agent.protobuf()
    with _client(engine, httpserver, TOKENWISE_OTEL_REQUESTS_PER_MINUTE=2) as client:
        answers = [_post(client, first, body) for _ in range(5)]
        assert _post(client, other, body).status_code == 200
    codes = [a.status_code for a in answers]
    # Two per minute: even if a minute turns over during the five, one of them is refused.
    assert codes[:2] == [200, 200] and 429 in codes and set(codes) == {200, 429}
    refused = next(a for a in answers if a.status_code == 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60


# -- retention and active time --------------------------------------------------------------


def _point(day: date, value: int, measure: str = "input_tokens", series: str = "s1") -> Point:
    time_ns = int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()) * NANOS
    return Point(
        "claude_code", series, "claude_code.token.usage", time_ns, time_ns, ANA, measure, "m", False, value
    )


def _ingest(engine, *points: Point, retention_days: int | None = None) -> None:
    decoded = Decoded(points=list(points), people={ANA: Person(ANA, "ana@example.com")})
    otel.ingest(engine, workspace_id="W", decoded=decoded, retention_days=retention_days)


def _point_days(engine) -> list[date]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(OtelPoint.day)).scalars())


def _activity(engine) -> dict[date, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(ActivityDaily.day, ActivityDaily.active_seconds)).all())


def test_raw_points_older_than_the_retention_are_pruned_and_their_daily_rows_kept(engine):
    today = utc_today()
    old, recent = today - timedelta(days=50), today - timedelta(days=10)
    _ingest(engine, _point(old, 100), _point(old, 600, "active_seconds", "s2"), _point(recent, 5))
    assert _point_days(engine) == [old, old, recent]

    _ingest(engine, _point(today, 7), retention_days=35)
    assert _point_days(engine) == [recent, today]  # within 35 days: kept
    assert _activity(engine) == {old: 600}  # the old day's row stays though its points went

    # A vendor batch over the whole range refolds only days that still have points: the pruned
    # day's rows are not erased by a refold from nothing.
    with engine.begin() as conn:
        otel.refold_shadowed(
            conn,
            workspace_id="W",
            vendor="claude_code",
            source="claude_code",
            start=old,
            end=today + timedelta(1),
        )
    assert _activity(engine) == {old: 600}


def test_pruning_runs_once_a_day_per_process_and_not_without_a_retention(engine):
    today = utc_today()
    old = today - timedelta(days=50)
    _ingest(engine, _point(old, 1), retention_days=None)
    _ingest(engine, _point(today, 1), retention_days=None)
    assert _point_days(engine) == [old, today]  # no retention given: nothing pruned
    _ingest(engine, _point(today, 2, series="s2"), retention_days=35)
    assert _point_days(engine) == [today, today]
    _ingest(engine, _point(old, 3, series="s3"))  # an old point stored again (no age check here)
    _ingest(engine, _point(today, 4, series="s4"), retention_days=35)
    assert old in _point_days(engine)  # already pruned today: not again


def test_the_retention_never_undercuts_the_accepted_age(engine, httpserver):
    token = otel.create_token(engine, workspace_id="default")
    agent = ClaudeCode()
    agent.use(claude_person("ana@example.com"), input=1)
    old = utc_today() - timedelta(days=20)
    _ingest(engine, _point(old, 9))  # workspace "W": pruning is per workspace
    otel.ingest(
        engine,
        workspace_id="default",
        decoded=Decoded(points=[_point(old, 9)], people={ANA: Person(ANA, "ana@example.com")}),
    )
    with _client(
        engine, httpserver, TOKENWISE_OTEL_RETENTION_DAYS=5, TOKENWISE_OTEL_MAX_AGE_DAYS=30
    ) as client:
        assert _post(client, token, agent).status_code == 200
    assert _point_days(engine).count(old) == 2  # 20 days old, accepted up to 30: kept


def test_claude_code_active_time_is_folded_into_daily_activity(engine, httpserver):
    token = otel.create_token(engine, workspace_id="default")
    agent = ClaudeCode()
    person = claude_person("ana@example.com")
    agent.active.add(1799.6, person)
    agent.use(person, input=10)
    with _client(engine, httpserver) as client:
        assert _post(client, token, agent).status_code == 200
    assert _activity(engine) == {utc_today(): 1800}  # whole seconds
