"""Pure tests of the reconciliation and unpriced-model builders: exact wording, Slack limits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from bot.domain.periods import Period
from bot.services.reconcile import MISMATCH_TOLERANCE, Drift, Reconciliation, SourceFigures, TotalCheck
from bot.services.reports import UnpricedModel
from bot.slack.blocks.common import Message, context, validate
from bot.slack.blocks.reconcile import (
    build_reconcile,
    check_line,
    reconcile_status_blocks,
    unpriced_line,
    with_unpriced,
)

MARCH = Period(date(2026, 3, 1), date(2026, 4, 1), "March 2026")


def _check(vendor: int, stored: int, what: str = "billed") -> TotalCheck:
    return TotalCheck("cursor", what, date(2026, 3, 1), date(2026, 3, 4), vendor, stored)


def test_the_tolerance_is_one_percent_of_the_vendor_figure():
    assert Decimal("0.01") == MISMATCH_TOLERANCE
    assert not _check(1_000_000, 1_010_000).mismatched  # exactly 1%
    assert _check(1_000_000, 1_010_001).mismatched
    assert _check(1_000_000, 989_999).mismatched
    assert _check(0, 1).mismatched and not _check(0, 0).mismatched
    assert _check(0, 5).difference_percent is None


def test_check_line_names_both_figures_the_gap_and_the_days():
    assert check_line(_check(733_330, 638_330)) == (
        ":warning: billed Mar 1 – Mar 3: vendor *$0.73* · Tokenwise *$0.64* · difference -$0.10 (-13.0%)"
    )
    assert check_line(_check(1_000_000, 1_005_000, "billed_and_estimated")).startswith(
        ":white_check_mark: billed + estimated"
    )


def test_status_summary_puts_mismatches_first_and_names_sources_without_totals():
    rec = Reconciliation(
        MARCH,
        (
            SourceFigures("cursor", "cursor", 638_330, 0, 0, 0, (_check(733_330, 638_330),)),
            SourceFigures("openai", "openai", 5, 0, 0, 1200, ()),
        ),
        (UnpricedModel("openai", "gpt-9", 1200),),
        (),
    )
    divider, block = reconcile_status_blocks(rec)
    assert divider == {"type": "divider"}
    lines = block["text"]["text"].split("\n")
    assert lines[1].startswith("cursor :warning: billed")
    assert lines[2:] == [
        "no vendor total reported: openai",
        ":grey_question: Unpriced models: gpt-9 (1,200 tokens, openai)",
    ]


def test_nothing_to_say_adds_nothing_to_status():
    assert reconcile_status_blocks(Reconciliation(MARCH, (), (), ())) == []


def test_reconcile_view_stays_within_slack_limits_with_many_sources():
    many = tuple(SourceFigures(f"source-{n:02d}", "openai", n, n, n, n, (_check(100, n),)) for n in range(60))
    unpriced = tuple(UnpricedModel("openai", f"m{n}", n) for n in range(20))
    reply = build_reconcile(Reconciliation(MARCH, many, unpriced, (Drift("a vs b", 9, 10),)))
    assert validate(reply.blocks) == []
    assert any("and 15 more" in b.get("text", {}).get("text", "") for b in reply.blocks)


def test_unpriced_line_sums_tokens_and_caps_the_names():
    models = [UnpricedModel("openai", f"m{n}", 1000) for n in range(7)]
    assert unpriced_line(models) == (
        "+ 7,000 tokens on unpriced models (m0, m1, m2, m3, m4 and 2 more) not in the total"
    )
    assert unpriced_line([]) is None
    reply = Message("t", [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}, context("footer")])
    blocks = with_unpriced(reply, models[:1]).blocks
    assert [b["type"] for b in blocks] == ["section", "context", "context"]
    assert blocks[1]["elements"][0]["text"].startswith("+ 1,000 tokens")
    assert with_unpriced(reply, []) is reply
