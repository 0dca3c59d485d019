from datetime import date

from sqlalchemy import func, select

from bot.db.models import ActivityDaily, Person, SyncRun, UsageDaily
from bot.services.sync import run_all
from bot.sources.demo import PEOPLE, demo_connectors

TODAY = date(2026, 11, 20)


def _totals(engine):
    with engine.connect() as conn:
        return conn.execute(
            select(func.count(), func.sum(UsageDaily.cost_micros), func.sum(UsageDaily.input_tokens))
        ).one()


def test_demo_sync_is_idempotent(engine):
    kwargs = dict(workspace_id="W", since=date(2026, 8, 20), until=date(2026, 11, 21), today=TODAY)
    outcomes = run_all(engine, demo_connectors(TODAY), **kwargs)
    assert [o.status for o in outcomes] == ["ok"] * 4
    first = _totals(engine)
    assert first[0] > 1000 and first[1] > 0
    run_all(engine, demo_connectors(TODAY), **kwargs)
    assert _totals(engine) == first
    with engine.connect() as conn:
        people = conn.execute(select(func.count()).select_from(Person)).scalar()
        unattributed = conn.execute(select(func.count()).where(UsageDaily.person_id.is_(None))).scalar()
        runs = conn.execute(select(func.count()).select_from(SyncRun).where(SyncRun.status == "ok")).scalar()
        activity = conn.execute(select(func.count()).select_from(ActivityDaily)).scalar()
    assert people == len(PEOPLE)
    assert unattributed == 0
    assert runs == 8
    assert activity > 500


def test_sources_with_a_billed_total_are_reconciled_after_a_good_run(engine):
    class Reconciling:
        def __init__(self, inner, fail=False):
            self.inner, self.fail, self.checked = inner, fail, []
            self.vendor, self.name, self.lag = inner.vendor, inner.name, inner.lag
            self.trailing_days, self.max_window_days = inner.trailing_days, inner.max_window_days

        def fetch(self, start, end):
            if self.fail:
                raise RuntimeError("boom")
            return self.inner.fetch(start, end)

        def reconcile(self, engine, *, workspace_id):
            self.checked.append(workspace_id)
            raise ValueError("a reconciliation problem is only a warning")

        def close(self):
            pass

    good, bad = Reconciling(demo_connectors(TODAY)[0]), Reconciling(demo_connectors(TODAY)[1], fail=True)
    outcomes = run_all(engine, [good, bad], workspace_id="W", since=date(2026, 11, 10), today=TODAY)
    assert [o.status for o in outcomes] == ["ok", "failed"]
    assert good.checked == ["W"] and bad.checked == []
