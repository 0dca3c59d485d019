"""Survival verdicts, review load groups, the recap's value rules and the value lines: pure
rules, each triggered and not."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.services.recap import value_rules
from bot.services.recap.rules import AGAINST, FOR, postable
from bot.services.recap.value_rules import ValueFacts, ai_prs_reworked, ai_prs_survive, ai_review_slower
from bot.services.value.merged_prs import MergedPr
from bot.services.value.review import ReviewGroup, ReviewLoad, review_group, review_minutes
from bot.services.value.survival import (
    FIXED,
    PENDING,
    REVERTED,
    SURVIVED,
    Followers,
    Share,
    SurvivalShares,
    Verdict,
    verdict,
)
from bot.slack.blocks.value_lines import review_line, survival_line

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
LATER = T0 + timedelta(days=30)


def pr(number: int, *, days: float = 0, repo: str = "lab/app", **kw) -> MergedPr:
    values = dict(
        repo=repo,
        number=number,
        person_id=1,
        opened_at=T0 + timedelta(days=days) - timedelta(hours=5),
        merged_at=T0 + timedelta(days=days),
        ready_at=None,
        review_rounds=0,
        ai=False,
        is_fix=False,
        reverts=(),
        reverted_by="",
        merge_sha=f"{number:040x}",
        files=frozenset({"src/a.py"}),
    )
    values.update(kw)
    return MergedPr(**values)


BASE = pr(1)


def test_reverted_by_a_revert_pr_at_any_time():
    by_number = pr(2, days=40, reverts=("#1",))
    assert verdict(BASE, Followers([BASE, by_number]), 14, LATER + timedelta(days=20)) == Verdict(
        REVERTED, "#2"
    )
    by_sha = pr(3, days=2, reverts=(f"sha:{BASE.merge_sha[:9]}",), files=frozenset())
    assert verdict(BASE, Followers([by_sha]), 14, LATER) == Verdict(REVERTED, "#3")
    cross_repo = pr(4, days=2, repo="lab/ops", reverts=("lab/app#1",))
    assert verdict(BASE, Followers([cross_repo]), 14, LATER).status == REVERTED
    pushed = replace(BASE, reverted_by="commit:abcdef012345")
    assert verdict(pushed, Followers([]), 14, LATER) == Verdict(REVERTED, "commit:abcdef012345")


def test_not_reverted():
    other_number = pr(2, days=2, reverts=("#9",))
    other_repo_same_number = pr(3, days=2, repo="lab/ops", reverts=("#1",))  # #1 of lab/ops
    before = pr(4, days=-1, reverts=("#1",))  # merged before the PR: cannot revert it
    itself = replace(BASE, reverts=("#1",))
    assert verdict(
        BASE, Followers([other_number, other_repo_same_number, before, itself]), 14, LATER
    ) == Verdict(SURVIVED)


def test_followed_by_a_fix_within_the_window():
    fix = pr(2, days=13.9, is_fix=True, files=frozenset({"src/a.py", "src/b.py"}))
    assert verdict(BASE, Followers([fix]), 14, LATER) == Verdict(FIXED, "#2")
    assert verdict(BASE, Followers([fix]), 14, T0 + timedelta(days=14)) == Verdict(
        FIXED, "#2"
    )  # decided early


def test_not_followed_by_a_fix():
    late = pr(2, days=14.1, is_fix=True)
    other_files = pr(3, days=1, is_fix=True, files=frozenset({"src/b.py"}))
    not_a_fix = pr(4, days=1)
    other_repo = pr(5, days=1, is_fix=True, repo="lab/ops")
    assert verdict(BASE, Followers([late, other_files, not_a_fix, other_repo]), 14, LATER) == Verdict(
        SURVIVED
    )
    assert verdict(BASE, Followers([late]), 30, LATER + timedelta(days=1)) == Verdict(
        FIXED, "#2"
    )  # a longer window


def test_pending_until_the_window_closes():
    assert verdict(BASE, Followers([]), 14, T0 + timedelta(days=13)) == Verdict(PENDING)
    assert verdict(BASE, Followers([]), 14, T0 + timedelta(days=14)) == Verdict(SURVIVED)


def test_review_minutes_and_groups():
    ready = replace(BASE, ready_at=T0 - timedelta(minutes=90), review_rounds=3)
    assert review_minutes(ready) == 90
    assert review_minutes(BASE) == 300  # never a draft: from the opening
    assert review_minutes(replace(BASE, ready_at=T0 + timedelta(hours=1))) == 0
    group = review_group([ready, BASE, replace(BASE, number=7, person_id=2, review_rounds=1)])
    assert group == ReviewGroup(prs=3, median_minutes=300, mean_rounds=4 / 3, people=frozenset({1, 2}))
    assert review_group([]) == ReviewGroup()


PEOPLE = frozenset(range(1, 6))


def _facts(ai: Share, other: Share, review: ReviewLoad | None = None) -> ValueFacts:
    """The measures as the recap's loader hands them to the rules."""
    return ValueFacts(SurvivalShares(14, ai, other), review or ReviewLoad())


def _share(survived: int, decided: int, people=PEOPLE) -> Share:
    return Share(survived=survived, reverted=decided - survived, people=people)


def test_survival_rules_for_and_against():
    same = _facts(_share(9, 10), _share(9, 10))
    assert ai_prs_survive(same).side == FOR and ai_prs_reworked(same) is None
    worse = _facts(_share(7, 10), _share(9, 10))
    assert ai_prs_survive(worse) is None
    finding = ai_prs_reworked(worse)
    assert finding.side == AGAINST and finding.numbers["ai_share"] == 0.7
    assert "70% of 10 AI-assisted PRs survived 14 days" in finding.text
    assert postable(finding, 5) and not postable(finding, 6)  # groups: the authors of each share
    slightly_worse = _facts(_share(85, 100), _share(9, 10))  # 5 points: neither side
    assert ai_prs_survive(slightly_worse) is None and ai_prs_reworked(slightly_worse) is None


def test_survival_rules_need_enough_decided_prs():
    few = _facts(_share(1, 4), _share(9, 10))
    assert ai_prs_reworked(few) is None and ai_prs_survive(few) is None
    assert value_rules.evaluate(_facts(Share(), Share())) == ([], [])


def _load(ai_minutes: int, other_minutes: int, prs: int = 5) -> ReviewLoad:
    return ReviewLoad(ReviewGroup(prs, ai_minutes, 2.5, PEOPLE), ReviewGroup(prs, other_minutes, 1.2, PEOPLE))


def test_review_slower_fires_on_ratio_and_gap():
    finding = ai_review_slower(_facts(Share(), Share(), _load(720, 240)))
    assert finding.side == AGAINST and finding.numbers["ai_median_minutes"] == 720
    assert "12.0 h from ready to merge (median of 5, 2.5 review rounds" in finding.text
    assert "4.0 h for 5 others (1.2 rounds)" in finding.text


def test_review_slower_does_not_fire():
    assert ai_review_slower(_facts(Share(), Share(), _load(300, 240))) is None  # not 1.5 times
    assert ai_review_slower(_facts(Share(), Share(), _load(90, 30))) is None  # 3 times, but 1 hour
    assert ai_review_slower(_facts(Share(), Share(), _load(720, 240, prs=4))) is None  # too few PRs


def test_value_lines_withhold_small_groups_for_teams():
    shares = SurvivalShares(
        14, _share(8, 10), Share(survived=19, fixed=1, pending=2, people=frozenset({1, 2}))
    )
    assert survival_line(shares) == (
        "PRs surviving 14 days (no revert, no follow-up fix): AI-assisted 80% of 10 · others 95% of 20 "
        "(2 still within the window)"
    )
    assert "others withheld (fewer than 5 people)" in survival_line(shares, 5)
    assert "AI-assisted 80% of 10" in survival_line(shares, 5)
    assert survival_line(SurvivalShares(14)) is None
    load = _load(720, 240)
    assert review_line(load) == (
        "Ready for review to merge (median): AI-assisted 12.0 h, 2.5 rounds (5 PRs) · "
        "others 4.0 h, 1.2 rounds (5 PRs)"
    )
    assert review_line(load, 6).count("withheld (fewer than 6 people)") == 2
    assert review_line(ReviewLoad()) is None
