"""Each case-for and case-against rule, fired and not fired, with the numbers it reports."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.services.recap import rules
from bot.services.recap.rules import (
    BudgetStatus,
    FamilyWeek,
    IdleSeat,
    IdleWeek,
    RecapFacts,
    WeekTotal,
)

START = date(2026, 3, 9)
USD = 1_000_000


def week(i: int, spend: int = 0, *, data: bool = True, **signals) -> WeekTotal:
    w = WeekTotal(START - timedelta(days=7 * i), spend_micros=spend, has_data=data)
    w.active_people = signals.pop("active", 0)
    w.delivery.prs_merged = signals.pop("merged", 0)
    for name, value in signals.items():
        setattr(w.ai, name, value)
    return w


def facts(*weeks: WeekTotal, **kw) -> RecapFacts:
    found = list(weeks)
    while len(found) < 8:
        found.append(week(len(found), data=False))
    return RecapFacts(weeks=found, **kw)


def steady(n: int, spend: int = 0, **signals) -> list[WeekTotal]:
    """Weeks 1..n, all alike."""
    return [week(i, spend, **signals) for i in range(1, n + 1)]


# -- the baseline ------------------------------------------------------------------------------


def test_baseline_is_the_four_weeks_before_counting_only_weeks_since_the_first_data():
    f = facts(
        week(0, 50 * USD), week(1, 10 * USD), week(2, 20 * USD), week(3, data=False), week(4, data=False)
    )
    assert [w.spend_micros for w in f.baseline()] == [10 * USD, 20 * USD]
    assert f.average_micros(lambda w: w.spend_micros) == 15 * USD
    # A quiet week between active ones still counts (it is a real zero, not "before we began").
    g = facts(
        week(0), week(1, 10 * USD), week(2, data=False), week(3, 30 * USD), week(4, 40 * USD), week(5, 1)
    )
    assert [w.spend_micros for w in g.baseline()] == [10 * USD, 0, 30 * USD, 40 * USD]
    assert facts(week(0, 5)).baseline() == []
    assert facts(week(0, 5)).average_micros(lambda w: w.spend_micros) is None


# -- the case for ------------------------------------------------------------------------------


def test_value_outgrew_spend_fires_with_its_numbers():
    f = facts(week(0, 105 * USD, lines_accepted=150), *steady(4, 100 * USD, lines_accepted=100))
    finding = rules.value_outgrew_spend(f)
    assert finding is not None and finding.side == rules.FOR
    assert finding.numbers == {
        "measure": "lines_accepted",
        "this": 150,
        "baseline": 100.0,
        "value_change": 0.5,
        "spend_micros": 105 * USD,
        "spend_baseline_micros": 100 * USD,
        "spend_change": 0.05,
    }
    assert finding.text.startswith("Accepted lines +50% vs the 4-week average (150 vs 100 a week)")
    assert "+5% ($105.00 vs $100.00)" in finding.text


def test_value_outgrew_spend_picks_the_measure_with_the_biggest_lead():
    f = facts(
        week(0, 100 * USD, lines_accepted=120, merged=30),
        *steady(4, 100 * USD, lines_accepted=100, merged=10),
    )
    assert rules.value_outgrew_spend(f).numbers["measure"] == "prs_merged"


@pytest.mark.parametrize(
    "this",
    [
        week(0, 100 * USD, lines_accepted=105),  # +5% value: less than 10 points ahead of flat spend
        week(0, 150 * USD, lines_accepted=150),  # value +50%, spend +50%: no lead
    ],
)
def test_value_outgrew_spend_does_not_fire_without_a_lead(this):
    assert rules.value_outgrew_spend(facts(this, *steady(4, 100 * USD, lines_accepted=100))) is None


def test_value_outgrew_spend_needs_a_baseline():
    assert rules.value_outgrew_spend(facts(week(0, 10 * USD, lines_accepted=500))) is None


def _families(this_cheap: int, this_dear: int, base_cheap: int, base_dear: int) -> list[FamilyWeek]:
    # Cheap: $2 per million tokens; dear: $20 per million tokens.
    return [
        FamilyWeek(
            "Claude Haiku",
            this_cheap * 2 * USD,
            this_cheap * 1_000_000,
            base_cheap * 2 * USD,
            base_cheap * 1_000_000,
        ),
        FamilyWeek(
            "Claude Opus",
            this_dear * 20 * USD,
            this_dear * 1_000_000,
            base_dear * 20 * USD,
            base_dear * 1_000_000,
        ),
    ]


def test_cheaper_same_acceptance_fires_when_the_blend_got_cheaper_and_acceptance_held():
    base = steady(4, 100 * USD, acceptances=31, rejections=69)  # 31%
    f = facts(week(0, 100 * USD, acceptances=30, rejections=70), *base, families=_families(9, 1, 4, 4))
    finding = rules.cheaper_same_acceptance(f)
    assert finding is not None
    # This week: (9*$2 + 1*$20) / 10M = $3.80/M; baseline: (4*$2 + 4*$20) / 8M = $11.00/M.
    assert finding.numbers == {
        "per_mtok_micros": 3_800_000,
        "baseline_per_mtok_micros": 11_000_000,
        "acceptance": 0.3,
        "baseline_acceptance": 0.31,
    }
    assert "fell to $3.80 from $11.00 (-65%)" in finding.text
    assert "Claude Haiku took 47% of usage spend (from 9%)" in finding.text


@pytest.mark.parametrize(
    ("families", "accepted"),
    [
        (_families(9, 1, 4, 4), 25),  # cheaper, but acceptance fell 6 points
        (_families(4, 4, 4, 4), 31),  # same blend
    ],
)
def test_cheaper_same_acceptance_does_not_fire(families, accepted):
    base = steady(4, 100 * USD, acceptances=31, rejections=69)
    f = facts(week(0, 100 * USD, acceptances=accepted, rejections=100 - accepted), *base, families=families)
    assert rules.cheaper_same_acceptance(f) is None


def test_cheaper_same_acceptance_needs_acceptance_data():
    f = facts(week(0, 100 * USD), *steady(4, 100 * USD), families=_families(9, 1, 4, 4))
    assert rules.cheaper_same_acceptance(f) is None


def test_adoption_widened():
    f = facts(week(0, active=12), *steady(4, active=10), members=20)
    finding = rules.adoption_widened(f)
    assert finding is not None
    assert finding.numbers == {"active": 12, "baseline_active": 10.0}
    assert (
        finding.text
        == "12 people used AI tools this week of 20 members, up from 10 a week on the 4-week average."
    )
    assert rules.adoption_widened(facts(week(0, active=10), *steady(4, active=10))) is None
    assert rules.adoption_widened(facts(week(0, active=11), *steady(4, active=30))) is None
    # +1 person on 20 is under 10% more: not "widened".
    assert rules.adoption_widened(facts(week(0, active=21), *steady(4, active=20))) is None


# -- the case against --------------------------------------------------------------------------


def test_idle_burn_counts_spend_with_no_value_signal():
    f = facts(
        week(0, 50 * USD),
        person_usage={1: [20 * USD], 2: [20 * USD], 3: [3 * USD], 4: [7 * USD]},
        person_value={2: 5},
    )
    finding = rules.idle_burn(f)
    assert finding is not None and finding.side == rules.AGAINST
    assert finding.numbers == {"people": 2, "micros": 27 * USD, "share": 0.54}
    assert [(p.person_id, p.micros) for p in finding.people] == [(1, 20 * USD), (4, 7 * USD)]
    assert finding.text.startswith("$27.00 (54% of the week's spend) went on usage with no value signal")


def test_idle_burn_does_not_fire_when_everyone_shows_value_or_spent_little():
    f = facts(week(0, 30 * USD), person_usage={1: [20 * USD], 2: [4 * USD]}, person_value={1: 1})
    assert rules.idle_burn(f) is None


def test_spend_without_merge():
    idle = [
        IdleWeek(1, START, 30 * USD),
        IdleWeek(1, START - timedelta(days=7), 10 * USD),
        IdleWeek(2, START, 5 * USD),
    ]
    finding = rules.spend_without_merge(facts(week(0), idle_weeks=idle, idle_days=14))
    assert finding is not None
    assert finding.numbers == {"people": 2, "micros": 45 * USD, "weeks": 3}
    assert [(p.person_id, p.micros) for p in finding.people] == [(1, 40 * USD), (2, 5 * USD)]
    assert "within 14 days" in finding.text
    assert rules.spend_without_merge(facts(week(0))) is None


def test_person_spike_against_their_own_median():
    history = steady(7, 1)  # the team has seven earlier weeks of data
    usage = {
        1: [40 * USD, 10 * USD, 10 * USD, 12 * USD, 0, 0, 0, 0],  # 4× the median of 3 weeks: spike
        2: [25 * USD, 10 * USD, 10 * USD, 10 * USD, 10 * USD, 0, 0, 0],  # 2.5×: no
        3: [40 * USD, 10 * USD, 10 * USD, 0, 0, 0, 0, 0],  # two earlier weeks: no baseline yet
        4: [3 * USD, 1 * USD, 1 * USD, 1 * USD, 0, 0, 0, 0],  # 3×, but only $2 above the median
    }
    finding = rules.person_spike(facts(week(0), *history, person_usage=usage))
    assert finding is not None
    assert [p.person_id for p in finding.people] == [1]
    assert finding.people[0].note == "$40.00, 4.0× their median week ($10.00)"
    assert finding.numbers == {"people": 1, "micros": 40 * USD}
    assert rules.person_spike(facts(week(0), *history, person_usage={2: usage[2]})) is None


def test_team_spike_by_z_score():
    earlier = [100, 110, 90, 100, 105, 95, 100]
    f = facts(week(0, 200 * USD), *[week(i + 1, s * USD) for i, s in enumerate(earlier)])
    finding = rules.team_spike(f)
    assert finding is not None
    assert finding.numbers["mean_micros"] == 100 * USD
    assert finding.numbers["z"] == pytest.approx(16.73, abs=0.01)
    assert "standard deviations above its previous 7 weeks (mean $100.00)" in finding.text
    calm = facts(week(0, 108 * USD), *[week(i + 1, s * USD) for i, s in enumerate(earlier)])
    assert rules.team_spike(calm) is None


def test_team_spike_with_a_flat_history_and_too_short_a_history():
    flat = facts(week(0, 150 * USD), *steady(4, 100 * USD))
    finding = rules.team_spike(flat)
    assert finding is not None and finding.numbers["z"] is None
    assert "above every one of its previous 4 weeks" in finding.text
    assert rules.team_spike(facts(week(0, 150 * USD), *steady(3, 100 * USD))) is None
    assert rules.team_spike(facts(week(0, 120 * USD), *steady(4, 100 * USD))) is None  # under 1.25×


def test_expensive_model_shift_without_more_value():
    f = facts(
        week(0, 100 * USD, lines_accepted=100),
        *steady(4, 100 * USD, lines_accepted=100),
        families=_families(1, 4, 4, 1),
    )
    finding = rules.expensive_model_shift(f)
    assert finding is not None
    # This week (1*$2 + 4*$20) / 5M = $16.40/M; before (4*$2 + 1*$20) / 5M = $5.60/M.
    assert finding.numbers == {"per_mtok_micros": 16_400_000, "baseline_per_mtok_micros": 5_600_000}
    assert "accepted lines +0%" in finding.text
    assert "Claude Opus took 98% of usage spend (from 71%)" in finding.text
    more_value = facts(
        week(0, 100 * USD, lines_accepted=130),
        *steady(4, 100 * USD, lines_accepted=100),
        families=_families(1, 4, 4, 1),
    )
    assert rules.expensive_model_shift(more_value) is None
    same_blend = facts(week(0), *steady(4), families=_families(4, 1, 4, 1))
    assert rules.expensive_model_shift(same_blend) is None


def test_budget_crossed():
    budgets = [
        BudgetStatus("monthly budget", "March 2026", 1_200 * USD, 1_000 * USD),
        BudgetStatus("weekly budget (cursor)", "this week", 80 * USD, 100 * USD),
    ]
    finding = rules.budget_crossed(facts(week(0), budgets=budgets))
    assert finding is not None
    assert finding.numbers == {"budgets": 1, "over_micros": 200 * USD}
    assert finding.text == "Budget crossed: monthly budget at $1,200.00 of $1,000.00 (120%, March 2026)."
    assert rules.budget_crossed(facts(week(0), budgets=budgets[1:])) is None


def test_idle_seats():
    seats = [IdleSeat(1, "github_copilot", 4_750_000), IdleSeat(2, "github_copilot", 4_750_000)]
    finding = rules.idle_seats(facts(week(0), idle_seats=seats))
    assert finding is not None
    assert finding.numbers == {"seats": 2, "micros": 9_500_000}
    assert finding.text == "2 seats unused for 30 days cost $9.50 this week."
    assert rules.idle_seats(facts(week(0))) is None


def test_evaluate_returns_each_side_in_rule_order():
    f = facts(
        week(0, 150 * USD, active=12),
        *steady(4, 100 * USD, active=10),
        person_usage={1: [50 * USD]},
        idle_seats=[IdleSeat(1, "cursor", USD)],
    )
    pro, con = rules.evaluate(f)
    assert [x.rule for x in pro] == ["adoption_widened"]
    assert [x.rule for x in con] == ["idle_burn", "team_spike", "idle_seats"]


# -- no figure from fewer than the minimum ------------------------------------------------------

MIN = 5


def _crowd(w: WeekTotal, n: int) -> WeekTotal:
    """The week's figures made by ``n`` people (the same ids every week)."""
    w.spenders = w.active = frozenset(range(100, 100 + n))
    w.active_people = max(w.active_people, 0)
    return w


def _crowded(n: int, *weeks: WeekTotal) -> list[WeekTotal]:
    return [_crowd(w, n) if w.has_data else w for w in weeks]


def _idle_usage(n: int) -> dict[int, list[int]]:
    return {pid: [20 * USD] for pid in range(n)}


# Each rule's firing case with ``n`` people behind its figures.
FIRING = {
    "value_outgrew_spend": lambda n: facts(
        *_crowded(n, week(0, 105 * USD, lines_accepted=150), *steady(4, 100 * USD, lines_accepted=100))
    ),
    "cheaper_same_acceptance": lambda n: facts(
        *_crowded(
            n,
            week(0, 100 * USD, acceptances=30, rejections=70),
            *steady(4, 100 * USD, acceptances=31, rejections=69),
        ),
        families=_families(9, 1, 4, 4),
    ),
    "adoption_widened": lambda n: facts(*_crowded(n, week(0, active=12), *steady(4, active=10))),
    "idle_burn": lambda n: facts(*_crowded(max(n, 1), week(0, 20 * n * USD)), person_usage=_idle_usage(n)),
    "spend_without_merge": lambda n: facts(
        week(0), idle_weeks=[IdleWeek(pid, START, 30 * USD) for pid in range(n)], idle_days=14
    ),
    "person_spike": lambda n: facts(
        week(0),
        *steady(7, 1),
        person_usage={pid: [40 * USD, 10 * USD, 10 * USD, 12 * USD, 0, 0, 0, 0] for pid in range(n)},
    ),
    "team_spike": lambda n: facts(*_crowded(n, week(0, 150 * USD), *steady(4, 100 * USD))),
    "expensive_model_shift": lambda n: facts(
        *_crowded(n, week(0, 100 * USD, lines_accepted=100), *steady(4, 100 * USD, lines_accepted=100)),
        families=_families(1, 4, 4, 1),
    ),
    "budget_crossed": lambda n: facts(
        week(0),
        budgets=[BudgetStatus("monthly budget", "March 2026", 1_200 * USD, 1_000 * USD, frozenset(range(n)))],
    ),
    "idle_seats": lambda n: facts(
        week(0), idle_seats=[IdleSeat(pid, "github_copilot", 4_750_000) for pid in range(n)]
    ),
}


def test_every_rule_has_a_small_group_case():
    assert set(FIRING) == {rule.__name__ for rule in (*rules.CASE_FOR, *rules.CASE_AGAINST)}


@pytest.mark.parametrize("rule", [*rules.CASE_FOR, *rules.CASE_AGAINST], ids=lambda r: r.__name__)
def test_a_rule_fired_by_too_few_people_is_never_postable(rule):
    """The attack: the idle-burn rule posted one person's $73.35 as "Who: 1 person". Every rule,
    fired by 1 or MIN - 1 people, is held back; fired by MIN or more, it may be posted."""
    for few in (1, MIN - 1):
        finding = rule(FIRING[rule.__name__](few))
        assert finding is not None, f"{rule.__name__} should still fire with {few} people"
        assert finding.groups, f"{rule.__name__} declares no groups"
        assert not rules.postable(finding, MIN)
    for many in (MIN, 12):
        finding = rule(FIRING[rule.__name__](many))
        assert finding is not None and rules.postable(finding, MIN)


def test_idle_burn_is_held_back_when_the_week_itself_has_too_few_spenders():
    # Five idle people, but the week's spend (the share's denominator) comes from three.
    f = facts(_crowd(week(0, 100 * USD), MIN - 2), person_usage=_idle_usage(MIN))
    assert not rules.postable(rules.idle_burn(f), MIN)


def test_a_finding_that_declares_no_groups_is_never_posted():
    bare = rules.Finding("new_rule", rules.AGAINST, "$73.35 went somewhere.", {"micros": 73_350_000})
    assert not rules.postable(bare, 1)
    posted, held = rules.split_postable([bare, rules.idle_burn(FIRING["idle_burn"](MIN))], MIN)
    assert [f.rule for f in posted] == ["idle_burn"] and held == [bare]


def test_a_team_rule_with_one_small_baseline_week_is_held_back():
    weeks = _crowded(MIN, week(0, 150 * USD), *steady(4, 100 * USD))
    _crowd(weeks[2], 1)  # one week of the history is one person's spend: the mean would give it away
    finding = rules.team_spike(facts(*weeks))
    assert finding is not None and not rules.postable(finding, MIN)
