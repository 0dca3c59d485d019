"""The recap's money lines: cost per merged PR and the team's pre-adoption baseline.

The rules are pure functions of ``MoneyFacts``; ``load_money_findings`` gathers those through
``bot.services.value`` (which holds the SQL) and runs them.

Neither is a case for or against: they are context (``CONTEXT``), shown in their own section.

  rule           fires when
  -------------  ----------------------------------------------------------------------------
  cost_per_pr    at least one PR of the team merged this week (its cost is the author's AI
                 spend in the PR's working span, apportioned: bot.services.value.cost_per_pr);
                 median and middle half per team, never a figure per person
  baseline       the team reached the adoption threshold in the weeks read and merged PRs are
                 known before that (bot.services.value.baseline); an early dip is labelled

Both declare their groups (cost per PR: the authors with AI spend behind the PR figures; the
baseline: the authors of each week compared), so ``rules.postable`` keeps them
out of a channel when too few people make them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Connection

from bot.db.models import UsagePersonDaily
from bot.domain.money import format_usd, usd_to_micros
from bot.services.recap.rules import Finding
from bot.services.recap.scope import Scope, scope_people
from bot.services.value import baseline as baselines
from bot.services.value.baseline import EARLY_WEEKS, Baseline
from bot.services.value.cost_per_pr import PrCostSummary, load_pr_costs, summarize
from bot.settings import Settings

CONTEXT = "context"


@dataclass(frozen=True)
class MoneyFacts:
    pr_costs: PrCostSummary | None = None
    baseline: Baseline | None = None


def cost_per_pr(facts: MoneyFacts) -> Finding | None:
    s = facts.pr_costs
    if s is None or s.prs == 0:
        return None
    label = "measured" if s.measured == s.prs else "apportioned" if not s.measured else "mostly apportioned"
    text = (
        f"Cost per merged PR ({label}): median {format_usd(s.median_micros)}, middle half "
        f"{format_usd(s.low_micros)}–{format_usd(s.high_micros)}, over {s.prs} PR{'s' if s.prs != 1 else ''} "
        f"by {len(s.authors)} author{'s' if len(s.authors) != 1 else ''}. Each is the author's AI spend "
        "in the PR's working span, shared across their PRs open those days"
    )
    if s.measured and s.measured < s.prs:
        text += f"; {s.measured} measured from agent sessions tied to the PR"
    if s.without_spend:
        text += f"; {s.without_spend} with no AI spend in their span"
    return Finding(
        "cost_per_pr",
        CONTEXT,
        text + ".",
        {
            "prs": s.prs,
            "authors": len(s.authors),
            "median_micros": s.median_micros,
            "low_micros": s.low_micros,
            "high_micros": s.high_micros,
            "measured": s.measured,
            "basis": label,
        },
        # The figures come from the authors with spend: colleagues whose PRs cost $0 pad the count
        # of authors, not the people behind the amounts (docs/privacy.md, "Recap posts").
        groups=(s.spenders,),
    )


def _weeks(n: int) -> str:
    return f"{n} week{'s' if n != 1 else ''}"


def baseline(facts: MoneyFacts) -> Finding | None:
    b = facts.baseline
    if b is None:
        return None
    since = "this week" if b.weeks_since == 0 else f"{_weeks(b.weeks_since)} ago"
    text = (
        f"Merged PRs: {b.this_prs} this week against {b.pre_average:.1f} a week before the team adopted "
        f"AI tools ({_weeks(b.pre_weeks)} before the week of {b.adopted:%b %-d}, "
        f"{since})"
    )
    if b.last_prs is not None:
        text += f" and {b.last_prs} last week"
    text += "."
    if b.early_dip:
        text += (
            f" Early dip after adoption (week {b.weeks_since + 1} of {EARLY_WEEKS}): learning the tools "
            "costs time first; read it against the coming weeks, not as failure."
        )
    return Finding(
        "baseline",
        CONTEXT,
        text,
        {
            "adopted": b.adopted.isoformat(),
            "weeks_since": b.weeks_since,
            "pre_weeks": b.pre_weeks,
            "pre_average": round(b.pre_average, 2),
            "this": b.this_prs,
            "last": b.last_prs,
            "early_dip": "yes" if b.early_dip else "no",
        },
        groups=b.groups,
    )


MONEY_RULES = (cost_per_pr, baseline)


def evaluate_money(facts: MoneyFacts) -> list[Finding]:
    return [f for rule in MONEY_RULES if (f := rule(facts)) is not None]


def load_money_findings(
    conn: Connection, workspace_id: str, scope: Scope, end: date, threshold_usd: Decimal | None = None
) -> list[Finding]:
    """The money findings of ``scope`` for the week ``[end - 7, end)`` (all of them: the caller
    splits what a channel may see). ``threshold_usd``: ``Settings.adoption_threshold_usd``."""
    if threshold_usd is None:
        threshold_usd = Settings.model_fields["adoption_threshold_usd"].default
    threshold_micros = usd_to_micros(threshold_usd)
    start = end - timedelta(days=7)
    history = end - timedelta(days=7 * baselines.HISTORY_WEEKS)
    people = scope_people(conn, scope, history, end)
    this_week = set(scope_people(conn, scope, start, end))
    costs = load_pr_costs(conn, workspace_id=workspace_id, person_ids=sorted(this_week), start=start, end=end)
    baseline = baselines.load_baseline(
        conn,
        workspace_id=workspace_id,
        clause=scope.clause(UsagePersonDaily, within=(history, end)),
        person_ids=people,
        end=end,
        threshold_micros=threshold_micros,
    )
    facts = MoneyFacts(summarize(costs), baseline)
    return evaluate_money(facts)
