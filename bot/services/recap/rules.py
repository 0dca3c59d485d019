"""The weekly recap's case for and case against, as rules over the team's numbers. Pure, no I/O.
One concern (the recap's rules, listed in the table below), kept whole though it is long.

Token use is like a body-mass index: a rough signal that says nothing about muscle. So nothing
here scores people or ranks them; each rule looks at one pattern in the data and, when it sees
it, returns a ``Finding`` that carries the numbers behind the claim. No rule fires on missing
data: without a baseline there is no "grew", without value signals no "cheaper for the same".

THE RULES (one function each, in the order they are shown; thresholds are the constants below):

  side     rule                     fires when
  -------  -----------------------  -------------------------------------------------------------
  for      value_outgrew_spend      a value measure (accepted lines, AI commits, AI pull requests,
                                    merged PRs) grew at least VALUE_LEAD points more than spend,
                                    both against the 4-week average
  for      cheaper_same_acceptance  spend per million tokens fell at least CHEAPER_BY while the
                                    acceptance rate held (no more than ACCEPTANCE_SLACK lower)
  for      adoption_widened         more active people than the 4-week average: at least
                                    ADOPTION_MIN_GAIN more and ADOPTION_MIN_RATIO times as many
  against  idle_burn                people spent at least IDLE_MIN_MICROS on usage this week with
                                    no value signal at all (no accepted line, commit, PR, ...)
  against  spend_without_merge      (with GitHub delivery data) a person's week of spend was not
                                    followed by any merged PR of theirs within the idle window
  against  person_spike             a person spent at least SPIKE_MULTIPLE times the median of
                                    their own earlier weeks (and SPIKE_MIN_MICROS more)
  against  team_spike               the team's week is TEAM_SPIKE_Z standard deviations above its
                                    own earlier weeks (and TEAM_SPIKE_RATIO times their mean)
  against  expensive_model_shift    spend per million tokens rose at least PRICIER_BY with no
                                    value measure up more than FLAT_VALUE
  against  budget_crossed           a budget of the team is at or over 100% for its period
  against  idle_seats               seats (e.g. Copilot) with no activity for IDLE_SEAT_DAYS days

Rules fed by other features' records live in their own modules, and ``load.load_recap`` adds their
findings after these: ``incident_rules`` (the week's anomaly incidents, as counts),
``saved_rules`` (what people say AI saved them), ``value_rules`` (AI-assisted PRs' survival and
review load, docs/value.md) and ``money_rules`` (cost per PR and the pre-adoption baseline, a
section of its own).

WHAT A CHANNEL MAY SEE: every finding carries ``groups``, the sets of people each of its figures
is computed from (this week's spenders, each baseline week's, the idle burners, a budget period's
spenders ...). ``postable`` lets a finding into a channel only when it declares its groups and
every one holds at least the minimum group (``Settings.min_group_size``); a rule that declares
none is never posted (fail closed), so a new rule cannot leak by forgetting. Findings held back
go only to the team's managers, by DM.

"The 4-week average" is the mean of the (up to) four weeks before this one, counting only weeks
since the team's first recorded data, so a new install is not compared with empty weeks.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from bot.domain.money import format_usd
from bot.services.reports import Value, per_item_micros

FOR = "for"
AGAINST = "against"

BASELINE_WEEKS = 4  # "the 4-week average"
HISTORY_WEEKS = 7  # weeks before this one that spikes compare with (8 weeks in all)

VALUE_LEAD = 0.10  # value growth minus spend growth, in points of growth
CHEAPER_BY = 0.10  # spend per million tokens down at least 10% ...
ACCEPTANCE_SLACK = 0.02  # ... with the acceptance rate at most 2 points lower
ADOPTION_MIN_GAIN = 1.0
ADOPTION_MIN_RATIO = 1.10
IDLE_MIN_MICROS = 5_000_000  # $5: below that a quiet week is not worth a word
SPIKE_MULTIPLE = 3.0
SPIKE_MIN_MICROS = 10_000_000  # $10 above the median at least
SPIKE_MIN_HISTORY = 3  # earlier weeks with data needed before a person has a baseline
TEAM_SPIKE_Z = 2.0
TEAM_SPIKE_RATIO = 1.25
TEAM_SPIKE_MIN_HISTORY = 4
PRICIER_BY = 0.25
FLAT_VALUE = 0.05
IDLE_SEAT_DAYS = 30

#: Value measures: (key, label singular, label plural). "AI" measures come from the AI tools'
#: own reports; merged PRs come from the code host (GitHub delivery).
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("lines_accepted", "accepted line", "accepted lines"),
    ("commits", "AI commit", "AI commits"),
    ("pull_requests", "AI pull request", "AI pull requests"),
    ("prs_merged", "merged PR", "merged PRs"),
    ("ai_prs_merged", "AI-assisted merged PR", "AI-assisted merged PRs"),
)

#: Activity fields that are value (work produced or kept), as opposed to use (sessions, requests).
VALUE_SIGNALS = ("lines_accepted", "acceptances", "lines_added", "commits", "pull_requests", "prs_merged")


@dataclass
class WeekTotal:
    """One Monday-to-Sunday (or scheduled-day) week of a team."""

    start: date
    spend_micros: int = 0  # everything: usage and seats, billed and estimated
    estimated_micros: int = 0
    seat_micros: int = 0
    tokens: int = 0
    ai: Value = field(default_factory=lambda: Value("ai"))  # the AI tools' own value signals
    delivery: Value = field(default_factory=lambda: Value("delivery"))  # the code host's
    active_people: int = 0  # people with usage (not only a seat) or a value signal
    has_data: bool = False
    spenders: frozenset[int] = frozenset()  # people with usage (not only a seat): the spend's group
    active: frozenset[int] = frozenset()  # the people ``active_people`` counts: the value's group

    @property
    def usage_micros(self) -> int:
        return self.spend_micros - self.seat_micros

    def measure(self, key: str) -> int:
        if key in ("prs_merged", "ai_prs_merged"):
            return getattr(self.ai, key) + getattr(self.delivery, key)
        return getattr(self.ai, key)


@dataclass(frozen=True)
class FamilyWeek:
    """A model family's usage spend and tokens this week and over the baseline weeks (summed)."""

    family: str
    this_micros: int
    this_tokens: int
    base_micros: int
    base_tokens: int


@dataclass(frozen=True)
class BudgetStatus:
    label: str  # e.g. "monthly budget (all vendors)"
    period_label: str
    spent_micros: int
    amount_micros: int
    spenders: frozenset[int] = frozenset()  # people with usage in the budget's period so far

    @property
    def ratio(self) -> float:
        return self.spent_micros / self.amount_micros if self.amount_micros else 0.0


@dataclass(frozen=True)
class IdleSeat:
    person_id: int | None
    vendor: str
    seat_micros: int  # seat cost in the recap week


@dataclass(frozen=True)
class IdleWeek:
    person_id: int
    week_start: date
    spend_micros: int


@dataclass
class RecapFacts:
    """What the rules read. ``weeks[0]`` is the recap's week, ``weeks[1]`` the one before, ..."""

    weeks: list[WeekTotal]
    person_usage: dict[int, list[int]] = field(default_factory=dict)  # person -> usage spend per week
    person_value: dict[int, int] = field(default_factory=dict)  # person -> value signals this week
    families: list[FamilyWeek] = field(default_factory=list)
    budgets: list[BudgetStatus] = field(default_factory=list)
    idle_seats: list[IdleSeat] = field(default_factory=list)
    idle_weeks: list[IdleWeek] = field(default_factory=list)
    idle_days: int = 14
    members: int = 0

    @property
    def this(self) -> WeekTotal:
        return self.weeks[0]

    def earlier(self, limit: int) -> list[WeekTotal]:
        """Up to ``limit`` weeks before this one, newest first, from the first week with data on."""
        found = self.weeks[1 : 1 + limit]
        first = max((i for i, w in enumerate(found) if w.has_data), default=-1)
        return found[: first + 1]

    def baseline(self) -> list[WeekTotal]:
        return self.earlier(BASELINE_WEEKS)

    def average(
        self, pick: Callable[[WeekTotal], int], weeks: Sequence[WeekTotal] | None = None
    ) -> float | None:
        weeks = self.baseline() if weeks is None else weeks
        if not weeks:
            return None
        return sum(pick(w) for w in weeks) / len(weeks)

    def average_micros(self, pick: Callable[[WeekTotal], int]) -> int | None:
        """Average money per baseline week in whole micros (rounded half up)."""
        weeks = self.baseline()
        if not weeks:
            return None
        return per_item_micros(sum(pick(w) for w in weeks), len(weeks))


@dataclass(frozen=True)
class PersonFact:
    person_id: int
    micros: int
    note: str = ""  # the person's own numbers, e.g. "4.0× their median week ($20.00)"


@dataclass(frozen=True)
class Finding:
    rule: str
    side: str  # for | against
    text: str  # the claim with its numbers, no names
    numbers: dict[str, int | float | str | None]
    people: tuple[PersonFact, ...] = ()
    #: The sets of people the figures come from; see ``postable``.
    groups: tuple[frozenset[int], ...] = ()


def postable(finding: Finding, min_group_size: int) -> bool:
    """May the finding go to a channel? Only when it says whose numbers it is made of and every
    such set has at least ``min_group_size`` people (an undeclared finding never does)."""
    return bool(finding.groups) and all(len(group) >= min_group_size for group in finding.groups)


def split_postable(findings: Sequence[Finding], min_group_size: int) -> tuple[list[Finding], list[Finding]]:
    """(findings a channel may see, findings held back for the managers' DM), in order."""
    posted = [f for f in findings if postable(f, min_group_size)]
    return posted, [f for f in findings if not postable(f, min_group_size)]


def _week_groups(*weeks: WeekTotal, value: bool = False) -> tuple[frozenset[int], ...]:
    """The groups of team figures over ``weeks``: each week's spenders (and, with ``value``,
    the people behind its value signals); weeks without any are $0 / nothing and reveal no one."""
    sets = [w.spenders for w in weeks] + ([w.active for w in weeks] if value else [])
    return tuple(group for group in sets if group)


def _people_group(people: Sequence[PersonFact]) -> tuple[frozenset[int], ...]:
    return (frozenset(p.person_id for p in people),)


def growth(current: float, base: float | None) -> float | None:
    if base is None or base <= 0:
        return None
    return current / base - 1


def pct(ratio: float) -> str:
    return f"{ratio:+.0%}"


def per_million(micros: int, tokens: int) -> int | None:
    return per_item_micros(micros * 1_000_000, tokens) if tokens > 0 else None


def _blended(facts: RecapFacts) -> tuple[int | None, int | None]:
    """Usage spend per million tokens this week and over the baseline weeks (seats excluded:
    a seat costs the same whatever model is used)."""
    this_m = sum(f.this_micros for f in facts.families)
    this_t = sum(f.this_tokens for f in facts.families)
    base_m = sum(f.base_micros for f in facts.families)
    base_t = sum(f.base_tokens for f in facts.families)
    return per_million(this_m, this_t), per_million(base_m, base_t)


def _measure_growths(facts: RecapFacts) -> list[tuple[str, str, int, float, float]]:
    """(key, plural label, this week, baseline average, growth) for measures with a baseline."""
    found = []
    for key, _, plural in MEASURES:
        base = facts.average(lambda w, k=key: w.measure(k))
        change = growth(facts.this.measure(key), base)
        if change is not None and base is not None:
            found.append((key, plural, facts.this.measure(key), base, change))
    return found


def _baseline_acceptance(facts: RecapFacts) -> float | None:
    total = Value("base")
    for week in facts.baseline():
        total.acceptances += week.ai.acceptances
        total.rejections += week.ai.rejections
        total.suggestions_shown += week.ai.suggestions_shown
    return total.acceptance_rate


# -- the case for --------------------------------------------------------------------------


def value_outgrew_spend(facts: RecapFacts) -> Finding | None:
    spend_base = facts.average(lambda w: w.spend_micros)
    spend_change = growth(facts.this.spend_micros, spend_base)
    if spend_change is None or spend_base is None:
        return None
    best = None
    for key, plural, this, base, change in _measure_growths(facts):
        lead = change - spend_change
        if change > 0 and lead >= VALUE_LEAD and (best is None or lead > best[-1]):
            best = (key, plural, this, base, change, lead)
    if best is None:
        return None
    key, plural, this, base, change, lead = best
    text = (
        f"{plural[0].upper()}{plural[1:]} {pct(change)} vs the 4-week average "
        f"({this:,} vs {round(base):,} a week) "
        f"while spend moved {pct(spend_change)} ({format_usd(facts.this.spend_micros)} vs "
        f"{format_usd(round(spend_base))})."
    )
    return Finding(
        "value_outgrew_spend",
        FOR,
        text,
        {
            "measure": key,
            "this": this,
            "baseline": round(base, 2),
            "value_change": round(change, 4),
            "spend_micros": facts.this.spend_micros,
            "spend_baseline_micros": round(spend_base),
            "spend_change": round(spend_change, 4),
        },
        groups=_week_groups(facts.this, *facts.baseline(), value=True),
    )


def cheaper_same_acceptance(facts: RecapFacts) -> Finding | None:
    this_cpm, base_cpm = _blended(facts)
    rate_now, rate_base = facts.this.ai.acceptance_rate, _baseline_acceptance(facts)
    if this_cpm is None or base_cpm is None or rate_now is None or rate_base is None:
        return None
    if this_cpm > base_cpm * (1 - CHEAPER_BY) or rate_now < rate_base - ACCEPTANCE_SLACK:
        return None
    shift = _share_shift(facts, cheaper=True)
    text = (
        f"Spend per million tokens fell to {format_usd(this_cpm)} from {format_usd(base_cpm)} "
        f"({pct(this_cpm / base_cpm - 1)}) while the acceptance rate held at {rate_now:.0%} "
        f"(4-week: {rate_base:.0%})" + (f"; {shift}." if shift else ".")
    )
    return Finding(
        "cheaper_same_acceptance",
        FOR,
        text,
        {
            "per_mtok_micros": this_cpm,
            "baseline_per_mtok_micros": base_cpm,
            "acceptance": round(rate_now, 4),
            "baseline_acceptance": round(rate_base, 4),
        },
        groups=_week_groups(facts.this, *facts.baseline(), value=True),
    )


def adoption_widened(facts: RecapFacts) -> Finding | None:
    base = facts.average(lambda w: w.active_people)
    now = facts.this.active_people
    if base is None or base <= 0:
        return None
    if now < base + ADOPTION_MIN_GAIN or now < base * ADOPTION_MIN_RATIO:
        return None
    of = f" of {facts.members} members" if facts.members else ""
    text = f"{now} people used AI tools this week{of}, up from {round(base):,} a week on the 4-week average."
    return Finding(
        "adoption_widened",
        FOR,
        text,
        {"active": now, "baseline_active": round(base, 2)},
        groups=_week_groups(facts.this, *facts.baseline(), value=True),
    )


# -- the case against ------------------------------------------------------------------------


def idle_burn(facts: RecapFacts) -> Finding | None:
    people = [
        PersonFact(pid, weeks[0], f"{format_usd(weeks[0])} with no value signal")
        for pid, weeks in facts.person_usage.items()
        if weeks and weeks[0] >= IDLE_MIN_MICROS and facts.person_value.get(pid, 0) == 0
    ]
    if not people:
        return None
    people.sort(key=lambda p: (-p.micros, p.person_id))
    total = sum(p.micros for p in people)
    share = total / facts.this.spend_micros if facts.this.spend_micros else 0.0
    text = (
        f"{format_usd(total)} ({share:.0%} of the week's spend) went on usage with no value signal after "
        "it: no accepted line, commit or pull request. Possible idle burn (or work the tools do not report)."
    )
    return Finding(
        "idle_burn",
        AGAINST,
        text,
        {"people": len(people), "micros": total, "share": round(share, 4)},
        tuple(people),
        groups=_people_group(people) + _week_groups(facts.this),
    )


def spend_without_merge(facts: RecapFacts) -> Finding | None:
    if not facts.idle_weeks:
        return None
    by_person: dict[int, int] = {}
    for week in facts.idle_weeks:
        by_person[week.person_id] = by_person.get(week.person_id, 0) + week.spend_micros
    people = sorted(
        (
            PersonFact(pid, micros, f"{format_usd(micros)} before no merge")
            for pid, micros in by_person.items()
        ),
        key=lambda p: (-p.micros, p.person_id),
    )
    total = sum(by_person.values())
    text = (
        f"{format_usd(total)} of spend in recent weeks was followed by no merged pull request of the "
        f"same person within {facts.idle_days} days."
    )
    return Finding(
        "spend_without_merge",
        AGAINST,
        text,
        {"people": len(people), "micros": total, "weeks": len(facts.idle_weeks)},
        tuple(people),
        groups=_people_group(people),
    )


def person_spike(facts: RecapFacts) -> Finding | None:
    history = len(facts.earlier(HISTORY_WEEKS))
    people = []
    for pid, weeks in facts.person_usage.items():
        earlier = weeks[1 : 1 + history]
        # The person's own baseline: weeks since their first spend (joining late is not a spike).
        first = max((i for i, micros in enumerate(earlier) if micros > 0), default=-1)
        earlier = earlier[: first + 1]
        if len(earlier) < SPIKE_MIN_HISTORY:
            continue
        median = statistics.median(earlier)
        now = weeks[0]
        if median > 0 and now >= SPIKE_MULTIPLE * median and now - median >= SPIKE_MIN_MICROS:
            people.append(
                PersonFact(
                    pid,
                    now,
                    f"{format_usd(now)}, {now / median:.1f}× their median week ({format_usd(round(median))})",
                )
            )
    if not people:
        return None
    people.sort(key=lambda p: (-p.micros, p.person_id))
    text = (
        f"{len(people)} {'person' if len(people) == 1 else 'people'} spent at least "
        f"{SPIKE_MULTIPLE:g}× their own median week."
    )
    return Finding(
        "person_spike",
        AGAINST,
        text,
        {"people": len(people), "micros": sum(p.micros for p in people)},
        tuple(people),
        groups=_people_group(people),
    )


def team_spike(facts: RecapFacts) -> Finding | None:
    earlier = [w.spend_micros for w in facts.earlier(HISTORY_WEEKS)]
    if len(earlier) < TEAM_SPIKE_MIN_HISTORY:
        return None
    mean = statistics.fmean(earlier)
    spread = statistics.pstdev(earlier)
    now = facts.this.spend_micros
    if mean <= 0 or now < mean * TEAM_SPIKE_RATIO:
        return None
    z = (now - mean) / spread if spread > 0 else None
    if z is not None and z < TEAM_SPIKE_Z:
        return None
    how = f"{z:.1f} standard deviations above" if z is not None else "above every one of"
    text = (
        f"The team spent {format_usd(now)}, {how} its previous {len(earlier)} weeks "
        f"(mean {format_usd(round(mean))})."
    )
    return Finding(
        "team_spike",
        AGAINST,
        text,
        {
            "micros": now,
            "mean_micros": round(mean),
            "stdev_micros": round(spread),
            "z": None if z is None else round(z, 2),
        },
        groups=_week_groups(facts.this, *facts.earlier(HISTORY_WEEKS)),
    )


def expensive_model_shift(facts: RecapFacts) -> Finding | None:
    this_cpm, base_cpm = _blended(facts)
    if this_cpm is None or base_cpm is None or this_cpm < base_cpm * (1 + PRICIER_BY):
        return None
    changes = _measure_growths(facts)
    if any(change > FLAT_VALUE for *_, change in changes):
        return None
    shift = _share_shift(facts, cheaper=False)
    value = "; ".join(f"{plural} {pct(change)}" for _, plural, _, _, change in changes) or "no value measure"
    text = (
        f"Spend per million tokens rose to {format_usd(this_cpm)} from {format_usd(base_cpm)} "
        f"({pct(this_cpm / base_cpm - 1)}) with no more value ({value})" + (f"; {shift}." if shift else ".")
    )
    return Finding(
        "expensive_model_shift",
        AGAINST,
        text,
        {"per_mtok_micros": this_cpm, "baseline_per_mtok_micros": base_cpm},
        groups=_week_groups(facts.this, *facts.baseline(), value=True),
    )


def budget_crossed(facts: RecapFacts) -> Finding | None:
    crossed = [b for b in facts.budgets if b.amount_micros > 0 and b.spent_micros >= b.amount_micros]
    if not crossed:
        return None
    parts = [
        f"{b.label} at {format_usd(b.spent_micros)} of {format_usd(b.amount_micros)} "
        f"({b.ratio:.0%}, {b.period_label})"
        for b in crossed
    ]
    return Finding(
        "budget_crossed",
        AGAINST,
        "Budget crossed: " + "; ".join(parts) + ".",
        {"budgets": len(crossed), "over_micros": sum(b.spent_micros - b.amount_micros for b in crossed)},
        groups=tuple(b.spenders for b in crossed),
    )


def idle_seats(facts: RecapFacts) -> Finding | None:
    if not facts.idle_seats:
        return None
    cost = sum(s.seat_micros for s in facts.idle_seats)
    people = sorted(
        (
            PersonFact(s.person_id, s.seat_micros, f"{s.vendor} seat")
            for s in facts.idle_seats
            if s.person_id is not None
        ),
        key=lambda p: (-p.micros, p.person_id),
    )
    n = len(facts.idle_seats)
    text = f"{n} {'seat' if n == 1 else 'seats'} unused for {IDLE_SEAT_DAYS} days" + (
        f" cost {format_usd(cost)} this week." if cost else "."
    )
    # Seats without a known holder count for no one: the group is only the holders we know.
    return Finding(
        "idle_seats", AGAINST, text, {"seats": n, "micros": cost}, tuple(people), groups=_people_group(people)
    )


def _share_shift(facts: RecapFacts, *, cheaper: bool) -> str:
    """The model family whose share of usage spend grew the most, among the cheaper (or pricier)
    families than the baseline blend: e.g. "Claude Sonnet 62% of spend, from 30%"."""
    this_total = sum(f.this_micros for f in facts.families)
    base_total = sum(f.base_micros for f in facts.families)
    _, base_cpm = _blended(facts)
    if not this_total or not base_total or base_cpm is None:
        return ""
    best = None
    for fam in facts.families:
        cpm = per_million(fam.this_micros, fam.this_tokens)
        if cpm is None or (cpm < base_cpm) != cheaper:
            continue
        gain = fam.this_micros / this_total - fam.base_micros / base_total
        if gain > 0 and (best is None or gain > best[0]):
            best = (gain, fam)
    if best is None:
        return ""
    fam = best[1]
    return (
        f"{fam.family} took {fam.this_micros / this_total:.0%} of usage spend "
        f"(from {fam.base_micros / base_total:.0%})"
    )


CASE_FOR: tuple[Callable[[RecapFacts], Finding | None], ...] = (
    value_outgrew_spend,
    cheaper_same_acceptance,
    adoption_widened,
)
CASE_AGAINST: tuple[Callable[[RecapFacts], Finding | None], ...] = (
    idle_burn,
    spend_without_merge,
    person_spike,
    team_spike,
    expensive_model_shift,
    budget_crossed,
    idle_seats,
)


def evaluate(facts: RecapFacts) -> tuple[list[Finding], list[Finding]]:
    """Every rule over the facts: (the case for, the case against), in rule order."""
    pro = [f for rule in CASE_FOR if (f := rule(facts)) is not None]
    con = [f for rule in CASE_AGAINST if (f := rule(facts)) is not None]
    return pro, con
