"""B7: the OTLP intake, metric points stored per second, idempotently.

Each synthetic person is one Claude Code process: a real OpenTelemetry SDK ``MeterProvider`` with
Claude Code's instruments and resource (delta temporality, the agent's default), whose exports are
encoded by the SDK's own OTLP encoder, every body built before the clock starts. The engine is the
intake's own path minus the socket, as the web app runs it: every agent sends its exports one
after the other, all agents at once; each request is decoded in a worker thread (``otlp.decode``,
the official protobuf messages) and handed to the web app's ``otel_group_commit.GroupCommit``, which stores
the requests that arrive together in one transaction (raw points stored once each, the touched
days folded into the daily rows and rollups) and answers each after its group's commit. Then a
tenth of the requests is sent again, as an exporter retrying after a lost answer would, and the
stored sums must not move. Beside it, the first ``SINGLE_REQUESTS`` requests one per
transaction (``otel.ingest``, no grouping), on a database of its own.

The floor: a plain driver ``executemany`` of the same daily rows into ``usage_daily``, one
transaction per request: each request's points (decoded before the clock) summed per day, person
and model into the row the engine writes, ``INSERT ... ON CONFLICT DO UPDATE SET tokens = tokens +
excluded.tokens`` (the exports are deltas). It does less than the engine (no raw points, so a
resend would double count; no rollups, no people, no sessions): the ratio is what the intake's
guarantees cost. Both sides' stored sums are checked against the generated ones.
"""

from __future__ import annotations

import asyncio
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
from bot.db.store import USAGE_COLUMNS, USAGE_KEY, USAGE_VALUES
from bot.domain.money import micros_to_usd
from bot.services import otel
from bot.services.otel_group_commit import GroupCommit
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
SINGLE_REQUESTS = 2_000  # one request per transaction: the first ones only (a large run has 20,000)
LIMITS = otlp.Limits(max_bytes=4_000_000, max_points=50_000, max_people=1_000, max_age_days=30)


@dataclass
class Generated:
    bodies: list[bytes] = field(default_factory=list)
    # (email, measure) -> amount: tokens per type and ``cost_micros``, summed over every export.
    expected: Tally = field(default_factory=Tally)
    # The same, summed over the first ``SINGLE_REQUESTS`` exports only.
    expected_first: Tally = field(default_factory=Tally)


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
            first = len(out.bodies) < SINGLE_REQUESTS
            who = {"user.email": email(person), "session.id": f"s{person}", "organization.id": "org-1"}
            for model in MODELS:
                for kind, measure in TOKEN_TYPES.items():
                    amount = rng.randint(1, 20_000)
                    tokens.add(amount, {**who, "model": model, "type": kind})
                    out.expected[(email(person), measure)] += amount
                    if first:
                        out.expected_first[(email(person), measure)] += amount
                cents = rng.randint(1, 500)  # whole cents: the double's repr is exact
                cost.add(cents / 100, {**who, "model": model})
                out.expected[(email(person), "cost_micros")] += cents * 10_000
                if first:
                    out.expected_first[(email(person), "cost_micros")] += cents * 10_000
            out.bodies.append(encode_metrics(reader.get_metrics_data()).SerializeToString())
    return out


def _decode(body: bytes) -> otlp.Decoded:
    return otlp.decode(
        otlp.METRICS, body, content_type=otlp.PROTOBUF, encoding="", limits=LIMITS, now_ns=time.time_ns()
    )


def engine_sequential(url: str, bodies: list[bytes]) -> tuple[float, float, int]:
    """(seconds, CPU seconds, points) for every body through decode + ingest, one request per
    transaction."""
    engine = make_engine(url)
    points = 0
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for body in bodies:
            points += otel.ingest(engine, workspace_id=WORKSPACE, decoded=_decode(body))
        return time.perf_counter() - started, time.process_time() - cpu, points
    finally:
        engine.dispose()


def engine_grouped(url: str, bodies: list[bytes], agents: int) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds, points, transactions) for every body as the web app stores them:
    ``agents`` clients at once, each sending its bodies (every ``agents``-th) in turn, each
    decoded in a thread and submitted to one ``otel_group_commit.GroupCommit``."""
    engine = make_engine(url)
    groups = {"count": 0}
    intake = GroupCommit(engine)
    store = intake._store

    def counted(requests):
        groups["count"] += 1
        return store(requests)

    intake._store = counted

    async def client(own: list[bytes]) -> int:
        points = 0
        for body in own:
            points += await intake.submit(WORKSPACE, await asyncio.to_thread(_decode, body))
        return points

    async def everyone() -> int:
        return sum(await asyncio.gather(*(client(bodies[at::agents]) for at in range(agents))))

    try:
        started, cpu = time.perf_counter(), time.process_time()
        points = asyncio.run(everyone())
        return time.perf_counter() - started, time.process_time() - cpu, points, groups["count"]
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


USAGE_SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_micros")


def daily_rows(decoded: otlp.Decoded) -> list[tuple]:
    """One request's points as the ``usage_daily`` rows the engine writes (``USAGE_COLUMNS``)."""
    rows: dict[tuple, dict[str, int]] = {}
    for p in decoded.points:
        sums = rows.setdefault((p.day, p.actor, p.model), dict.fromkeys(USAGE_SUMS, 0))
        sums[p.measure] += p.value
    return [
        (
            WORKSPACE,
            "otel_claude_code",
            day,
            actor,
            model,
            "estimated",
            "usage",
            "claude_code",
            None,
            *(sums[name] for name in USAGE_SUMS[:4]),
            0,
            0,
            sums["cost_micros"],
            str(micros_to_usd(sums["cost_micros"])),
            "otel:claude_code",
            False,
            0,
        )
        for (day, actor, model), sums in rows.items()
    ]


def plain_upsert(kind: str, url: str, bodies: list[bytes]) -> tuple[float, float]:
    """The floor: the same daily rows (built before the clock) upserted by the driver, one
    transaction per request; (seconds, CPU seconds)."""
    marker = "?" if kind == "sqlite" else "%s"
    added = {*USAGE_SUMS[:4], "cache_write_1h_tokens", "requests", "cost_micros"}
    sql = (
        f"INSERT INTO usage_daily ({', '.join(USAGE_COLUMNS)}) "
        f"VALUES ({', '.join([marker] * len(USAGE_COLUMNS))}) "
        f"ON CONFLICT ({', '.join(USAGE_KEY)}) DO UPDATE SET "
        + ", ".join(
            f"{name} = usage_daily.{name} + excluded.{name}" if name in added else f"{name} = excluded.{name}"
            for name in USAGE_VALUES
        )
    )
    batches = [daily_rows(_decode(body)) for body in bodies]
    if kind == "sqlite":
        batches = [[(*row[:2], row[2].isoformat(), *row[3:]) for row in batch] for batch in batches]
    engine = make_engine(url)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            cursor.executemany(sql, batch)
            raw.commit()
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        raw.close()
        engine.dispose()


def _differences(found: Tally, expected: Tally, what: str) -> list[str]:
    wrong = sorted(k for k in expected.keys() | found.keys() if found[k] != expected[k])
    if not wrong:
        return []
    return [f"B7: {what} stored sums unlike the generated ones for {len(wrong)} keys, e.g. {wrong[:3]}"]


def run(
    kind: str, *, people: int, exports: int, seed: int, cache_dir: Path, pg_admin_url: str | None, log
) -> dict:
    log(f"B7: encoding {people:,} Claude Code agents x {exports} exports with the OpenTelemetry SDK")
    generated = generate(people, exports, seed)
    resent = generated.bodies[::RESEND_SHARE]
    urls = {
        side: dbbuild.fresh_database(
            kind, f"tokenwise_bench_otlp_{side}_{os.getpid()}", cache_dir=cache_dir, pg_admin_url=pg_admin_url
        )
        for side in ("engine", "single", "plain")
    }
    problems: list[str] = []
    try:
        log(f"B7: {len(generated.bodies):,} requests from {people:,} agents at once through the group commit")
        seconds, cpu, points, groups = engine_grouped(urls["engine"], generated.bodies, people)
        first = stored(urls["engine"])
        problems += _differences(first, generated.expected, "the engine")
        log(f"B7: {len(resent):,} requests sent again (an exporter's retries)")
        engine_grouped(urls["engine"], resent, min(people, len(resent)))
        if stored(urls["engine"]) != first:
            problems.append("B7: sending requests again changed the stored sums (not idempotent)")
        single = generated.bodies[:SINGLE_REQUESTS]
        log(f"B7: the first {len(single):,} requests again, one per transaction")
        single_seconds, single_cpu, single_points = engine_sequential(urls["single"], single)
        problems += _differences(
            stored(urls["single"]), generated.expected_first, "one request per transaction"
        )
        log("B7: plain executemany upsert of the same daily rows")
        plain_seconds, plain_cpu = plain_upsert(kind, urls["plain"], generated.bodies)
        problems += _differences(stored(urls["plain"]), generated.expected, "the plain upsert")
    finally:
        for url in urls.values():
            dbbuild.drop_database(kind, url, pg_admin_url)
    return {
        "people": people,
        "exports": exports,
        "requests": len(generated.bodies),
        "points": points,
        "resent_requests": len(resent),
        "transactions": groups,
        "engine_seconds": seconds,
        "engine_cpu_seconds": cpu,
        "engine_points_per_s": points / seconds,
        "single_requests": len(single),
        "single_seconds": single_seconds,
        "single_cpu_seconds": single_cpu,
        "single_points_per_s": single_points / single_seconds,
        "single_ratio": (single_points / single_seconds) / (points / plain_seconds),
        "plain_seconds": plain_seconds,
        "plain_cpu_seconds": plain_cpu,
        "plain_points_per_s": points / plain_seconds,
        "ratio": plain_seconds / seconds,
        "problems": problems,
    }
