"""The benchmark suite's small size, end to end as a subprocess: it must build its data, run every
benchmark and get every number RIGHT (stored rows and sums equal the generated data, answers hold
the expected totals). How fast is not checked here: that is what ``python -m bench`` reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run_bench(tmp_path: Path, *extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TOKENWISE_"))}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--size",
            "small",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--results-dir",
            str(tmp_path / "results"),
            *extra,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (path,) = (tmp_path / "results").glob("*.json")
    return json.loads(path.read_text())


@pytest.fixture(params=["sqlite", "postgres"])
def bench_result(request, tmp_path) -> dict:
    if request.param == "sqlite":
        return _run_bench(tmp_path)
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL not set")
    return _run_bench(tmp_path, "--db", "postgres", "--pg-url", url)


def test_small_bench_stores_and_answers_the_generated_numbers(bench_result):
    result = bench_result
    assert result["problems"] == []

    # The bulk-loaded databases hold exactly what the generator produced.
    tiers = result["databases"]
    assert [db["people"] for db in tiers] == [25, 75, 250]
    for db in tiers:
        assert db["stored_usage_rows"] == db["usage_rows"] > 0
        assert db["stored_cost_micros"] == db["generated_cost_micros"] > 0
    assert tiers[0]["usage_rows"] < tiers[1]["usage_rows"] < tiers[2]["usage_rows"]

    # B1/B6: the connectors and the sync engine store the vendors' pages exactly as generated,
    # every row attributed to a person, and the plain upsert baseline stores the same rows.
    b1 = result["b1"]
    assert "openai" in b1["sources"]
    for source in b1["sources"]:
        figures = b1["per_source"][source]
        assert figures["rows"] > 0
        assert figures["stored_by_engine"] == figures["generated"]
        assert figures["stored_by_plain_upsert"] == figures["generated"]
        assert figures["peak_rss_mb"] > 0
    assert b1["rows"] == sum(b1["per_source"][s]["rows"] for s in b1["sources"])
    assert b1["unattributed_rows"] == 0
    assert b1["people_created"] == b1["people_expected"] > 0

    # B2: every probe person's /tokens me answer holds their generated month total.
    for entry in result["b2"]:
        assert entry["answers_checked"] == entry["probes"] > 0
        assert entry["n"] == 150

    # B3: the org answer holds the org total; the team report sums to the generated total.
    org, team = result["b3"]["org"], result["b3"]["team"]
    assert org["answer_has_total"] is True
    assert org["expected_total"].startswith("$")
    assert team["total_micros"] == team["generated_total_micros"] > 0
    assert team["members"] == 100
    # B8: the member's view of the same team was measured beside it and passed the aggregate rules.
    assert team["member_view"]["n"] == team["n"] and team["member_view"]["verdicts"] == ["ok"]

    # B4: the recap's weeks equal the generated spend of those days.
    b4 = result["b4"]
    assert b4["this_week_micros"] == b4["generated_this_week_micros"] > 0
    assert b4["last_week_micros"] == b4["generated_last_week_micros"] > 0

    # B5: the real server answered every signed request with the caller's numbers.
    app = result["b5"]["app"]
    assert app["requests"] > 0 and app["errors"] == 0
    assert result["b5"]["bare"]["requests"] > 0
    # ...and Bolt's own floor (signature verified, fixed ack) answered every one of the same requests.
    bolt = result["b5"]["bolt"]
    assert bolt["requests"] > 0 and bolt["errors"] == 0
    assert result["b5"]["of_bolt"] > 0

    # B7: every generated OTLP point stored, the sums exact, the resent requests changed nothing
    # (a mismatch would be in problems, asserted empty above), and the plain floor measured.
    b7 = result["b7"]
    assert b7["points"] == b7["requests"] * 10 > 0
    assert b7["resent_requests"] > 0 and b7["plain_seconds"] > 0

    # Every benchmark got a verdict line (met or not) for the table and the docs.
    names = " ".join(v["benchmark"] for v in result["verdicts"])
    for label in ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"):
        assert label in names
