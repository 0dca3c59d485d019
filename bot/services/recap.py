"""The weekly recap: spend beside value for a team, the case for and against, and a vote.

No Slack here. This module loads a team's last eight weeks in two grouped queries (usage and
activity, bucketed into weeks in SQL), turns them into the recap's lines and the rules' facts
(``bot.services.recap_rules``), keeps the subscriptions, the delivery ledger and the votes, and
draws the chart.

Delivery is exactly once per subscription and week: the ``recap_delivery`` row
``(subscription_id, week_start)`` is claimed (inserted, committed) *before* anything is posted,
so a second replica or a restarted process finds it and stays away. A failed post is marked
``failed`` and claimed again by a later tick of the same week (bounded attempts, growing pause);
a claim left ``claimed`` by a process that died while posting is taken over only after
``STALE_CLAIM``, and the taker first checks the channel for the post (see the Slack side).

Weeks: a recap scheduled on local date D covers the seven days ``[D - 7, D)``; the ledger's
``week_start`` is the Monday of D's week in the org's timezone.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, delete, func, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.db.models import (
    ActivityDaily,
    Identity,
    Person,
    PullRequest,
    RecapDelivery,
    RecapSubscription,
    RecapVote,
    TeamMembership,
    UsageDaily,
    UsagePersonDaily,
    as_utc,
)
from bot.domain.ai_rules import DELIVERY_VENDORS
from bot.domain.money import format_usd
from bot.domain.periods import Period
from bot.domain.records import ACTIVITY_FIELDS, ESTIMATED, SEAT
from bot.services import privacy, reports, teams
from bot.services.commands import CommandError, mentioned_channel, mentioned_group
from bot.services.recap_rules import (
    MEASURES,
    VALUE_SIGNALS,
    BudgetStatus,
    FamilyWeek,
    Finding,
    IdleSeat,
    IdleWeek,
    PersonFact,
    RecapFacts,
    WeekTotal,
    evaluate,
    split_postable,
)
from bot.services.reports import Value, per_item_micros

WEEKS = 8  # the chart's span; the rules look back as far
SHOWN_WEEKS = 5  # this week and the four the average is taken over: who counts for a line

# Ledger statuses (recap_delivery.status)
CLAIMED = "claimed"
POSTED = "posted"
FAILED = "failed"
SKIPPED = "skipped"  # nothing to post and the subscription asked for silence

MAX_ATTEMPTS = 5
RETRY_PAUSE = timedelta(minutes=5)  # times the attempts made so far
STALE_CLAIM = timedelta(minutes=15)  # a post takes seconds; a claim this old lost its process

CHOICES: dict[str, str] = {"worth": "Worth it", "unsure": "Not sure", "not_worth": "Not worth it"}

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_WORDS = {name[:n]: i for i, name in enumerate(DAY_NAMES) for n in (3, 4, len(name))} | {
    "tues": 1,
    "thur": 3,
    "thurs": 3,
}
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
SKIP_EMPTY = ("skip-empty", "quiet")
_WHAT = {
    "channel_id": "channel",
    "group_id": "user group",
    "weekday": "day",
    "local_time": "time",
    "post_when_empty": "`skip-empty`",
}


# -- scope -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Whose numbers a recap covers: a team (dated membership, like ``/tokens team``) or a fixed
    set of people (the command line's demo, when no Slack membership is known)."""

    label: str  # mrkdwn that renders the team for a reader (a mention)
    name: str  # plain text, for headers and the terminal: "@platform", "#payments"
    team_id: int | None = None
    person_ids: tuple[int, ...] | None = None
    budget_target: tuple[str, str] | None = None  # (budget.target_kind, budget.target_id)

    def clause(self, table, within: tuple[date, date] | None = None):
        """Rows of the scope's people; ``within`` as in ``reports.on_team``."""
        if self.team_id is not None:
            return reports.on_team(table, self.team_id, within)
        return table.person_id.in_(list(self.person_ids or ()))


def team_scope(team: teams.TeamRef) -> Scope:
    target_kind = "group" if team.kind == teams.USERGROUP else "channel"
    return Scope(team.mention, team.label, team_id=team.id, budget_target=(target_kind, team.slack_id))


def people_scope(conn: Connection, *, workspace_id: str, label: str) -> Scope:
    """Everyone in the database (the command line's demo, where no Slack membership is known)."""
    ids = conn.execute(
        select(Person.id)
        .where(Person.workspace_id == workspace_id, Person.forgotten_at.is_(None))
        .order_by(Person.id)
    ).scalars()
    return Scope(label, label, person_ids=tuple(ids))


def scope_people(conn: Connection, scope: Scope, start: date, end: date) -> list[int]:
    """The people a scope covers on some day of ``[start, end)``."""
    if scope.team_id is None:
        return list(scope.person_ids or ())
    return sorted(
        conn.execute(
            select(TeamMembership.person_id)
            .where(
                TeamMembership.team_id == scope.team_id,
                TeamMembership.joined_on < end,
                or_(TeamMembership.left_on.is_(None), TeamMembership.left_on > start),
            )
            .distinct()
        ).scalars()
    )


# -- model families --------------------------------------------------------------------------

_GPT = re.compile(r"^gpt-(\d+(?:\.\d+)?o?)(?:-(mini|nano|pro))?")
_O_SERIES = re.compile(r"^(o\d)(?:-(mini|pro))?(?:-|$)")
_DATE_SUFFIX = re.compile(r"(-\d{8}|-\d{4}-\d{2}-\d{2}|@\d{8}|-latest)$")


@functools.lru_cache(maxsize=4096)  # a recap asks for the same few dozen models ~30,000 times
def model_family(model: str) -> str:
    """A readable family for a model id: versions and dates folded, sizes kept
    (``claude-3-5-sonnet-20241022`` -> "Claude Sonnet", ``gpt-4.1-mini`` -> "GPT-4.1 mini")."""
    base = model.strip().rsplit("/", 1)[-1]  # OpenRouter's "anthropic/claude-..." names
    name = base.lower()
    if not name:
        return "unspecified model"
    for tier in ("opus", "sonnet", "haiku"):
        if "claude" in name and tier in name:
            return f"Claude {tier.capitalize()}"
    if match := _GPT.match(name):
        return f"GPT-{match.group(1)}" + (f" {match.group(2)}" if match.group(2) else "")
    if match := _O_SERIES.match(name):
        return match.group(1) + (f"-{match.group(2)}" if match.group(2) else "")
    if name.startswith("gemini"):
        for tier in ("pro", "flash"):
            if tier in name:
                return f"Gemini {tier.capitalize()}"
        return "Gemini"
    return _DATE_SUFFIX.sub("", base)[:60]


# -- the recap ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonInfo:
    id: int
    name: str
    show_name: bool
    slack_user_id: str | None

    @property
    def channel_label(self) -> str | None:
        """The name a channel may show, or None (not opted in: counted, never named)."""
        return privacy.channel_name(self.name, self.show_name)


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
    scope_label: str
    scope_name: str
    period: Period
    facts: RecapFacts
    vendors: list[SpendLine]
    families: list[SpendLine]
    values: list[ValueLine]
    efficiency: list[EfficiencyLine]
    case_for: list[Finding]
    case_against: list[Finding]
    people: dict[int, PersonInfo]
    people_with_data: int
    min_group_size: int
    #: Findings from fewer than ``min_group_size`` people: never in the channel, only in the DM.
    withheld: list[Finding] = field(default_factory=list)
    this_week_small: bool = False  # this week's spend or value comes from too few people
    hidden_before: date | None = None  # weeks before this date are left out (too few people)
    managers: list[str] = field(default_factory=list)  # Slack ids: they get the private detail
    last_vote: Tally | None = None
    delivery_id: int | None = None  # the ledger row once claimed: the vote buttons carry it

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
    ) -> list[tuple[Finding, list[tuple[PersonInfo | None, PersonFact]]]]:
        """``hidden_people`` for one manager: a finding that involves anyone outside ``reach`` (the
        people their grant reaches) is left out whole, as its figure comes partly from them."""
        return [
            (finding, rows)
            for finding, rows in self.hidden_people()
            if reach is None or all(fact.person_id in reach for _, fact in rows)
        ]

    def hidden_people(self) -> list[tuple[Finding, list[tuple[PersonInfo | None, PersonFact]]]]:
        """For the managers' DM: the withheld findings (from too few people, with everyone behind
        them), then posted findings that involve people who did not opt in to being named."""
        found = [(f, [(self.people.get(p.person_id), p) for p in f.people]) for f in self.withheld]
        for finding in [*self.case_for, *self.case_against]:
            rows = [(self.people.get(p.person_id), p) for p in finding.people]
            if any(info is None or info.channel_label is None for info, _ in rows):
                found.append((finding, rows))
        return found


def week_starts(end: date) -> list[date]:
    """Start of each recap week, newest first: ``[end - 7, end)`` is this week."""
    return [end - timedelta(days=7 * (i + 1)) for i in range(WEEKS)]


def _week_index(table, starts: Sequence[date]):
    # Weeks are bucketed in SQL so a 500-person team returns a few thousand rows, not one per day.
    return case(*[(table.day >= s, i) for i, s in enumerate(starts[:-1])], else_=len(starts) - 1).label("wk")


def _grouped(query, *columns):
    # GROUP BY the "wk" alias: PostgreSQL sees the CASE in SELECT and in GROUP BY as different
    # expressions (their date parameters are bound separately), the alias is one.
    return query.group_by(literal_column("wk"), *columns)


def load_recap(
    conn: Connection,
    *,
    workspace_id: str,
    scope: Scope,
    end: date,
    min_group_size: int,
    idle_days: int = 14,
    today: date | None = None,
    idle_seat_actors: Collection[str] | None = None,
) -> Recap:
    """The recap of ``scope`` for the week ``[end - 7, end)``: lines, facts and findings."""
    starts = week_starts(end)
    first, this_start = starts[-1], starts[0]
    wk = _week_index(UsagePersonDaily, starts)
    usage = conn.execute(
        _grouped(
            select(
                wk,
                UsagePersonDaily.person_id,
                UsagePersonDaily.vendor,
                UsagePersonDaily.model,
                UsagePersonDaily.cost_basis,
                UsagePersonDaily.kind,
                func.sum(UsagePersonDaily.cost_micros),
                # Tokens another source also reports (TOKENS_ONLY rows) count once: theirs.
                func.sum(
                    case(
                        (UsagePersonDaily.tokens_only.is_(True), 0),
                        else_=UsagePersonDaily.input_tokens
                        + UsagePersonDaily.output_tokens
                        + UsagePersonDaily.cache_read_tokens
                        + UsagePersonDaily.cache_write_tokens,
                    )
                ),
                func.sum(UsagePersonDaily.requests),
            ).where(
                UsagePersonDaily.workspace_id == workspace_id,
                scope.clause(UsagePersonDaily, within=(first, end)),
                UsagePersonDaily.day >= first,
                UsagePersonDaily.day < end,
            ),
            UsagePersonDaily.person_id,
            UsagePersonDaily.vendor,
            UsagePersonDaily.model,
            UsagePersonDaily.cost_basis,
            UsagePersonDaily.kind,
        )
    ).all()
    awk = _week_index(ActivityDaily, starts)
    activity = conn.execute(
        _grouped(
            select(
                awk,
                ActivityDaily.person_id,
                ActivityDaily.vendor,
                *(func.sum(getattr(ActivityDaily, name)) for name in ACTIVITY_FIELDS),
            ).where(
                ActivityDaily.workspace_id == workspace_id,
                scope.clause(ActivityDaily, within=(first, end)),
                ActivityDaily.day >= first,
                ActivityDaily.day < end,
            ),
            ActivityDaily.person_id,
            ActivityDaily.vendor,
        )
    ).all()
    small_weeks = _small_weeks(usage, activity, min_group_size)
    hidden_from = min((wk for wk in small_weeks if wk > 0), default=WEEKS)
    usage = [r for r in usage if r[0] < hidden_from]
    activity = [r for r in activity if r[0] < hidden_from]
    person_ids = {int(r[1]) for r in usage} | {int(r[1]) for r in activity}
    people = _people(conn, person_ids)
    facts = RecapFacts(weeks=[WeekTotal(start) for start in starts], idle_days=idle_days)
    if scope.team_id is not None:
        facts.members = teams.member_count(conn, team_id=scope.team_id)
    else:
        facts.members = len(scope.person_ids or ())
    lines = _aggregate(facts, usage, activity)
    facts.budgets = _budgets(
        conn, workspace_id=workspace_id, scope=scope, today=today or end - timedelta(days=1)
    )
    facts.idle_seats = _idle_seats(
        conn, workspace_id=workspace_id, scope=scope, start=this_start, end=end, idle_actors=idle_seat_actors
    )
    facts.idle_weeks = _idle_weeks(
        conn, workspace_id=workspace_id, scope=scope, end=end, idle_days=idle_days, today=today or end
    )
    vendors, families, values = lines
    shown = {int(r[1]) for r in usage if r[0] < SHOWN_WEEKS} | {
        int(r[1]) for r in activity if r[0] < SHOWN_WEEKS
    }
    case_for, case_against = evaluate(facts)
    case_for, withheld_for = split_postable(case_for, min_group_size)
    case_against, withheld_against = split_postable(case_against, min_group_size)
    return Recap(
        scope_label=scope.label,
        scope_name=scope.name,
        period=Period(this_start, end, f"week of {this_start:%b %-d}"),
        facts=facts,
        vendors=_fold_spend(vendors, min_group_size),
        families=_fold_spend(families, min_group_size),
        values=_fold_values(values, min_group_size),
        efficiency=_efficiency(facts),
        case_for=case_for,
        case_against=case_against,
        people=people,
        people_with_data=len(shown),
        min_group_size=min_group_size,
        withheld=[*withheld_for, *withheld_against],
        this_week_small=0 in small_weeks,
        hidden_before=starts[hidden_from - 1] if hidden_from < WEEKS else None,
        managers=teams.team_managers(conn, workspace_id=workspace_id, team_id=scope.team_id)
        if scope.team_id is not None
        else [],
    )


def _people(conn: Connection, person_ids: Iterable[int]) -> dict[int, PersonInfo]:
    ids = sorted(person_ids)
    found: dict[int, PersonInfo] = {}
    for start in range(0, len(ids), 500):
        for pid, name, show, slack_id in conn.execute(
            select(Person.id, Person.display_name, Person.show_name_in_channels, Person.slack_user_id).where(
                Person.id.in_(ids[start : start + 500])
            )
        ).all():
            found[pid] = PersonInfo(pid, name or "", bool(show), slack_id)
    return found


def _aggregate(
    facts: RecapFacts, usage, activity
) -> tuple[list[SpendLine], list[SpendLine], list[ValueLine]]:
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


def _small_weeks(usage, activity, min_size: int) -> set[int]:
    """Weeks (indexes) whose spend or value come from more than 0 but fewer than ``min_size``
    people with usage: their figures would be one or two people's own numbers. (Seats are list
    prices: a seat says someone holds one, not what they did.)"""
    spenders: dict[int, set[int]] = {}
    valued: dict[int, set[int]] = {}
    for wk, pid, _vendor, _model, _basis, kind, cost, tokens, requests in usage:
        if kind != SEAT and (cost or tokens or requests):
            spenders.setdefault(wk, set()).add(int(pid))
    for wk, pid, _vendor, *sums in activity:
        if any(sums):
            valued.setdefault(wk, set()).add(int(pid))
    return {wk for group in (spenders, valued) for wk, people in group.items() if 0 < len(people) < min_size}


def _add(target: Value, counts: dict[str, int]) -> None:
    for name, value in counts.items():
        setattr(target, name, getattr(target, name) + value)


_SPEND_METRICS = ("this_micros", "last_micros", "base_micros", "estimated_micros", "seat_micros")


def _fold_spend(lines: list[SpendLine], min_size: int) -> list[SpendLine]:
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


def _fold_values(lines: list[ValueLine], min_size: int) -> list[ValueLine]:
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


def _efficiency(facts: RecapFacts) -> list[EfficiencyLine]:
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


def _budgets(conn: Connection, *, workspace_id: str, scope: Scope, today: date) -> list[BudgetStatus]:
    """The team's own budgets (aimed at its group or channel) as ``bot.services.budgets`` sees
    them today: spend so far in the current period against the ceiling, extras included."""
    if scope.budget_target is None or scope.team_id is None:
        return []
    from bot.services import budgets

    kind, target = scope.budget_target
    rows = budgets.budgets_of_target(conn, workspace_id=workspace_id, kind=kind, target_id=target)
    if not rows:
        return []
    team = teams.team_by_id(conn, scope.team_id)
    found = []
    for status in budgets.statuses(
        conn, workspace_id=workspace_id, budgets=[(b, team) for b in rows], today=today
    ):
        budget = status.budget
        label = f"{budget.period}ly budget" + (f" ({budget.vendor})" if budget.vendor else "")
        within = (status.period.start, status.period.end)
        spenders = frozenset(
            conn.execute(
                select(UsagePersonDaily.person_id)
                .where(
                    UsagePersonDaily.workspace_id == workspace_id,
                    scope.clause(UsagePersonDaily, within=within),
                    UsagePersonDaily.kind != SEAT,
                    UsagePersonDaily.cost_micros != 0,
                    UsagePersonDaily.day >= within[0],
                    UsagePersonDaily.day < within[1],
                    *([UsagePersonDaily.vendor == budget.vendor] if budget.vendor else []),
                )
                .distinct()
            ).scalars()
        )
        found.append(
            BudgetStatus(label, status.period.label, status.spent_micros, status.ceiling_micros, spenders)
        )
    return found


def _idle_seats(
    conn: Connection,
    *,
    workspace_id: str,
    scope: Scope,
    start: date,
    end: date,
    idle_actors: Collection[str] | None,
) -> list[IdleSeat]:
    """Seats paid this week whose holder has shown no activity with that vendor for 30 days.

    From the stored rows: no activity row and no usage (other than the seat) of the vendor.
    ``idle_actors`` (e.g. GitHub's own ``last_activity_at`` through
    ``GitHubCopilotConnector.idle_seats``) decides for the vendors whose actors it names."""
    seats = conn.execute(
        select(UsagePersonDaily.person_id, UsagePersonDaily.vendor, func.sum(UsagePersonDaily.cost_micros))
        .where(
            UsagePersonDaily.workspace_id == workspace_id,
            scope.clause(UsagePersonDaily, within=(start, end)),
            UsagePersonDaily.kind == SEAT,
            UsagePersonDaily.day >= start,
            UsagePersonDaily.day < end,
        )
        .group_by(UsagePersonDaily.person_id, UsagePersonDaily.vendor)
    ).all()
    if not seats:
        return []
    holders = sorted({int(pid) for pid, _, _ in seats})
    since = end - timedelta(days=30)
    used: set[tuple[int, str]] = set()
    for pid, vendor in conn.execute(
        select(ActivityDaily.person_id, ActivityDaily.vendor)
        .where(
            ActivityDaily.workspace_id == workspace_id,
            ActivityDaily.person_id.in_(holders),
            ActivityDaily.day >= since,
            ActivityDaily.day < end,
            or_(*(getattr(ActivityDaily, name) > 0 for name in ACTIVITY_FIELDS)),
        )
        .distinct()
    ).all():
        used.add((int(pid), vendor))
    for pid, vendor in conn.execute(
        select(UsageDaily.person_id, UsageDaily.vendor)
        .where(
            UsageDaily.workspace_id == workspace_id,
            UsageDaily.person_id.in_(holders),
            UsageDaily.kind != SEAT,
            UsageDaily.day >= since,
            UsageDaily.day < end,
            or_(UsageDaily.cost_micros > 0, UsageDaily.requests > 0, UsageDaily.input_tokens > 0),
        )
        .distinct()
    ).all():
        used.add((int(pid), vendor))
    told: dict[int, set[str]] = {}  # person -> vendor namespaces named idle by the vendor itself
    if idle_actors is not None:
        for actor, pid in conn.execute(
            select(Identity.actor, Identity.person_id).where(
                Identity.workspace_id == workspace_id, Identity.person_id.in_(holders)
            )
        ).all():
            if actor in idle_actors:
                told.setdefault(int(pid), set()).add(actor.split(":", 1)[0])
    found = []
    for pid, vendor, cost in seats:
        pid = int(pid)
        if idle_actors is not None and vendor == "github_copilot":
            idle = "github" in told.get(pid, set())
        else:
            idle = (pid, vendor) not in used
        if idle:
            found.append(IdleSeat(pid, vendor, int(cost or 0)))
    return sorted(found, key=lambda s: (-s.seat_micros, s.person_id or 0, s.vendor))


def _idle_weeks(
    conn: Connection, *, workspace_id: str, scope: Scope, end: date, idle_days: int, today: date
) -> list[IdleWeek]:
    """Weeks of spend that ``reports.delivery_measures`` judged idle (no merged PR of the person
    within ``idle_days``), only those whose deadline passed this week, so each is told once.
    Only when merged PRs are synced at all: without a code host every week would look idle."""
    has_delivery = conn.execute(
        select(PullRequest.id).where(PullRequest.workspace_id == workspace_id).limit(1)
    ).first()
    if has_delivery is None:
        return []
    start = end - timedelta(days=21 + idle_days)
    person_ids = scope_people(conn, scope, start, end)
    if not person_ids:
        return []
    measures = reports.delivery_measures(
        conn, workspace_id, person_ids, Period(start, end, "recap"), idle_days, today=today
    )
    this_start = end - timedelta(days=7)
    return [
        IdleWeek(w.person_id, w.week_start, w.spend_micros)
        for w in measures.idle_weeks
        if w.week_start + timedelta(days=7 + idle_days) > this_start
    ]


# -- chart ---------------------------------------------------------------------------------------


def chart_alt_text(recap: Recap) -> str:
    weeks = list(reversed(recap.facts.weeks))
    measure = recap.chart_measure()

    def spend(w: WeekTotal) -> str:
        hidden = recap.hidden_before is not None and w.start < recap.hidden_before
        return "left out (too few people)" if hidden else format_usd(w.spend_micros, cents=False)

    text = (
        f"Weekly AI spend of {recap.scope_label} over {len(weeks)} weeks, from {weeks[0].start:%b %-d}: "
        + ", ".join(spend(w) for w in weeks)
    )
    if measure:
        key, plural = measure
        text += f". {plural[0].upper()}{plural[1:]} per week: " + ", ".join(
            f"{w.measure(key):,}" for w in weeks
        )
    return text[:1000] + "."


def render_chart(recap: Recap) -> bytes:
    """A PNG of 8 weeks of spend (bars) against the value measure (line), drawn headless.

    Plotting takes floats; the money shown in the recap itself stays exact integer micros."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weeks = list(reversed(recap.facts.weeks))
    labels = [f"{w.start:%b %-d}" for w in weeks]
    spend = [w.spend_micros / 1_000_000 for w in weeks]
    figure = Figure(figsize=(8, 3.6), dpi=110)
    FigureCanvasAgg(figure)  # pyplot-free: safe in the scheduler's worker threads
    axes = figure.add_subplot(1, 1, 1)
    axes.bar(labels, spend, color="#8fb3d9", label="AI spend (USD)")
    axes.set_ylabel("AI spend (USD)")
    axes.set_title(f"AI spend vs value, last {len(weeks)} weeks")
    axes.tick_params(axis="x", labelsize=8)
    measure = recap.chart_measure()
    if measure:
        key, plural = measure
        other = axes.twinx()
        other.plot(labels, [w.measure(key) for w in weeks], color="#1f3a5f", marker="o", label=plural)
        other.set_ylabel(plural)
        other.set_ylim(bottom=0)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


# -- subscriptions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    id: int
    workspace_id: str
    channel_id: str
    group_id: str
    weekday: int
    local_time: str
    post_when_empty: bool
    created_by: str
    created_at: datetime

    @property
    def team_kind(self) -> str:
        return teams.USERGROUP if self.group_id else teams.CHANNEL

    @property
    def team_slack_id(self) -> str:
        return self.group_id or self.channel_id

    @property
    def schedule_text(self) -> str:
        return f"{DAY_NAMES[self.weekday].capitalize()}s at {self.local_time}"


@dataclass(frozen=True)
class RecapRequest:
    """``/tokens recap`` arguments after parsing; None where the user gave nothing."""

    channel_id: str | None = None
    channel_name: str = ""
    group_id: str | None = None
    group_name: str = ""
    weekday: int | None = None
    local_time: str | None = None
    post_when_empty: bool | None = None


def parse_time(token: str) -> str | None:
    match = _TIME.match(token.strip().lower())
    if not match:
        return None
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    elif match.group(2) is None:
        return None  # a bare "9" could be a day of the month: ask for 9:00 or 9am
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def parse_request(args: Sequence[str], *, usage: str, schedule: bool) -> RecapRequest:
    """Channel, group and (with ``schedule``) day, time and ``skip-empty``, in any order."""
    found: dict = {}
    for token in args:
        word = token.lower()
        if channel := mentioned_channel(token):
            key, value = "channel_id", channel
            found["channel_name"] = token[token.find("|") + 1 : -1] if "|" in token else ""
        elif group := mentioned_group(token):
            key, value = "group_id", group
            found["group_name"] = (token[token.find("|") + 1 : -1] if "|" in token else "").removeprefix("@")
        elif schedule and word in _DAY_WORDS:
            key, value = "weekday", _DAY_WORDS[word]
        elif schedule and (at := parse_time(word)):
            key, value = "local_time", at
        elif schedule and word in SKIP_EMPTY:
            key, value = "post_when_empty", False
        else:
            what = (
                "a channel, a user group, a day, a time or `skip-empty`"
                if schedule
                else "a channel or a user group"
            )
            hint = " Times are like `09:00` or `9am`." if schedule and any(c.isdigit() for c in word) else ""
            raise CommandError(f"I could not read `{token[:50]}`: I expected {what}.{hint}", usage)
        if key in found:
            raise CommandError(f"`{token[:50]}`: give at most one {_WHAT[key]}.", usage)
        found[key] = value
    return RecapRequest(**found)


def _subscription(row) -> Subscription:
    return Subscription(
        row.id,
        row.workspace_id,
        row.channel_id,
        row.group_id,
        row.weekday,
        row.local_time,
        bool(row.post_when_empty),
        row.created_by,
        as_utc(row.created_at),
    )


def list_subscriptions(conn: Connection, *, workspace_id: str | None = None) -> list[Subscription]:
    query = select(RecapSubscription.__table__).order_by(RecapSubscription.id)
    if workspace_id is not None:
        query = query.where(RecapSubscription.workspace_id == workspace_id)
    return [_subscription(r) for r in conn.execute(query).all()]


def get_subscription(
    conn: Connection, *, workspace_id: str, channel_id: str, group_id: str
) -> Subscription | None:
    row = conn.execute(
        select(RecapSubscription.__table__).where(
            RecapSubscription.workspace_id == workspace_id,
            RecapSubscription.channel_id == channel_id,
            RecapSubscription.group_id == group_id,
        )
    ).first()
    return _subscription(row) if row else None


def subscribe(
    conn: Connection,
    *,
    workspace_id: str,
    channel_id: str,
    group_id: str,
    weekday: int,
    local_time: str,
    post_when_empty: bool,
    created_by: str,
    now: datetime | None = None,
) -> tuple[Subscription, bool]:
    """Create or reschedule (same channel and group); True when it is new."""
    existing = get_subscription(conn, workspace_id=workspace_id, channel_id=channel_id, group_id=group_id)
    values = {"weekday": weekday, "local_time": local_time, "post_when_empty": post_when_empty}
    if existing is not None:
        conn.execute(update(RecapSubscription).where(RecapSubscription.id == existing.id).values(**values))
    else:
        conn.execute(
            _insert(conn, RecapSubscription.__table__)
            .values(
                workspace_id=workspace_id,
                channel_id=channel_id,
                group_id=group_id,
                created_by=created_by,
                created_at=now or datetime.now(UTC),
                **values,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "channel_id", "group_id"])
        )
    sub = get_subscription(conn, workspace_id=workspace_id, channel_id=channel_id, group_id=group_id)
    assert sub is not None
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=created_by,
        action="recap.subscribe",
        target=f"channel:{channel_id}",
        detail=f"group={group_id or '-'} {sub.schedule_text}" + ("" if post_when_empty else " skip-empty"),
    )
    return sub, existing is None


def unsubscribe(
    conn: Connection, *, workspace_id: str, channel_id: str, group_id: str, actor_user_id: str
) -> bool:
    """Remove the subscription with its ledger and votes (they only make sense with it)."""
    sub = get_subscription(conn, workspace_id=workspace_id, channel_id=channel_id, group_id=group_id)
    if sub is None:
        return False
    deliveries = select(RecapDelivery.id).where(RecapDelivery.subscription_id == sub.id)
    conn.execute(delete(RecapVote).where(RecapVote.delivery_id.in_(deliveries)))
    conn.execute(delete(RecapDelivery).where(RecapDelivery.subscription_id == sub.id))
    conn.execute(delete(RecapSubscription).where(RecapSubscription.id == sub.id))
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="recap.unsubscribe",
        target=f"channel:{channel_id}",
        detail=f"group={group_id or '-'}",
    )
    return True


def can_manage(
    conn: Connection, *, workspace_id: str, user_id: str, is_admin: bool, kind: str, slack_id: str
) -> bool:
    """Admins, and the managers of the team the recap covers, (un)subscribe it."""
    if is_admin:
        return True
    return any(
        t.kind == kind and t.slack_id == slack_id
        for t in teams.managed_teams(conn, workspace_id=workspace_id, slack_user_id=user_id)
    )


# -- schedule and ledger -----------------------------------------------------------------------


def scheduled_at(sub: Subscription, monday: date, tz: ZoneInfo) -> datetime:
    hour, minute = (int(part) for part in sub.local_time.split(":"))
    return datetime.combine(monday + timedelta(days=sub.weekday), time(hour, minute), tzinfo=tz)


def due_week(sub: Subscription, now: datetime, tz: ZoneInfo) -> date | None:
    """The Monday (local) of the week whose recap is due now, or None.

    Due from the scheduled moment to the end of that local week: a bot that was down at 09:00
    catches up when it comes back the same week; after the week it is too late (the next
    week's recap covers the days anyway). A subscription made after this week's moment starts
    next week, rather than posting minutes after ``subscribe``."""
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    moment = scheduled_at(sub, monday, tz)
    if now < moment or sub.created_at > moment:
        return None
    return monday


def next_run(sub: Subscription, now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    moment = scheduled_at(sub, monday, tz)
    return moment if moment > now else scheduled_at(sub, monday + timedelta(days=7), tz)


def recap_end(sub: Subscription, monday: date) -> date:
    """The recap covers the seven days before its scheduled day."""
    return monday + timedelta(days=sub.weekday)


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    subscription: Subscription
    week_start: date
    attempt: int
    #: The previous holder died mid-post: look for its message before posting again.
    took_over_since: datetime | None = None


def _insert(conn: Connection, table):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def claim(conn: Connection, sub: Subscription, week_start: date, now: datetime) -> Claim | None:
    """Take the week's delivery of ``sub``, or None when another process has it, it is done, or
    it failed too often. Commit right after: the committed row is what keeps others away."""
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT that SQLAlchemy sends with it.
    inserted = conn.execute(
        _insert(conn, RecapDelivery.__table__)
        .values(
            workspace_id=sub.workspace_id,
            subscription_id=sub.id,
            week_start=week_start,
            status=CLAIMED,
            channel_id=sub.channel_id,
            attempts=1,
            claimed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["subscription_id", "week_start"])
        .returning(RecapDelivery.__table__.c.id)
    ).first()
    if inserted is not None:
        return Claim(inserted.id, sub, week_start, 1)
    row = conn.execute(
        select(RecapDelivery.__table__).where(
            RecapDelivery.subscription_id == sub.id, RecapDelivery.week_start == week_start
        )
    ).one()
    claimed_at = as_utc(row.claimed_at)
    if row.attempts >= MAX_ATTEMPTS:
        return None
    if row.status == FAILED and now - claimed_at >= RETRY_PAUSE * row.attempts:
        took_over_since = None
    elif row.status == CLAIMED and now - claimed_at >= STALE_CLAIM:
        took_over_since = claimed_at
    else:
        return None
    # Optimistic: the attempt count is the row's version, so exactly one contender wins.
    won = conn.execute(
        update(RecapDelivery)
        .where(
            RecapDelivery.id == row.id,
            RecapDelivery.status == row.status,
            RecapDelivery.attempts == row.attempts,
        )
        .values(status=CLAIMED, attempts=row.attempts + 1, claimed_at=now)
    ).rowcount
    if won != 1:
        return None
    return Claim(row.id, sub, week_start, row.attempts + 1, took_over_since)


def mark_posted(conn: Connection, delivery_id: int, *, message_ts: str | None, now: datetime) -> None:
    conn.execute(
        update(RecapDelivery)
        .where(RecapDelivery.id == delivery_id)
        .values(status=POSTED, message_ts=message_ts, posted_at=now, error=None)
    )


def mark_failed(conn: Connection, delivery_id: int, *, error: str, final: bool = False) -> None:
    """``final``: no more attempts (a person has to look), e.g. when a retry might double-post."""
    values = {"status": FAILED, "error": error[:2000]}
    if final:
        values["attempts"] = MAX_ATTEMPTS
    conn.execute(update(RecapDelivery).where(RecapDelivery.id == delivery_id).values(**values))


def mark_skipped(conn: Connection, delivery_id: int, *, reason: str) -> None:
    conn.execute(
        update(RecapDelivery).where(RecapDelivery.id == delivery_id).values(status=SKIPPED, error=reason)
    )


@dataclass(frozen=True)
class DeliveryInfo:
    id: int
    workspace_id: str
    subscription_id: int
    week_start: date
    status: str
    channel_id: str
    message_ts: str | None
    attempts: int
    error: str | None
    claimed_at: datetime
    posted_at: datetime | None


def _delivery(row) -> DeliveryInfo:
    return DeliveryInfo(
        row.id,
        row.workspace_id,
        row.subscription_id,
        row.week_start,
        row.status,
        row.channel_id,
        row.message_ts,
        row.attempts,
        row.error,
        as_utc(row.claimed_at),
        as_utc(row.posted_at),
    )


def delivery_by_id(conn: Connection, delivery_id: int) -> DeliveryInfo | None:
    row = conn.execute(select(RecapDelivery.__table__).where(RecapDelivery.id == delivery_id)).first()
    return _delivery(row) if row else None


def latest_deliveries(conn: Connection, subscription_ids: Sequence[int]) -> dict[int, DeliveryInfo]:
    if not subscription_ids:
        return {}
    latest = (
        select(RecapDelivery.subscription_id, func.max(RecapDelivery.week_start).label("week"))
        .where(RecapDelivery.subscription_id.in_(list(subscription_ids)))
        .group_by(RecapDelivery.subscription_id)
        .subquery()
    )
    rows = conn.execute(
        select(RecapDelivery.__table__).join(
            latest,
            and_(
                RecapDelivery.subscription_id == latest.c.subscription_id,
                RecapDelivery.week_start == latest.c.week,
            ),
        )
    ).all()
    return {row.subscription_id: _delivery(row) for row in rows}


@dataclass(frozen=True)
class DeliveryProblem:
    """A recap that is not (yet) posted: for ``/tokens status``."""

    channel_id: str
    group_id: str
    week_start: date
    status: str
    attempts: int
    error: str | None
    retrying: bool


def delivery_problems(
    conn: Connection, *, workspace_id: str, now: datetime | None = None
) -> list[DeliveryProblem]:
    """Failed deliveries of the last two weeks, and claims stuck past ``STALE_CLAIM``."""
    now = now or datetime.now(UTC)
    since = (now - timedelta(days=14)).date()
    rows = conn.execute(
        select(RecapDelivery.__table__, RecapSubscription.group_id)
        .join(RecapSubscription, RecapSubscription.id == RecapDelivery.subscription_id)
        .where(
            RecapDelivery.workspace_id == workspace_id,
            RecapDelivery.week_start >= since,
            RecapDelivery.status.in_([FAILED, CLAIMED]),
        )
        .order_by(RecapDelivery.week_start.desc(), RecapDelivery.id)
    ).all()
    found = []
    for row in rows:
        if row.status == CLAIMED and now - as_utc(row.claimed_at) < STALE_CLAIM:
            continue  # being posted right now
        found.append(
            DeliveryProblem(
                row.channel_id,
                row.group_id,
                row.week_start,
                row.status,
                row.attempts,
                row.error,
                row.attempts < MAX_ATTEMPTS,
            )
        )
    return found


# -- votes ---------------------------------------------------------------------------------------


def record_vote(
    conn: Connection, *, delivery_id: int, user_id: str, choice: str, now: datetime | None = None
) -> Tally | None:
    """One vote per person per recap; voting again replaces it. None when the recap is unknown."""
    if choice not in CHOICES:
        raise ValueError(f"unknown choice {choice!r}")
    delivery = delivery_by_id(conn, delivery_id)
    if delivery is None or delivery.status != POSTED:
        return None
    stmt = _insert(conn, RecapVote.__table__).values(
        workspace_id=delivery.workspace_id,
        delivery_id=delivery_id,
        user_id=user_id,
        choice=choice,
        voted_at=now or datetime.now(UTC),
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["delivery_id", "user_id"],
            set_={"choice": stmt.excluded.choice, "voted_at": stmt.excluded.voted_at},
        )
    )
    return tally(conn, delivery_id)


def tally(conn: Connection, delivery_id: int) -> Tally:
    counts = dict(
        conn.execute(
            select(RecapVote.choice, func.count())
            .where(RecapVote.delivery_id == delivery_id)
            .group_by(RecapVote.choice)
        ).all()
    )
    return Tally(**{key: int(counts.get(key, 0)) for key in CHOICES})


def previous_tally(conn: Connection, *, subscription_id: int, week_start: date) -> Tally | None:
    """Last week's vote of the same subscription, when last week's recap was posted."""
    row = conn.execute(
        select(RecapDelivery.id).where(
            RecapDelivery.subscription_id == subscription_id,
            RecapDelivery.week_start == week_start - timedelta(days=7),
            RecapDelivery.status == POSTED,
        )
    ).first()
    return tally(conn, row.id) if row else None


def record_detail_views(
    conn: Connection,
    *,
    workspace_id: str,
    manager_ids: Sequence[str],
    person_ids: Sequence[int],
    period: Period,
) -> None:
    """The managers' DM shows people's own numbers: each person can see it in ``audit me``."""
    privacy.record_views_by(
        conn,
        workspace_id=workspace_id,
        actor_user_ids=manager_ids,
        action="view.recap_detail",
        person_ids=sorted(set(person_ids)),
        detail=f"recap week {period.start}..{period.last_day}",
    )
