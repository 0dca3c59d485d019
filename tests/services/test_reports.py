"""Report queries on real databases: each dollar counted once in org totals."""

from datetime import date

from sqlalchemy import select

from bot.db import rollups, store
from bot.db.models import UsageDaily
from bot.domain.periods import parse_period
from bot.services.reports import org_models, org_report, person_report

DAY = date(2026, 3, 10)


def _row(**kw):
    row = dict(
        workspace_id="W",
        source="x",
        vendor="x",
        day=DAY,
        actor="a",
        person_id=None,
        model="",
        cost_basis="billed",
        kind="usage",
        input_tokens=0,
        output_tokens=0,
        cache_read_tokens=0,
        cache_write_tokens=0,
        requests=0,
        cost_micros=0,
        raw_amount="0",
        raw_unit="usd",
        in_org_total=True,
        sync_run_id=1,
    )
    row.update(kw)
    return row


def _ana(vendor: str, person: int, **kw):
    """A row of Ana's from ``vendor`` (its source named the same)."""
    return _row(source=vendor, vendor=vendor, actor="email:ana@example.com", person_id=person, **kw)


def _overlap(vendor: str, person: int, **kw):
    """An estimate kept out of the org total: another source bills the same use."""
    return _ana(vendor, person, cost_basis="estimated", in_org_total=False, **kw)


def _store(engine, *rows_of):
    """Ana as a person, the rows ``rows_of(person)`` makes, rollups rebuilt; Ana's person id."""
    with engine.begin() as conn:
        person = store.ensure_people(conn, "W", {"ana@example.com": "Ana"})["ana@example.com"]
        rows = [row for make in rows_of for row in make(person)]
        store.upsert(conn, UsageDaily.__table__, rows, store.USAGE_KEY, store.USAGE_VALUES)
        rollups.rebuild(conn)  # written directly: bring the rollups in step
    return person


def test_org_counts_billed_once_and_person_sees_estimates(engine):
    person = _store(
        engine,
        lambda person: [
            _row(
                source="anthropic",
                vendor="anthropic",
                actor="anthropic_workspace:default",
                cost_micros=10_000_000,
                model="claude-sonnet-4",
            ),
            _overlap(
                "claude_code", person, cost_micros=4_000_000, input_tokens=1000, model="claude-sonnet-4"
            ),
            _ana("cursor", person, cost_micros=2_500_000, model="gpt-5"),
            _ana("cursor", person, cost_micros=1_000_000, day=date(2026, 2, 10), model="gpt-5"),
            _row(workspace_id="OTHER", source="cursor", vendor="cursor", cost_micros=99_000_000),
        ],
    )
    period = parse_period("2026-03", DAY)
    with engine.connect() as conn:
        org = org_report(conn, workspace_id="W", period=period)
        me = person_report(conn, workspace_id="W", person_ids=[person], period=period)
        top = me.models
    assert org.total_micros == 12_500_000
    by_vendor = {v.vendor: v for v in org.vendors}
    assert by_vendor["claude_code"].cost_micros == 0 and by_vendor["claude_code"].covered_micros == 4_000_000
    assert by_vendor["claude_code"].input_tokens == 1000
    assert org.unattributed_micros == 10_000_000
    assert org.previous_total_micros == 1_000_000  # the 31 days before March hold Feb 10
    assert me.total_micros == 6_500_000 and me.estimated_micros == 4_000_000
    assert top == [("claude_code", "Claude Sonnet 4", 4_000_000), ("cursor", "GPT-5", 2_500_000)]


def test_tokens_two_sources_report_count_once_in_the_total(engine):
    person = _store(
        engine,
        lambda person: [
            _overlap(
                "claude_code",
                person,
                cost_micros=4_000_000,
                input_tokens=1000,
                output_tokens=200,
                model="claude-sonnet-4",
            ),
            # Anthropic's usage report holds the same Claude Code traffic: tokens, no dollars.
            {
                **_overlap(
                    "anthropic", person, input_tokens=1000, output_tokens=200, model="claude-sonnet-4"
                ),
                "actor": "anthropic_user:u1",
                "raw_unit": "tokens_only",
            },
            {
                **_overlap("anthropic", person, input_tokens=50, model="claude-haiku"),
                "actor": "anthropic_user:u1",
            },
        ],
    )
    with engine.connect() as conn:
        me = person_report(conn, workspace_id="W", person_ids=[person], period=parse_period("2026-03", DAY))
        org = org_report(conn, workspace_id="W", period=parse_period("2026-03", DAY))
    by_vendor = {v.vendor: v for v in me.vendors}
    assert by_vendor["anthropic"].tokens == 1250 and by_vendor["anthropic"].overlap_tokens == 1200
    assert me.tokens == 1200 + 50
    assert org.tokens == 1200 + 50  # the org rollup keeps the tokens-only flag too


def test_one_model_through_two_vendors_is_one_line_in_top_models(engine):
    """Cursor's ``claude-4-sonnet`` and Anthropic's ``claude-sonnet-4-20250514`` are one model."""
    person = _store(
        engine,
        lambda person: [
            _ana("cursor", person, model="claude-4-sonnet", cost_micros=1_500_000),
            _ana("anthropic", person, model="claude-sonnet-4-20250514", cost_micros=2_000_000),
            _ana("openai", person, model="gpt-5-mini-2025-08-07", cost_micros=3_000_000),
        ],
    )
    period = parse_period("2026-03", DAY)
    with engine.connect() as conn:
        me = person_report(conn, workspace_id="W", person_ids=[person], period=period)
        org = org_models(conn, workspace_id="W", period=period)
        raw = conn.execute(select(UsageDaily.model).order_by(UsageDaily.model)).scalars().all()
    expected = [("anthropic,cursor", "Claude Sonnet 4", 3_500_000), ("openai", "GPT-5 mini", 3_000_000)]
    assert me.models == expected
    assert org == expected
    # the vendors' own names stay in storage
    assert raw == ["claude-4-sonnet", "claude-sonnet-4-20250514", "gpt-5-mini-2025-08-07"]
