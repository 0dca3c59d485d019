"""The recap's case against, citing the week's same-day anomaly incidents as counts.

The anomaly check (bot/services/anomalies, docs/anomalies.md) tells each person privately, the
day it happens; the recap only says how many incidents the team had and how they ended, never
whose: the finding names no one (no ``PersonFact``), and its groups are the week's spenders and
the people whose own incidents are counted, so a channel sees it only when both hold at least the
minimum group (``postable``): the incidents of one or two people are their weeks, not the team's.
Held back, it goes to the managers' DM like any withheld finding.

The week's incidents are those of the scope's people (and of the team itself, for a team's
drift) whose day, the UTC day the rule fired on, falls in the recap's week.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Connection, and_, or_, select

from bot.db.models import AnomalyIncident
from bot.services.recap.rules import AGAINST, Finding, RecapFacts
from bot.services.recap.scope import Scope, scope_people

#: How each rule is named in the recap (bot/services/anomalies/detectors.py).
RULE_NAMES = {
    "runaway": "runaway spend",
    "idle": "spend with nothing to show",
    "drift": "shift to the most expensive models",
    "unattributed": "spend on an unlinked account",
}


@dataclass(frozen=True)
class IncidentWeek:
    by_rule: dict[str, int] = field(default_factory=dict)
    still_open: int = 0
    expected: int = 0  # closed because the person said it was expected
    closed: int = 0  # closed by themselves: the figures went back to normal
    #: The people whose own incidents these are (a team's drift is no one's): a count of one
    #: person's incidents says what happened to them, so it needs the minimum group too.
    people: frozenset[int] = frozenset()

    @property
    def total(self) -> int:
        return sum(self.by_rule.values())


def load_incident_week(
    conn: Connection, *, workspace_id: str, scope: Scope, start: date, end: date
) -> IncidentWeek:
    people = scope_people(conn, scope, start, end)
    subjects = [and_(AnomalyIncident.subject_kind == "person", AnomalyIncident.person_id.in_(people))]
    if scope.team_id is not None:
        subjects.append(
            and_(AnomalyIncident.subject_kind == "team", AnomalyIncident.subject_key == str(scope.team_id))
        )
    rows = conn.execute(
        select(AnomalyIncident.rule, AnomalyIncident.status, AnomalyIncident.person_id).where(
            AnomalyIncident.workspace_id == workspace_id,
            AnomalyIncident.day >= start,
            AnomalyIncident.day < end,
            or_(*subjects),
        )
    ).all()
    status = Counter(s for _, s, _ in rows)
    return IncidentWeek(
        dict(Counter(r for r, _, _ in rows)),
        status["open"],
        status["expected"],
        status["closed"],
        frozenset(int(pid) for _, _, pid in rows if pid is not None),
    )


def incidents_cited(facts: RecapFacts, week: IncidentWeek) -> Finding | None:
    """Fires when the team had any incident this week: the counts, per rule and per outcome."""
    if week.total == 0:
        return None
    rules = ", ".join(f"{n} {RULE_NAMES.get(rule, rule)}" for rule, n in sorted(week.by_rule.items()))
    text = (
        f"{week.total} same-day {'anomaly' if week.total == 1 else 'anomalies'} this week ({rules}): "
        f"{week.closed} back to normal, {week.expected} said to be expected, {week.still_open} still open."
    )
    return Finding(
        "anomaly_incidents",
        AGAINST,
        text,
        {"incidents": week.total, "open": week.still_open, "expected": week.expected, "closed": week.closed},
        # Counts over the week's spenders and, for people's own incidents, over the people they
        # happened to: "1 runaway spend, said to be expected" is one person's week, never posted.
        groups=((facts.this.spenders,) + ((week.people,) if week.people else ()))
        if facts.this.spenders
        else (),
    )


def cited(
    conn: Connection, *, workspace_id: str, scope: Scope, facts: RecapFacts, start: date, end: date
) -> list[Finding]:
    week = load_incident_week(conn, workspace_id=workspace_id, scope=scope, start=start, end=end)
    found = incidents_cited(facts, week)
    return [found] if found else []
