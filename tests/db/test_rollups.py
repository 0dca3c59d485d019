"""The daily rollups stay equal to the sums of the daily tables through every writer: syncs
(first run, re-run, a re-run that loses rows upstream), links, forgets. Real databases."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from bot.db import rollups, store
from bot.db.models import ActivityOrgDaily, Person, UsageDaily, UsageOrgDaily, UsagePersonDaily
from bot.domain.money import Money
from bot.domain.periods import Period
from bot.domain.records import ActivityRecord, Batch, UsageRecord
from bot.services import people, privacy
from bot.services.reports import org_report, person_report
from bot.services.sync import run_source
from bot.sources.demo import PEOPLE, demo_connectors

TODAY = date(2026, 11, 20)
WINDOW = dict(workspace_id="W", since=date(2026, 10, 1), until=date(2026, 11, 21), today=TODAY)
NOVEMBER = Period(date(2026, 11, 1), date(2026, 12, 1), "November")


def _snapshot(conn) -> dict[str, list[tuple]]:
    return {
        table.__tablename__: sorted(tuple(row) for row in conn.execute(select(table.__table__)).all())
        for table in rollups.ROLLUPS
    }


def assert_rollups_match_daily_tables(engine) -> None:
    """What the writers maintained equals a rebuild from scratch (rolled back afterwards)."""
    with engine.connect() as conn:
        maintained = _snapshot(conn)
        rollups.rebuild(conn)
        rebuilt = _snapshot(conn)
        conn.rollback()
    assert maintained == rebuilt
    assert maintained["usage_org_daily"], "the comparison is not vacuous"


class _OneSource:
    """A connector whose window holds exactly the given usage (to lose rows between runs)."""

    name = vendor = "openrouter"
    lag = timedelta(0)
    trailing_days = 1
    max_window_days = 31

    def __init__(self, usage, complete_kinds=None):
        self.usage = usage
        self.complete_kinds = complete_kinds

    def fetch(self, start, end):
        usage = [r for r in self.usage if start <= r.day < end]
        yield Batch(start, end, usage=usage, complete_kinds=self.complete_kinds)

    def close(self):
        pass


def _sync_demo(engine) -> None:
    for connector in demo_connectors(TODAY):
        assert run_source(engine, connector, **WINDOW).status == "ok"


def test_sync_maintains_the_rollups_and_a_rerun_changes_nothing(engine):
    _sync_demo(engine)
    assert_rollups_match_daily_tables(engine)
    with engine.connect() as conn:
        first = _snapshot(conn)
    _sync_demo(engine)
    with engine.connect() as conn:
        assert _snapshot(conn) == first  # a re-sync never double counts, in the rollups either


def test_rows_gone_upstream_leave_the_rollups(engine):
    day = date(2026, 11, 3)
    kept = UsageRecord(day, "openrouter_key:a", model="m1", cost=Money.from_usd("2"))
    dropped = UsageRecord(day, "openrouter_key:b", model="m2", cost=Money.from_usd("5"))
    assert run_source(engine, _OneSource([kept, dropped]), **WINDOW).status == "ok"
    with engine.connect() as conn:
        assert org_report(conn, workspace_id="W", period=NOVEMBER).total_micros == 7_000_000
    assert run_source(engine, _OneSource([kept]), **WINDOW).status == "ok"
    with engine.connect() as conn:
        assert org_report(conn, workspace_id="W", period=NOVEMBER).total_micros == 2_000_000
    assert_rollups_match_daily_tables(engine)


def test_a_batch_complete_for_usage_only_keeps_seats_it_no_longer_sees(engine):
    """Batch.complete_kinds: unwritten usage rows go; a seat row goes only when the batch wrote a
    seat row for the same (day, actor) (here: another plan), else it stays; the rollups follow."""
    day = date(2026, 11, 3)
    seat = dict(cost_basis="estimated", kind="seat")
    first = [
        UsageRecord(day, "github:a", model="copilot-business", cost=Money.from_usd("0.6"), **seat),
        UsageRecord(day, "github:b", model="copilot-business", cost=Money.from_usd("0.6"), **seat),
        UsageRecord(day, "github:b", model="gpt-5", cost=Money.from_usd("1")),
    ]
    only_usage = frozenset({"usage"})
    assert run_source(engine, _OneSource(first, only_usage), **WINDOW).status == "ok"
    again = [UsageRecord(day, "github:a", model="copilot-enterprise", cost=Money.from_usd("1.3"), **seat)]
    for _ in range(2):
        assert run_source(engine, _OneSource(again, only_usage), **WINDOW).status == "ok"
        with engine.connect() as conn:
            rows = conn.execute(select(UsageDaily.actor, UsageDaily.model).order_by(UsageDaily.actor)).all()
            total = org_report(conn, workspace_id="W", period=NOVEMBER).total_micros
        # a's seat replaced (not doubled), b's seat kept, b's usage gone upstream.
        assert [tuple(r) for r in rows] == [
            ("github:a", "copilot-enterprise"),
            ("github:b", "copilot-business"),
        ]
        assert total == 1_900_000
    assert_rollups_match_daily_tables(engine)


def test_a_link_moves_history_from_unattributed_to_the_person(engine):
    days = [date(2026, 10, 20), date(2026, 11, 3), date(2026, 11, 4)]
    usage = [UsageRecord(d, "openrouter_key:k1", model="m", cost=Money.from_usd("3")) for d in days]
    usage.append(UsageRecord(days[1], "openrouter_key:k2", model="m", cost=Money.from_usd("10")))
    assert run_source(engine, _OneSource(usage), **WINDOW).status == "ok"
    _sync_demo(engine)
    with engine.begin() as conn:
        ana = conn.execute(select(Person.id).where(Person.email == PEOPLE[0].email)).scalar_one()
        before = org_report(conn, workspace_id="W", period=NOVEMBER)
        mine_before = person_report(conn, workspace_id="W", person_ids=[ana], period=NOVEMBER).total_micros
        people.link_actor(conn, workspace_id="W", actor="openrouter_key:k1", person_id=ana, origin="admin")
    with engine.connect() as conn:
        after = org_report(conn, workspace_id="W", period=NOVEMBER)
        mine = person_report(conn, workspace_id="W", person_ids=[ana], period=NOVEMBER).total_micros
    assert after.total_micros == before.total_micros  # the org's spend does not move
    assert before.unattributed_micros - after.unattributed_micros == 6_000_000  # November's two days
    assert mine - mine_before == 6_000_000
    assert_rollups_match_daily_tables(engine)
    # Linking it elsewhere moves it again, from Ana to Ben.
    with engine.begin() as conn:
        ben = conn.execute(select(Person.id).where(Person.email == PEOPLE[1].email)).scalar_one()
        store.reattribute(conn, workspace_id="W", actor="openrouter_key:k1", person_id=ben)
        assert person_report(conn, workspace_id="W", person_ids=[ana], period=NOVEMBER).total_micros == (
            mine_before
        )
    assert_rollups_match_daily_tables(engine)


def test_forget_keeps_the_org_totals_and_drops_the_person(engine):
    _sync_demo(engine)
    with engine.begin() as conn:
        ana = conn.execute(select(Person.id).where(Person.email == PEOPLE[0].email)).scalar_one()
        before = org_report(conn, workspace_id="W", period=NOVEMBER)
        hers = person_report(conn, workspace_id="W", person_ids=[ana], period=NOVEMBER).total_micros
        assert hers > 0
        privacy.forget_person(conn, workspace_id="W", person_id=ana, actor_user_id="UADMIN")
    with engine.connect() as conn:
        after = org_report(conn, workspace_id="W", period=NOVEMBER)
        assert conn.execute(select(func.count()).where(UsagePersonDaily.person_id == ana)).scalar() == 0
    assert after.total_micros == before.total_micros
    assert after.unattributed_micros > before.unattributed_micros
    assert after.active_people == before.active_people - 1
    assert_rollups_match_daily_tables(engine)


def test_rebuild_of_one_workspace_leaves_the_others(engine):
    _sync_demo(engine)
    with engine.begin() as conn:
        conn.execute(UsageDaily.__table__.delete().where(UsageDaily.workspace_id == "W"))
        rollups.rebuild(conn, "OTHER")
        assert conn.execute(select(func.count()).select_from(UsageOrgDaily)).scalar() > 0
        rollups.rebuild(conn, "W")
        assert conn.execute(select(func.count()).select_from(UsageOrgDaily)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(ActivityOrgDaily)).scalar() > 0  # activity stays


def _write_actors(engine, usage, activity=(), *, actors, run_id):
    day = date(2026, 11, 3)
    with engine.begin() as conn:
        store.write_batch(
            conn,
            Batch(day, day + timedelta(days=1), list(usage), list(activity)),
            usage=list(usage),
            activity=list(activity),
            workspace_id="W",
            source="otel_claude_code",
            vendor="anthropic",
            run_id=run_id,
            identity_map=store.load_identity_map(conn, "W"),
            actors=actors,
        )


def test_a_batch_of_named_actors_adds_its_change_to_the_rollups(engine, monkeypatch):
    """write_batch(actors=...) (the OTLP intake) leaves the other actors' rows as they are and
    brings the rollups up to date by deltas; only a group that disappears refreshes the slice."""
    day = date(2026, 11, 3)
    ana, ben, key = "email:ana@example.com", "email:ben@example.com", "otel:unlinked"

    def used(actor, model, usd, tokens=0):
        return UsageRecord(day, actor, model=model, cost=Money.from_usd(usd), input_tokens=tokens)

    _sync_demo(engine)  # other sources' rows in the rollups, so a wrong delta shows
    refreshed = []
    whole_slice = rollups.refresh_window
    monkeypatch.setattr(
        rollups, "refresh_window", lambda conn, **kw: (refreshed.append(kw), whole_slice(conn, **kw))
    )
    _write_actors(
        engine,
        [used(ana, "m1", "2", 10), used(ben, "m1", "3", 20), used(key, "m1", "1")],
        [ActivityRecord(day, ana, sessions=1), ActivityRecord(day, ben, sessions=2)],
        actors=[ana, ben, key],
        run_id=-1,
    )
    assert_rollups_match_daily_tables(engine)
    # Ana's day grows and gains a model (a new group with zero sums counts too); the key's as well.
    _write_actors(
        engine,
        [used(ana, "m1", "5", 15), used(ana, "m2", "0"), used(key, "m1", "4")],
        [ActivityRecord(day, ana, sessions=3)],
        actors=[ana, key],
        run_id=-2,
    )
    assert_rollups_match_daily_tables(engine)
    assert refreshed == []  # deltas only: the slice was never re-aggregated
    with engine.connect() as conn:
        report = org_report(conn, workspace_id="W", period=NOVEMBER)
    # Ana's m2 row goes while Ben still has m1: the group is gone, so the slice is refreshed whole.
    _write_actors(engine, [used(ana, "m1", "5", 15)], actors=[ana], run_id=-3)
    assert len(refreshed) == 1
    assert_rollups_match_daily_tables(engine)
    with engine.connect() as conn:
        assert org_report(conn, workspace_id="W", period=NOVEMBER).total_micros == report.total_micros
