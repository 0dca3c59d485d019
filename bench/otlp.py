"""B7: the OTLP intake, metric points stored per second, idempotently.

Each synthetic person is one Claude Code process: a real OpenTelemetry SDK ``MeterProvider`` with
Claude Code's instruments and resource (delta temporality, the agent's default), whose exports are
encoded by the SDK's own OTLP encoder, every body built before the clock starts. The engine is the
intake's own path minus the socket: ``otlp.decode`` (the official protobuf messages) then
``services.otel.ingest`` (raw points stored once each, the touched days folded into the daily
rows and rollups), one request at a time as the web app runs them. Then a tenth of the requests is
sent again, as an exporter retrying after a lost answer would, and the stored sums must not move.

Beside it, the floor: a plain driver ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE SET
amount = amount + excluded.amount`` of the same decoded points into a table keyed like the daily
rows, one transaction per request. It does less than the engine (no raw points, so a resend would
double count; no rollups, no people): the ratio is what the intake's guarantees cost.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter as Tally
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from sqlalchemy import text

from bench import dbbuild
from bot.db.engine import make_engine
from bot.services import otel
from bot.sources.otel import otlp

WORKSPACE = "TBENCH"
MODELS = ("claude-sonnet-4-5", "claude-opus-4-1")
TOKEN_TYPES = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cacheRead": "cache_read_tokens",
    "cacheCreation": "cache_write_tokens",
}
RESEND_SHARE = 10  # every tenth request is sent twice
LIMITS = otlp.Limits(max_bytes=4_000_000, max_points=50_000, max_people=1_000, max_age_days=30)


@dataclass
class Generated:
    bodies: list[bytes] = field(default_factory=list)
    # (email, measure) -> amount: tokens per type and ``cost_micros``, summed over every export.
    expected: Tally = field(default_factory=Tally)


def email(person: int) -> str:
    return f"agent{person:05d}@bench.example"


def generate(people: int, exports: int, seed: int) -> Generated:
    """``exports`` rounds of every person's agent: each round adds tokens and cost on both models
    and collects one delta export (about 10 points) as the exporter would send it."""
    out = Generated()
    rng = random.Random(seed)
    agents = []
    for person in range(people):
        reader = InMemoryMetricReader(preferred_temporality={Counter: AggregationTemporality.DELTA})
        provider = MeterProvider(
            metric_readers=[reader],
            resource=Resource.create({"service.name": "claude-code", "service.version": "2.0.14"}),
        )
        meter = provider.get_meter("com.anthropic.claude_code", "2.0.14")
        agents.append(
            (
                person,
                reader,
                meter.create_counter("claude_code.token.usage", unit="tokens"),
                meter.create_counter("claude_code.cost.usage", unit="USD"),
            )
        )
    for _ in range(exports):
        for person, reader, tokens, cost in agents:
            who = {"user.email": email(person), "session.id": f"s{person}", "organization.id": "org-1"}
            for model in MODELS:
                for kind, measure in TOKEN_TYPES.items():
                    amount = rng.randint(1, 20_000)
                    tokens.add(amount, {**who, "model": model, "type": kind})
                    out.expected[(email(person), measure)] += amount
                cents = rng.randint(1, 500)  # whole cents: the double's repr is exact
                cost.add(cents / 100, {**who, "model": model})
                out.expected[(email(person), "cost_micros")] += cents * 10_000
            out.bodies.append(encode_metrics(reader.get_metrics_data()).SerializeToString())
    return out


def _decode(body: bytes) -> otlp.Decoded:
    return otlp.decode(
        otlp.METRICS, body, content_type=otlp.PROTOBUF, encoding="", limits=LIMITS, now_ns=time.time_ns()
    )


def engine_ingest(url: str, bodies: list[bytes]) -> tuple[float, int]:
    """(seconds, points) for every body through decode + ingest, sequentially."""
    engine = make_engine(url)
    points = 0
    try:
        started = time.perf_counter()
        for body in bodies:
            points += otel.ingest(engine, workspace_id=WORKSPACE, decoded=_decode(body))
        return time.perf_counter() - started, points
    finally:
        engine.dispose()


def stored(url: str) -> Tally:
    columns = ("cost_micros", *TOKEN_TYPES.values())
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT actor, {', '.join(f'SUM({c})' for c in columns)} FROM usage_daily "
                    "WHERE source = 'otel_claude_code' GROUP BY actor"
                )
            ).all()
    finally:
        engine.dispose()
    found = Tally()
    for actor, *sums in rows:
        for column, amount in zip(columns, sums, strict=True):
            found[(actor.removeprefix("email:"), column)] += int(amount or 0)
    return found


PLAIN_TABLE = """CREATE TABLE plain_otel_daily (
    workspace_id VARCHAR(64) NOT NULL, day DATE NOT NULL, actor VARCHAR(400) NOT NULL,
    model VARCHAR(200) NOT NULL, measure VARCHAR(40) NOT NULL, amount BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, day, actor, model, measure))"""


def plain_upsert(kind: str, url: str, bodies: list[bytes]) -> float:
    """The floor: the same decoded points (decoded before the clock) upserted by the driver."""
    marker = "?" if kind == "sqlite" else "%s"
    sql = (
        "INSERT INTO plain_otel_daily (workspace_id, day, actor, model, measure, amount) "
        f"VALUES ({', '.join([marker] * 6)}) ON CONFLICT (workspace_id, day, actor, model, measure) "
        "DO UPDATE SET amount = plain_otel_daily.amount + excluded.amount"
    )
    batches = [
        [(WORKSPACE, p.day, p.actor, p.model, p.measure, p.value) for p in _decode(body).points]
        for body in bodies
    ]
    if kind == "sqlite":
        batches = [[(*row[:1], row[1].isoformat(), *row[2:]) for row in batch] for batch in batches]
    engine = make_engine(url)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(PLAIN_TABLE)
        raw.commit()
        started = time.perf_counter()
        for batch in batches:
            cursor.executemany(sql, batch)
            raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()
        engine.dispose()


def run(
    kind: str, *, people: int, exports: int, seed: int, cache_dir: Path, pg_admin_url: str | None, log
) -> dict:
    log(f"B7: encoding {people:,} Claude Code agents x {exports} exports with the OpenTelemetry SDK")
    generated = generate(people, exports, seed)
    resent = generated.bodies[::RESEND_SHARE]
    engine_url = dbbuild.fresh_database(
        kind, f"tokenwise_bench_otlp_engine_{os.getpid()}", cache_dir=cache_dir, pg_admin_url=pg_admin_url
    )
    plain_url = dbbuild.fresh_database(
        kind, f"tokenwise_bench_otlp_plain_{os.getpid()}", cache_dir=cache_dir, pg_admin_url=pg_admin_url
    )
    problems: list[str] = []
    try:
        log(f"B7: {len(generated.bodies):,} requests through otlp.decode + otel.ingest")
        seconds, points = engine_ingest(engine_url, generated.bodies)
        first = stored(engine_url)
        if first != generated.expected:
            wrong = sorted(
                k for k in generated.expected.keys() | first.keys() if first[k] != generated.expected[k]
            )
            problems.append(
                f"B7: stored sums differ from the generated ones for {len(wrong)} keys, e.g. {wrong[:3]}"
            )
        log(f"B7: {len(resent):,} requests sent again (an exporter's retries)")
        engine_ingest(engine_url, resent)
        if stored(engine_url) != first:
            problems.append("B7: sending requests again changed the stored sums (not idempotent)")
        log("B7: plain executemany upsert of the same points")
        plain_seconds = plain_upsert(kind, plain_url, generated.bodies)
    finally:
        for url in (engine_url, plain_url):
            dbbuild.drop_database(kind, url, pg_admin_url)
    return {
        "people": people,
        "exports": exports,
        "requests": len(generated.bodies),
        "points": points,
        "resent_requests": len(resent),
        "engine_seconds": seconds,
        "engine_points_per_s": points / seconds,
        "plain_seconds": plain_seconds,
        "plain_points_per_s": points / plain_seconds,
        "ratio": plain_seconds / seconds,
        "problems": problems,
    }
