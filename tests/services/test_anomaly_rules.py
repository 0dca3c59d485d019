"""The anomaly rules (bot.services.anomalies.detectors), pure: each triggered and not, the
dollar floors, a subject without a baseline, and weekends / days off."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from bot.services.anomalies.daily import premium_rule
from bot.services.anomalies.detectors import (
    ACTOR,
    DRIFT,
    IDLE,
    PERSON,
    RUNAWAY,
    UNATTRIBUTED,
    Day,
    History,
    Thresholds,
    baseline,
    detect,
    idle_burn,
    median,
    model_drift,
    runaway,
    unattributed_surge,
)
from bot.settings import Settings

USD = 1_000_000
TODAY = date(2026, 11, 18)  # a Wednesday
SATURDAY = date(2026, 11, 21)
TH = Thresholds()


def person(days: dict[date, Day], pid: int = 7) -> History:
    return History(PERSON, str(pid), days, pid)


def steady(dollars: int, *, count: int = 20, before: date = TODAY, signals: int = 3, premium: int = 0):
    """``count`` active days of ``dollars`` each, on the days just before ``before``."""
    return {
        before - timedelta(days=n): Day(dollars * USD, premium * USD, signals) for n in range(1, count + 1)
    }


def with_today(history_days: dict, day: date = TODAY, **figures) -> dict:
    return {**history_days, day: Day(**figures)}


def test_median_and_mad_are_exact():
    assert median([1, 3, 2]) == 2
    assert median([1, 2, 3, 4]) == Fraction(5, 2)
    base = baseline(
        person({TODAY - timedelta(days=n): Day(v * USD) for n, v in enumerate([10, 20, 30, 80], 1)}),
        TODAY,
        TH,
    )
    assert base.median_micros == 25 * USD
    assert base.mad_micros == 10 * USD  # deviations 15, 5, 5, 55 -> median 10


def test_runaway_fires_far_above_the_persons_own_baseline():
    hit = runaway(person(with_today(steady(20), spend_micros=300 * USD)), TODAY, TH)
    assert hit is not None and hit.rule == RUNAWAY and hit.person_id == 7
    assert hit.figures == {
        "active_days": 20,
        "median_micros": 20 * USD,
        "mad_micros": 0,
        "limit_micros": 60 * USD,  # 3 x the median (the MAD is 0 for a steady spender)
    }


def test_runaway_does_not_fire_on_an_ordinary_busy_day():
    varied = {TODAY - timedelta(days=n): Day((40 if n % 2 else 80) * USD) for n in range(1, 21)}
    assert runaway(person(with_today(varied, spend_micros=150 * USD)), TODAY, TH) is None  # limit 3 x 60


def test_a_wide_spread_raises_the_limit_past_the_ratio():
    # Median 100, MAD 50: the limit is the median plus 5 MADs (350), above 3 x the median (300).
    wide = {TODAY - timedelta(days=n): Day(v * USD) for n, v in enumerate([50, 100, 150] * 4, 1)}
    assert runaway(person(with_today(wide, spend_micros=320 * USD)), TODAY, TH) is None
    hit = runaway(person(with_today(wide, spend_micros=360 * USD)), TODAY, TH)
    assert hit is not None and hit.figures["limit_micros"] == 350 * USD


def test_the_dollar_floor_keeps_small_numbers_quiet():
    # Eight times a $5 habit is still only $40: under the $50 floor.
    assert runaway(person(with_today(steady(5), spend_micros=40 * USD)), TODAY, TH) is None
    hit = runaway(person(with_today(steady(5), spend_micros=50 * USD)), TODAY, TH)
    assert hit is not None and hit.figures["limit_micros"] == 50 * USD
    quiet = Thresholds(runaway_floor_micros=100 * USD)
    assert runaway(person(with_today(steady(5), spend_micros=90 * USD)), TODAY, quiet) is None


def test_a_new_person_without_a_baseline_is_judged_by_the_new_subject_floor_only():
    few = steady(5, count=TH.min_active_days - 1)
    assert runaway(person(with_today(few, spend_micros=150 * USD)), TODAY, TH) is None  # 30 x, but new
    hit = runaway(person(with_today(few, spend_micros=200 * USD)), TODAY, TH)
    assert hit is not None
    assert hit.figures == {"active_days": TH.min_active_days - 1, "floor_micros": 200 * USD}
    # Nothing at all before today: the same rule.
    assert runaway(person({TODAY: Day(250 * USD)}), TODAY, TH) is not None
    assert runaway(person({TODAY: Day(199 * USD)}), TODAY, TH) is None


def test_days_off_and_weekends_are_not_zero_days_in_the_baseline():
    # Works Mondays and Tuesdays only: 8 active days out of 28. Counting the 20 days off as zero
    # would make the median $0 and flag any day over the floor; active days keep it at $40.
    mondays_tuesdays = {
        day: Day(40 * USD) for n in range(1, 29) if (day := TODAY - timedelta(days=n)).weekday() in (0, 1)
    }
    assert len(mondays_tuesdays) == 8
    assert runaway(person(with_today(mondays_tuesdays, spend_micros=90 * USD)), TODAY, TH) is None
    assert runaway(person(with_today(mondays_tuesdays, spend_micros=130 * USD)), TODAY, TH) is not None


def test_a_weekend_runaway_is_judged_against_the_usual_working_day():
    weekdays = {
        day: Day(30 * USD) for n in range(1, 29) if (day := SATURDAY - timedelta(days=n)).weekday() < 5
    }
    assert runaway(person(with_today(weekdays, SATURDAY, spend_micros=60 * USD)), SATURDAY, TH) is None
    hit = runaway(person(with_today(weekdays, SATURDAY, spend_micros=400 * USD)), SATURDAY, TH)
    assert hit is not None and hit.day == SATURDAY and hit.figures["median_micros"] == 30 * USD


def test_idle_burn_fires_on_spend_with_no_value_signal():
    days = with_today(steady(20), spend_micros=30 * USD, signals=0)
    hit = idle_burn(person(days), TODAY, TH, signals_reported=True)
    assert hit is not None and hit.rule == IDLE
    assert hit.figures == {"signal_days": 20, "floor_micros": 25 * USD}


def test_idle_burn_needs_no_signal_the_floor_a_delivered_day_and_a_source_that_reports_value():
    assert (
        idle_burn(
            person(with_today(steady(20), spend_micros=30 * USD, signals=1)), TODAY, TH, signals_reported=True
        )
        is None
    )
    assert (
        idle_burn(person(with_today(steady(20), spend_micros=24 * USD)), TODAY, TH, signals_reported=True)
        is None
    )
    # The value sources have not delivered today yet: no judgement.
    assert (
        idle_burn(person(with_today(steady(20), spend_micros=30 * USD)), TODAY, TH, signals_reported=False)
        is None
    )
    # Pure API spend: no source ever reported value for this subject, "idle" would mean nothing.
    api_only = with_today(steady(20, signals=0), spend_micros=30 * USD)
    assert idle_burn(person(api_only), TODAY, TH, signals_reported=True) is None


def test_idle_burn_on_a_weekend_is_still_idle_burn():
    # A script left running over the weekend: spend, no session, no commit.
    days = with_today(steady(20, before=SATURDAY), SATURDAY, spend_micros=80 * USD)
    assert idle_burn(person(days), SATURDAY, TH, signals_reported=True) is not None


def test_idle_burn_for_a_service_key():
    key = History(ACTOR, "openai_key:key_ci", with_today(steady(10, count=6), spend_micros=40 * USD))
    hit = idle_burn(key, TODAY, TH, signals_reported=True)
    assert hit is not None and hit.kind == ACTOR and hit.person_id is None


def test_model_drift_fires_when_the_expensive_share_jumps():
    days = with_today(steady(50, premium=5), spend_micros=100 * USD, premium_micros=80 * USD)
    hit = model_drift(person(days), TODAY, TH)
    assert hit is not None and hit.rule == DRIFT
    assert hit.figures == {
        "premium_micros": 80 * USD,
        "share_percent": 80,
        "baseline_percent": 10,
        "active_days": 20,
    }


def test_model_drift_does_not_fire_below_the_points_the_floor_or_without_a_baseline():
    # 10% -> 45%: up 35 points, under the 40.
    assert (
        model_drift(
            person(with_today(steady(50, premium=5), spend_micros=100 * USD, premium_micros=45 * USD)),
            TODAY,
            TH,
        )
        is None
    )
    # 100% of a $20 day: the premium spend is under the $25 floor.
    assert (
        model_drift(person(with_today(steady(50), spend_micros=20 * USD, premium_micros=20 * USD)), TODAY, TH)
        is None
    )
    # A new person has no share to drift from.
    few = steady(50, count=2)
    assert (
        model_drift(person(with_today(few, spend_micros=100 * USD, premium_micros=90 * USD)), TODAY, TH)
        is None
    )


def test_unattributed_surge_on_an_actor_that_maps_to_nobody():
    usual = History(ACTOR, "anthropic_key:ci", with_today(steady(80), spend_micros=100 * USD))
    assert unattributed_surge(usual, TODAY, TH) is None
    surge = History(ACTOR, "anthropic_key:ci", with_today(steady(80), spend_micros=300 * USD))
    hit = unattributed_surge(surge, TODAY, TH)
    assert hit is not None and hit.rule == UNATTRIBUTED and hit.figures["limit_micros"] == 240 * USD
    # A key new to the window: only the new-subject floor.
    assert unattributed_surge(History(ACTOR, "k", {TODAY: Day(120 * USD)}), TODAY, TH) is None
    assert unattributed_surge(History(ACTOR, "k", {TODAY: Day(220 * USD)}), TODAY, TH) is not None
    # Below the unattributed floor, even at 10 x a tiny habit.
    assert (
        unattributed_surge(History(ACTOR, "k", with_today(steady(4), spend_micros=45 * USD)), TODAY, TH)
        is None
    )


def test_detect_judges_the_recent_days_and_gives_each_subject_its_rules():
    yesterday = TODAY - timedelta(days=1)
    ana = person(with_today(steady(20, before=yesterday), yesterday, spend_micros=300 * USD, signals=2))
    key = History(ACTOR, "openai_key:x", {TODAY: Day(500 * USD)})
    found = detect([ana, key], today=TODAY, th=TH, reported_days={TODAY, yesterday})
    assert sorted((h.rule, h.key, h.day) for h in found) == [
        (RUNAWAY, "7", yesterday),  # yesterday still moves: vendors report with a lag
        (UNATTRIBUTED, "openai_key:x", TODAY),  # an actor never gets the person rules
    ]
    # Two days later yesterday has left the recent days: nothing fires.
    assert detect([ana], today=TODAY + timedelta(days=1), th=TH, reported_days=set()) == []


def test_thresholds_come_from_the_settings():
    settings = Settings(
        TOKENWISE_ANOMALY_RUNAWAY_FLOOR="75.50",
        TOKENWISE_ANOMALY_DRIFT_POINTS=25,
        TOKENWISE_ANOMALY_RECENT_DAYS=1,
    )
    th = Thresholds.from_settings(settings)
    assert th.runaway_floor_micros == 75_500_000
    assert th.drift_points == 25 and th.recent_days == 1
    assert th.runaway_ratio == Fraction(Decimal(3))


def test_the_most_expensive_tier_is_read_from_the_price_table():
    is_premium = premium_rule(Decimal(40))
    assert all(
        map(is_premium, ["claude-opus-4-1", "claude-3-opus", "o1", "o3-pro", "gpt-5-pro", "gpt-6-astra"])
    )
    assert not any(map(is_premium, ["claude-opus-4-5", "gpt-5", "claude-sonnet-4-5", "no-such-model", ""]))


def test_docs_state_every_anomaly_setting():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "anomalies.md").read_text()
    aliases = [
        field.validation_alias for name, field in Settings.model_fields.items() if name.startswith("anomaly_")
    ]
    assert len(aliases) == 14
    assert [alias for alias in aliases if f"`{alias}`" not in text] == []
