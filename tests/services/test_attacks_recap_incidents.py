"""Attacks on the recap's anomaly-incident counts from a channel member: can the count tell what
happened to one person this week?"""

from __future__ import annotations

from datetime import date, timedelta

from bot.services.recap.incident_rules import IncidentWeek, incidents_cited
from bot.services.recap.rules import RecapFacts, WeekTotal, postable

USD = 1_000_000
START = date(2026, 11, 23)
MIN = 5


def _facts(spenders: int) -> RecapFacts:
    week = WeekTotal(START, spend_micros=10 * USD, has_data=True, spenders=frozenset(range(1, spenders + 1)))
    return RecapFacts(weeks=[week, WeekTotal(START - timedelta(days=7))])


def test_one_persons_incident_is_not_posted_however_many_spent():
    """Attack: twelve people spent this week and one of them had a runaway spend they said was
    expected. Before the fix the finding's only group was the twelve spenders, so the channel read
    "1 same-day anomaly this week (1 runaway spend): … 1 said to be expected" — one person's week,
    and whoever was seen working late knows whose. Now the people whose incidents are counted are
    a group too (one), and the finding goes to the managers only."""
    week = IncidentWeek({"runaway": 1}, expected=1, people=frozenset({7}))
    found = incidents_cited(_facts(12), week)
    assert found is not None and "1 runaway spend" in found.text
    assert not postable(found, MIN)


def test_incidents_of_the_minimum_group_or_of_the_team_are_posted():
    """Not triggered: five people's incidents among twelve spenders, and a team's own drift
    (no one's), are posted."""
    five = IncidentWeek({"runaway": 3, "idle": 2}, closed=5, people=frozenset(range(1, 6)))
    assert postable(incidents_cited(_facts(12), five), MIN)
    four = IncidentWeek({"runaway": 4}, closed=4, people=frozenset(range(1, 5)))
    assert not postable(incidents_cited(_facts(12), four), MIN)
    drift = IncidentWeek({"drift": 1}, still_open=1)
    assert postable(incidents_cited(_facts(12), drift), MIN)
