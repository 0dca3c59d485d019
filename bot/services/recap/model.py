"""The recap's typed values: its lines, the vote tally and the ``Recap`` a builder renders.

No I/O here: ``bot.services.recap.load`` fills these in, ``bot.slack.blocks.recap`` and
``bot.slack.blocks.recap_chart`` read them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date

from bot.db.models import Person, Team
from bot.domain.periods import Period
from bot.services import privacy
from bot.services.recap.rules import MEASURES, Finding, PersonFact, RecapFacts
from bot.services.reports import Value, per_item_micros

WEEKS = 8  # the chart's span; the rules look back as far
SHOWN_WEEKS = 5  # this week and the four the average is taken over: who counts for a line

CHOICES: dict[str, str] = {"worth": "Worth it", "unsure": "Not sure", "not_worth": "Not worth it"}


def channel_label(person: Person | None) -> str | None:
    """The name a channel may show for ``person``, or None (unknown, or not opted in: counted,
    never named)."""
    return privacy.channel_name(person.display_name or "", person.show_name_in_channels) if person else None


@dataclass
class SpendLine:
    """A vendor's or model family's spend: this week, last week and the baseline weeks' sum."""

    label: str
    people: int
    this_micros: int = 0
    last_micros: int = 0
    base_micros: int = 0
    base_weeks: int = 0
    estimated_micros: int = 0  # this week
    seat_micros: int = 0  # this week

    @property
    def average_micros(self) -> int | None:
        return per_item_micros(self.base_micros, self.base_weeks) if self.base_weeks else None


@dataclass
class ValueLine:
    vendor: str
    people: int
    this: Value
    base: Value  # summed over the baseline weeks
    base_weeks: int


@dataclass(frozen=True)
class EfficiencyLine:
    """Spend per one unit of a value measure, this week and over the baseline weeks."""

    key: str
    label: str  # singular, e.g. "accepted line"
    this_count: int
    this_micros: int | None
    base_count: int
    base_micros: int | None


@dataclass(frozen=True)
class Tally:
    worth: int = 0
    unsure: int = 0
    not_worth: int = 0

    @property
    def total(self) -> int:
        return self.worth + self.unsure + self.not_worth

    def counts(self) -> list[tuple[str, int]]:
        return [(label, getattr(self, key)) for key, label in CHOICES.items()]


@dataclass
class Recap:
    scope_name: str  # a people scope's plain name; a team scope's is drawn from ``scope_team``
    scope_team: Team | None  # the team row a team scope covers (slack/blocks draws it)
    period: Period
    facts: RecapFacts
    vendors: list[SpendLine]
    families: list[SpendLine]
    values: list[ValueLine]
    efficiency: list[EfficiencyLine]
    case_for: list[Finding]
    case_against: list[Finding]
    people: dict[int, Person]  # everyone behind a figure, by id
    people_with_data: int
    min_group_size: int
    #: Findings from fewer than ``min_group_size`` people: never in the channel, only in the DM.
    withheld: list[Finding] = field(default_factory=list)
    this_week_small: bool = False  # this week's spend or value comes from too few people
    overlaps_team: bool = False  # this week another team's active people differ by too few
    hidden_before: date | None = None  # weeks before this date are left out (too few people)
    managers: list[str] = field(default_factory=list)  # Slack ids: they get the private detail
    last_vote: Tally | None = None
    delivery_id: int | None = None  # the ledger row once claimed: the vote buttons carry it
    #: Cost per merged PR and the pre-adoption baseline (``money_rules``), postable ones only.
    money: list[Finding] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.facts.this.has_data

    @property
    def too_small(self) -> bool:
        return 0 < self.people_with_data < self.min_group_size or self.this_week_small

    def chart_measure(self) -> tuple[str, str] | None:
        """The value measure drawn against spend: the first of MEASURES seen in the 8 weeks."""
        for key, _, plural in MEASURES:
            if any(w.measure(key) for w in self.facts.weeks):
                return key, plural
        return None

    def hidden_people_within(
        self, reach: Collection[int] | None
    ) -> list[tuple[Finding, list[tuple[Person | None, PersonFact]]]]:
        """``hidden_people`` for one manager: a finding that involves anyone outside ``reach`` (the
        people their grant reaches) is left out whole, as its figure comes partly from them."""
        return [
            (finding, rows)
            for finding, rows in self.hidden_people()
            if reach is None or all(fact.person_id in reach for _, fact in rows)
        ]

    def hidden_people(self) -> list[tuple[Finding, list[tuple[Person | None, PersonFact]]]]:
        """For the managers' DM: the withheld findings (from too few people, with everyone behind
        them), then posted findings that involve people who did not opt in to being named."""
        found = [(f, [(self.people.get(p.person_id), p) for p in f.people]) for f in self.withheld]
        for finding in [*self.case_for, *self.case_against]:
            rows = [(self.people.get(p.person_id), p) for p in finding.people]
            if any(channel_label(info) is None for info, _ in rows):
                found.append((finding, rows))
        return found
