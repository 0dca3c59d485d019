"""Value signals (what AI tools report people did) and spend beside them: the three measures
shown side by side, never folded into one score."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func

from bot.db.models import ActivityDaily
from bot.domain.ai_rules import DELIVERY_VENDORS
from bot.domain.records import ACTIVITY_FIELDS, ActivityCounts

VALUE_FIELDS = ACTIVITY_FIELDS


@dataclass
class Value(ActivityCounts):
    vendor: str

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted out of decided (accept or reject) where the vendor reports rejections,
        else accepted out of suggestions shown (Copilot, Cursor tabs)."""
        if self.rejections:
            return self.acceptances / (self.acceptances + self.rejections)
        if self.suggestions_shown:
            return min(1.0, self.acceptances / self.suggestions_shown)
        return None

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in VALUE_FIELDS)


def _value_rows(rows: Iterable) -> list[Value]:
    found = [
        Value(vendor, **{name: int(x or 0) for name, x in zip(VALUE_FIELDS, rest, strict=True)})
        for vendor, *rest in rows
    ]
    return sorted([v for v in found if not v.is_empty], key=lambda v: v.vendor)


def _value_columns():
    return [ActivityDaily.vendor, *(func.sum(getattr(ActivityDaily, name)) for name in VALUE_FIELDS)]


@dataclass(frozen=True, slots=True)
class ValueRatios:
    """Spend beside three value signals, never folded into one score. Each is None when there is
    nothing to divide by (no accepted lines, no AI commits, no merged PRs)."""

    per_accepted_line: int | None = None
    per_ai_commit: int | None = None
    per_merged_pr: int | None = None

    @property
    def is_empty(self) -> bool:
        return self.per_accepted_line is None and self.per_ai_commit is None and self.per_merged_pr is None


def value_ratios(spend_micros: int, value: Iterable[Value]) -> ValueRatios:
    """``spend_micros`` per accepted line and per commit reported by AI tools (the code host's
    commits are not AI commits), and per PR merged on the code host."""
    lines = commits = merged = 0
    for item in value:
        lines += item.lines_accepted
        merged += item.prs_merged
        if item.vendor not in DELIVERY_VENDORS:
            commits += item.commits
    if spend_micros <= 0:
        return ValueRatios()
    return ValueRatios(
        per_item_micros(spend_micros, lines),
        per_item_micros(spend_micros, commits),
        per_item_micros(spend_micros, merged),
    )


def per_item_micros(total_micros: int, items: int) -> int | None:
    """Spend per item in whole micro-USD (rounded half up); None when there is nothing to divide by."""
    if items <= 0:
        return None
    return (total_micros + items // 2) // items
