"""The recap's value rules from the code host: do AI-assisted PRs last, and what do they cost
reviewers? (docs/value.md). ``load_value`` reads the facts, ``evaluate`` is pure.

  side     rule                 fires when
  -------  -------------------  ---------------------------------------------------------------
  for      ai_prs_survive       at least SURVIVAL_MIN_PRS decided AI-assisted PRs and as many
                                others, and the AI-assisted surviving share is at least the
                                others' (no more than SURVIVAL_SLACK lower)
  against  ai_prs_reworked      the same counts, and the AI-assisted surviving share is at least
                                SURVIVAL_GAP lower than the others'
  against  ai_review_slower     at least REVIEW_MIN_PRS AI-assisted PRs and as many others merged,
                                and the AI-assisted median review time is at least REVIEW_RATIO
                                times the others' and REVIEW_MIN_GAP_MINUTES longer

Survival reads the PRs merged in the SURVIVAL_WEEKS weeks that end ``fix_days`` before the recap's
end (younger PRs are still pending); review load reads the PRs merged in the REVIEW_WEEKS weeks
ending with the recap's week. Each finding's groups are the authors behind each share, so a
channel sees it only when both hold the minimum group (``rules.postable``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy.engine import Connection

from bot.services.recap.rules import AGAINST, FOR, Finding
from bot.services.value.measures import ValueMeasures, value_measures_between
from bot.services.value.merged_prs import Whose, midnight

SURVIVAL_WEEKS = 4
SURVIVAL_MIN_PRS = 5
SURVIVAL_SLACK = 0.02  # 2 points
SURVIVAL_GAP = 0.10  # 10 points
REVIEW_WEEKS = 4
REVIEW_MIN_PRS = 5
REVIEW_RATIO = 1.5
REVIEW_MIN_GAP_MINUTES = 240  # 4 hours


ValueFacts = ValueMeasures  # what the rules read


def load_value(conn: Connection, whose: Whose, *, end: date, fix_days: int, now: datetime) -> ValueFacts:
    closed = midnight(end) - timedelta(days=fix_days)
    return value_measures_between(
        conn,
        whose,
        survival=(closed - timedelta(weeks=SURVIVAL_WEEKS), closed),
        review=(midnight(end) - timedelta(weeks=REVIEW_WEEKS), midnight(end)),
        fix_days=fix_days,
        now=now,
    )


def hours(minutes: int) -> str:
    return f"{minutes / 60:.1f} h"


def _survival(facts: ValueFacts) -> tuple[float, float] | None:
    ai, other = facts.survival.ai, facts.survival.other
    if ai.decided < SURVIVAL_MIN_PRS or other.decided < SURVIVAL_MIN_PRS:
        return None
    assert ai.share is not None and other.share is not None
    return ai.share, other.share


def _survival_finding(facts: ValueFacts, rule: str, side: str, claim: str) -> Finding:
    s = facts.survival
    text = (
        f"{claim}: {s.ai.share:.0%} of {s.ai.decided} AI-assisted PRs survived {s.window_days} days "
        f"(no revert, no follow-up fix), against {s.other.share:.0%} of {s.other.decided} others."
    )
    numbers = {
        "ai_share": round(s.ai.share or 0, 4),
        "other_share": round(s.other.share or 0, 4),
        "ai_decided": s.ai.decided,
        "other_decided": s.other.decided,
        "ai_reverted": s.ai.reverted,
        "ai_fixed": s.ai.fixed,
    }
    return Finding(rule, side, text, numbers, groups=s.groups)


def ai_prs_survive(facts: ValueFacts) -> Finding | None:
    shares = _survival(facts)
    if shares is None or shares[0] < shares[1] - SURVIVAL_SLACK:
        return None
    return _survival_finding(facts, "ai_prs_survive", FOR, "AI-assisted PRs last as well as the others")


def ai_prs_reworked(facts: ValueFacts) -> Finding | None:
    shares = _survival(facts)
    if shares is None or shares[0] > shares[1] - SURVIVAL_GAP:
        return None
    return _survival_finding(facts, "ai_prs_reworked", AGAINST, "AI-assisted PRs were reverted or fixed more")


def ai_review_slower(facts: ValueFacts) -> Finding | None:
    ai, other = facts.review.ai, facts.review.other
    if ai.prs < REVIEW_MIN_PRS or other.prs < REVIEW_MIN_PRS:
        return None
    assert ai.median_minutes is not None and other.median_minutes is not None
    if ai.median_minutes < REVIEW_RATIO * other.median_minutes:
        return None
    if ai.median_minutes - other.median_minutes < REVIEW_MIN_GAP_MINUTES:
        return None
    text = (
        f"AI-assisted PRs took longer to review: {hours(ai.median_minutes)} from ready to merge "
        f"(median of {ai.prs}, {ai.mean_rounds:.1f} review rounds on average) against "
        f"{hours(other.median_minutes)} for {other.prs} others ({other.mean_rounds:.1f} rounds)."
    )
    numbers = {
        "ai_median_minutes": ai.median_minutes,
        "other_median_minutes": other.median_minutes,
        "ai_prs": ai.prs,
        "other_prs": other.prs,
    }
    return Finding("ai_review_slower", AGAINST, text, numbers, groups=facts.review.groups)


def evaluate(facts: ValueFacts) -> tuple[list[Finding], list[Finding]]:
    """(the case for, the case against) from the code host's value rules."""
    pro = [f for f in (ai_prs_survive(facts),) if f is not None]
    con = [f for rule in (ai_prs_reworked, ai_review_slower) if (f := rule(facts)) is not None]
    return pro, con
