"""One mrkdwn line each for the code host's value measures (pure): survival and review load, as
``/tokens team`` and ``/tokens me`` show them (docs/value.md).

``min_group``: for a team line, the minimum group each share must come from, else that share is
withheld; None for a person's own line (ephemeral, their own numbers).
"""

from __future__ import annotations

from bot.services.value.measures import ValueMeasures
from bot.services.value.review import ReviewGroup, ReviewLoad
from bot.services.value.survival import Share, SurvivalShares

WITHHELD = "withheld (fewer than {n} people)"


def _visible(people: frozenset[int], min_group: int | None, exclude: int | None = None) -> bool:
    """A share is shown when its PRs come from ``min_group`` people besides ``exclude`` (a member
    who reads their own team: their own PRs must not count towards the group)."""
    return min_group is None or len(people - {exclude}) >= min_group


def _share(share: Share, min_group: int | None, exclude: int | None = None) -> str:
    if not share.decided:
        return "none decided yet"
    if not _visible(share.people, min_group, exclude):
        return WITHHELD.format(n=min_group)
    return f"{share.share:.0%} of {share.decided}"


def survival_line(
    shares: SurvivalShares, min_group: int | None = None, exclude: int | None = None
) -> str | None:
    """E.g. "PRs surviving 14 days: AI-assisted 80% of 10 · others 95% of 20"; None without PRs."""
    if not (shares.ai.decided or shares.other.decided or shares.ai.pending or shares.other.pending):
        return None
    pending = shares.ai.pending + shares.other.pending
    tail = f" ({pending} still within the window)" if pending else ""
    return (
        f"PRs surviving {shares.window_days} days (no revert, no follow-up fix): "
        f"AI-assisted {_share(shares.ai, min_group, exclude)} · "
        f"others {_share(shares.other, min_group, exclude)}{tail}"
    )


def _review(group: ReviewGroup, min_group: int | None, exclude: int | None = None) -> str:
    if not group.prs:
        return "none"
    if not _visible(group.people, min_group, exclude):
        return WITHHELD.format(n=min_group)
    assert group.median_minutes is not None and group.mean_rounds is not None
    return f"{group.median_minutes / 60:.1f} h, {group.mean_rounds:.1f} rounds ({group.prs} PRs)"


def review_line(load: ReviewLoad, min_group: int | None = None, exclude: int | None = None) -> str | None:
    """E.g. "Ready to merge (median): AI-assisted 6.0 h, 2.1 rounds (8 PRs) · others ..."."""
    if not (load.ai.prs or load.other.prs):
        return None
    return (
        f"Ready for review to merge (median): AI-assisted {_review(load.ai, min_group, exclude)} · "
        f"others {_review(load.other, min_group, exclude)}"
    )


def value_lines(
    measures: ValueMeasures, min_group: int | None = None, exclude: int | None = None
) -> list[str]:
    """The lines ``/tokens team`` (``min_group`` set) and ``/tokens me`` (None) add, when there are PRs."""
    lines = (
        survival_line(measures.survival, min_group, exclude),
        review_line(measures.review, min_group, exclude),
    )
    return [line for line in lines if line]
