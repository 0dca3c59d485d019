"""B2 (/tokens me), B3 (/tokens org, team report) and B4 (weekly recap content) on the bench
databases. Slash commands go through the real Starlette + Bolt app in process (httpx
ASGITransport), signed like Slack signs them, with users.info answered by a loopback fake; the
team report and the recap are timed at the service layer, where their SQL runs.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
from sqlalchemy import Connection, case, func, select

from bench import synth
from bench.slack import ADMIN, FakeSlack, app_settings, command_body, reply_text, signed_headers
from bench.stats import summarize
from bot.db.engine import make_engine
from bot.db.models import UsageDaily
from bot.domain.money import format_usd
from bot.domain.periods import Period, parse_period
from bot.services import aggregates, reports

#: The recap's week: the last full Monday-start week of the data.
RECAP_WEEK = date(2025, 12, 22)
TEAM_SLACK_ID = "SBENCHTEAM"


def report_period() -> Period:
    return parse_period(synth.REPORT_MONTH, synth.REPORT_MONTH_END)


@dataclass
class AppClient:
    """The real web app over ASGI, built like ``tokenwise run`` builds it."""

    fake: FakeSlack
    database_url: str

    def __post_init__(self) -> None:
        from bot.services.runtime import Runtime
        from bot.slack.app import build_app
        from bot.web import build_web_app

        settings = app_settings(self.fake, self.database_url)
        self.engine = make_engine(self.database_url)
        runtime = Runtime(settings=settings, engine=self.engine, source_lags={})
        self.web = build_web_app(runtime, build_app(runtime))

    async def command(self, client: httpx.AsyncClient, text: str, user_id: str) -> tuple[float, dict]:
        """One signed slash command; (milliseconds from dispatch to the answer, answer).

        An answer that misses the app's ack budget arrives later on the response_url: then the
        time runs until it arrives there, as the person waits for it."""
        token = uuid.uuid4().hex
        body = command_body(text, user_id, self.fake.response_url(token))
        headers = signed_headers(body)
        started = time.perf_counter()
        response = await client.post("/slack/events", content=body, headers=headers)
        payload = response.content
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"/tokens {text} as {user_id}: HTTP {response.status_code} {payload[:200]!r}")
        reply = json.loads(payload)
        if "Working on it" in reply.get("text", ""):
            arrived, reply = await asyncio.to_thread(self.fake.wait_late, token)
            elapsed = (arrived - started) * 1000
        return elapsed, reply

    def close(self) -> None:
        self.engine.dispose()


def _client(app: AppClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app.web), base_url="http://bench")


def measure_me(database_url: str, facts: dict, fake: FakeSlack, requests: int) -> dict:
    """B2: ``/tokens me <month>`` by the probe people, sequentially; checks every answer's total."""
    probes = [int(p) for p in facts["probes"]]
    expected = {int(k): v for k, v in facts["probe_month_micros"].items()}
    app = AppClient(fake, database_url)
    problems: list[str] = []
    checked = 0

    async def go() -> list[float]:
        nonlocal checked
        async with _client(app) as client:
            for probe in probes:  # warm-up: users.info once per person, then cached
                _, reply = await app.command(client, f"me {synth.REPORT_MONTH}", synth.slack_id(probe))
                want = format_usd(expected[probe])
                if want in reply_text(reply):
                    checked += 1
                else:
                    problems.append(f"/tokens me for person {probe}: {want} not in the answer")
            timings = []
            for number in range(requests):
                probe = probes[number % len(probes)]
                elapsed, _ = await app.command(client, f"me {synth.REPORT_MONTH}", synth.slack_id(probe))
                timings.append(elapsed)
            return timings

    before = fake.calls.get("users.info", 0)
    timings = asyncio.run(go())
    app.close()
    users_info = fake.calls.get("users.info", 0) - before
    if users_info > len(probes):
        problems.append(f"users.info called {users_info} times for {len(probes)} people (not cached)")
    return {**summarize(timings), "probes": len(probes), "answers_checked": checked, "problems": problems}


def measure_org(database_url: str, facts: dict, fake: FakeSlack, requests: int, budget_s: float) -> dict:
    """B3: ``/tokens org <month>`` as an admin; checks the org total in the answer."""
    app = AppClient(fake, database_url)
    problems: list[str] = []
    found: dict = {}

    async def go() -> list[float]:
        async with _client(app) as client:
            _, reply = await app.command(client, f"org {synth.REPORT_MONTH}", ADMIN)
            want = format_usd(facts["org_month_micros"])
            found["expected_total"] = want
            found["answer_has_total"] = want in reply_text(reply)
            if not found["answer_has_total"]:
                problems.append(f"/tokens org: {want} not in the answer: {reply_text(reply)[:300]}")
            return await _repeat(
                lambda: app.command(client, f"org {synth.REPORT_MONTH}", ADMIN), requests, budget_s
            )

    timings = asyncio.run(go())
    app.close()
    return {**summarize(timings), **found, "problems": problems}


async def _repeat(call: Callable, count: int, budget_s: float) -> list[float]:
    """Run ``call`` ``count`` times, or fewer (at least 5) when the time budget runs out."""
    timings: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(timings) < count and (len(timings) < 5 or time.perf_counter() < deadline):
        elapsed, _ = await call()
        timings.append(elapsed)
    return timings


def _repeat_sync(fn: Callable[[], object], count: int, budget_s: float) -> tuple[list[float], object]:
    timings: list[float] = []
    result = None
    deadline = time.perf_counter() + budget_s
    while len(timings) < count and (len(timings) < 5 or time.perf_counter() < deadline):
        started = time.perf_counter()
        result = fn()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, result


def ensure_team(
    database_url: str, members: list[int], *, slack_id: str = TEAM_SLACK_ID, name: str = "bench-team"
) -> int | None:
    """A bench team (a user group of ``members``) in the database; None without team tables."""
    try:
        from bot.db.models import Team, TeamMembership
    except ImportError:
        return None
    from bot.services.teams import EARLIEST

    engine = make_engine(database_url)
    with engine.begin() as conn:
        team_id = conn.execute(
            select(Team.id).where(Team.workspace_id == synth.WORKSPACE, Team.slack_id == slack_id)
        ).scalar()
        if team_id is None:
            team_id = conn.execute(
                Team.__table__.insert().values(
                    workspace_id=synth.WORKSPACE, kind="usergroup", slack_id=slack_id, name=name
                )
            ).inserted_primary_key[0]
            conn.execute(
                TeamMembership.__table__.insert(),
                [
                    {
                        "workspace_id": synth.WORKSPACE,
                        "team_id": team_id,
                        "person_id": p,
                        "joined_on": EARLIEST,
                    }
                    for p in members
                ],
            )
            if conn.dialect.name == "postgresql":
                # Autovacuum analyses a table soon after this many new rows; without statistics the
                # planner takes the team for one row and picks a nested loop (seconds, not ms).
                conn.exec_driver_sql("ANALYZE team, team_membership")
    engine.dispose()
    return int(team_id)


#: B8: the other teams the differencing defence compares a team with (user groups and channels
#: Tokenwise has read): this many, each of a seeded sample of the org.
OTHER_TEAMS, OTHER_TEAM_SIZE = 40, 100
MIN_GROUP_SIZE = 5


def ensure_other_teams(database_url: str, people: int) -> int:
    rng = random.Random(7)
    for number in range(OTHER_TEAMS):
        members = rng.sample(range(1, people + 1), min(OTHER_TEAM_SIZE, people))
        ensure_team(database_url, members, slack_id=f"SBENCHOTHER{number:02d}", name=f"bench-other-{number}")
    return OTHER_TEAMS


def measure_team(database_url: str, facts: dict, requests: int, budget_s: float, *, people: int) -> dict:
    """B3: a 500-person team's report, as ``/tokens team`` loads it for an admin (report, top
    models, per-member spend). B8, measured in the same loop, alternating, so the machine's load
    falls on both alike: a member's view of the same team, which first runs the aggregate rules
    (active people per team and in the org, the differencing check against every other team)
    and then folds small lines."""
    members = [int(p) for p in facts["team"]]
    period = report_period()
    team_id = ensure_team(database_url, members)
    other_teams = ensure_other_teams(database_url, people)
    engine = make_engine(database_url)
    problems: list[str] = []
    admin_timings: list[float] = []
    member_timings: list[float] = []
    verdicts: set[str] = set()
    with engine.connect() as conn:

        def admin_view():
            return reports.team_report(conn, workspace_id=synth.WORKSPACE, team_id=team_id, period=period)

        def member_view():
            check = aggregates.check_member_view(
                conn,
                workspace_id=synth.WORKSPACE,
                team_id=team_id,
                period=period,
                caller_person_id=members[0],
                min_group_size=MIN_GROUP_SIZE,
            )
            verdicts.add(check.reason)
            report = admin_view()
            return aggregates.fold_for_member(
                report, caller_person_id=members[0], min_group_size=MIN_GROUP_SIZE
            )

        deadline = time.perf_counter() + budget_s
        report = None
        while len(admin_timings) < requests and (len(admin_timings) < 5 or time.perf_counter() < deadline):
            for view, timings in ((admin_view, admin_timings), (member_view, member_timings)):
                started = time.perf_counter()
                result = view()
                timings.append((time.perf_counter() - started) * 1000)
                report = result if view is admin_view else report
    engine.dispose()
    if report.total_micros != facts["team_month_micros"]:
        problems.append(f"team total {report.total_micros}, generated {facts['team_month_micros']}")
    admin, member = summarize(admin_timings), summarize(member_timings)
    return {
        **admin,
        "members": len(members),
        "method": "reports.team_report (vendors, models, per-member spend, value, previous period)",
        "total_micros": report.total_micros,
        "generated_total_micros": facts["team_month_micros"],
        "member_view": {
            **member,
            "other_teams": other_teams,
            "verdicts": sorted(verdicts),
            "method": "aggregates.check_member_view + reports.team_report + aggregates.fold_for_member",
        },
        # B8: what the privacy checks add to the team view's p99 (target: at most 20%).
        "privacy_overhead": member["p99_ms"] / admin["p99_ms"] - 1 if admin["p99_ms"] else 0.0,
        "problems": problems,
    }


def recap_content(conn: Connection, *, workspace_id: str, person_ids: list[int], week_start: date) -> dict:
    """What a weekly recap shows, in one grouped query: this week, last week and the average of
    the four weeks before this one, per (vendor, model); per vendor is summed from it."""
    this_week, last_week = week_start, week_start - timedelta(days=7)
    first = week_start - timedelta(days=28)
    cost = UsageDaily.cost_micros
    rows = conn.execute(
        select(
            UsageDaily.vendor,
            UsageDaily.model,
            func.sum(case((UsageDaily.day >= this_week, cost), else_=0)),
            func.sum(case(((UsageDaily.day >= last_week) & (UsageDaily.day < this_week), cost), else_=0)),
            func.sum(case((UsageDaily.day < this_week, cost), else_=0)),
        )
        .where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.person_id.in_(person_ids),
            UsageDaily.day >= first,
            UsageDaily.day < week_start + timedelta(days=7),
        )
        .group_by(UsageDaily.vendor, UsageDaily.model)
    ).all()
    # Averages are taken last (integer micros, floored) so per-vendor ones are not sums of floors.
    totals = {(vendor, model): (int(a), int(b), int(c)) for vendor, model, a, b, c in rows}
    by_vendor: dict[str, list[int]] = {}
    for (vendor, _), values in totals.items():
        entry = by_vendor.setdefault(vendor, [0, 0, 0])
        for i in range(3):
            entry[i] += values[i]
    models = {key: (a, b, c // 4) for key, (a, b, c) in totals.items()}
    vendors = {key: (a, b, c // 4) for key, (a, b, c) in by_vendor.items()}
    return {"models": models, "vendors": vendors}


def measure_recap(database_url: str, facts: dict, requests: int, budget_s: float) -> dict:
    """B4: the weekly recap of the 500-person team: ``bot.services.recap.load_recap`` when the
    recap module is there, else the equivalent grouped query (``recap_content``)."""
    members = [int(p) for p in facts["team"]]
    team_id = ensure_team(database_url, members)
    end = RECAP_WEEK + timedelta(days=7)
    engine = make_engine(database_url)
    problems: list[str] = []
    with engine.connect() as conn:
        try:
            from bot.services import recap, teams

            scope = recap.team_scope(teams.team_by_id(conn, team_id))
        except (ImportError, AttributeError, TypeError):
            scope = None
        if scope is not None:
            method = "bot.services.recap.load_recap (team scope)"

            def load():
                found = recap.load_recap(
                    conn, workspace_id=synth.WORKSPACE, scope=scope, end=end, min_group_size=5, today=end
                )
                return (
                    sum(line.this_micros for line in found.vendors),
                    sum(line.last_micros for line in found.vendors),
                    len(found.families),
                )
        else:
            method = "equivalent grouped query (no recap module)"

            def load():
                found = recap_content(
                    conn, workspace_id=synth.WORKSPACE, person_ids=members, week_start=RECAP_WEEK
                )
                vendors = found["vendors"].values()
                return sum(v[0] for v in vendors), sum(v[1] for v in vendors), len(found["models"])

        timings, (got, got_last, lines) = _repeat_sync(load, requests, budget_s)
    engine.dispose()
    daily = facts["team_daily_micros"]
    week = sum(daily.get((RECAP_WEEK + timedelta(days=i)).isoformat(), 0) for i in range(7))
    last = sum(daily.get((RECAP_WEEK - timedelta(days=7 - i)).isoformat(), 0) for i in range(7))
    if (got, got_last) != (week, last):
        problems.append(f"recap weeks {got}/{got_last}, generated {week}/{last}")
    return {
        **summarize(timings),
        "method": method,
        "lines": lines,
        "this_week_micros": got,
        "last_week_micros": got_last,
        "generated_this_week_micros": week,
        "generated_last_week_micros": last,
        "problems": problems,
    }
