"""The anomaly rules' remaining cases (bot.services.anomalies.detectors), pure: drift and the
unattributed surge on weekends, idle burn for a new person, and a team's drift (drift only: a
team's runaway or idle day is its members', each told first)."""

from __future__ import annotations

from datetime import date, timedelta

from bot.services.anomalies.detectors import (
    ACTOR,
    DRIFT,
    PERSON,
    TEAM,
    Day,
    History,
    Thresholds,
    detect,
    idle_burn,
    model_drift,
    unattributed_surge,
)

USD = 1_000_000
SATURDAY = date(2026, 11, 21)
TH = Thresholds()


def weekdays(dollars: int, *, before: date, weeks: int = 4, premium: int = 0, signals: int = 2) -> dict:
    """Monday to Friday of the ``weeks`` weeks before ``before``: weekends are days off."""
    days = {}
    for n in range(1, 7 * weeks + 1):
        day = before - timedelta(days=n)
        if day.weekday() < 5:
            days[day] = Day(dollars * USD, premium * USD, signals)
    return days


def test_drift_on_a_weekend_is_judged_against_the_working_days_share():
    days = weekdays(40, before=SATURDAY, premium=4)  # 10% on the premium tier on working days
    shifted = {**days, SATURDAY: Day(30 * USD, 27 * USD, 0)}
    hit = model_drift(History(PERSON, "7", shifted, 7), SATURDAY, TH)
    assert hit is not None and hit.figures["baseline_percent"] == 10 and hit.figures["share_percent"] == 90
    # The same weekend on the usual mix: no drift, however quiet the weekend is otherwise.
    usual = {**days, SATURDAY: Day(30 * USD, 3 * USD, 0)}
    assert model_drift(History(PERSON, "7", usual, 7), SATURDAY, TH) is None


def test_an_unattributed_surge_on_a_weekend_is_judged_against_the_keys_working_days():
    days = weekdays(60, before=SATURDAY, signals=0)
    assert (
        unattributed_surge(History(ACTOR, "k", {**days, SATURDAY: Day(200 * USD)}), SATURDAY, TH) is not None
    )
    assert unattributed_surge(History(ACTOR, "k", {**days, SATURDAY: Day(90 * USD)}), SATURDAY, TH) is None


def test_idle_burn_for_a_new_person_needs_one_earlier_day_with_value():
    today = SATURDAY + timedelta(days=2)
    first_day = History(PERSON, "8", {today: Day(60 * USD)}, 8)
    assert idle_burn(first_day, today, TH, signals_reported=True) is None  # nothing to compare with
    one_day = History(PERSON, "8", {today - timedelta(days=1): Day(5 * USD, 0, 4), today: Day(60 * USD)}, 8)
    hit = idle_burn(one_day, today, TH, signals_reported=True)
    assert hit is not None and hit.figures["signal_days"] == 1


def test_a_team_is_judged_for_drift_only():
    today = SATURDAY + timedelta(days=5)  # a Thursday
    base = weekdays(100, before=today, premium=10)
    # A runaway day with no value signal, all on the premium tier: only the drift fires for a team.
    team = History(TEAM, "3", {**base, today: Day(900 * USD, 800 * USD, 0)})
    found = detect([team], today=today, th=TH, reported_days={today})
    assert [(h.rule, h.kind, h.key, h.person_id) for h in found] == [(DRIFT, TEAM, "3", None)]
    # The usual mix, however big the day: nothing.
    calm = History(TEAM, "3", {**base, today: Day(900 * USD, 90 * USD, 0)})
    assert detect([calm], today=today, th=TH, reported_days={today}) == []
    # A team new to the window has no share to drift from.
    new = History(TEAM, "4", {today: Day(900 * USD, 800 * USD, 0)})
    assert detect([new], today=today, th=TH, reported_days={today}) == []
