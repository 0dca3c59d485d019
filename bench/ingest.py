"""B1 (ingest throughput) and B6 (backfill memory): a one-year backfill through the real sync
engine and connectors, against the vendors' pages served on loopback, beside a plain driver
``executemany`` upsert of the same rows into the same schema.

Each source's backfill runs in a fresh child process (``python -m bench.ingest``), so its time
and its peak RSS belong to the engine alone: the parent's generated data is not in it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import text

from bench import dbbuild, synth, vendors
from bot.db.engine import make_engine
from bot.db.store import USAGE_KEY, USAGE_VALUES
from bot.sources.base import split_window

SOURCES = ("openai", "cursor")
WINDOW_DAYS = {"openai": vendors.OPENAI_WINDOW_DAYS, "cursor": vendors.CURSOR_WINDOW_DAYS}
REPO = Path(__file__).resolve().parent.parent


def cursor_available() -> str | None:
    """None when bot.sources.cursor can be used, else why not (it may be under construction)."""
    try:
        from bot.sources.cursor import CursorConnector  # noqa: F401
    except Exception as error:  # a half-written module must not stop the OpenAI half
        return f"bot.sources.cursor does not import ({type(error).__name__}: {error})"
    return None


# -- child: one source's backfill through the engine ---------------------------------------


def peak_rss_bytes() -> int:
    """This process's peak resident set. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss across exec, so a child would report the parent's size at fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _connector(source: str, vendor_url: str):
    from bot.settings import Settings

    settings = Settings(
        http_max_retries=0,
        CURSOR_REQUESTS_PER_MINUTE=10**9,  # Cursor's 20/min pacing is for the real API, not loopback
    )
    if source == "openai":
        from bot.sources.openai import OpenAIConnector

        return OpenAIConnector(
            name="openai", key="sk-admin-bench", base_url=f"{vendor_url}/openai/v1", settings=settings
        )
    from bot.sources.cursor import CursorConnector

    return CursorConnector(name="cursor", key="key_bench", base_url=f"{vendor_url}/cursor", settings=settings)


def child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True, choices=SOURCES)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--vendor-url", required=True)
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--days", type=int, required=True)
    args = parser.parse_args(argv)

    from bot.services.sync import run_source, startup_heap_frozen

    engine = make_engine(args.db_url)
    connector = _connector(args.source, args.vendor_url)
    rss_before = peak_rss_bytes()
    end = args.start + timedelta(days=args.days)
    started, cpu_started = time.perf_counter(), time.process_time()
    with startup_heap_frozen():  # as `tokenwise sync` runs its pass once its connectors are built
        outcome = run_source(
            engine, connector, workspace_id=synth.WORKSPACE, since=args.start, until=end, today=end
        )
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    connector.close()
    engine.dispose()
    print(
        json.dumps(
            {
                "source": args.source,
                "status": outcome.status,
                "error": outcome.error,
                "usage_rows": outcome.usage_rows,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,  # this process only: the database server's work is not in it
                "rss_start_bytes": rss_before,
                "peak_rss_bytes": peak_rss_bytes(),
            }
        )
    )


# -- parent ---------------------------------------------------------------------------------


@dataclass
class Expected:
    rows: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    events: int = 0
    people: set[int] = field(default_factory=set)

    def totals(self, source: str) -> tuple:
        rows = self.rows[source]
        return (
            len(rows),
            sum(r[14] for r in rows),
            *(sum(r[i] for r in rows) for i in range(9, 14)),
            len({r[4] for r in rows}),
        )


def expected_rows(seed: int, people: int, start: date, days: int) -> Expected:
    found = Expected()
    for day in vendors.generate(seed, people, start, days):
        found.events += len(day.events)
        for source, rows in day.rows.items():
            found.rows[source].extend(rows)
            found.people.update(r[5] for r in rows)
    return found


def stored_totals(url: str, source: str) -> tuple:
    engine = make_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*), coalesce(sum(cost_micros), 0), coalesce(sum(input_tokens), 0), "
                "coalesce(sum(output_tokens), 0), coalesce(sum(cache_read_tokens), 0), "
                "coalesce(sum(cache_write_tokens), 0), coalesce(sum(requests), 0), count(DISTINCT actor) "
                "FROM usage_daily WHERE source = :source"
            ),
            {"source": source},
        ).one()
    engine.dispose()
    return tuple(int(x) for x in row)


def attribution(url: str) -> tuple[int, int]:
    """(rows with no person, people) after the engine's run."""
    engine = make_engine(url)
    with engine.connect() as conn:
        unlinked = conn.execute(text("SELECT count(*) FROM usage_daily WHERE person_id IS NULL")).scalar_one()
        persons = conn.execute(text("SELECT count(*) FROM person")).scalar_one()
    engine.dispose()
    return int(unlinked), int(persons)


def baseline(kind: str, url: str, expected: Expected, start: date, days: int, sources: list[str]) -> float:
    """Plain driver executemany upserts of the expected rows, one transaction per connector window."""
    columns = synth.USAGE_COLUMNS
    marker = "?" if kind == "sqlite" else "%s"
    sql = (
        f"INSERT INTO usage_daily ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))}) "
        f"ON CONFLICT ({', '.join(USAGE_KEY)}) DO UPDATE SET "
        + ", ".join(f"{name} = excluded.{name}" for name in USAGE_VALUES)
    )
    end = start + timedelta(days=days)
    engine = make_engine(url)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        for source in sources:
            rows = expected.rows[source]
            position = 0
            for _, window_end in split_window(start, end, WINDOW_DAYS[source]):
                stop = window_end.isoformat()
                first = position
                while position < len(rows) and rows[position][3] < stop:
                    position += 1
                batch = rows[first:position]
                if kind == "postgres":
                    batch = [(*r[:3], date.fromisoformat(r[3]), *r[4:]) for r in batch]
                cursor.executemany(sql, batch)
                raw.commit()
        seconds = time.perf_counter() - started
    finally:
        raw.close()
        engine.dispose()
    return seconds


def _run_child(source: str, db_url: str, vendor_url: str, start: date, days: int, profile_dir: Path | None):
    command = [
        sys.executable,
        "-m",
        "bench.ingest",
        "--source",
        source,
        "--db-url",
        db_url,
        "--vendor-url",
        vendor_url,
        "--start",
        start.isoformat(),
        "--days",
        str(days),
    ]
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        out = profile_dir / f"ingest-{source}.speedscope.json"
        command = ["uvx", "py-spy", "record", "--format", "speedscope", "-o", str(out), "--", *command]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"ingest child for {source} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


class VendorServer:
    """The vendor fake in its own process; ready once it has rendered every page."""

    def __init__(self, seed: int, people: int, start: date, days: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.vendors",
                "--seed",
                str(seed),
                "--people",
                str(people),
                "--start",
                start.isoformat(),
                "--days",
                str(days),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(5)
            raise RuntimeError("the vendor fake did not start")
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run(
    kind: str,
    *,
    people: int,
    seed: int,
    cache_dir: Path,
    pg_admin_url: str | None,
    log,
    profile_dir: Path | None = None,
) -> dict:
    start, days = synth.START, synth.DAYS
    missing_cursor = cursor_available()
    sources = ["openai"] if missing_cursor else list(SOURCES)
    log(f"B1/B6: rendering vendor pages for {people:,} people x {days} days")
    server = VendorServer(seed, people, start, days)
    engine_url = dbbuild.fresh_database(
        kind, f"tokenwise_bench_ingest_engine_{os.getpid()}", cache_dir=cache_dir, pg_admin_url=pg_admin_url
    )
    children = []
    try:
        for source in sources:
            log(f"B1/B6: {source} one-year backfill through the sync engine")
            result = _run_child(source, engine_url, server.url, start, days, profile_dir)
            if result["status"] != "ok":
                raise RuntimeError(f"{source} backfill failed: {result['error']}")
            children.append(result)
    finally:
        server.close()
    log("B1: plain executemany upsert of the same rows")
    expected = expected_rows(seed, people, start, days)
    baseline_url = dbbuild.fresh_database(
        kind, f"tokenwise_bench_ingest_plain_{os.getpid()}", cache_dir=cache_dir, pg_admin_url=pg_admin_url
    )
    plain_seconds = baseline(kind, baseline_url, expected, start, days, sources)

    problems = []
    per_source = {}
    for result in children:
        source = result["source"]
        want = expected.totals(source)
        got = stored_totals(engine_url, source)
        plain = stored_totals(baseline_url, source)
        if got != want:
            problems.append(f"{source}: engine stored {got}, generated {want}")
        if plain != want:
            problems.append(f"{source}: plain upsert stored {plain}, generated {want}")
        per_source[source] = {
            "rows": want[0],
            "seconds": result["seconds"],
            "rows_per_s": want[0] / result["seconds"],
            "cpu_seconds": result["cpu_seconds"],
            "peak_rss_mb": result["peak_rss_bytes"] / 2**20,
            "start_rss_mb": result["rss_start_bytes"] / 2**20,
            # (rows, cost micros, input, output, cache read, cache write tokens, requests, actors)
            "generated": list(want),
            "stored_by_engine": list(got),
            "stored_by_plain_upsert": list(plain),
        }
    unlinked, persons = attribution(engine_url)
    if unlinked:
        problems.append(f"{unlinked} stored rows are not attributed to a person")
    if persons != len(expected.people):
        problems.append(f"{persons} people created, {len(expected.people)} expected")
    for url in (engine_url, baseline_url):
        dbbuild.drop_database(kind, url, pg_admin_url)

    rows = sum(len(expected.rows[s]) for s in sources)
    engine_seconds = sum(r["seconds"] for r in children)
    return {
        "people": people,
        "days": days,
        "sources": sources,
        "cursor_note": missing_cursor,
        "rows": rows,
        "cursor_events": expected.events if "cursor" in sources else 0,
        "engine_seconds": engine_seconds,
        "engine_rows_per_s": rows / engine_seconds,
        "plain_seconds": plain_seconds,
        "plain_rows_per_s": rows / plain_seconds,
        "ratio": (rows / engine_seconds) / (rows / plain_seconds),
        "per_source": per_source,
        "peak_rss_mb": max(r["peak_rss_bytes"] for r in children) / 2**20,
        "people_created": persons,
        "people_expected": len(expected.people),
        "unattributed_rows": unlinked,
        "problems": problems,
    }


if __name__ == "__main__":
    child(sys.argv[1:])
