import logging
from datetime import date

from sqlalchemy import func, select

from bot.db.models import ActivityDaily, Person, SyncRun, UsageDaily, VendorTotalRow
from bot.domain.money import Money, format_usd
from bot.domain.records import VendorTotal
from bot.services.sync import run_all
from bot.sources.demo import PEOPLE, demo_connectors

TODAY = date(2026, 11, 20)
TOMORROW = date(2026, 11, 21)


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


def test_vendor_totals_are_stored_and_mismatches_logged_after_a_good_run(engine, caplog):
    """A connector that reports the vendor's own total gets it stored (once per span, however
    often it is synced) and checked after a good run; a failed run checks nothing."""

    class Reporting:
        def __init__(self, inner, fail=False):
            self.inner, self.fail = inner, fail
            self.vendor, self.name, self.lag = inner.vendor, inner.name, inner.lag
            self.trailing_days, self.max_window_days = inner.trailing_days, inner.max_window_days

        def fetch(self, start, end):
            if self.fail:
                raise RuntimeError("boom")
            for batch in self.inner.fetch(start, end):
                batch.vendor_totals.append(VendorTotal(date(2026, 11, 1), TOMORROW, Money.from_usd("1.00")))
                yield batch

        def close(self):
            pass

    kwargs = dict(workspace_id="W", since=date(2026, 11, 10), today=TODAY)
    good, bad = Reporting(demo_connectors(TODAY)[0]), Reporting(demo_connectors(TODAY)[1], fail=True)
    with caplog.at_level(logging.WARNING, logger="bot.services.reconcile"):
        outcomes = run_all(engine, [good, bad], **kwargs)
        run_all(engine, [Reporting(demo_connectors(TODAY)[0])], **kwargs)
    assert [o.status for o in outcomes] == ["ok", "failed"]
    with engine.connect() as conn:
        rows = conn.execute(select(VendorTotalRow.source, VendorTotalRow.amount_micros)).all()
        stored = conn.execute(
            select(func.sum(UsageDaily.cost_micros)).where(
                UsageDaily.source == good.name,
                UsageDaily.cost_basis == "billed",
                UsageDaily.day >= date(2026, 11, 1),
                UsageDaily.day < TOMORROW,
            )
        ).scalar()
    assert rows == [(good.name, 1_000_000)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # In dollars, over the days the span holds data for (it runs on to tomorrow: up to today).
    expected = (
        f"{good.name}: billed total for 2026-11-01 to {TODAY} ({(TODAY - date(2026, 11, 1)).days + 1} days, "
        f"today so far) differs: the vendor reports $1.00, stored rows sum to {format_usd(stored)}"
    )
    assert warnings == [expected, expected]
