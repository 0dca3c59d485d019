"""Delivery next to spend: reports.delivery_measures on real databases, the pull_request rows
through the sync engine (window replacement, re-attribution) and the /tokens me lines."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db import store
from bot.db.models import PullRequest
from bot.domain.money import Money
from bot.domain.periods import parse_period
from bot.domain.records import ActivityRecord, Batch, PullRequestRecord, UsageRecord
from bot.services.reports import IdleWeek, SpendReport, Value, VendorSpend, delivery_measures, per_item_micros
from bot.services.sync import run_source
from bot.slack.blocks.common import validate
from bot.slack.blocks.reports import build_me
from tests.factories import add_activity, add_person, add_usage

MARCH = parse_period("2026-03", date(2026, 3, 20))


def _at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


_person = partial(add_person, workspace_id="W")


def _usage(conn, person_id, day, micros, *, vendor="cursor", kind="usage", tokens=0) -> None:
    basis = "billed" if kind == "usage" else "estimated"
    add_usage(
        conn,
        person_id,
        date.fromisoformat(day),
        micros,
        workspace_id="W",
        vendor=vendor,
        kind=kind,
        cost_basis=basis,
        input_tokens=tokens,
        actor="{vendor}:{person_id}:{kind}",
    )


def _activity(conn, person_id, day, *, vendor, **signals) -> None:
    add_activity(
        conn,
        person_id,
        date.fromisoformat(day),
        workspace_id="W",
        vendor=vendor,
        actor="{vendor}:{person_id}",
        **signals,
    )


def _pr(conn, number, person_id, first_commit, merged, confidence="none", rule="", workspace="W") -> None:
    conn.execute(
        PullRequest.__table__.insert().values(
            workspace_id=workspace,
            source="github_delivery",
            repo="acme/api",
            number=number,
            actor=f"github:p{person_id}",
            person_id=person_id,
            opened_at=_at(first_commit, 9),
            first_commit_at=_at(first_commit, 8),
            merged_at=_at(merged),
            ai_confidence=confidence,
            ai_rule=rule,
        )
    )


def _org(engine) -> tuple[int, int]:
    with engine.begin() as conn:
        ana, ben = _person(conn, "ana@acme.test"), _person(conn, "ben@acme.test")
        # ana: Cursor spend (AI use) in four weeks of March.
        _usage(conn, ana, "2026-03-02", 10_000_000)
        _usage(conn, ana, "2026-03-09", 4_000_000)
        _usage(conn, ana, "2026-03-23", 1_000_000)
        _usage(conn, ana, "2026-03-31", 500_000)
        # ben: a Copilot seat (spend, but not AI use), Claude Code spend, Copilot activity.
        _usage(conn, ben, "2026-03-03", 633_333, vendor="github_copilot", kind="seat")
        _usage(conn, ben, "2026-03-16", 2_000_000, vendor="claude_code", tokens=5_000)
        _activity(conn, ben, "2026-03-05", vendor="github_copilot", acceptances=3)
        _activity(conn, ben, "2026-03-03", vendor="github_delivery", commits=2)  # the work itself
        _pr(conn, 1, ana, "2026-03-01", "2026-03-03", "high", "label:ai-assisted")
        _pr(conn, 2, ana, "2026-03-10", "2026-03-11")  # no AI use on Mar 10-11: stays none
        _pr(conn, 3, ben, "2026-03-04", "2026-03-06")  # Copilot activity on Mar 5: low
        _pr(conn, 4, ben, "2026-03-03", "2026-03-03")  # only a seat and GitHub itself that day: none
        _pr(conn, 5, ben, "2026-03-30", "2026-04-02")  # after March: not counted, clears his Mar 16 week
        _pr(conn, 6, None, "2026-03-02", "2026-03-05", "high", "label:ai")  # unlinked
        _pr(conn, 1, ana, "2026-03-02", "2026-03-05", "high", "label:ai", workspace="OTHER")
    return ana, ben


def test_delivery_measures_exact(engine):
    ana, ben = _org(engine)
    with engine.connect() as conn:
        measures = delivery_measures(conn, "W", [ana, ben], MARCH, 14, today=date(2026, 4, 15))
    assert measures.spend_micros == 15_500_000 + 2_633_333
    assert (measures.merged_prs, measures.ai_high, measures.ai_low, measures.ai_assisted) == (4, 1, 1, 2)
    assert measures.ai_share == 0.5
    assert measures.spend_per_merged_micros == 4_533_333  # 18,133,333 / 4
    assert measures.spend_per_ai_pr_micros == 9_066_667  # 18,133,333 / 2, half up
    # ana's Mar 23 week: no merge of hers from Mar 23 to Apr 12 (deadline passed on Apr 13).
    # Her Mar 30-31 spend waits until Apr 20; every other week had a merge within 14 days.
    assert measures.idle_weeks == [IdleWeek(ana, date(2026, 3, 23), 1_000_000)]
    assert measures.idle_spend_micros == 1_000_000
    assert measures.undecided_micros == 500_000


def test_idle_days_and_today_move_the_verdict(engine):
    ana, ben = _org(engine)
    with engine.connect() as conn:
        later = delivery_measures(conn, "W", [ana, ben], MARCH, 14, today=date(2026, 4, 20))
        short = delivery_measures(conn, "W", [ben], MARCH, 2, today=date(2026, 4, 20))
        nobody = delivery_measures(conn, "W", [], MARCH, 14)
    assert [(w.week_start.day, w.spend_micros) for w in later.idle_weeks] == [(23, 1_000_000), (30, 500_000)]
    assert later.undecided_micros == 0
    # With 2 days, ben's Mar 16 week needs a merge by Mar 24: #5 on Apr 2 is too late.
    assert short.idle_weeks == [IdleWeek(ben, date(2026, 3, 16), 2_000_000)]
    assert (nobody.merged_prs, nobody.spend_micros, nobody.spend_per_merged_micros) == (0, 0, None)


def test_per_item_micros_rounds_half_up_and_refuses_zero():
    assert per_item_micros(10, 4) == 3 and per_item_micros(9, 4) == 2 and per_item_micros(5, 0) is None


class _FakeDelivery:
    vendor = "github_delivery"
    name = "github_delivery"
    trailing_days = 14
    max_window_days = 7

    def __init__(self, batches):
        self.batches = batches

    def fetch(self, start, end):
        yield from self.batches

    def close(self):
        pass


def _record(number: int, merged: str) -> PullRequestRecord:
    return PullRequestRecord(
        repo="acme/api",
        number=number,
        actor="github:zed",
        opened_at=datetime.fromisoformat("2026-03-01T09:00:00+02:00"),
        merged_at=datetime.fromisoformat(merged),
        additions=number,
        ai_confidence="high" if number == 1 else "none",
        ai_rule="label:ai" if number == 1 else "",
    )


def test_engine_stores_replaces_and_reattributes_pull_requests(engine):
    window = dict(workspace_id="W", since=date(2026, 3, 1), until=date(2026, 3, 8), today=date(2026, 3, 8))
    first = Batch(
        date(2026, 3, 1),
        date(2026, 3, 8),
        activity=[ActivityRecord(date(2026, 3, 2), "github:zed", prs_merged=2)],
        pull_requests=[_record(1, "2026-03-02T10:00:00Z"), _record(2, "2026-03-03T01:30:00+05:00")],
    )
    assert run_source(engine, _FakeDelivery([first]), **window).status == "ok"
    # A later run no longer sees #2 (deleted upstream or filtered out): it goes, #1 is updated.
    second = Batch(date(2026, 3, 1), date(2026, 3, 8), pull_requests=[_record(1, "2026-03-02T11:00:00Z")])
    assert run_source(engine, _FakeDelivery([second]), **window).status == "ok"
    # Another source's batch (no pull_requests) leaves the table alone.
    other = Batch(
        date(2026, 3, 1),
        date(2026, 3, 8),
        usage=[UsageRecord(date(2026, 3, 2), "email:yan@acme.test", cost=Money.from_usd("1"))],
    )
    other_source = _FakeDelivery([other])
    other_source.name = other_source.vendor = "cursor"
    assert run_source(engine, other_source, **window).status == "ok"
    with engine.begin() as conn:
        rows = conn.execute(select(PullRequest.number, PullRequest.merged_at, PullRequest.person_id)).all()
        assert [(n, m.replace(tzinfo=None), p) for n, m, p in rows] == [(1, datetime(2026, 3, 2, 11), None)]
        zed = _person(conn, "zed@acme.test")
        store.reattribute(conn, workspace_id="W", actor="github:zed", person_id=zed)
        assert conn.execute(select(PullRequest.person_id)).scalar_one() == zed
        # A merged PR outside the batch window is a connector bug: the batch is refused whole.
    bad = Batch(date(2026, 3, 1), date(2026, 3, 8), pull_requests=[_record(3, "2026-03-08T00:00:00Z")])
    outcome = run_source(engine, _FakeDelivery([bad]), **window)
    assert outcome.status == "failed" and "outside" in outcome.error


def _report(**value) -> SpendReport:
    return SpendReport(
        MARCH,
        vendors=[VendorSpend("cursor", cost_micros=12_000_000)],
        value=[Value("github_delivery", **value)] if value else [],
    )


def test_me_shows_merged_prs_ai_share_and_spend_per_merged_pr():
    msg = build_me(_report(prs_merged=4, ai_prs_merged=1), who="Ana", models=[], tz=ZoneInfo("UTC"))
    text = str(msg.blocks)
    assert "*GitHub*: 4 PRs merged (25% AI-assisted)" in text
    assert "$3.00 per merged PR" in text
    assert validate(msg.blocks) == []
    plain = str(build_me(_report(), who="Ana", models=[], tz=ZoneInfo("UTC")).blocks)
    assert "per merged PR" not in plain and "PRs merged" not in plain
