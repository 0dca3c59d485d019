"""Tokens of models with no price: counted and shown, never summed as $0."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, func, select

from bot.db.models import UsageDaily
from bot.domain.periods import Period
from bot.domain.records import UNPRICED
from bot.services.reports.team import on_team


def usage_tokens():
    """Every token of a usage row (input, output, cache reads and writes), as a SQL expression."""
    return (
        UsageDaily.input_tokens
        + UsageDaily.output_tokens
        + UsageDaily.cache_read_tokens
        + UsageDaily.cache_write_tokens
    )


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
    query = (
        select(UsageDaily.source, UsageDaily.model, func.sum(usage_tokens()))
        .where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.cost_basis == UNPRICED,
            UsageDaily.day >= start,
            UsageDaily.day < end,
        )
        .group_by(UsageDaily.source, UsageDaily.model)
        .order_by(UsageDaily.source, UsageDaily.model)
    )
    if person_ids is not None:
        query = query.where(UsageDaily.person_id.in_(person_ids))
    return [UnpricedModel(source, model, int(tokens or 0)) for source, model, tokens in conn.execute(query)]


def team_unpriced_models(
    conn: Connection, *, workspace_id: str, team_id: int, period: Period, min_people: int
) -> list[UnpricedModel]:
    """The team's unpriced models in ``period`` (rows of the days each person was a member),
    each only when at least ``min_people`` people used it: the line must not show one person's
    figure to the team (privacy rules)."""
    rows = conn.execute(
        select(UsageDaily.source, UsageDaily.model, func.sum(usage_tokens()))
        .where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.cost_basis == UNPRICED,
            on_team(UsageDaily, team_id, within=(period.start, period.end)),
            UsageDaily.day >= period.start,
            UsageDaily.day < period.end,
        )
        .group_by(UsageDaily.source, UsageDaily.model)
        .having(func.count(func.distinct(UsageDaily.person_id)) >= min_people)
        .order_by(UsageDaily.source, UsageDaily.model)
    )
    return [UnpricedModel(source, model, int(tokens or 0)) for source, model, tokens in rows]
