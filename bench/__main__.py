"""``uv run python -m bench [--size small|large] [--db sqlite|postgres]``: build (or reuse) the
bench databases, run B1..B7, print a table and write ``bench/results/<timestamp>.json``.

Exit status: 1 when a correctness check failed (stored rows or an answer differ from the
generated data), else 0. Missed performance targets are reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import dbbuild, ingest, load, otlp, queries, synth
from bench.slack import FakeSlack

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Size:
    tiers: tuple[int, ...]  # people per query database: ~1M, ~3M, ~10M usage rows when large
    ingest_people: int
    team: int
    me_requests: int
    repeat: int  # org, team and recap runs
    budget_s: float  # ...or fewer when they take longer than this (at least 5)
    load_clients: int
    load_seconds: float
    load_users: int
    otlp_agents: int  # B7: Claude Code processes...
    otlp_exports: int  # ...each sending this many delta exports
    #: The probes are drawn from the first people up to this (default: the smallest tier), so a
    #: size that shares a tier with another shares its cached database too.
    probe_people: int = 0
    #: B3 runs at the largest this many tiers; with two or more, the p99s at the largest tier over
    #: those at the first of them are checked against ``p99_flat`` (B2 and B3 side by side).
    b3_tiers: int = 1


SIZES = {
    "small": Size((25, 75, 250), 200, 100, 150, 20, 10, 8, 3, 25, 20, 5),
    "large": Size((500, 1500, 5000), 5000, 500, 600, 100, 60, 32, 20, 200, 500, 40),
    # 15,000 people (~30M usage rows) beside the large size's 5,000 (~10M, the same database):
    # B2 and B3 at both; B1, B5 and B7 use the large size's parameters.
    "huge": Size((5000, 15000), 5000, 500, 600, 100, 60, 32, 20, 200, 500, 40, probe_people=500, b3_tiers=2),
}

TARGETS = {
    "b1_ratio": 0.5,
    "b2_p99_ms": 25,
    "b2_flat": 1.5,  # p50 at the largest size / p50 at the smallest
    "b3_p99_ms": 250,
    "p99_flat": 1.3,  # huge: p99 at 30M rows / p99 at 10M rows, for B2, B3 org and B3 team
    "b4_max_ms": 1000,
    # Round two: SQLite >= 400 req/s, p99 <= 150 ms; PostgreSQL (a round trip per query, the server
    # on the same two cores) >= 300 req/s, p99 <= 200 ms.
    "b5_rps": {"sqlite": 400, "postgres": 300},
    "b5_p99_ms": {"sqlite": 150, "postgres": 200},
    "b6_rss_mb": 300,
    "b7_ratio": 0.5,
    "b8_overhead": 0.2,  # the privacy checks add at most 20% to B3 team's p99
}


def machine(kind: str, pg_url: str | None) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        # Other work on the machine skews every figure: the 1-minute load average, before and after.
        "loadavg_start": os.getloadavg()[0],
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    if kind == "postgres":
        from sqlalchemy import create_engine

        engine = create_engine(pg_url)
        with engine.connect() as conn:
            info["postgres"] = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
    return info


def run(args: argparse.Namespace, console: Console) -> dict:
    size = SIZES[args.size]
    only = set(args.only.split(",")) if args.only else {"b1", "b2", "b3", "b4", "b5", "b6", "b7"}
    pg_url = dbbuild.normalise_pg_url(args.pg_url) if args.db == "postgres" else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results_dir = Path(args.results_dir)
    log_dir = results_dir / f"{stamp}-logs"

    def log(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)

    started = time.perf_counter()
    result: dict = {
        "size": args.size,
        "db": args.db,
        "seed": args.seed,
        "started_at": stamp,
        "machine": machine(args.db, pg_url),
        "targets": TARGETS,
        "problems": [],
    }
    problems = result["problems"]

    if only & {"b2", "b3", "b4", "b5"}:
        probes = dbbuild.probe_people(args.seed, size.probe_people or size.tiers[0])
        tiers = size.tiers if "b2" in only else size.tiers[-size.b3_tiers :]
        dbs = []
        for people in tiers:
            log(f"database: {people:,} people ({args.db})")
            db = dbbuild.get_db(
                args.db,
                people=people,
                seed=args.seed,
                probes=probes,
                team=dbbuild.team_people(args.seed, people, size.team),
                cache_dir=Path(args.cache_dir),
                pg_admin_url=pg_url,
                log=log,
            )
            stored = dbbuild.check_db(db)
            problems.extend(f"db {people}p: {p}" for p in stored.pop("problems"))
            db.facts["stored"] = stored
            problems.extend(
                f"schema drift: {d} is in bot/db/models.py but no migration" for d in db.schema_drift
            )
            dbs.append(db)
        result["databases"] = [
            {
                "people": db.people,
                "usage_rows": db.usage_rows,
                "activity_rows": db.facts["activity_rows"],
                "built_seconds": db.built_seconds,
                "stored_usage_rows": db.facts["stored"]["usage_rows"],
                "stored_cost_micros": db.facts["stored"]["cost_micros"],
                "generated_cost_micros": db.facts["cost_micros"],
            }
            for db in dbs
        ]
        largest = dbs[-1]
        fake = FakeSlack()
        try:
            if "b2" in only:
                result["b2"] = []
                for db in dbs:
                    log(f"B2: /tokens me {synth.REPORT_MONTH} at {db.usage_rows:,} rows")
                    measured = queries.measure_me(db.url, db.facts, fake, size.me_requests)
                    problems.extend(measured.pop("problems"))
                    result["b2"].append({"usage_rows": db.usage_rows, "people": db.people, **measured})
            if "b3" in only:
                result["b3_tiers"] = []
                for db in dbs[-size.b3_tiers :]:
                    log(f"B3: /tokens org {synth.REPORT_MONTH} at {db.usage_rows:,} rows")
                    org = queries.measure_org(db.url, db.facts, fake, size.repeat, size.budget_s)
                    problems.extend(org.pop("problems"))
                    log(f"B3: team report for {size.team} people at {db.usage_rows:,} rows")
                    team = queries.measure_team(
                        db.url, db.facts, size.repeat, size.budget_s, people=db.people
                    )
                    problems.extend(team.pop("problems"))
                    result["b3_tiers"].append({"usage_rows": db.usage_rows, "org": org, "team": team})
                result["b3"] = result["b3_tiers"][-1]  # the largest tier's
            if "b4" in only:
                log(f"B4: weekly recap content for {size.team} people")
                recap = queries.measure_recap(largest.url, largest.facts, size.repeat, size.budget_s)
                problems.extend(recap.pop("problems"))
                result["b4"] = {"usage_rows": largest.usage_rows, "people": size.team, **recap}
            if "b5" in only:
                users = dbbuild.team_people(args.seed + 1, largest.people, size.load_users)
                b5 = load.run(
                    largest.url,
                    fake,
                    people=users,
                    clients=size.load_clients,
                    seconds=size.load_seconds,
                    workers=args.workers,
                    log_dir=log_dir,
                    log=log,
                )
                result["b5"] = {"usage_rows": largest.usage_rows, **b5}
                if b5["app"]["errors"]:
                    problems.append(f"B5: {b5['app']['errors']} failed requests {b5['app']['error_kinds']}")
        finally:
            fake.close()

    if only & {"b1", "b6"}:
        profile_dir = log_dir / "profiles" if args.profile else None
        b1 = ingest.run(
            args.db,
            people=size.ingest_people,
            seed=args.seed,
            cache_dir=Path(args.cache_dir),
            pg_admin_url=pg_url,
            log=log,
            profile_dir=profile_dir,
        )
        problems.extend(b1.pop("problems"))
        result["b1"] = b1
    if "b7" in only:
        b7 = otlp.run(
            args.db,
            people=size.otlp_agents,
            exports=size.otlp_exports,
            seed=args.seed,
            cache_dir=Path(args.cache_dir),
            pg_admin_url=pg_url,
            log=log,
        )
        problems.extend(b7.pop("problems"))
        result["b7"] = b7
    result["seconds"] = time.perf_counter() - started
    result["machine"]["loadavg_end"] = os.getloadavg()[0]
    return result


def _ms(value: float) -> str:
    return f"{value:,.1f} ms"


Row = tuple[str, str, str, bool | None]


def _rows(entry: dict) -> str:
    return f"{entry['usage_rows'] / 1e6:.2f}M rows"


def _at_most(benchmark: str, measured: str, what: str, value: float, limit: float, unit: str) -> Row:
    """A row whose target is ``what <= limit unit``."""
    return benchmark, measured, f"{what} <= {limit} {unit}".strip(), value <= limit


def _p99_row(benchmark: str, entry: dict, target_ms: float) -> Row:
    measured = f"p50 {_ms(entry['p50_ms'])} · p99 {_ms(entry['p99_ms'])} (n={entry['n']})"
    return _at_most(benchmark, measured, "p99", entry["p99_ms"], target_ms, "ms")


def _p99_flatness(result: dict) -> list[Row]:
    """p99 at the largest tier / p99 at the smallest measured, for B2, B3 org and B3 team (when
    measured at two tiers or more); the ratios go into ``result["p99_flatness"]``."""
    pairs = {}
    if len(result.get("b2", [])) > 1:
        pairs["B2 /tokens me"] = (result["b2"][0], result["b2"][-1])
    if len(result.get("b3_tiers", [])) > 1:
        first, last = result["b3_tiers"][0], result["b3_tiers"][-1]
        pairs["B3 /tokens org"] = ({**first["org"], **first}, {**last["org"], **last})
        pairs["B3 team report"] = ({**first["team"], **first}, {**last["team"], **last})
    limit = TARGETS["p99_flat"]
    rows, ratios = [], {}
    for label, (low, high) in pairs.items():
        ratio = ratios[label] = high["p99_ms"] / low["p99_ms"]
        rows.append(
            (
                f"{label} p99 flatness ({_rows(high)} / {_rows(low)})",
                f"{ratio:.2f}x: p99 {_ms(low['p99_ms'])} -> {_ms(high['p99_ms'])}",
                f"<= {limit}x",
                ratio <= limit,
            )
        )
    result["p99_flatness"] = ratios
    return rows


def verdicts(result: dict) -> list[Row]:
    """(benchmark, measured, target, met) rows for the table and the JSON."""
    rows: list[Row] = []
    t = TARGETS
    db = result["db"]
    if "b1" in result:
        b1 = result["b1"]
        parts = ", ".join(f"{s} {v['rows_per_s']:,.0f}/s" for s, v in b1["per_source"].items())
        rows.append(
            (
                f"B1 ingest {b1['rows']:,} rows ({' + '.join(b1['sources'])})",
                f"engine {b1['engine_rows_per_s']:,.0f} rows/s ({parts})"
                f" vs plain {b1['plain_rows_per_s']:,.0f} = {b1['ratio']:.2f}x",
                f">= {t['b1_ratio']}x plain",
                b1["ratio"] >= t["b1_ratio"],
            )
        )
    for entry in result.get("b2", []):
        rows.append(_p99_row(f"B2 /tokens me @ {_rows(entry)}", entry, t["b2_p99_ms"]))
    if len(result.get("b2", [])) > 1:
        first, last = result["b2"][0], result["b2"][-1]
        flat = last["p50_ms"] / first["p50_ms"]
        result["b2_flatness"] = flat
        rows.append(
            (
                "B2 flatness (p50 largest / smallest)",
                f"{flat:.2f}x from {_rows(first)} to {_rows(last)}",
                f"<= {t['b2_flat']}x",
                flat <= t["b2_flat"],
            )
        )
    for b3 in result.get("b3_tiers", []):
        org, team = b3["org"], b3["team"]
        rows.append(_p99_row(f"B3 /tokens org @ {_rows(b3)}", org, t["b3_p99_ms"]))
        rows.append(_p99_row(f"B3 team report, {team['members']} people @ {_rows(b3)}", team, t["b3_p99_ms"]))
        member = team["member_view"]
        rows.append(
            (
                f"B8 privacy checks on the team view ({member['other_teams']} other teams) @ {_rows(b3)}",
                f"member view p99 {_ms(member['p99_ms'])} vs admin {_ms(team['p99_ms'])}:"
                f" {team['privacy_overhead']:+.0%}; p50 {_ms(member['p50_ms'])} vs {_ms(team['p50_ms'])}"
                f" ({', '.join(member['verdicts'])})",
                f"<= +{t['b8_overhead']:.0%}",
                team["privacy_overhead"] <= t["b8_overhead"],
            )
        )
    if SIZES[result["size"]].b3_tiers > 1:
        rows.extend(_p99_flatness(result))
    if "b4" in result:
        b4 = result["b4"]
        benchmark = f"B4 recap content, {b4['people']} people"
        measured = f"p50 {_ms(b4['p50_ms'])} · max {_ms(b4['max_ms'])} (n={b4['n']})"
        rows.append(_at_most(benchmark, measured, "max", b4["max_ms"], t["b4_max_ms"], "ms"))
    if "b5" in result:
        b5 = result["b5"]
        app, bolt, bare = b5["app"], b5["bolt"], b5["bare"]
        rows.append(
            (
                f"B5 HTTP /tokens me, {result['b5']['clients']} clients, {result['b5']['workers']} worker(s)",
                f"{app['rps']:,.0f} req/s · p99 {_ms(app['p99_ms'])} · {app['errors']} errors"
                f" = {b5['of_bolt']:.2f}x bare Bolt ({bolt['rps']:,.0f} req/s, p99 {_ms(bolt['p99_ms'])}),"
                f" {b5['of_bare']:.2f}x bare Starlette ({bare['rps']:,.0f} req/s, p99 {_ms(bare['p99_ms'])})",
                f">= {t['b5_rps'][db]} req/s, p99 <= {t['b5_p99_ms'][db]} ms, 0 errors",
                app["rps"] >= t["b5_rps"][db] and app["p99_ms"] <= t["b5_p99_ms"][db] and app["errors"] == 0,
            )
        )
    if "b1" in result:
        b1 = result["b1"]
        parts = ", ".join(f"{s} {v['peak_rss_mb']:,.0f} MB" for s, v in b1["per_source"].items())
        benchmark = f"B6 backfill memory, {b1['people']:,} people x {b1['days']} days"
        measured = f"peak RSS {b1['peak_rss_mb']:,.0f} MB ({parts})"
        rows.append(_at_most(benchmark, measured, "", b1["peak_rss_mb"], t["b6_rss_mb"], "MB"))
    if "b7" in result:
        b7 = result["b7"]
        rows.append(
            (
                f"B7 OTLP intake, {b7['points']:,} points in {b7['requests']:,} requests",
                f"engine {b7['engine_points_per_s']:,.0f} points/s vs plain {b7['plain_points_per_s']:,.0f}"
                f" = {b7['ratio']:.2f}x ({b7['transactions']:,} transactions; one request per"
                f" transaction {b7['single_points_per_s']:,.0f} points/s = {b7['single_ratio']:.2f}x);"
                f" CPU s engine {b7['engine_cpu_seconds']:.2f}, single {b7['single_cpu_seconds']:.2f},"
                f" plain {b7['plain_cpu_seconds']:.2f}; {b7['resent_requests']:,} resent, sums unchanged",
                f">= {t['b7_ratio']}x plain",
                b7["ratio"] >= t["b7_ratio"],
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", help="comma-separated subset, e.g. b2,b3")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG,
        help="PostgreSQL server to create the bench databases on (any database on it)",
    )
    parser.add_argument("--cache-dir", default=str(dbbuild.CACHE_DIR))
    parser.add_argument("--results-dir", default=str(RESULTS_DIR))
    parser.add_argument("--profile", action="store_true", help="record the ingest children with py-spy")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="B5: uvicorn worker processes for tokenwise run and the bare ceiling (default: one per CPU)",
    )
    args = parser.parse_args(argv)
    console = Console()
    result = run(args, console)
    rows = verdicts(result)
    result["verdicts"] = [{"benchmark": b, "measured": m, "target": t, "met": ok} for b, m, t, ok in rows]

    table = Table(title=f"Tokenwise benchmarks: --size {args.size} --db {args.db} (seed {args.seed})")
    for column in ("Benchmark", "Measured", "Target", ""):
        table.add_column(column)
    for benchmark, measured, target, ok in rows:
        table.add_row(benchmark, measured, target, "[green]met[/green]" if ok else "[red]missed[/red]")
    console.print(table)
    if result.get("b1", {}).get("cursor_note"):
        console.print(f"[yellow]B1: Cursor left out: {result['b1']['cursor_note']}[/yellow]")
    for problem in result["problems"]:
        console.print(f"[red]check failed:[/red] {problem}", highlight=False)

    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{result['started_at']}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    console.print(f"results: {path} ({result['seconds']:.0f} s)")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
