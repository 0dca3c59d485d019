"""The recap's lines from the grouped rows: spend per vendor and model family, value per vendor
and spend per unit of value, with the week totals and per-person figures the rules read; lines
from fewer than the minimum of people fold into "others".

Rows come from ``bot.services.recap.load`` as ``WeekRows``: line totals without the person, one
row per (week, person) for the per-person facts, and how many people are behind each line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from bot.domain.ai_rules import DELIVERY_VENDORS
from bot.domain.models import model_family
from bot.domain.records import ACTIVITY_FIELDS, ESTIMATED, SEAT
from bot.services import privacy
from bot.services.recap.model import SHOWN_WEEKS, EfficiencyLine, SpendLine, ValueLine
from bot.services.recap.rules import MEASURES, FamilyWeek, RecapFacts
from bot.services.reports import Value, per_item_micros


@dataclass
class WeekRows:
    """The recap's grouped rows, each led by its week index (0 = this week). The per-person
    groups (week, person, vendor, model, basis, kind) are summed in SQL: only the line totals,
    one row per (week, person) and the people behind each line come here, a few thousand rows
    for 500 people instead of ~30,000 groups (docs/benchmarks.md, B4).
    """

    #: (wk, vendor, model, basis, kind, cost, tokens), no person.
    usage: list = field(default_factory=list)
    #: (wk, person, usage cost, spent, has usage): the person's non-seat cost; whether a non-seat
    #: group of theirs has cost, tokens or requests; whether they have a non-seat group at all.
    usage_people: list = field(default_factory=list)
    #: (wk, vendor, people) and (wk, family, people), shown weeks only; families count non-seat rows.
    vendor_people: list = field(default_factory=list)
    family_people: list = field(default_factory=list)
    #: (wk, vendor, *ACTIVITY_FIELDS, any group with a signal), no person.
    activity: list = field(default_factory=list)
    #: (wk, person, any group with a signal, one of an AI tool, signals of the groups with one).
    activity_people: list = field(default_factory=list)
    #: (wk, vendor, people with a signal), shown weeks only.
    value_people: list = field(default_factory=list)

    def before(self, hidden_from: int) -> WeekRows:
        """The rows of the weeks before ``hidden_from`` (weeks from too few people are left out)."""
        return WeekRows(*([r for r in getattr(self, f.name) if r[0] < hidden_from] for f in fields(self)))

    def people(self, weeks: int) -> set[int]:
        """Everyone with a row of their own in the first ``weeks`` weeks."""
        return {int(r[1]) for rows in (self.usage_people, self.activity_people) for r in rows if r[0] < weeks}


def aggregate(facts: RecapFacts, rows: WeekRows) -> tuple[list[SpendLine], list[SpendLine], list[ValueLine]]:
    weeks = facts.weeks
    active: list[set[int]] = [set() for _ in weeks]
    spenders: list[set[int]] = [set() for _ in weeks]
    vendor_weeks: dict[str, list[int]] = {}
    vendor_this: dict[str, tuple[int, int]] = {}  # vendor -> (estimated, seats) this week
    family_weeks: dict[str, list[int]] = {}
    family_tokens: dict[str, list[int]] = {}
    family_estimated: dict[str, int] = {}
    for wk, vendor, model, basis, kind, cost, tokens in rows.usage:
        cost, tokens = int(cost or 0), int(tokens or 0)
        week = weeks[wk]
        week.has_data = True
        week.spend_micros += cost
        week.tokens += tokens
        if basis == ESTIMATED:
            week.estimated_micros += cost
        if kind == SEAT:
            week.seat_micros += cost
        else:
            family = model_family(model)
            family_weeks.setdefault(family, [0] * len(weeks))[wk] += cost
            family_tokens.setdefault(family, [0] * len(weeks))[wk] += tokens
            if wk == 0 and basis == ESTIMATED:
                family_estimated[family] = family_estimated.get(family, 0) + cost
        vendor_weeks.setdefault(vendor, [0] * len(weeks))[wk] += cost
        if wk == 0:
            est, seats = vendor_this.get(vendor, (0, 0))
            vendor_this[vendor] = (
                est + (cost if basis == ESTIMATED else 0),
                seats + (cost if kind == SEAT else 0),
            )
    for wk, pid, usage_cost, spent, has_usage in rows.usage_people:
        pid = int(pid)
        if spent:
            active[wk].add(pid)
            spenders[wk].add(pid)
        if has_usage:
            facts.person_usage.setdefault(pid, [0] * len(weeks))[wk] += int(usage_cost or 0)
    # Per line and week, how many people are behind the line's figure: a line shows this week,
    # last week and the average, so it keeps the count of its smallest week with someone in it.
    vendor_people = _weekly_counts(rows.vendor_people, len(weeks))
    family_people = _weekly_counts(rows.family_people, len(weeks))
    value_people = _weekly_counts(rows.value_people, len(weeks))
    value_this: dict[str, Value] = {}
    value_base: dict[str, Value] = {}
    for wk, vendor, *sums, signal in rows.activity:
        if not signal:
            continue
        counts = _counts(sums)
        week = weeks[wk]
        week.has_data = True
        _add(week.delivery if vendor in DELIVERY_VENDORS else week.ai, counts)
        if wk == 0:
            _add(value_this.setdefault(vendor, Value(vendor)), counts)
    for wk, pid, _signal, ai_signal, signals in rows.activity_people:
        pid = int(pid)
        if ai_signal:
            active[wk].add(pid)
        if wk == 0 and _signal:
            facts.person_value[pid] = int(signals or 0)
    for i, week in enumerate(weeks):
        week.active_people = len(active[i])
        week.active = frozenset(active[i])
        week.spenders = frozenset(spenders[i])
    # The baseline depends on which weeks have data, known only now.
    base_count = len(facts.baseline())
    for wk, vendor, *sums, _signal in rows.activity:
        if 1 <= wk <= base_count:
            _add(value_base.setdefault(vendor, Value(vendor)), _counts(sums))
    vendors = [
        SpendLine(
            vendor,
            _fewest(vendor_people.get(vendor)),
            this_micros=costs[0],
            last_micros=costs[1],
            base_micros=sum(costs[1 : 1 + base_count]),
            base_weeks=base_count,
            estimated_micros=vendor_this.get(vendor, (0, 0))[0],
            seat_micros=vendor_this.get(vendor, (0, 0))[1],
        )
        for vendor, costs in vendor_weeks.items()
        if any(costs[:SHOWN_WEEKS])
    ]
    families = [
        SpendLine(
            family,
            _fewest(family_people.get(family)),
            this_micros=costs[0],
            last_micros=costs[1],
            base_micros=sum(costs[1 : 1 + base_count]),
            base_weeks=base_count,
            estimated_micros=family_estimated.get(family, 0),
        )
        for family, costs in family_weeks.items()
        if any(costs[:SHOWN_WEEKS])
    ]
    facts.families = [
        FamilyWeek(
            family,
            costs[0],
            family_tokens[family][0],
            sum(costs[1 : 1 + base_count]),
            sum(family_tokens[family][1 : 1 + base_count]),
        )
        for family, costs in family_weeks.items()
    ]
    values = [
        ValueLine(
            vendor,
            _fewest(value_people.get(vendor)),
            value_this.get(vendor, Value(vendor)),
            value_base.get(vendor, Value(vendor)),
            base_count,
        )
        for vendor in sorted(set(value_this) | set(value_base))
    ]
    vendors.sort(key=lambda line: (-line.this_micros, -line.base_micros, line.label))
    families.sort(key=lambda line: (-line.this_micros, -line.base_micros, line.label))
    return vendors, families, values


def _counts(sums) -> dict[str, int]:
    return dict(zip(ACTIVITY_FIELDS, (int(x or 0) for x in sums), strict=True))


def _weekly_counts(rows, weeks: int) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for wk, label, people in rows:
        found.setdefault(label, [0] * weeks)[wk] += int(people)
    return found


def _fewest(weekly: list[int] | None) -> int:
    """The fewest people behind a line in any shown week they used it: a line used by 6 people
    over the weeks but by 1 last week shows last week's figure of one person."""
    return min((people for people in weekly or () if people), default=0)


def _add(target: Value, counts: dict[str, int]) -> None:
    for name, value in counts.items():
        setattr(target, name, getattr(target, name) + value)


_SPEND_METRICS = ("this_micros", "last_micros", "base_micros", "estimated_micros", "seat_micros")


def fold_spend(lines: list[SpendLine], min_size: int) -> list[SpendLine]:
    """Lines used by fewer than ``min_size`` people would all but name them: fold into "others"."""
    if not lines:
        return []
    groups = [
        privacy.Group(line.label, line.people, {name: getattr(line, name) for name in _SPEND_METRICS})
        for line in lines
    ]
    base_weeks = lines[0].base_weeks
    return [
        SpendLine(
            g.label,
            g.people,
            base_weeks=base_weeks,
            **{name: g.metrics.get(name, 0) for name in _SPEND_METRICS},
        )
        for g in privacy.fold_small_groups(groups, min_size)
    ]


def fold_values(lines: list[ValueLine], min_size: int) -> list[ValueLine]:
    if not lines:
        return []
    groups = [
        privacy.Group(
            line.vendor,
            line.people,
            {f"this.{n}": getattr(line.this, n) for n in ACTIVITY_FIELDS}
            | {f"base.{n}": getattr(line.base, n) for n in ACTIVITY_FIELDS},
        )
        for line in lines
    ]
    folded = []
    for g in privacy.fold_small_groups(groups, min_size):
        this, base = Value(g.label), Value(g.label)
        for n in ACTIVITY_FIELDS:
            setattr(this, n, g.metrics.get(f"this.{n}", 0))
            setattr(base, n, g.metrics.get(f"base.{n}", 0))
        folded.append(ValueLine(g.label, g.people, this, base, lines[0].base_weeks))
    return folded


def efficiency(facts: RecapFacts) -> list[EfficiencyLine]:
    base = facts.baseline()
    found = []
    for key, singular, _ in MEASURES:
        this_count = facts.this.measure(key)
        base_count = sum(w.measure(key) for w in base)
        if not this_count and not base_count:
            continue
        found.append(
            EfficiencyLine(
                key,
                singular,
                this_count,
                per_item_micros(facts.this.spend_micros, this_count),
                base_count,
                per_item_micros(sum(w.spend_micros for w in base), base_count),
            )
        )
    return found
