"""The budget check: threshold alerts, early warnings and floor nudges, sent once per period
(claimed in the ledger before sending) to the right people, through the fake Slack."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from functools import partial

import pytest
from sqlalchemy import func, select

from bot.db.models import AlertSent
from bot.jobs.budget_alerts import budget_check_job, check_budgets
from bot.jobs.scheduler import build_scheduler, scheduled_jobs
from bot.jobs.sync import sync_job
from bot.observability import REGISTRY
from bot.services import teams
from bot.services.runtime import Runtime
from bot.settings import Settings
from bot.slack.clients import make_web_client
from tests.factories import add_person, add_usage, set_budget
from tests.support.replicas import at_once
from tests.support.slack_fake import BOT_TOKEN, SIGNING_SECRET

USD = 1_000_000
W = "default"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday; November has 30 days
TODAY = NOW.date()


def _runtime(engine, fake_slack, **settings) -> Runtime:
    values = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "TOKENWISE_ADMINS": "ULISTED,boss@example.com",
        "TOKENWISE_TIMEZONE": "Europe/Berlin",
        **settings,
    }
    return Runtime(settings=Settings(**values), engine=engine)


def _check(runtime, clock=lambda: NOW):
    async def run():
        return await check_budgets(runtime, make_web_client(runtime), workspace_id=W, clock=clock)

    return asyncio.run(run())


_person = partial(add_person, workspace_id=W)
_spend = partial(add_usage, workspace_id=W, model="m", actor="p:{person_id}:{day}:{cost_micros}")
_budget = partial(set_budget, workspace_id=W)


def _ledger(engine):
    with engine.connect() as conn:
        return sorted(
            conn.execute(
                select(AlertSent.kind, AlertSent.threshold, AlertSent.status, AlertSent.period_start)
            ).all()
        )


def _counter(kind: str, status: str) -> float:
    return REGISTRY.get_sample_value("tokenwise_alerts_total", {"kind": kind, "status": status}) or 0.0


def test_each_threshold_is_told_once_and_never_again_after_a_restart(engine, fake_slack):
    runtime = _runtime(engine, fake_slack)
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        _budget(conn, "person", str(ana), "$400/month")
        _spend(conn, ana, date(2026, 11, 3), 210 * USD)
    sent_before = _counter("threshold", "sent")
    _check(runtime)
    assert fake_slack.posted() == [
        (
            "DUANA",
            "52% of your monthly AI budget is used: $210.00 of $400.00 in November 2026 (the 50% alert).",
        )
    ]
    assert [c.params["users"] for c in fake_slack.calls_to("conversations.open")] == ["UANA"]
    _check(_runtime(engine, fake_slack))  # a restarted process: the ledger says it was sent
    assert len(fake_slack.posted()) == 1
    with engine.begin() as conn:
        _spend(conn, ana, date(2026, 11, 4), 120 * USD)
    _check(runtime)
    _check(runtime)
    with engine.begin() as conn:
        _spend(conn, ana, date(2026, 11, 5), 100 * USD)
    _check(runtime)
    texts = [text for _, text in fake_slack.posted()]
    assert len(texts) == 3
    assert "(the 80% alert)" in texts[1] and "$330.00 of $400.00" in texts[1]
    assert (
        texts[2] == "Your monthly AI budget is used up: $430.00 of $400.00 in November 2026 (the 100% alert)."
    )
    body = str(fake_slack.calls_to("chat.postMessage")[2].params["blocks"])
    assert "/tokens me" in body and "Resets Tue Dec 1" in body and "Over by $30.00" in body
    assert _ledger(engine) == [("threshold", t, "sent", date(2026, 11, 1)) for t in (50, 80, 100)]
    assert _counter("threshold", "sent") == sent_before + 3


def test_thresholds_crossed_together_make_one_dm_naming_the_highest(engine, fake_slack):
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        _budget(conn, "person", str(ana), "$400/month", "thresholds", "50,80,90")
        _spend(conn, ana, date(2026, 11, 2), 340 * USD)
    _check(_runtime(engine, fake_slack))
    [(channel, text)] = fake_slack.posted()
    assert channel == "DUANA" and "(the 80% alert)" in text
    assert [(k, t, s) for k, t, s, _ in _ledger(engine)] == [
        ("threshold", 50, "sent"),
        ("threshold", 80, "sent"),
    ]


def test_a_claim_whose_period_ended_before_sending_is_not_sent(engine, fake_slack):
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        _budget(conn, "person", str(ana), "$400/month")
        _spend(conn, ana, date(2026, 11, 29), 300 * USD)
    # Checked at 23:59:59 on Nov 30 in Berlin; the DM would go out after midnight: too late.
    moments = iter(
        [datetime(2026, 11, 30, 22, 59, 59, tzinfo=UTC), datetime(2026, 11, 30, 23, 0, 1, tzinfo=UTC)]
    )
    done = _check(_runtime(engine, fake_slack), clock=lambda: next(moments))
    assert [outcome for _, _, outcome in done] == ["expired"]
    assert fake_slack.posted() == []
    assert [(k, t, s) for k, t, s, _ in _ledger(engine)] == [("threshold", 50, "expired")]
    # December starts clean: no threshold is due, only the early warning from last week's pace.
    done = _check(_runtime(engine, fake_slack), clock=lambda: datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    assert [(alert.kind, claimed, outcome) for alert, claimed, outcome in done] == [
        ("forecast", [("forecast", 100)], "sent")
    ]


def test_a_failed_dm_is_recorded_and_not_retried(engine, fake_slack):
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        ghost = _person(conn, "ghost", None)  # no Slack id: nobody to tell
        _budget(conn, "person", str(ana), "$100/month")
        _budget(conn, "person", str(ghost), "$100/month")
        _spend(conn, ana, date(2026, 11, 2), 60 * USD)
        _spend(conn, ghost, date(2026, 11, 2), 60 * USD)
    fake_slack.fail_next("chat.postMessage", error="channel_not_found")
    runtime = _runtime(engine, fake_slack)
    _check(runtime)
    _check(runtime)
    with engine.connect() as conn:
        rows = conn.execute(select(AlertSent.budget_id, AlertSent.status, AlertSent.error)).all()
    assert sorted(status for _, status, _ in rows) == ["failed", "failed"]
    assert any("channel_not_found" in (error or "") for _, _, error in rows)
    assert any("nobody to tell" in (error or "") for _, _, error in rows)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # the scripted failure, never retried


def test_team_budgets_tell_the_managers_and_the_org_budget_tells_the_admins(engine, fake_slack):
    with engine.begin() as conn:
        ana, ben = _person(conn, "ana", "UANA"), _person(conn, "ben", "UBEN")
        _person(conn, "boss", "UADMIN")  # TOKENWISE_ADMINS names boss@example.com
        team = teams.ensure_team(
            conn, workspace_id=W, kind=teams.USERGROUP, slack_id="SPLAT", name="platform"
        )
        teams.apply_refresh(
            conn,
            workspace_id=W,
            team_id=team.id,
            known={"UANA": ana, "UBEN": ben},
            new_members=[],
            today=TODAY,
        )
        teams.grant_role(
            conn, workspace_id=W, role="manager", slack_user_id="UMGR", team_id=team.id, granted_by="UADMIN"
        )
        _budget(
            conn,
            "group",
            "SPLAT",
            "$100/week",
            "cursor",
            "thresholds",
            "100",
            team=teams.team_by_id(conn, team.id),
        )
        _budget(conn, "org", "org", "$1k/quarter", "thresholds", "10")
        _spend(conn, ana, date(2026, 11, 16), 70 * USD, vendor="cursor")
        _spend(conn, ben, date(2026, 11, 17), 40 * USD, vendor="cursor")
        _spend(conn, ben, date(2026, 11, 17), 500 * USD, vendor="openai")  # not cursor: not the team's
    _check(_runtime(engine, fake_slack))
    dms = sorted(fake_slack.posted())
    assert [channel for channel, _ in dms] == ["DUADMIN", "DULISTED", "DUMGR"]
    team_text = dict(dms)["DUMGR"]
    assert "weekly Cursor AI budget of <!subteam^SPLAT>" in team_text and "$110.00 of $100.00" in team_text
    assert "the week of Nov 16" in team_text
    assert (
        "quarterly AI budget of the org" in dict(dms)["DULISTED"]
        and "$610.00 of $1,000.00" in dict(dms)["DULISTED"]
    )


def test_forecast_math_decides_when_the_early_warning_is_due(engine, fake_slack):
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        _budget(conn, "person", str(ana), "$400/month", "thresholds", "90")
        for day in range(13, 20):  # $30 a day in the 7 days before the 20th: $210 spent (52%)
            _spend(conn, ana, date(2026, 11, day), 30 * USD)
    runtime = _runtime(engine, fake_slack)
    _check(runtime)
    _check(runtime)
    [(channel, text)] = fake_slack.posted()
    # $190 to go at $30/day: 7 days counting the 20th -> the 26th, before the Dec 1 reset.
    assert channel == "DUANA"
    assert text.startswith("Early warning: at this pace your monthly AI budget runs out on the 26th")
    assert "projected $540.00 by the end of November 2026" in text
    assert [(k, t, s) for k, t, s, _ in _ledger(engine)] == [("forecast", 100, "sent")]


def test_slow_pace_gets_no_early_warning(engine, fake_slack):
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        _budget(conn, "person", str(ana), "$400/month", "thresholds", "90")
        for day in range(13, 20):  # $20/day: $260 to go needs 13 days -> Dec 2, after the reset
            _spend(conn, ana, date(2026, 11, day), 20 * USD)
    _check(_runtime(engine, fake_slack))
    assert fake_slack.posted() == [] and _ledger(engine) == []


def test_floor_nudge_after_mid_period_with_what_teammates_use(engine, fake_slack):
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        mates = {
            f"U{n.upper()}": _person(conn, n, f"U{n.upper()}") for n in ("ben", "cy", "dee", "eve", "fin")
        }
        team = teams.ensure_team(
            conn, workspace_id=W, kind=teams.USERGROUP, slack_id="SPLAT", name="platform"
        )
        teams.apply_refresh(
            conn, workspace_id=W, team_id=team.id, known={"UANA": ana, **mates}, new_members=[], today=TODAY
        )
        for i, pid in enumerate(mates.values()):
            _spend(conn, pid, date(2026, 11, 10), (100 + 10 * i) * USD)
        _budget(conn, "person", str(ana), "$400/month", "floor", "200")
        _spend(conn, ana, date(2026, 11, 10), 20 * USD)
        _, unset = _budget(conn, "person", str(mates["UBEN"]), "$400/month")  # no floor: never nudged
    assert unset.floor_micros is None
    runtime = _runtime(engine, fake_slack)
    # Before mid-month: no nudge yet.
    assert _check(runtime, clock=lambda: datetime(2026, 11, 14, 9, 0, tzinfo=UTC)) == []
    _check(runtime)
    _check(runtime)
    [(channel, text)] = fake_slack.posted()
    assert channel == "DUANA"
    assert "expects at least $200.00 of use in November 2026, and $20.00 is used so far" in text
    assert "about $126.67 by now" in text  # $200 * 19/30 days
    blocks = str(fake_slack.calls_to("chat.postMessage")[0].params["blocks"])
    assert "Your teammates in <!subteam^SPLAT> average $120.00 each so far (5 people)" in blocks
    assert [(k, t, s) for k, t, s, _ in _ledger(engine)] == [("floor", 0, "sent")]


def test_two_concurrent_checkers_send_each_threshold_exactly_once(engine, fake_slack, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("replicas share PostgreSQL; SQLite serves one process")
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        ben = _person(conn, "ben", "UBEN")
        _budget(conn, "person", str(ana), "$400/month")
        _budget(conn, "person", str(ben), "$100/month", "thresholds", "20,40,60,80,100")

    def race() -> None:
        # Each checker its own settings, client and event loop.
        at_once(lambda: _runtime(engine, fake_slack), _check)

    steps = [(date(2026, 11, 2), 210, 25), (date(2026, 11, 3), 120, 20), (date(2026, 11, 4), 100, 40)]
    for day, ana_usd, ben_usd in steps:
        with engine.begin() as conn:
            _spend(conn, ana, day, ana_usd * USD)
            _spend(conn, ben, day, ben_usd * USD)
        race()
    texts = [text for _, text in fake_slack.posted()]
    for threshold in (50, 80, 100):
        assert sum(f"(the {threshold}% alert)" in t and "$400.00" in t for t in texts) == 1, texts
    for threshold in (20, 40, 80):  # ben: 25%, 45% (covers 40), 85% (covers 60 and 80)
        assert sum(f"(the {threshold}% alert)" in t and "$100.00" in t for t in texts) == 1, texts
    assert len(texts) == 6
    with engine.connect() as conn:
        rows = conn.execute(
            select(AlertSent.budget_id, AlertSent.kind, AlertSent.threshold, func.count()).group_by(
                AlertSent.budget_id, AlertSent.kind, AlertSent.threshold
            )
        ).all()
    assert all(count == 1 for *_, count in rows)
    assert sorted(t for _, kind, t, _ in rows if kind == "threshold") == [20, 40, 50, 60, 80, 80, 100]


def test_scheduler_runs_the_check_and_every_sync_ends_with_it(engine, fake_slack):
    runtime = _runtime(
        engine, fake_slack, TOKENWISE_DEMO="1", TOKENWISE_BACKFILL_DAYS="3", TOKENWISE_TIMEZONE="UTC"
    )
    assert "budgets" in {job.id for job in build_scheduler(runtime).get_jobs()}
    with engine.begin() as conn:
        # The whole org: each demo day has spend, so a cent a quarter is crossed by the sync.
        _budget(conn, "org", "org", "$0.01/quarter", "thresholds", "100")
    outcomes = sync_job(runtime)
    assert outcomes and all(o.status == "ok" for o in outcomes)
    [(channel, text)] = fake_slack.posted()
    assert channel == "DULISTED" and "(the 100% alert)" in text
    sync_job(runtime)
    assert len(fake_slack.posted()) == 1


def test_no_token_means_no_claim(engine, fake_slack):
    runtime = _runtime(engine, fake_slack)
    runtime.settings.slack_bot_token = None
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        _budget(conn, "person", str(ana), "$1/month")
        _spend(conn, ana, datetime.now(runtime.settings.tz).date(), 5 * USD)
    assert budget_check_job(runtime) == 0  # no token: nothing may be claimed, or the alert is lost
    assert _ledger(engine) == [] and fake_slack.posted() == []


def test_the_start_banner_names_every_job_the_scheduler_schedules(engine, fake_slack):
    """The banner's jobs line is read off the same table the scheduler is built from."""
    runtime = _runtime(engine, fake_slack)
    scheduled = {job.id: job for job in build_scheduler(runtime).get_jobs()}
    table = scheduled_jobs(runtime.settings)
    assert [row.id for row in table] == list(scheduled)
    assert {"anomalies", "saved_time", "otel_prune"} <= set(scheduled)
    for row in table:
        assert scheduled[row.id].trigger.interval.total_seconds() == row.minutes * 60
