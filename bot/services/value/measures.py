"""The code host's value measures of a period, as ``/tokens team`` and ``/tokens me`` show them:
survival (``survival.py``) and review load (``review.py``) of the PRs merged in the period.

A person's own measures (ephemeral) need no group; a team's lines withhold a share whose authors
are fewer than the minimum group (``bot.slack.blocks.value_lines``). See docs/value.md.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from bot.domain.periods import Period
from bot.services.value.merged_prs import midnight
from bot.services.value.review import ReviewLoad, review_load
from bot.services.value.survival import SurvivalShares, survival_shares


@dataclass(frozen=True)
class ValueMeasures:
    survival: SurvivalShares
    review: ReviewLoad


def value_measures(
    conn: Connection,
    *,
    workspace_id: str,
    period: Period,
    fix_days: int,
    now: datetime,
    person_ids: Collection[int] | None = None,
    team_id: int | None = None,
) -> ValueMeasures:
    """Survival and review load of the PRs merged in ``period`` (UTC days) by ``person_ids`` or
    the team's members (neither: the whole org). PRs younger than ``fix_days`` are pending."""
    return value_measures_between(
        conn,
        workspace_id=workspace_id,
        survival=(midnight(period.start), midnight(period.end)),
        review=(midnight(period.start), midnight(period.end)),
        fix_days=fix_days,
        now=now,
        person_ids=person_ids,
        team_id=team_id,
    )


def value_measures_between(
    conn: Connection,
    *,
    workspace_id: str,
    survival: tuple[datetime, datetime],
    review: tuple[datetime, datetime],
    fix_days: int,
    now: datetime,
    person_ids: Collection[int] | None = None,
    team_id: int | None = None,
) -> ValueMeasures:
    """The same, over a span of merges for each measure (the recap reads older PRs' survival)."""
    whose = {"workspace_id": workspace_id, "person_ids": person_ids, "team_id": team_id}
    return ValueMeasures(
        survival=survival_shares(
            conn, start=survival[0], end=survival[1], window_days=fix_days, now=now, **whose
        ),
        review=review_load(conn, start=review[0], end=review[1], **whose),
    )
