"""Tokens of models with no price: counted and shown, never summed as $0.

Read from the daily rollups (``usage_org_daily``, ``usage_person_daily``), which hold the same sums
per (day, source, model, basis) as ``usage_daily``: no index of ``usage_daily`` leads with
``cost_basis``, so the org's query there scanned the whole table (2.4 s at 10M rows, 4.6 s at 30M
on PostgreSQL, docs/benchmarks.md "PostgreSQL at 30M rows"), where the org rollup is a few
thousand rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, func, select

from bot.db.models import UsageOrgDaily, UsagePersonDaily
from bot.domain.periods import Period
from bot.domain.records import UNPRICED
from bot.services.reports.team import on_team


def usage_tokens(table):
    """Every token of a usage (or usage rollup) row: input, output, cache reads and writes."""
    return table.input_tokens + table.output_tokens + table.cache_read_tokens + table.cache_write_tokens


@dataclass(frozen=True, slots=True)
class UnpricedModel:
    """Tokens of a model with no price (``cost_basis == "unpriced"``): counted, never $0."""

    source: str
    model: str
    tokens: int


def unpriced_models(
    conn: Connection, *, workspace_id: str, start: date, end: date, person_ids: list[int] | None = None
) -> list[UnpricedModel]:
    """Models whose usage in ``[start, end)`` has no price (``cost_basis == "unpriced"``), with
    their tokens, per source; optionally only the rows of ``person_ids``."""
    table = UsageOrgDaily if person_ids is None else UsagePersonDaily
    query = (
        select(table.source, table.model, func.sum(usage_tokens(table)))
        .where(
            table.workspace_id == workspace_id,
            table.cost_basis == UNPRICED,
            table.day >= start,
            table.day < end,
        )
        .group_by(table.source, table.model)
        .order_by(table.source, table.model)
    )
    if person_ids is not None:
        query = query.where(UsagePersonDaily.person_id.in_(person_ids))
    return [UnpricedModel(source, model, int(tokens or 0)) for source, model, tokens in conn.execute(query)]


def team_unpriced_models(
    conn: Connection, *, workspace_id: str, team_id: int, period: Period, min_people: int
) -> list[UnpricedModel]:
    """The team's unpriced models in ``period`` (rows of the days each person was a member),
    each only when at least ``min_people`` people used it: the line must not show one person's
    figure to the team (privacy rules)."""
    table = UsagePersonDaily
    rows = conn.execute(
        select(table.source, table.model, func.sum(usage_tokens(table)))
        .where(
            table.workspace_id == workspace_id,
            table.cost_basis == UNPRICED,
            on_team(table, team_id, within=(period.start, period.end)),
            table.day >= period.start,
            table.day < period.end,
        )
        .group_by(table.source, table.model)
        .having(func.count(func.distinct(table.person_id)) >= min_people)
        .order_by(table.source, table.model)
    )
    return [UnpricedModel(source, model, int(tokens or 0)) for source, model, tokens in rows]
