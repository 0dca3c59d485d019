"""The anomaly rules, pure: a subject's daily figures and the thresholds in, detections out.

A *subject* is a person, an actor that maps to nobody (a service key, an unlinked account), or
a team (its members summed, judged for drift only).
Its history holds only the UTC days with spend or value signals; a day it is not in is a day
with nothing. Money is integer micro-USD; every comparison is exact (``Fraction``), never float.

Baselines use *active days* only (days with spend): a weekend or a holiday off is not a day of
zero spend in the baseline, so a quiet weekend never makes Monday look like a spike, and a
weekend run-away is judged against the person's usual working day. docs/anomalies.md states
each rule with its thresholds and limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import partial

from bot.domain.money import usd_to_micros
from bot.settings import Settings

RUNAWAY = "runaway"
IDLE = "idle"
DRIFT = "drift"
UNATTRIBUTED = "unattributed"
RULES = (RUNAWAY, IDLE, DRIFT, UNATTRIBUTED)

PERSON = "person"
ACTOR = "actor"
TEAM = "team"  # a team's members summed, for drift only (bot.services.anomalies.daily.team_histories)


@dataclass(frozen=True)
class Thresholds:
    """The rules' settings (bot/settings.py, ``TOKENWISE_ANOMALY_*``), dollars as micro-USD."""

    baseline_days: int = 28
    min_active_days: int = 5
    recent_days: int = 2
    runaway_floor_micros: int = 50_000_000
    runaway_ratio: Fraction = Fraction(3)
    runaway_mads: Fraction = Fraction(5)
    new_subject_floor_micros: int = 200_000_000
    idle_floor_micros: int = 25_000_000
    drift_floor_micros: int = 25_000_000
    drift_points: int = 40
    unattributed_floor_micros: int = 50_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        def micros(value: Decimal) -> int:
            return usd_to_micros(value)

        return cls(
            baseline_days=settings.anomaly_baseline_days,
            min_active_days=settings.anomaly_min_active_days,
            recent_days=settings.anomaly_recent_days,
            runaway_floor_micros=micros(settings.anomaly_runaway_floor_usd),
            runaway_ratio=Fraction(settings.anomaly_runaway_ratio),
            runaway_mads=Fraction(settings.anomaly_runaway_mads),
            new_subject_floor_micros=micros(settings.anomaly_new_subject_floor_usd),
            idle_floor_micros=micros(settings.anomaly_idle_floor_usd),
            drift_floor_micros=micros(settings.anomaly_drift_floor_usd),
            drift_points=settings.anomaly_drift_points,
            unattributed_floor_micros=micros(settings.anomaly_unattributed_floor_usd),
        )


@dataclass(frozen=True)
class Day:
    """One subject's figures for one UTC day."""

    spend_micros: int = 0
    premium_micros: int = 0  # part of spend_micros on the most expensive model tier
    signals: int = 0  # non-zero: accepted lines, commits, PRs, reviews, sessions or active time, any source


@dataclass(frozen=True)
class History:
    kind: str  # person | actor | team
    key: str  # the person id as text, the actor, or the team id as text
    days: Mapping[date, Day]
    person_id: int | None = None


@dataclass(frozen=True)
class Baseline:
    active_days: int
    median_micros: Fraction
    mad_micros: Fraction  # median absolute deviation from the median
    spend_micros: int  # summed over the active days
    premium_micros: int
    signal_days: int  # days of the window with any value signal

    @property
    def premium_share(self) -> Fraction:
        return Fraction(self.premium_micros, self.spend_micros) if self.spend_micros else Fraction(0)


@dataclass(frozen=True)
class Detection:
    rule: str
    kind: str
    key: str
    person_id: int | None
    day: date
    spend_micros: int
    #: The rule's figures for the message and the incident (integers: micros, days, percent).
    figures: dict[str, int] = field(default_factory=dict)


def median(values: list[int]) -> Fraction:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Fraction(ordered[middle])
    return Fraction(ordered[middle - 1] + ordered[middle], 2)


def baseline(history: History, day: date, th: Thresholds) -> Baseline:
    """The subject's figures over the ``baseline_days`` before ``day`` (``day`` itself excluded)."""
    start = day - timedelta(days=th.baseline_days)
    window = [d for when, d in history.days.items() if start <= when < day]
    active = [d.spend_micros for d in window if d.spend_micros > 0]
    centre = median(active) if active else Fraction(0)
    spread = median([abs(v - centre) for v in active]) if active else Fraction(0)
    return Baseline(
        active_days=len(active),
        median_micros=centre,
        mad_micros=spread,
        spend_micros=sum(active),
        premium_micros=sum(d.premium_micros for d in window),
        signal_days=sum(1 for d in window if d.signals > 0),
    )


def _above_baseline(spend: int, base: Baseline, th: Thresholds, floor: int) -> dict[str, int] | None:
    """The runaway test: at least the floor, ``ratio`` x the median and the median plus ``mads``
    MADs. A subject with too few active days has no baseline: only the new-subject floor applies."""
    if base.active_days < th.min_active_days:
        if spend < max(floor, th.new_subject_floor_micros):
            return None
        return {"active_days": base.active_days, "floor_micros": max(floor, th.new_subject_floor_micros)}
    limit = max(
        Fraction(floor),
        base.median_micros * th.runaway_ratio,
        base.median_micros + th.runaway_mads * base.mad_micros,
    )
    if spend < limit:
        return None
    return {
        "active_days": base.active_days,
        "median_micros": round(base.median_micros),
        "mad_micros": round(base.mad_micros),
        "limit_micros": round(limit),
    }


def runaway(history: History, day: date, th: Thresholds) -> Detection | None:
    """A person's day far above their own baseline."""
    today = history.days.get(day, Day())
    figures = _above_baseline(today.spend_micros, baseline(history, day, th), th, th.runaway_floor_micros)
    if figures is None:
        return None
    return Detection(RUNAWAY, history.kind, history.key, history.person_id, day, today.spend_micros, figures)


def unattributed_surge(history: History, day: date, th: Thresholds) -> Detection | None:
    """Spend on an actor that maps to nobody, far above that actor's own baseline (or, for an
    actor new to the window, above the new-subject floor)."""
    today = history.days.get(day, Day())
    figures = _above_baseline(
        today.spend_micros, baseline(history, day, th), th, th.unattributed_floor_micros
    )
    if figures is None:
        return None
    return Detection(
        UNATTRIBUTED, history.kind, history.key, history.person_id, day, today.spend_micros, figures
    )


def idle_burn(history: History, day: date, th: Thresholds, *, signals_reported: bool) -> Detection | None:
    """Spend with no value signal from any source that day, from a subject whose sources do
    report signals (some in the baseline window), on a day the value sources have delivered."""
    today = history.days.get(day, Day())
    if not signals_reported or today.signals > 0 or today.spend_micros < th.idle_floor_micros:
        return None
    base = baseline(history, day, th)
    if base.signal_days == 0:
        return None  # pure API spend: nothing ever reports value for it, so "idle" says nothing
    figures = {"signal_days": base.signal_days, "floor_micros": th.idle_floor_micros}
    return Detection(IDLE, history.kind, history.key, history.person_id, day, today.spend_micros, figures)


def model_drift(history: History, day: date, th: Thresholds) -> Detection | None:
    """The share of spend on the most expensive tier up by ``drift_points`` percentage points
    or more against the baseline share, with at least the floor spent on that tier."""
    today = history.days.get(day, Day())
    if today.premium_micros < th.drift_floor_micros or today.spend_micros <= 0:
        return None
    base = baseline(history, day, th)
    if base.active_days < th.min_active_days:
        return None  # no baseline share to drift from
    share = Fraction(today.premium_micros, today.spend_micros)
    if share - base.premium_share < Fraction(th.drift_points, 100):
        return None
    figures = {
        "premium_micros": today.premium_micros,
        "share_percent": round(share * 100),
        "baseline_percent": round(base.premium_share * 100),
        "active_days": base.active_days,
    }
    return Detection(DRIFT, history.kind, history.key, history.person_id, day, today.spend_micros, figures)


def recent_days(today: date, th: Thresholds) -> list[date]:
    """The UTC days judged on each run, newest first: vendors report with a lag, so yesterday's
    figures still move today."""
    return [today - timedelta(days=n) for n in range(th.recent_days)]


def detect(
    histories: Iterable[History], *, today: date, th: Thresholds, reported_days: set[date]
) -> list[Detection]:
    """Every rule over every subject: for each (subject, rule) the newest recent day it fires on.
    People get runaway, idle burn and drift; actors that map to nobody get unattributed surge and
    idle burn (a service key that spends with nothing to show); teams only drift (a team's
    runaway or idle day is its members', each told first)."""
    found = []
    days = recent_days(today, th)
    for history in histories:
        rules = {PERSON: (runaway, model_drift), ACTOR: (unattributed_surge,), TEAM: (model_drift,)}
        checks = [partial(rule, history, th=th) for rule in rules[history.kind]]
        if history.kind != TEAM:
            checks.append(lambda d, h=history: idle_burn(h, d, th, signals_reported=d in reported_days))
        for check in checks:
            hit = next((h for h in map(check, days) if h is not None), None)
            if hit is not None:
                found.append(hit)
    return found
