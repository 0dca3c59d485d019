"""The code host's value measures of a period, as ``/tokens team`` and ``/tokens me`` show them:
survival (``survival.py``) and review load (``review.py``) of the PRs merged in the period.

A person's own measures (ephemeral) need no group; a team's lines withhold a share whose authors
are fewer than the minimum group (``bot.slack.blocks.value_lines``). See docs/value.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from bot.domain.periods import Period
from bot.services.value.merged_prs import Whose, midnight, subject_prs
from bot.services.value.review import ReviewLoad, review_load
from bot.services.value.survival import SurvivalShares, survival_shares


@dataclass(frozen=True)
class ValueMeasures:
    survival: SurvivalShares
    review: ReviewLoad


def value_measures(
    conn: Connection, whose: Whose, *, period: Period, fix_days: int, now: datetime
) -> ValueMeasures:
    """Survival and review load of ``whose`` PRs merged in ``period`` (UTC days); PRs younger
    than ``fix_days`` are pending."""
    span = (midnight(period.start), midnight(period.end))
    return value_measures_between(conn, whose, survival=span, review=span, fix_days=fix_days, now=now)


def value_measures_between(
    conn: Connection,
    whose: Whose,
    *,
    survival: tuple[datetime, datetime],
    review: tuple[datetime, datetime],
    fix_days: int,
    now: datetime,
) -> ValueMeasures:
    """The same over a span of merges for each measure (the recap reads older PRs' survival).
    One span for both (``value_measures``): its PRs are read once."""
    prs = subject_prs(conn, whose, *survival) if survival == review else None
    return ValueMeasures(
        survival=survival_shares(
            conn, whose, start=survival[0], end=survival[1], window_days=fix_days, now=now, prs=prs
        ),
        review=review_load(conn, whose, start=review[0], end=review[1], prs=prs),
    )
