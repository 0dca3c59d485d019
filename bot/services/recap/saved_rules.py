"""The recap's case for and against, citing what people say AI saved them, beside the measured
figures (bot/services/saved_time.py, docs/value.md).

Only counts per answer, and only when at least the minimum group of people answered about the
week's merged PRs (the finding's group is the people who answered, ``postable``): one person's
answers never reach a channel. No one is named.

  side     rule          fires when
  -------  ------------  ----------------------------------------------------------------------
  for      saved_time    more than half of the week's answers say some time was saved
  against  saved_little  at least SAVED_LITTLE_SHARE of the week's answers say nothing was saved
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from sqlalchemy import Connection

from bot.services.recap.rules import AGAINST, FOR, Finding, RecapFacts
from bot.services.recap.scope import Scope, scope_people
from bot.services.saved_time import BUCKETS, NOTHING, SavedWeek, saved_week

SAVED_LITTLE_SHARE = Fraction(1, 3)


def _counts(week: SavedWeek) -> str:
    return ", ".join(f"{week.counts[key]} {label.lower()}" for key, label in BUCKETS.items())


def _measured(facts: RecapFacts) -> str:
    merged = facts.this.measure("ai_prs_merged")
    return f"{merged} AI-assisted merged PR{'' if merged == 1 else 's'} measured this week"


def _finding(rule: str, side: str, text: str, week: SavedWeek, facts: RecapFacts) -> Finding:
    numbers: dict = {key: week.counts[key] for key in BUCKETS}
    numbers.update(
        answers=week.answers, people=len(week.answerers), measured=facts.this.measure("ai_prs_merged")
    )
    return Finding(rule, side, text, numbers, groups=(week.answerers,))


def saved_time(facts: RecapFacts, week: SavedWeek) -> Finding | None:
    if week.answers == 0 or 2 * week.saved <= week.answers:
        return None
    text = (
        f"People say the AI saved them time on {week.saved} of the {week.answers} merged PRs they answered "
        f"about ({_counts(week)}), beside {_measured(facts)}."
    )
    return _finding("saved_time", FOR, text, week, facts)


def saved_little(facts: RecapFacts, week: SavedWeek) -> Finding | None:
    nothing = week.counts.get(NOTHING, 0)
    if week.answers == 0 or nothing == 0 or Fraction(nothing, week.answers) < SAVED_LITTLE_SHARE:
        return None
    text = (
        f"On {nothing} of the {week.answers} merged PRs people answered about, they say the AI saved "
        f"nothing ({_counts(week)}), beside {_measured(facts)}."
    )
    return _finding("saved_little", AGAINST, text, week, facts)


def cited(
    conn: Connection, *, workspace_id: str, scope: Scope, facts: RecapFacts, start: date, end: date
) -> list[Finding]:
    people = set(scope_people(conn, scope, start, end))
    week = saved_week(conn, workspace_id=workspace_id, person_ids=people, start=start, end=end)
    return [f for rule in (saved_time, saved_little) if (f := rule(facts, week)) is not None]
