"""The recap's money rules, each triggered and not: cost per merged PR and the pre-adoption
baseline (with its early-dip label), and the baseline's weeks read from real rows."""

from __future__ import annotations

from datetime import date, timedelta

from bot.db import rollups
from bot.db.models import UsagePersonDaily
from bot.services.recap.money_rules import CONTEXT, MoneyFacts, baseline, cost_per_pr, evaluate_money
from bot.services.recap.rules import postable
from bot.services.value import baseline as baselines
from bot.services.value.baseline import EARLY_WEEKS, TeamWeek, compare
from bot.services.value.cost_per_pr import PrCostSummary
from tests.support.value import add_merged_pr, add_person, add_usage

USD = 1_000_000
END = date(2026, 11, 30)
THRESHOLD = 50 * USD
TEAM = frozenset(range(1, 6))


def weeks(spend: list[int], prs: list[int]) -> list[TeamWeek]:
    """Newest first, as the loader returns them; dollars and merged PRs a week."""
    return [
        TeamWeek(
            END - timedelta(days=7 * (i + 1)),
            s * USD,
            p,
            TEAM if p else frozenset(),
        )
        for i, (s, p) in enumerate(zip(spend, prs, strict=True))
    ]


def summary(**kw) -> PrCostSummary:
    values = dict(
        prs=6,
        authors=TEAM,
        median_micros=4_200_000,
        low_micros=1_100_000,
        high_micros=9_800_000,
        measured=0,
        without_spend=1,
        spenders=TEAM,
    )
    return PrCostSummary(**{**values, **kw})


def test_cost_per_pr_fires_with_merged_prs_labelled_apportioned():
    finding = cost_per_pr(MoneyFacts(pr_costs=summary()))
    assert finding is not None and finding.side == CONTEXT
    assert (
        "Cost per merged PR (apportioned): median $4.20, middle half $1.10–$9.80, over 6 PRs" in finding.text
    )
    assert "1 with no AI spend" in finding.text
    assert finding.numbers["basis"] == "apportioned" and postable(finding, 5)
    assert not postable(finding, 6)  # five authors: not for a channel with a minimum of six
    mixed = cost_per_pr(MoneyFacts(pr_costs=summary(measured=2)))
    assert "(mostly apportioned)" in mixed.text and "2 measured from agent sessions" in mixed.text
    assert "(measured)" in cost_per_pr(MoneyFacts(pr_costs=summary(measured=6))).text


def test_cost_per_pr_does_not_fire_without_merged_prs():
    assert cost_per_pr(MoneyFacts()) is None
    assert cost_per_pr(MoneyFacts(pr_costs=summary(prs=0))) is None


def test_baseline_against_pre_adoption_weeks_and_last_week():
    # Oldest first: 4 weeks of no spend and 10 PRs a week, adoption 10 weeks ago, now 14 a week.
    history = weeks([80] * 10 + [0] * 4, [14, 12] + [11] * 8 + [10] * 4)
    found = compare(history, THRESHOLD)
    assert found is not None and (found.pre_weeks, found.pre_prs, found.weeks_since) == (4, 40, 9)
    assert not found.early_dip
    finding = baseline(MoneyFacts(baseline=found))
    assert finding.text.startswith("Merged PRs: 14 this week against 10.0 a week before the team adopted AI")
    assert "4 weeks before the week of" in finding.text and "and 12 last week" in finding.text
    assert "Early dip" not in finding.text and postable(finding, 5)


def test_an_early_dip_after_adoption_is_labelled_as_such():
    history = weeks([90, 70, 0, 0, 0], [6, 9, 10, 10, 10])
    found = compare(history, THRESHOLD)
    assert found.weeks_since == 1 and found.early_dip
    text = baseline(MoneyFacts(baseline=found)).text
    assert f"Early dip after adoption (week 2 of {EARLY_WEEKS})" in text and "not as failure" in text
    # The same dip long after adoption is not labelled.
    late = compare(weeks([90] * 8 + [0, 0], [6] * 8 + [10, 10]), THRESHOLD)
    assert late.weeks_since >= EARLY_WEEKS and not late.early_dip
    assert "Early dip" not in baseline(MoneyFacts(baseline=late)).text


def test_baseline_does_not_fire_without_adoption_or_pre_adoption_prs():
    assert compare(weeks([10, 20, 30], [5, 5, 5]), THRESHOLD) is None  # never crossed $50
    assert compare(weeks([60, 60, 0], [5, 5, 0]), THRESHOLD) is None  # no PR known before it
    assert compare(weeks([60, 60, 60], [5, 5, 5]), THRESHOLD) is None  # adopted before the history
    assert baseline(MoneyFacts()) is None
    assert evaluate_money(MoneyFacts()) == []


def test_team_weeks_from_rows(engine):
    with engine.begin() as conn:
        pid = add_person(conn, "a")
        add_usage(conn, pid, END - timedelta(days=1), 60 * USD)
        add_usage(conn, pid, END - timedelta(days=3), 2 * USD)
        for number, back in ((1, 2), (2, 20), (3, 22)):
            add_merged_pr(conn, pid, number, END - timedelta(days=back), END - timedelta(days=back))
        rollups.rebuild(conn)
    with engine.connect() as conn:
        found = baselines.load_team_weeks(
            conn,
            workspace_id="default",
            clause=UsagePersonDaily.person_id.in_([pid]),
            person_ids=[pid],
            end=END,
        )
    assert len(found) == baselines.HISTORY_WEEKS
    assert (found[0].spend_micros, found[0].merged_prs, found[0].authors) == (62 * USD, 1, frozenset({pid}))
    assert (found[2].merged_prs, found[3].merged_prs, found[1].spend_micros) == (1, 1, 0)
    result = compare(found, THRESHOLD)
    assert result is not None and (result.pre_weeks, result.pre_prs, result.this_prs) == (3, 2, 1)


def test_baseline_is_read_only_with_merged_prs(engine):
    """``load_baseline`` is ``compare`` of the loaded weeks; without a merged PR in them there is
    no baseline whatever the spend (and the spend is not read)."""
    with engine.begin() as conn:
        with_prs, without = add_person(conn, "a"), add_person(conn, "b")
        for pid in (with_prs, without):
            add_usage(conn, pid, END - timedelta(days=1), 60 * USD)
            add_usage(conn, pid, END - timedelta(days=36), 3 * USD)  # the sixth week back
        for number, back in ((1, 2), (2, 20), (3, 22)):
            add_merged_pr(conn, with_prs, number, END - timedelta(days=back), END - timedelta(days=back))
        rollups.rebuild(conn)
    with engine.connect() as conn:
        found = {}
        for pid in (with_prs, without):
            rules = {
                "workspace_id": "default",
                "clause": UsagePersonDaily.person_id.in_([pid]),
                "person_ids": [pid],
                "end": END,
            }
            weeks_read = baselines.load_team_weeks(conn, **rules)
            assert weeks_read[5].spend_micros == 3 * USD
            found[pid] = (
                baselines.load_baseline(conn, **rules, threshold_micros=THRESHOLD),
                compare(weeks_read, THRESHOLD),
            )
    loaded, compared = found[with_prs]
    assert loaded is not None and loaded == compared
    assert found[without] == (None, None)
