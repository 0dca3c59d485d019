"""Budgets: spend ceilings (and optional floors) per person, team or org, per calendar period.

Rules in plain words are in docs/budgets.md. This module holds the pure parts (the amount and
command grammar, periods, the forecast maths) and the data layer (budgets, status, the alert
ledger, requests for more). No Slack here: the Slack layer resolves mentions to people and
teams, sends the DMs and calls back to record what happened.

Money is integer micro-USD throughout; rates are ``Fraction`` (micros per day) so a forecast
never rounds a dollar amount through a float.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.db import store
from bot.db.models import (
    AlertSent,
    Budget,
    BudgetOverride,
    BudgetRequest,
    Person,
    UsageOrgDaily,
    UsagePersonDaily,
)
from bot.domain.clock import local_today, utcnow
from bot.domain.money import MICROS_PER_USD, format_usd, usd_to_micros
from bot.domain.periods import Period, calendar_period
from bot.domain.records import SEAT
from bot.services import access, aggregates, privacy, teams
from bot.services.commands import mentioned_channel, mentioned_group, mentioned_user
from bot.services.reports import on_team  # the one definition of "counts for the team that day"
from bot.services.teams import TeamRef
from bot.settings import Settings

# -- vocabulary ------------------------------------------------------------------------------

PERSON = "person"
GROUP = "group"
CHANNEL = "channel"
ORG = "org"
TEAM_KINDS = {GROUP: teams.USERGROUP, CHANNEL: teams.CHANNEL}

PERIODS = ("week", "month", "quarter")
PERIOD_WORDS = {
    "week": "week",
    "wk": "week",
    "weekly": "week",
    "month": "month",
    "mo": "month",
    "monthly": "month",
    "quarter": "quarter",
    "qtr": "quarter",
    "quarterly": "quarter",
}
YEAR_WORDS = {"y", "yr", "yrs", "year", "years", "yearly", "annual", "annually", "a", "pa"}
DAY_WORDS = {"d", "day", "days", "daily", "h", "hr", "hour", "hourly"}

# Vendor words a budget may be scoped to -> the vendor as stored on usage rows.
VENDORS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "claude_code": "claude_code",
    "claude-code": "claude_code",
    "claudecode": "claude_code",
    "cursor": "cursor",
    "copilot": "github_copilot",
    "github_copilot": "github_copilot",
    "github-copilot": "github_copilot",
    "openrouter": "openrouter",
    "windsurf": "windsurf",
}

DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_THRESHOLDS = 6
MAX_THRESHOLD = 200
MAX_AMOUNT_USD = 10_000_000
MAX_AMOUNT_MICROS = MAX_AMOUNT_USD * MICROS_PER_USD
RUN_RATE_DAYS = 7  # the forecast's "recent daily run-rate": the last 7 complete days
MAX_REASON = 500

THRESHOLD = "threshold"
FORECAST = "forecast"
FLOOR = "floor"

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
CANCELLED = "cancelled"
SCOPE_PERIOD = "period"
SCOPE_PERMANENT = "permanent"

# How much of a budget's status a viewer may see (see ``visibility``).
FULL = "full"  # spend, ceiling, percent
PERCENT = "percent"  # percent used only: the org budget for non-admins (org dollars are admin-only)
HIDDEN = "hidden"  # the budget exists; its spend is not shown (a team below the minimum size)


class BudgetError(ValueError):
    """Bad input; the message is safe to show and says what to write instead."""


# -- the amount grammar (pure) -----------------------------------------------------------------

_AMOUNT = re.compile(r"^\$?(?P<num>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?P<k>[kK])?$")
_MILLIONS = re.compile(r"^\$?[\d,]*\.?\d*[mM]$")
EXAMPLES = "`$400`, `5k`, `$50,000` or `1.5k`"


def parse_amount(text: str, *, what: str = "amount") -> int:
    """``$400``, ``400``, ``5k``, ``1.5k``, ``$50,000``, ``$99.50`` -> integer micros.

    Refused: negative, zero, over $10,000,000, fractions of a cent, misplaced commas, ``m``
    (million or month?), anything else that is not a plain dollar figure."""
    raw = text.strip()
    shown = raw[:40]
    if not raw:
        raise BudgetError(f"The {what} is missing: write it like {EXAMPLES}.")
    if raw.startswith(("-", "−", "$-", "-$", "(")):
        raise BudgetError(f"`{shown}` is negative: a {what} must be more than $0.")
    if _MILLIONS.match(raw) and any(c.isdigit() for c in raw):
        raise BudgetError(
            f"`{shown}` is ambiguous (`m` could mean million or month): write the dollars out, "
            "e.g. `$2,000,000`, and the period after a slash, e.g. `$400/month`."
        )
    match = _AMOUNT.match(raw)
    if match is None:
        if "," in raw and any(c.isdigit() for c in raw):
            raise BudgetError(
                f"`{shown}` is not an amount I can read: commas go only between thousands "
                f"(`50,000`) and a dot before cents (`99.50`)."
            )
        raise BudgetError(f"`{shown}` is not an amount: write it like {EXAMPLES}.")
    digits = match.group("num").replace(",", "")
    if match.group("frac"):
        digits += "." + match.group("frac")
    try:
        value = Decimal(digits)
    except InvalidOperation:  # pragma: no cover - the pattern only lets digits through
        raise BudgetError(f"`{shown}` is not an amount: write it like {EXAMPLES}.") from None
    if match.group("k"):
        value *= 1000
    if value == 0:
        raise BudgetError(f"`{shown}` is zero: a {what} must be more than $0.")
    if (value * 100) != (value * 100).to_integral_value():
        raise BudgetError(f"`{shown}` has fractions of a cent: round the {what} to the cent.")
    if value > MAX_AMOUNT_USD:
        raise BudgetError(
            f"`{shown}` is over {format_usd(MAX_AMOUNT_MICROS, cents=False)}, which I take for a typo."
        )
    return usd_to_micros(value)


def parse_period_word(word: str, *, amount_text: str = "") -> str:
    period = PERIOD_WORDS.get(word.lower())
    if period is not None:
        return period
    shown = f"{amount_text}/{word}" if amount_text else word
    if word.lower() in YEAR_WORDS:
        hint = ""
        try:
            quarterly = parse_amount(amount_text) // 4 if amount_text else 0
            hint = (
                f" For a yearly figure split evenly, say `{format_usd(quarterly)}/quarter`."
                if quarterly
                else ""
            )
        except BudgetError:
            pass
        raise BudgetError(
            f"`{shown[:40]}` is ambiguous: budgets reset every week, month or quarter, not every year.{hint}"
        )
    if word.lower() in DAY_WORDS:
        raise BudgetError(f"`{shown[:40]}`: budgets reset every week, month or quarter, not daily or hourly.")
    raise BudgetError(f"`{shown[:40]}` has no period I know: use `/week`, `/month` or `/quarter`.")


def parse_amount_period(text: str) -> tuple[int, str | None]:
    """``5k/month`` -> (5,000,000,000, "month"); ``$400`` -> (400,000,000, None)."""
    amount_text, slash, period_text = text.partition("/")
    if slash and not period_text:
        raise BudgetError(f"`{text[:40]}` ends with a slash: use `/week`, `/month` or `/quarter`.")
    period = parse_period_word(period_text, amount_text=amount_text) if slash else None
    return parse_amount(amount_text), period


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``50,90`` -> (50, 90): whole percents of the ceiling, 1 to 200, at most six."""
    if text.lower() in ("default", "defaults"):
        return DEFAULT_THRESHOLDS
    parts = [p.strip().removesuffix("%") for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise BudgetError(f"`{text[:40]}` is not a list of percents: write it like `thresholds 50,80,100`.")
    values = sorted({int(p) for p in parts})
    if values[0] < 1 or values[-1] > MAX_THRESHOLD:
        raise BudgetError(
            f"Thresholds are percents of the ceiling from 1 to {MAX_THRESHOLD}; `{text[:40]}` is not."
        )
    if len(values) > MAX_THRESHOLDS:
        raise BudgetError(f"At most {MAX_THRESHOLDS} thresholds per budget; `{text[:40]}` has {len(values)}.")
    return tuple(values)


def format_thresholds(values: Sequence[int]) -> str:
    return ",".join(str(v) for v in values)


def read_thresholds(text: str) -> tuple[int, ...]:
    try:
        return parse_thresholds(text) if text else DEFAULT_THRESHOLDS
    except BudgetError:  # a hand-edited row must not stop every check
        return DEFAULT_THRESHOLDS


# -- the command grammar (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class TargetRef:
    """Who a budget is for, as written in the command (not yet resolved to a person or team)."""

    kind: str  # person | group | channel | org
    slack_id: str  # U.../S.../C... or "org"
    name: str = ""

    @property
    def mention(self) -> str:
        if self.kind == PERSON:
            return f"<@{self.slack_id}>"
        if self.kind == ORG:
            return "the org"
        return teams.mention(TEAM_KINDS[self.kind], self.slack_id)


def _label(token: str) -> str:
    return token[token.find("|") + 1 : -1] if "|" in token else ""


def parse_target(token: str) -> TargetRef | None:
    if token.lower() == ORG:
        return TargetRef(ORG, ORG)
    if user := mentioned_user(token):
        return TargetRef(PERSON, user, _label(token))
    if group := mentioned_group(token):
        return TargetRef(GROUP, group, _label(token).removeprefix("@"))
    if channel := mentioned_channel(token):
        return TargetRef(CHANNEL, channel, _label(token))
    return None


def target_error(token: str) -> BudgetError:
    return BudgetError(
        f"`{token[:50]}` is not a person, user group or channel I can read: pick it from Slack's @ or # "
        "list, or say `org`."
    )


@dataclass(frozen=True)
class BudgetSpec:
    """What ``/tokens budget set`` asked for. ``None`` options keep an existing budget's value."""

    target: TargetRef
    amount_micros: int
    period: str
    vendor: str = ""
    floor_given: bool = False
    floor_micros: int | None = None
    include_seats: bool | None = None
    thresholds: tuple[int, ...] | None = None


def parse_set(args: Sequence[str]) -> BudgetSpec:
    """``<target> <amount>[/period] [vendor] [floor <amount>|off] [include|exclude seats]
    [thresholds 50,80,100]``; the period defaults to month."""
    if not args:
        raise BudgetError("Say who and how much, e.g. `/tokens budget set @ana $400/month`.")
    target = parse_target(args[0])
    if target is None:
        raise target_error(args[0])
    if len(args) < 2:
        raise BudgetError(f"How much for {target.mention}? e.g. `/tokens budget set {args[0]} $400/month`.")
    amount, period = parse_amount_period(args[1])
    rest = list(args[2:])
    if period is None and len(rest) >= 2 and rest[0].lower() == "per":
        period = parse_period_word(rest[1], amount_text=args[1])
        rest = rest[2:]
    spec = BudgetSpec(target, amount, period or "month")
    index = 0
    while index < len(rest):
        word = rest[index].lower()
        following = rest[index + 1] if index + 1 < len(rest) else None
        if word == "floor":
            if following is None:
                raise BudgetError("`floor` needs an amount (e.g. `floor 20000`) or `off`.")
            floor = None if following.lower() in ("off", "none") else parse_amount(following, what="floor")
            spec = replace(spec, floor_given=True, floor_micros=floor)
            index += 2
        elif word in ("include", "exclude"):
            if following is None or following.lower() not in ("seats", "seat"):
                raise BudgetError(f"Say `{word} seats`.")
            spec = replace(spec, include_seats=word == "include")
            index += 2
        elif word in ("thresholds", "threshold", "alerts"):
            if following is None:
                raise BudgetError("`thresholds` needs percents, e.g. `thresholds 50,90`.")
            spec = replace(spec, thresholds=parse_thresholds(following))
            index += 2
        elif word in VENDORS:
            if spec.vendor:
                raise BudgetError("One vendor per budget: set one budget per vendor.")
            spec = replace(spec, vendor=VENDORS[word])
            index += 1
        else:
            raise BudgetError(
                f"`{rest[index][:40]}` is not a vendor or an option. Vendors: "
                f"{', '.join(sorted(set(VENDORS.values())))}. Options: `floor <amount>`, "
                "`include seats`, `thresholds 50,80,100`."
            )
    if spec.floor_micros is not None and spec.floor_micros >= spec.amount_micros:
        raise BudgetError(
            f"The floor ({format_usd(spec.floor_micros)}) must be below the ceiling "
            f"({format_usd(spec.amount_micros)})."
        )
    return spec


def parse_vendor(word: str) -> str:
    vendor = VENDORS.get(word.lower())
    if vendor is None:
        raise BudgetError(
            f"`{word[:40]}` is not a vendor; use one of {', '.join(sorted(set(VENDORS.values())))}."
        )
    return vendor


def parse_request(args: Sequence[str]) -> tuple[int, str]:
    """``<amount> <reason>`` -> (micros, reason)."""
    if not args:
        raise BudgetError(
            "Say how much more and why, e.g. `/tokens budget request $200 load tests this week`."
        )
    amount = parse_amount(args[0])
    reason = " ".join(args[1:]).strip()
    if not reason:
        raise BudgetError(
            "Say why: your manager sees the reason, e.g. `/tokens budget request $200 load tests`."
        )
    if len(reason) > MAX_REASON:
        raise BudgetError(f"Keep the reason under {MAX_REASON} characters (it has {len(reason)}).")
    return amount, reason


# -- periods (pure) ----------------------------------------------------------------------------


def current_period(kind: str, now: datetime, tz: ZoneInfo) -> Period:
    """The calendar week (Monday), month or quarter containing ``now`` in the org's timezone."""
    return calendar_period(kind, local_today(now, tz))


def reset_at(period: Period, tz: ZoneInfo) -> datetime:
    """The moment the period ends: local midnight of its end date (DST-aware)."""
    return datetime.combine(period.end, time(0), tzinfo=tz)


# -- forecast maths (pure) ---------------------------------------------------------------------


def run_rate(daily: dict[date, int], today: date, days: int = RUN_RATE_DAYS) -> Fraction:
    """Micros per day over the ``days`` complete days before ``today`` (today is still partial)."""
    start = today - timedelta(days=days)
    return Fraction(sum(v for d, v in daily.items() if start <= d < today), days)


def projected(spent: int, rate: Fraction, today: date, period: Period) -> int:
    """Spend at the end of the period if each remaining day (today included) adds ``rate``."""
    remaining = max(0, (period.end - today).days)
    return spent + math.floor(rate * remaining)


def reach_day(spent: int, target: int, rate: Fraction, today: date, period: Period) -> date | None:
    """The day cumulative spend reaches ``target`` at this pace; None when not before the
    period resets. Today when already reached."""
    if spent >= target:
        return today
    if rate <= 0:
        return None
    days = math.ceil((target - spent) / rate)  # days of spending at ``rate`` needed, today being day 1
    day = today + timedelta(days=days - 1)
    return day if day < period.end else None


def share_reached(spent: int, ceiling: int, percent: int) -> bool:
    return spent * 100 >= ceiling * percent


def threshold_micros(ceiling: int, percent: int) -> int:
    return -(-ceiling * percent // 100)  # round up: the threshold is reached at or above it


# -- budgets (data) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetRow:
    id: int
    target_kind: str
    target_id: str
    vendor: str
    period: str
    amount_micros: int
    floor_micros: int | None
    thresholds: tuple[int, ...]
    include_seats: bool
    created_by: str = ""

    @property
    def access_kind(self) -> str:
        return "team" if self.target_kind in TEAM_KINDS else self.target_kind

    @property
    def person_id(self) -> int | None:
        return int(self.target_id) if self.target_kind == PERSON else None

    def describe(self) -> str:
        """Plain words for the audit log and confirmations."""
        parts = [f"{format_usd(self.amount_micros)}/{self.period}", self.vendor or "all vendors"]
        if self.floor_micros is not None:
            parts.append(f"floor {format_usd(self.floor_micros)}")
        parts.append("seats included" if self.include_seats else "seats excluded")
        parts.append(f"alerts at {format_thresholds(self.thresholds)}%")
        return ", ".join(parts)


def _budget(row) -> BudgetRow:
    return BudgetRow(
        id=row.id,
        target_kind=row.target_kind,
        target_id=row.target_id,
        vendor=row.vendor,
        period=row.period,
        amount_micros=int(row.amount_micros),
        floor_micros=None if row.floor_micros is None else int(row.floor_micros),
        thresholds=read_thresholds(row.thresholds),
        include_seats=bool(row.include_seats),
        created_by=row.created_by,
    )


def _key(workspace_id: str, kind: str, target_id: str, vendor: str | None = None):
    clauses = [Budget.workspace_id == workspace_id, Budget.target_kind == kind, Budget.target_id == target_id]
    if vendor is not None:
        clauses.append(Budget.vendor == vendor)
    return clauses


def get_budget(
    conn: Connection, *, workspace_id: str, kind: str, target_id: str, vendor: str
) -> BudgetRow | None:
    row = conn.execute(select(Budget.__table__).where(*_key(workspace_id, kind, target_id, vendor))).first()
    return _budget(row) if row else None


def budget_by_id(conn: Connection, *, workspace_id: str, budget_id: int) -> BudgetRow | None:
    row = conn.execute(
        select(Budget.__table__).where(Budget.workspace_id == workspace_id, Budget.id == budget_id)
    ).first()
    return _budget(row) if row else None


def budgets_of_target(conn: Connection, *, workspace_id: str, kind: str, target_id: str) -> list[BudgetRow]:
    rows = conn.execute(
        select(Budget.__table__).where(*_key(workspace_id, kind, target_id)).order_by(Budget.vendor)
    ).all()
    return [_budget(r) for r in rows]


def all_budgets(conn: Connection, *, workspace_id: str) -> list[BudgetRow]:
    rows = conn.execute(
        select(Budget.__table__)
        .where(Budget.workspace_id == workspace_id)
        .order_by(Budget.target_kind, Budget.target_id, Budget.vendor)
    ).all()
    return [_budget(r) for r in rows]


def audit_target(kind: str, target_id: str, team: TeamRef | None = None) -> str:
    """Audit targets match the rest of the log: ``person:<id>``, ``team:<id>``, ``org``."""
    if kind == PERSON:
        return privacy.person_target(int(target_id))
    if kind in TEAM_KINDS:
        return f"team:{team.id}" if team else f"{kind}:{target_id}"
    return ORG


def set_budget(
    conn: Connection,
    *,
    workspace_id: str,
    kind: str,
    target_id: str,
    spec: BudgetSpec,
    actor_user_id: str,
    team: TeamRef | None = None,
) -> tuple[BudgetRow | None, BudgetRow]:
    """Create or change the budget of (target, vendor); options the spec leaves out keep their
    current value. Returns (before, after) and writes the audit row."""
    before = get_budget(conn, workspace_id=workspace_id, kind=kind, target_id=target_id, vendor=spec.vendor)
    floor = spec.floor_micros if spec.floor_given else (before.floor_micros if before else None)
    if floor is not None and floor >= spec.amount_micros:
        raise BudgetError(
            f"The floor ({format_usd(floor)}) must be below the ceiling ({format_usd(spec.amount_micros)}): "
            "lower it with `floor <amount>` or remove it with `floor off`."
        )
    values = {
        "period": spec.period,
        "amount_micros": spec.amount_micros,
        "floor_micros": floor,
        "thresholds": format_thresholds(
            spec.thresholds
            if spec.thresholds is not None
            else (before.thresholds if before else DEFAULT_THRESHOLDS)
        ),
        "include_seats": spec.include_seats
        if spec.include_seats is not None
        else (before.include_seats if before else False),
    }
    now = utcnow()
    # Insert-if-absent then update: two admins setting the same budget at once both succeed.
    store.insert_ignore(
        conn,
        Budget.__table__,
        [
            {
                "workspace_id": workspace_id,
                "target_kind": kind,
                "target_id": target_id,
                "vendor": spec.vendor,
                "created_by": actor_user_id[:32],
                "created_at": now,
                "updated_at": now,
                **values,
            }
        ],
        ("workspace_id", "target_kind", "target_id", "vendor"),
    )
    conn.execute(
        update(Budget)
        .where(*_key(workspace_id, kind, target_id, spec.vendor))
        .values(updated_at=now, **values)
    )
    after = get_budget(conn, workspace_id=workspace_id, kind=kind, target_id=target_id, vendor=spec.vendor)
    assert after is not None
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="budget.set",
        target=audit_target(kind, target_id, team),
        detail=f"{before.describe() if before else 'none'} -> {after.describe()}",
    )
    return before, after


def clear_budgets(
    conn: Connection,
    *,
    workspace_id: str,
    kind: str,
    target_id: str,
    vendor: str | None,
    actor_user_id: str,
    team: TeamRef | None = None,
) -> list[BudgetRow]:
    """Remove the target's budget for ``vendor`` (None: every budget of the target), with its
    alert ledger and overrides; pending requests against it are cancelled."""
    removed = (
        budgets_of_target(conn, workspace_id=workspace_id, kind=kind, target_id=target_id)
        if vendor is None
        else [
            b
            for b in [
                get_budget(conn, workspace_id=workspace_id, kind=kind, target_id=target_id, vendor=vendor)
            ]
            if b
        ]
    )
    if not removed:
        return []
    ids = [b.id for b in removed]
    conn.execute(
        delete(AlertSent).where(AlertSent.workspace_id == workspace_id, AlertSent.budget_id.in_(ids))
    )
    conn.execute(
        delete(BudgetOverride).where(
            BudgetOverride.workspace_id == workspace_id, BudgetOverride.budget_id.in_(ids)
        )
    )
    conn.execute(
        update(BudgetRequest)
        .where(
            BudgetRequest.workspace_id == workspace_id,
            BudgetRequest.budget_id.in_(ids),
            BudgetRequest.status == PENDING,
        )
        .values(status=CANCELLED, decided_by=actor_user_id[:32], decided_at=utcnow())
    )
    conn.execute(delete(Budget).where(Budget.workspace_id == workspace_id, Budget.id.in_(ids)))
    for budget in removed:
        privacy.record(
            conn,
            workspace_id=workspace_id,
            actor_user_id=actor_user_id,
            action="budget.clear",
            target=audit_target(kind, target_id, team),
            detail=f"{budget.describe()} -> none",
        )
    return removed


def team_of_budget(conn: Connection, *, workspace_id: str, budget: BudgetRow) -> TeamRef | None:
    if budget.target_kind not in TEAM_KINDS:
        return None
    return teams.get_team(
        conn, workspace_id=workspace_id, kind=TEAM_KINDS[budget.target_kind], slack_id=budget.target_id
    )


def budgets_for_person(
    conn: Connection, *, workspace_id: str, person_id: int
) -> list[tuple[BudgetRow, TeamRef | None]]:
    """Every budget that applies to the person: their own, their current teams' and the org's."""
    member_of = teams.teams_of(conn, workspace_id=workspace_id, person_id=person_id)
    by_key = {(t.kind, t.slack_id): t for t in member_of}
    clauses = [
        and_(Budget.target_kind == PERSON, Budget.target_id == str(person_id)),
        Budget.target_kind == ORG,
    ]
    for kind, team_kind in TEAM_KINDS.items():
        ids = [t.slack_id for t in member_of if t.kind == team_kind]
        if ids:
            clauses.append(and_(Budget.target_kind == kind, Budget.target_id.in_(ids)))
    rows = conn.execute(
        select(Budget.__table__).where(Budget.workspace_id == workspace_id, or_(*clauses)).order_by(Budget.id)
    ).all()
    found = []
    for row in rows:
        budget = _budget(row)
        team = (
            by_key.get((TEAM_KINDS[budget.target_kind], budget.target_id))
            if budget.target_kind in TEAM_KINDS
            else None
        )
        found.append((budget, team))
    order = {PERSON: 0, GROUP: 1, CHANNEL: 1, ORG: 2}
    return sorted(found, key=lambda item: (order[item[0].target_kind], item[0].vendor, item[0].id))


def with_teams(
    conn: Connection, *, workspace_id: str, budgets: Iterable[BudgetRow]
) -> list[tuple[BudgetRow, TeamRef | None]]:
    return [(b, team_of_budget(conn, workspace_id=workspace_id, budget=b)) for b in budgets]


# -- status ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetStatus:
    budget: BudgetRow
    team: TeamRef | None
    period: Period
    today: date
    ceiling_micros: int  # the amount plus this period's approved extra
    extra_micros: int
    spent_micros: int
    rate: Fraction  # micros per day, last RUN_RATE_DAYS complete days
    visibility: str = FULL
    person_label: str = ""  # for person budgets: a Slack mention or a name, filled by the caller

    @property
    def percent(self) -> int:
        return self.spent_micros * 100 // self.ceiling_micros if self.ceiling_micros else 0

    @property
    def share(self) -> Fraction:
        return Fraction(self.spent_micros, self.ceiling_micros) if self.ceiling_micros else Fraction(0)

    @property
    def over(self) -> bool:
        return self.spent_micros >= self.ceiling_micros

    @property
    def remaining_micros(self) -> int:
        return self.ceiling_micros - self.spent_micros

    @property
    def crossed(self) -> list[int]:
        return [t for t in self.budget.thresholds if share_reached(self.spent_micros, self.ceiling_micros, t)]

    @property
    def next_threshold(self) -> int | None:
        """The lowest alert threshold not reached yet (100 when every configured one is)."""
        for t in self.budget.thresholds:
            if not share_reached(self.spent_micros, self.ceiling_micros, t):
                return t
        return None if self.over else 100

    @property
    def projected_micros(self) -> int:
        return projected(self.spent_micros, self.rate, self.today, self.period)

    def reach(self, percent: int) -> date | None:
        return reach_day(
            self.spent_micros,
            threshold_micros(self.ceiling_micros, percent),
            self.rate,
            self.today,
            self.period,
        )

    @property
    def forecast_over(self) -> bool:
        """Not over yet, but over before the period resets at this pace."""
        return not self.over and self.reach(100) is not None

    @property
    def elapsed_days(self) -> int:
        return (self.today - self.period.start).days

    @property
    def floor_expected_micros(self) -> int | None:
        """Where a steady pace to the floor would be by now (complete days only)."""
        floor = self.budget.floor_micros
        if floor is None:
            return None
        return floor * self.elapsed_days // self.period.days

    @property
    def past_mid_period(self) -> bool:
        return self.elapsed_days * 2 >= self.period.days

    @property
    def below_floor_pace(self) -> bool:
        expected = self.floor_expected_micros
        return expected is not None and self.past_mid_period and self.spent_micros < expected


def _spend_scope(workspace_id: str, budget: BudgetRow, team: TeamRef | None):
    """The rollup a budget's spend is read from, and the clauses that pick its rows."""
    # People and teams: every row of their people (the person rollup); the org: each dollar once
    # (estimates billed by another source left out), from the org rollup.
    table = UsageOrgDaily if budget.target_kind not in (PERSON, *TEAM_KINDS) else UsagePersonDaily
    clauses = [table.workspace_id == workspace_id]
    if budget.vendor:
        clauses.append(table.vendor == budget.vendor)
    if not budget.include_seats:
        clauses.append(table.kind != SEAT)
    if budget.target_kind == PERSON:
        clauses.append(table.person_id == int(budget.target_id))
    elif budget.target_kind in TEAM_KINDS:
        if team is None:
            return None  # the team was never read from Slack: nobody's spend counts for it
        clauses.append(on_team(table, team.id))
    else:
        clauses.append(table.in_org_total.is_(True))
    return table, clauses


def daily_spend(
    conn: Connection, *, workspace_id: str, budget: BudgetRow, team: TeamRef | None, start: date, end: date
) -> dict[date, int]:
    scope = _spend_scope(workspace_id, budget, team)
    if scope is None:
        return {}
    table, clauses = scope
    rows = conn.execute(
        select(table.day, func.sum(table.cost_micros))
        .where(*clauses, table.day >= start, table.day < end)
        .group_by(table.day)
    ).all()
    return {day: int(total or 0) for day, total in rows}


def extras(
    conn: Connection, *, workspace_id: str, budget_ids: Sequence[int], since: date
) -> dict[tuple[int, date], int]:
    if not budget_ids:
        return {}
    rows = conn.execute(
        select(BudgetOverride.budget_id, BudgetOverride.period_start, func.sum(BudgetOverride.extra_micros))
        .where(
            BudgetOverride.workspace_id == workspace_id,
            BudgetOverride.budget_id.in_(list(budget_ids)),
            BudgetOverride.period_start >= since,
        )
        .group_by(BudgetOverride.budget_id, BudgetOverride.period_start)
    ).all()
    return {(bid, start): int(total or 0) for bid, start, total in rows}


def statuses(
    conn: Connection, *, workspace_id: str, budgets: Sequence[tuple[BudgetRow, TeamRef | None]], today: date
) -> list[BudgetStatus]:
    """Each budget's current period, ceiling, spend and run-rate: one grouped query per budget
    (indexed by day) plus one for the period overrides."""
    if not budgets:
        return []
    periods = {b.id: calendar_period(b.period, today) for b, _ in budgets}
    extra = extras(
        conn,
        workspace_id=workspace_id,
        budget_ids=list(periods),
        since=min(p.start for p in periods.values()),
    )
    found = []
    for budget, team in budgets:
        period = periods[budget.id]
        daily = daily_spend(
            conn,
            workspace_id=workspace_id,
            budget=budget,
            team=team,
            start=min(period.start, today - timedelta(days=RUN_RATE_DAYS)),
            end=period.end,
        )
        spent = sum(v for d, v in daily.items() if d >= period.start)
        added = extra.get((budget.id, period.start), 0)
        found.append(
            BudgetStatus(
                budget=budget,
                team=team,
                period=period,
                today=today,
                ceiling_micros=budget.amount_micros + added,
                extra_micros=added,
                spent_micros=spent,
                rate=run_rate(daily, today),
            )
        )
    return found


def tightest(items: Sequence[BudgetStatus]) -> BudgetStatus | None:
    """The budget closest to its ceiling (largest share used; less headroom breaks ties), among
    those whose spend the viewer sees in dollars."""
    visible = [s for s in items if s.visibility == FULL]
    if not visible:
        return None
    return max(visible, key=lambda s: (s.share, -s.remaining_micros))


def visibility(
    conn: Connection,
    workspace_id: str,
    viewer: access.Viewer,
    budget: BudgetRow,
    team: TeamRef | None,
    *,
    min_group_size: int,
    today: date,
) -> str | None:
    """How much of the budget's status ``viewer`` may see, or None (not at all)."""
    decision = access.can_view_budget(
        conn,
        workspace_id,
        viewer,
        kind=budget.access_kind,
        team_id=team.id if team else None,
        person_id=budget.person_id,
    )
    if not decision.allowed:
        return None
    # A manager whose grant does not reach every current member (someone joined the channel
    # since) sees the team's budget as its members do: its dollars would include the joiner's.
    partly_managed = (
        decision.reason == "manager"
        and team is not None
        and budget.person_id is None
        and bool(access.unapproved_members(conn, workspace_id, viewer.user_id, team.id))
    )
    if decision.reason in ("self", "admin", "manager") and not partly_managed:
        return FULL
    if budget.target_kind == ORG:
        return PERCENT  # org dollars are for admins (/tokens org); everyone may see how close it is
    if team is not None:
        size_rule = access.can_view_team(conn, workspace_id, viewer, team.id, min_group_size=min_group_size)
        if not size_rule.allowed:
            return HIDDEN
        if size_rule.reason != "member":
            return FULL
        # A member sees how close the team is, never its dollars, and only while the team's
        # aggregate passes the rules of the team view (active people, differencing, org totals).
        check = aggregates.check_member_view(
            conn,
            workspace_id=workspace_id,
            team_id=team.id,
            period=calendar_period(budget.period, today),
            caller_person_id=viewer.person_id,
            min_group_size=min_group_size,
        )
        return PERCENT if check.allowed else HIDDEN
    return HIDDEN


def visible_statuses(
    conn: Connection,
    *,
    workspace_id: str,
    viewer: access.Viewer,
    budgets: Sequence[tuple[BudgetRow, TeamRef | None]],
    today: date,
    min_group_size: int,
) -> list[BudgetStatus]:
    """Statuses of the budgets ``viewer`` may see, each marked with how much of it they see."""
    allowed = []
    for budget, team in budgets:
        level = visibility(
            conn, workspace_id, viewer, budget, team, min_group_size=min_group_size, today=today
        )
        if level is not None:
            allowed.append((budget, team, level))
    found = statuses(conn, workspace_id=workspace_id, budgets=[(b, t) for b, t, _ in allowed], today=today)
    labels = privacy.people_labels(
        conn, person_ids=[b.person_id for b, _, _ in allowed if b.person_id is not None]
    )
    result = []
    for status, (budget, _, level) in zip(found, allowed, strict=True):
        label = ""
        if budget.person_id is not None:
            slack_id, name = labels.get(budget.person_id, (None, f"person {budget.person_id}"))
            label = f"<@{slack_id}>" if slack_id else name
        result.append(replace(status, visibility=level, person_label=label))
    return result


def statuses_for_person(
    conn: Connection,
    *,
    workspace_id: str,
    viewer: access.Viewer,
    person_id: int,
    today: date,
    min_group_size: int,
) -> list[BudgetStatus]:
    """The budgets that apply to ``person_id`` as ``viewer`` may see them (``/tokens me``)."""
    return visible_statuses(
        conn,
        workspace_id=workspace_id,
        viewer=viewer,
        budgets=budgets_for_person(conn, workspace_id=workspace_id, person_id=person_id),
        today=today,
        min_group_size=min_group_size,
    )


# -- people to tell ------------------------------------------------------------------------------


def admin_user_ids(conn: Connection, *, workspace_id: str, settings: Settings) -> list[str]:
    """Slack ids of the admins named in TOKENWISE_ADMINS (ids as given; emails via their person
    record). Slack's own workspace admins cannot be listed without reading every user."""
    ids, emails = [], []
    for entry in sorted(settings.admin_entries):
        if "@" in entry:
            emails.append(entry)
        elif entry[:1] in ("u", "w"):
            ids.append(entry.upper())
    if emails:
        ids.extend(
            conn.execute(
                select(Person.slack_user_id).where(
                    Person.workspace_id == workspace_id,
                    Person.email.in_(emails),
                    Person.slack_user_id.is_not(None),
                    Person.forgotten_at.is_(None),
                )
            ).scalars()
        )
    return list(dict.fromkeys(ids))


def managers_of_person(conn: Connection, *, workspace_id: str, person_id: int) -> list[str]:
    """The managers whose grant reaches the person (docs/privacy.md, "Manager scope")."""
    return access.managers_of(conn, workspace_id, person_id)


def slack_id_of(conn: Connection, *, person_id: int) -> str | None:
    return conn.execute(
        select(Person.slack_user_id).where(Person.id == person_id, Person.forgotten_at.is_(None))
    ).scalar_one_or_none()


def alert_recipients(
    conn: Connection, *, workspace_id: str, budget: BudgetRow, team: TeamRef | None, settings: Settings
) -> list[str]:
    """Personal budgets tell the person; team budgets the team's managers (admins when it has
    none); the org budget the admins."""
    if budget.person_id is not None:
        slack_id = slack_id_of(conn, person_id=budget.person_id)
        return [slack_id] if slack_id else []
    if team is not None:
        managers = teams.team_managers(conn, workspace_id=workspace_id, team_id=team.id)
        # An alert carries the team's dollars: only to managers whose grant reaches every member
        # (a joiner not yet approved would be in the figure), else to the admins.
        reaching = [m for m in managers if not access.unapproved_members(conn, workspace_id, m, team.id)]
        if reaching:
            return reaching
    return admin_user_ids(conn, workspace_id=workspace_id, settings=settings)


def deciders(
    conn: Connection,
    *,
    workspace_id: str,
    person_id: int,
    budget: BudgetRow,
    team: TeamRef | None,
    settings: Settings,
) -> list[str]:
    """Who is asked about a request for more: the person's managers who may change that budget
    (admins when there are none); never the requester."""
    own = slack_id_of(conn, person_id=person_id)
    if budget.target_kind == ORG:
        found = []
    elif team is not None:
        found = teams.team_managers(conn, workspace_id=workspace_id, team_id=team.id)
    else:
        found = managers_of_person(conn, workspace_id=workspace_id, person_id=person_id)
    found = [u for u in found if u != own]
    if not found:
        found = [u for u in admin_user_ids(conn, workspace_id=workspace_id, settings=settings) if u != own]
    return found


# -- alerts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueAlert:
    """One DM's worth of alert: the ledger keys it covers (kind, threshold)."""

    workspace_id: str
    status: BudgetStatus
    kind: str  # threshold | forecast | floor
    keys: tuple[tuple[str, int], ...]

    @property
    def budget(self) -> BudgetRow:
        return self.status.budget


def due_alerts(conn: Connection, *, workspace_id: str, today: date) -> list[DueAlert]:
    """What should be sent now for the current periods, minus what the ledger already holds.

    A threshold DM covers every newly crossed threshold (it names the highest); a forecast
    warning that falls due with it is covered by the same DM, which carries the forecast."""
    budgets = all_budgets(conn, workspace_id=workspace_id)
    if not budgets:
        return []
    found = statuses(
        conn,
        workspace_id=workspace_id,
        budgets=with_teams(conn, workspace_id=workspace_id, budgets=budgets),
        today=today,
    )
    starts = {s.budget.id: s.period.start for s in found}
    ledger = {
        (bid, start, kind, threshold)
        for bid, start, kind, threshold in conn.execute(
            select(AlertSent.budget_id, AlertSent.period_start, AlertSent.kind, AlertSent.threshold).where(
                AlertSent.workspace_id == workspace_id,
                AlertSent.budget_id.in_(list(starts)),
                AlertSent.period_start >= min(starts.values()),
            )
        ).all()
    }
    due = []
    for status in found:
        budget, start = status.budget, status.period.start
        if status.ceiling_micros <= 0:
            continue
        new = tuple((THRESHOLD, t) for t in status.crossed if (budget.id, start, THRESHOLD, t) not in ledger)
        forecast = status.forecast_over and (budget.id, start, FORECAST, 100) not in ledger
        if new:
            due.append(
                DueAlert(workspace_id, status, THRESHOLD, new + (((FORECAST, 100),) if forecast else ()))
            )
        elif forecast:
            due.append(DueAlert(workspace_id, status, FORECAST, ((FORECAST, 100),)))
        if status.below_floor_pace and (budget.id, start, FLOOR, 0) not in ledger:
            due.append(DueAlert(workspace_id, status, FLOOR, ((FLOOR, 0),)))
    return due


def _dialect_insert(conn: Connection, table):
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def claim_alert(
    conn: Connection,
    *,
    workspace_id: str,
    budget_id: int,
    period_start: date,
    keys: Sequence[tuple[str, int]],
) -> list[tuple[str, int]]:
    """Insert the ledger rows BEFORE anything is sent; only the keys this call inserted are
    returned (another replica, or an earlier run, owns the rest). Sorted, so two claimers
    wait on the unique index in the same order and never deadlock."""
    claimed = []
    for kind, threshold in sorted(keys):
        insert = _dialect_insert(conn, AlertSent.__table__).on_conflict_do_nothing(
            index_elements=["workspace_id", "budget_id", "period_start", "kind", "threshold"]
        )
        result = conn.execute(
            insert.values(
                workspace_id=workspace_id,
                budget_id=budget_id,
                period_start=period_start,
                kind=kind,
                threshold=threshold,
                status="claimed",
                claimed_at=utcnow(),
            ).returning(AlertSent.id)
        )
        # RETURNING, not rowcount: with implicit RETURNING PostgreSQL drivers report rowcount -1.
        if result.first() is not None:
            claimed.append((kind, threshold))
    return claimed


def finish_alert(
    conn: Connection,
    *,
    workspace_id: str,
    budget_id: int,
    period_start: date,
    keys: Sequence[tuple[str, int]],
    status: str,
    error: str | None = None,
) -> None:
    """Record what happened after the claim: sent | failed | expired."""
    for kind, threshold in keys:
        conn.execute(
            update(AlertSent)
            .where(
                AlertSent.workspace_id == workspace_id,
                AlertSent.budget_id == budget_id,
                AlertSent.period_start == period_start,
                AlertSent.kind == kind,
                AlertSent.threshold == threshold,
            )
            .values(status=status, error=error, sent_at=utcnow() if status == "sent" else None)
        )


@dataclass(frozen=True)
class PeerPace:
    """What comparable people spent so far this period (for a floor nudge)."""

    team: TeamRef
    people: int
    average_micros: int


def peer_pace(
    conn: Connection, *, workspace_id: str, status: BudgetStatus, min_group_size: int
) -> PeerPace | None:
    """For a personal floor: the average spend so far of the person's teammates (in the largest
    of their teams with at least ``min_group_size`` others, so no one's number can be inferred).
    For a team floor: the team's own per-member average."""
    budget = status.budget
    period = status.period
    if budget.person_id is not None:
        candidates = teams.teams_of(conn, workspace_id=workspace_id, person_id=budget.person_id)
        exclude = budget.person_id
    elif status.team is not None:
        candidates, exclude = [status.team], None
    else:
        return None
    best = None
    for team in candidates:
        others = teams.member_count(conn, team_id=team.id) - (1 if exclude is not None else 0)
        if others >= min_group_size and (best is None or others > best[1]):
            best = (team, others)
    if best is None:
        return None
    team, others = best
    clauses = [
        UsagePersonDaily.workspace_id == workspace_id,
        on_team(UsagePersonDaily, team.id, within=(period.start, period.end)),
        UsagePersonDaily.day >= period.start,
        UsagePersonDaily.day < period.end,
    ]
    if budget.vendor:
        clauses.append(UsagePersonDaily.vendor == budget.vendor)
    if not budget.include_seats:
        clauses.append(UsagePersonDaily.kind != SEAT)
    if exclude is not None:
        clauses.append(UsagePersonDaily.person_id != exclude)
    total = conn.execute(
        select(func.coalesce(func.sum(UsagePersonDaily.cost_micros), 0)).where(*clauses)
    ).scalar_one()
    return PeerPace(team, others, int(total) // others)


# -- requests for more -------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRow:
    id: int
    person_id: int
    requester_user_id: str
    budget_id: int | None
    amount_micros: int
    reason: str
    status: str
    decided_by: str
    decided_at: datetime | None
    granted_micros: int | None
    scope: str
    period_start: date | None
    notified: list[tuple[str, str]] = field(default_factory=list)
    created_at: datetime | None = None


def _request(row) -> RequestRow:
    try:
        notified = [tuple(x) for x in json.loads(row.notified or "[]")]
    except ValueError:
        notified = []
    return RequestRow(
        id=row.id,
        person_id=row.person_id,
        requester_user_id=row.requester_user_id,
        budget_id=row.budget_id,
        amount_micros=int(row.amount_micros),
        reason=row.reason,
        status=row.status,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        granted_micros=None if row.granted_micros is None else int(row.granted_micros),
        scope=row.scope,
        period_start=row.period_start,
        notified=notified,
        created_at=row.created_at,
    )


def get_request(conn: Connection, *, workspace_id: str, request_id: int) -> RequestRow | None:
    row = conn.execute(
        select(BudgetRequest.__table__).where(
            BudgetRequest.workspace_id == workspace_id, BudgetRequest.id == request_id
        )
    ).first()
    return _request(row) if row else None


def pending_request(conn: Connection, *, workspace_id: str, person_id: int) -> RequestRow | None:
    row = conn.execute(
        select(BudgetRequest.__table__)
        .where(
            BudgetRequest.workspace_id == workspace_id,
            BudgetRequest.person_id == person_id,
            BudgetRequest.status == PENDING,
        )
        .order_by(BudgetRequest.id.desc())
    ).first()
    return _request(row) if row else None


def request_budget(items: Sequence[BudgetStatus]) -> BudgetStatus | None:
    """The budget a request for more raises: the one closest to its ceiling."""
    return max(items, key=lambda s: (s.share, -s.remaining_micros), default=None)


def create_request(
    conn: Connection,
    *,
    workspace_id: str,
    person_id: int,
    requester_user_id: str,
    budget: BudgetRow,
    amount_micros: int,
    reason: str,
) -> RequestRow:
    result = conn.execute(
        BudgetRequest.__table__.insert().values(
            workspace_id=workspace_id,
            person_id=person_id,
            requester_user_id=requester_user_id[:32],
            budget_id=budget.id,
            amount_micros=amount_micros,
            reason=reason[:MAX_REASON],
            status=PENDING,
            decided_by="",
            scope="",
            notified="[]",
            created_at=utcnow(),
        )
    )
    request_id = int(result.inserted_primary_key[0])
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=requester_user_id,
        action="budget.request",
        target=privacy.person_target(person_id),
        detail=f"request={request_id} +{format_usd(amount_micros)} budget={budget.id}: {budget.describe()}",
    )
    found = get_request(conn, workspace_id=workspace_id, request_id=request_id)
    assert found is not None
    return found


def set_notified(
    conn: Connection, *, workspace_id: str, request_id: int, refs: Sequence[tuple[str, str]]
) -> None:
    conn.execute(
        update(BudgetRequest)
        .where(BudgetRequest.workspace_id == workspace_id, BudgetRequest.id == request_id)
        .values(notified=json.dumps([list(r) for r in refs]))
    )


@dataclass(frozen=True)
class DecisionResult:
    request: RequestRow  # as stored after the call
    changed: bool  # False: it was already decided (or cancelled); nothing was written
    budget_before: BudgetRow | None = None
    budget_after: BudgetRow | None = None
    period: Period | None = None
    ceiling_before: int | None = None
    ceiling_after: int | None = None


def decide_request(
    conn: Connection,
    *,
    workspace_id: str,
    request_id: int,
    decider_user_id: str,
    approve: bool,
    amount_micros: int | None,
    scope: str,
    today: date,
) -> DecisionResult:
    """Approve (add ``amount_micros`` for the budget's current period, or from now on with
    ``scope=permanent``) or deny. Only the first decision counts: the status moves from pending
    in one conditional UPDATE, so a replay or a second manager's click changes nothing."""
    request = get_request(conn, workspace_id=workspace_id, request_id=request_id)
    if request is None:
        raise LookupError("no such request")
    if request.status != PENDING:
        return DecisionResult(request, False)
    budget = (
        budget_by_id(conn, workspace_id=workspace_id, budget_id=request.budget_id)
        if request.budget_id is not None
        else None
    )
    if scope not in (SCOPE_PERIOD, SCOPE_PERMANENT):
        raise BudgetError(f"unknown scope {scope!r}")
    granted = (amount_micros or request.amount_micros) if approve else None
    if approve and budget is None:
        raise BudgetError("The budget this request was for has been removed; there is nothing to raise.")
    period = calendar_period(budget.period, today) if budget else None
    if approve and scope == SCOPE_PERMANENT and budget.amount_micros + granted > MAX_AMOUNT_MICROS:
        raise BudgetError(
            f"That would take the budget over {format_usd(MAX_AMOUNT_MICROS, cents=False)}; nothing changed."
        )
    won = conn.execute(
        update(BudgetRequest)
        .where(
            BudgetRequest.workspace_id == workspace_id,
            BudgetRequest.id == request_id,
            BudgetRequest.status == PENDING,
        )
        .values(
            status=APPROVED if approve else DENIED,
            decided_by=decider_user_id[:32],
            decided_at=utcnow(),
            granted_micros=granted,
            scope=scope if approve else "",
            period_start=period.start if approve and scope == SCOPE_PERIOD and period else None,
        )
    ).rowcount
    if won != 1:
        return DecisionResult(get_request(conn, workspace_id=workspace_id, request_id=request_id), False)
    before_extra = 0
    after_budget = budget
    if budget is not None and period is not None:
        before_extra = extras(
            conn, workspace_id=workspace_id, budget_ids=[budget.id], since=period.start
        ).get((budget.id, period.start), 0)
    if approve and scope == SCOPE_PERIOD:
        conn.execute(
            BudgetOverride.__table__.insert().values(
                workspace_id=workspace_id,
                budget_id=budget.id,
                period_start=period.start,
                extra_micros=granted,
                request_id=request_id,
                created_by=decider_user_id[:32],
                created_at=utcnow(),
            )
        )
    elif approve:
        conn.execute(
            update(Budget)
            .where(Budget.id == budget.id)
            .values(amount_micros=Budget.amount_micros + granted, updated_at=utcnow())
        )
        after_budget = budget_by_id(conn, workspace_id=workspace_id, budget_id=budget.id)
    ceiling_before = budget.amount_micros + before_extra if budget else None
    ceiling_after = ceiling_before + granted if approve and ceiling_before is not None else ceiling_before
    privacy.record(
        conn,
        workspace_id=workspace_id,
        actor_user_id=decider_user_id,
        action="budget.request.approve" if approve else "budget.request.deny",
        target=privacy.person_target(request.person_id),
        detail=(
            f"request={request_id} asked +{format_usd(request.amount_micros)}"
            + (f" granted +{format_usd(granted)} ({scope})" if approve else "")
            + (
                f"; ceiling {format_usd(ceiling_before)} -> {format_usd(ceiling_after)} for {period.start}"
                if ceiling_before is not None and period is not None
                else ""
            )
        ),
    )
    return DecisionResult(
        get_request(conn, workspace_id=workspace_id, request_id=request_id),
        True,
        budget,
        after_budget,
        period,
        ceiling_before,
        ceiling_after,
    )
