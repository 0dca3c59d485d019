"""Spend and value reports, aggregated in SQL. One module per concern, each importing its
siblings directly (no cycles); this file re-exports the names callers use as ``reports.X``:

- ``value``: value signals (``Value``) and spend beside them (``ValueRatios``, ``value_ratios``);
- ``spend``: a person's and the org's spend (``person_report``, ``org_report``, ``org_models``,
  ``weekly_spend``) and the fair comparison (``comparison_for``);
- ``team``: a team's spend on the days each person belonged (``on_team``, ``team_report``);
- ``medians``: a team's median of each value measure (``team_median_ratios``);
- ``delivery``: merged PRs next to spend (``delivery_measures``);
- ``unpriced``: tokens of models with no price (``unpriced_models``).
"""

from __future__ import annotations

from bot.services.reports.delivery import DeliveryMeasures, IdleWeek, ai_tool_days, delivery_measures
from bot.services.reports.medians import team_median_ratios
from bot.services.reports.spend import (
    VENDOR_SUMS,
    ModelTally,
    SpendReport,
    VendorSpend,
    comparison_for,
    history_start,
    org_models,
    org_report,
    person_report,
    weekly_spend,
)
from bot.services.reports.team import TeamReport, on_team, team_report
from bot.services.reports.unpriced import UnpricedModel, team_unpriced_models, unpriced_models, usage_tokens
from bot.services.reports.value import VALUE_FIELDS, Value, ValueRatios, per_item_micros, value_ratios

__all__ = [
    "VALUE_FIELDS",
    "VENDOR_SUMS",
    "DeliveryMeasures",
    "IdleWeek",
    "ModelTally",
    "SpendReport",
    "TeamReport",
    "UnpricedModel",
    "Value",
    "ValueRatios",
    "VendorSpend",
    "ai_tool_days",
    "comparison_for",
    "delivery_measures",
    "history_start",
    "on_team",
    "org_models",
    "org_report",
    "per_item_micros",
    "person_report",
    "team_median_ratios",
    "team_report",
    "team_unpriced_models",
    "unpriced_models",
    "usage_tokens",
    "value_ratios",
    "weekly_spend",
]
