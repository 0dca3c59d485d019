"""The recap's lines from the grouped rows: spend per vendor and model family, value per vendor
and spend per unit of value, with the week totals and per-person figures the rules read; lines
from fewer than the minimum of people fold into "others".

Rows come from ``bot.services.recap.load``: usage ``(wk, person, vendor, model, basis, kind,
cost, tokens, requests)`` and activity ``(wk, person, vendor, *ACTIVITY_FIELDS)``, ``wk`` being
the week's index (0 = this week).
"""

from __future__ import annotations

from bot.domain.ai_rules import DELIVERY_VENDORS
from bot.domain.models import model_family
from bot.domain.records import ACTIVITY_FIELDS, ESTIMATED, SEAT
from bot.services import privacy
from bot.services.recap.model import SHOWN_WEEKS, EfficiencyLine, SpendLine, ValueLine
from bot.services.recap.rules import MEASURES, VALUE_SIGNALS, FamilyWeek, RecapFacts
from bot.services.reports import Value, per_item_micros


def aggregate(facts: RecapFacts, usage, activity) -> tuple[list[SpendLine], list[SpendLine], list[ValueLine]]:
    weeks = facts.weeks
    active: list[set[int]] = [set() for _ in weeks]
    spenders: list[set[int]] = [set() for _ in weeks]
    vendor_weeks: dict[str, list[int]] = {}
    # Per line and week, who is behind the line's figure: a line shows this week, last week and
    # the average, so it keeps the count of its smallest week with someone in it (see _fewest).
    vendor_people: dict[str, list[set[int]]] = {}
    vendor_this: dict[str, tuple[int, int]] = {}  # vendor -> (estimated, seats) this week
    family_weeks: dict[str, list[int]] = {}
    family_tokens: dict[str, list[int]] = {}
    family_people: dict[str, list[set[int]]] = {}
    family_estimated: dict[str, int] = {}
    for wk, pid, vendor, model, basis, kind, cost, tokens, requests in usage:
        cost, tokens, requests, pid = int(cost or 0), int(tokens or 0), int(requests or 0), int(pid)
        week = weeks[wk]
        week.has_data = True
        week.spend_micros += cost
        week.tokens += tokens
        if basis == ESTIMATED:
            week.estimated_micros += cost
        if kind == SEAT:
            week.seat_micros += cost
        else:
            if cost or tokens or requests:
                active[wk].add(pid)
                spenders[wk].add(pid)
            facts.person_usage.setdefault(pid, [0] * len(weeks))[wk] += cost
            family = model_family(model)
            family_weeks.setdefault(family, [0] * len(weeks))[wk] += cost
            family_tokens.setdefault(family, [0] * len(weeks))[wk] += tokens
            if wk < SHOWN_WEEKS:
                family_people.setdefault(family, [set() for _ in weeks])[wk].add(pid)
            if wk == 0 and basis == ESTIMATED:
                family_estimated[family] = family_estimated.get(family, 0) + cost
        vendor_weeks.setdefault(vendor, [0] * len(weeks))[wk] += cost
        if wk < SHOWN_WEEKS:
            vendor_people.setdefault(vendor, [set() for _ in weeks])[wk].add(pid)
        if wk == 0:
            est, seats = vendor_this.get(vendor, (0, 0))
            vendor_this[vendor] = (
                est + (cost if basis == ESTIMATED else 0),
                seats + (cost if kind == SEAT else 0),
            )
    value_this: dict[str, Value] = {}
    value_base: dict[str, Value] = {}
    value_people: dict[str, list[set[int]]] = {}
    for wk, pid, vendor, *sums in activity:
        pid = int(pid)
        counts = dict(zip(ACTIVITY_FIELDS, (int(x or 0) for x in sums), strict=True))
        if not any(counts.values()):
            continue
        week = weeks[wk]
        week.has_data = True
        target = week.delivery if vendor in DELIVERY_VENDORS else week.ai
        _add(target, counts)
        signals = sum(counts[name] for name in VALUE_SIGNALS)
        if vendor not in DELIVERY_VENDORS:
            active[wk].add(pid)
        if wk == 0:
            facts.person_value[pid] = facts.person_value.get(pid, 0) + signals
            _add(value_this.setdefault(vendor, Value(vendor)), counts)
        if wk < SHOWN_WEEKS:
            value_people.setdefault(vendor, [set() for _ in weeks])[wk].add(pid)
    for i, week in enumerate(weeks):
        week.active_people = len(active[i])
        week.active = frozenset(active[i])
        week.spenders = frozenset(spenders[i])
    # The baseline depends on which weeks have data, known only now.
    base_count = len(facts.baseline())
    for wk, _pid, vendor, *sums in activity:
        if 1 <= wk <= base_count:
            _add(
                value_base.setdefault(vendor, Value(vendor)),
                dict(zip(ACTIVITY_FIELDS, (int(x or 0) for x in sums), strict=True)),
            )
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


def _fewest(weekly: list[set[int]] | None) -> int:
    """The fewest people behind a line in any shown week they used it: a line used by 6 people
    over the weeks but by 1 last week shows last week's figure of one person."""
    return min((len(people) for people in weekly or () if people), default=0)


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
