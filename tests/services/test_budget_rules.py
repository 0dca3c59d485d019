"""The budget rules behind the words: one tightest budget (ties left to the person, dollars
never ranked where only a percentage is shown), the budget a request raises, "unchanged" sets
that write nothing, and the articles of the amount errors."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from sqlalchemy import func, select

from bot.db.models import AuditLog, Budget, UsagePersonDaily
from bot.domain.periods import calendar_period
from bot.services import budgets
from bot.services.budgets import BudgetError, BudgetStatus
from bot.slack.blocks import budget_requests as request_views
from bot.slack.blocks import budgets as views
from tests.support.slack_app import TODAY as TEAM_TODAY
from tests.support.slack_app import person_id, seed_demo

USD = 1_000_000
TODAY = date(2026, 11, 10)


def _status(budget_id: int, ceiling: int, spent: int, *, kind: str = "person", visibility: str = "full"):
    row = Budget(
        id=budget_id, target_kind=kind, target_id="7", vendor="", period="month", amount_micros=ceiling
    )
    return BudgetStatus(
        budget=row,
        team=None,
        period=calendar_period("month", TODAY),
        today=TODAY,
        ceiling_micros=ceiling,
        extra_micros=0,
        spent_micros=spent,
        rate=Fraction(spent, 9),
        visibility=visibility,
    )


def test_tightest_is_the_least_headroom_and_a_tie_has_none():
    loose, tight = _status(1, 400 * USD, 100 * USD), _status(2, 100 * USD, 90 * USD)
    assert budgets.tightest([loose, tight]) is tight
    # Equal shares: less headroom in dollars decides, where the dollars are shown...
    small, big = _status(3, 100 * USD, 50 * USD), _status(4, 400 * USD, 200 * USD)
    assert budgets.tightest([big, small]) is small
    # ...never where only a percentage is: then it is a tie, and a tie has no tightest.
    shares = [
        _status(5, 100 * USD, 50 * USD, visibility="percent"),
        _status(6, 400 * USD, 200 * USD, visibility="percent"),
    ]
    assert budgets.tightest(shares) is None and budgets.tightest_candidates(shares) == shares
    hidden = _status(7, 10 * USD, 10 * USD, visibility="hidden")
    assert budgets.tightest([loose, hidden]) is loose and budgets.tightest([hidden]) is None


def test_the_views_highlight_the_same_tightest_or_none_on_a_tie():
    loose, tight = _status(1, 400 * USD, 100 * USD), _status(2, 100 * USD, 90 * USD)
    lines = views._status_lines([loose, tight])
    assert [line.startswith("*Tightest:*") for line in lines] == [False, True]
    tied = [_status(3, 100 * USD, 0), _status(4, 100 * USD, 0)]
    assert not any("Tightest" in line for line in views._status_lines(tied))
    home = views.budget_home_blocks([loose, tight])
    assert "*Your budgets*" in home[0]["text"]["text"] and home[0]["text"]["text"].count("*Tightest:*") == 1
    assert views.budget_home_blocks([]) == []


def test_a_request_raises_the_tightest_or_asks_which():
    loose, tight = _status(1, 400 * USD, 100 * USD), _status(2, 100 * USD, 90 * USD)
    assert budgets.aim_request([loose]) == budgets.RequestAim(loose)
    assert budgets.aim_request([loose, tight]) == budgets.RequestAim(tight)
    tied = [_status(3, 100 * USD, 0), _status(4, 100 * USD, 0)]
    assert budgets.aim_request([loose, *tied]) == budgets.RequestAim(loose)  # 25% used beats 0%
    assert budgets.aim_request(tied) == budgets.RequestAim(None, tuple(tied))
    hidden = [_status(5, 1, 0, visibility="hidden"), _status(6, 2, 0, visibility="hidden")]
    assert budgets.aim_request(hidden) == budgets.RequestAim(None, tuple(hidden))
    assert budgets.aim_request(tied, budget_id=4) == budgets.RequestAim(tied[1])
    assert budgets.aim_request(tied, budget_id=99) == budgets.RequestAim(None)
    assert budgets.aim_request([]) == budgets.RequestAim(None)


def test_the_pace_is_about_you_them_the_team_or_the_org():
    mine = _status(1, 300 * USD, 100 * USD)
    assert views.forecast_text(mine, subject=views.pace_subject(mine, own=True)).startswith(
        "at this pace you reach"
    )
    theirs = views.status_line(mine)  # own is False unless the viewer is the person
    assert "at this pace they reach" in theirs and "you" not in theirs
    team = _status(2, 100_000 * USD, 100 * USD, kind="group")
    assert "at this pace the team stays under 50% this period" in views.status_line(team)
    org = _status(3, 100_000 * USD, 100 * USD, kind="org")
    assert "at this pace the org stays under 50%" in views.status_line(org)
    alert = views.build_threshold_alert(_status(4, 100 * USD, 60 * USD), threshold=50, audience="person")
    assert "At this pace you reach 80%" in str(alert.blocks)


@pytest.mark.parametrize(
    "text, what, says",
    [
        ("0", "amount", "zero: an amount must be"),
        ("-5", "amount", "negative: an amount must be"),
        ("0", "floor", "zero: a floor must be"),
    ],
)
def test_amount_errors_use_the_right_article(text, what, says):
    with pytest.raises(BudgetError) as error:
        budgets.parse_amount(text, what=what)
    assert says in str(error.value) and " a amount" not in str(error.value)


def test_a_pick_button_is_read_back_only_when_it_is_ours():
    value = request_views.pick_value(3, 200 * USD, "load tests ü")
    assert request_views.read_pick(value) == (3, 200 * USD, "load tests ü")
    for junk in (
        "",
        "3",
        "{}",
        '{"budget": "3", "amount": 1, "reason": ""}',
        request_views.pick_value(3, 0, "x"),
    ):
        assert request_views.read_pick(junk) is None, junk


W = "w"


def test_setting_a_budget_to_what_it_is_writes_nothing(engine):
    spec = budgets.parse_set(["<@U1>", "$400/month", "cursor"])
    with engine.begin() as conn:
        first, created = budgets.set_budget(
            conn, workspace_id=W, kind="person", target_id="1", spec=spec, actor_user_id="UA"
        )
        before, after = budgets.set_budget(
            conn, workspace_id=W, kind="person", target_id="1", spec=spec, actor_user_id="UA"
        )
        assert first is None and not budgets.unchanged(first, created)
        assert budgets.unchanged(before, after) and after.updated_at == created.updated_at
        audits = conn.execute(select(func.count()).where(AuditLog.action == "budget.set")).scalar_one()
        assert audits == 1
        # Not triggered: an option left out keeps its value, one given differently changes it.
        floor = budgets.parse_set(["<@U1>", "$400/month", "cursor", "floor", "50"])
        before, after = budgets.set_budget(
            conn, workspace_id=W, kind="person", target_id="1", spec=floor, actor_user_id="UA"
        )
        assert not budgets.unchanged(before, after) and after.floor_micros == 50 * USD
        assert conn.execute(select(func.count()).where(AuditLog.action == "budget.set")).scalar_one() == 2


def test_a_personal_alert_names_the_tightest_budget_when_it_is_another(engine):
    seed_demo(engine)
    today = TEAM_TODAY
    month = calendar_period("month", today)
    with engine.begin() as conn:
        ana = person_id(conn, "ana@example.com")
        vendor, spent = conn.execute(
            select(UsagePersonDaily.vendor, func.sum(UsagePersonDaily.cost_micros))
            .where(
                UsagePersonDaily.person_id == ana,
                UsagePersonDaily.day >= month.start,
                UsagePersonDaily.kind != "seat",
            )
            .group_by(UsagePersonDaily.vendor)
            .order_by(func.sum(UsagePersonDaily.cost_micros).desc())
        ).first()
        assert spent > 0
        # All vendors at $1: far over, the tightest. One vendor at 1.5x its spend: 66%, an alert too.
        cents = int(spent) * 3 // 2 // 10_000
        for words in (["$1"], [f"${cents // 100}.{cents % 100:02d}", vendor]):
            spec = budgets.parse_set(["<@UANA>", *words])
            budgets.set_budget(
                conn, workspace_id="default", kind="person", target_id=str(ana), spec=spec, actor_user_id="UA"
            )
        due = {
            a.budget.vendor: a
            for a in budgets.due_alerts(conn, workspace_id="default", today=today, min_group_size=5)
        }
        plain = budgets.due_alerts(conn, workspace_id="default", today=today)
    assert due[vendor].tightest is not None and due[vendor].tightest.budget.vendor == ""
    assert due[""].tightest is None  # the tightest itself: nothing else to name
    assert all(a.tightest is None for a in plain)  # not asked for
    alert = views.build_threshold_alert(
        due[vendor].status, threshold=50, audience="person", tightest=due[vendor].tightest
    )
    words = str(alert.blocks)
    assert "it raises your tightest budget, your personal budget (" in words and "% used)." in words
    alone = str(views.build_threshold_alert(due[""].status, threshold=100, audience="person").blocks)
    assert "asks your manager." in alone and "tightest" not in alone
