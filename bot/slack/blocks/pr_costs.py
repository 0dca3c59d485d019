"""The private lines of ``/tokens me`` on a person's merged PRs (pure). Ephemeral only: one
person's figures."""

from __future__ import annotations

from bot.services.value.cost_per_pr import MEASURED, PrCost, summarize
from bot.services.value.measures import ValueMeasures
from bot.slack.blocks.common import escape
from bot.slack.blocks.format import usd
from bot.slack.blocks.value_lines import value_lines

MAX_PRS_NAMED = 5


def pr_cost_line(costs: list[PrCost]) -> str | None:
    """E.g. "*Cost per merged PR* (apportioned): median $4.20 over 3 PRs ($1.10–$9.80): acme/api#12
    $9.80 · ..."; None without merged PRs."""
    summary = summarize(costs)
    if summary is None:
        return None
    basis = (
        "measured"
        if summary.measured == summary.prs
        else "apportioned, some measured"
        if summary.measured
        else "apportioned"
    )
    text = (
        f"*Cost per merged PR* ({basis}): median {usd(summary.median_micros)} over {summary.prs} "
        f"PR{'s' if summary.prs != 1 else ''}"
    )
    if summary.prs > 1:
        text += f" (middle half {usd(summary.low_micros)}–{usd(summary.high_micros)})"
    named = sorted(costs, key=lambda c: (c.merged, c.pr_id), reverse=True)[:MAX_PRS_NAMED]
    parts = [
        f"{escape(c.repo)}#{c.number} {usd(c.micros)}" + (" measured" if c.basis == MEASURED else "")
        for c in named
    ]
    text += ": " + " · ".join(parts)
    if len(costs) > len(named):
        text += f" · {len(costs) - len(named)} more"
    if summary.measured == summary.prs:
        note = "Measured: the cost of the agent sessions each PR names."
    elif summary.measured:
        note = (
            "Measured where a PR names its agent session; the rest is your AI spend in each PR's"
            " working span, shared across your PRs open those days."
        )
    else:
        note = "Your AI spend in each PR's working span, shared across your PRs open those days."
    return f"{text}. _{note}_"


def delivery_lines(measures: ValueMeasures | None, costs: list[PrCost]) -> list[str]:
    """A person's own lines on their merged PRs in ``/tokens me``: survival and review load
    (``value_lines``, no group needed for one's own), then their apportioned cost per PR."""
    lines = value_lines(measures) if measures is not None else []
    cost = pr_cost_line(costs)
    return [*lines, cost] if cost else lines
