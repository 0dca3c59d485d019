"""Budgets: the amount and command grammar, periods in the org's timezone, forecast maths,
status (vendor scope, seats, teams, org, overrides), the permission matrix and the builders."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.db.models import AuditLog, Budget, BudgetRequest
from bot.domain.periods import Period
from bot.services import access, budgets, teams
from bot.services.budgets import BudgetError, BudgetStatus
from bot.slack.blocks import budget_requests as request_views
from bot.slack.blocks import budgets as views
from bot.slack.blocks.common import context, message, section, validate
from tests.factories import add_person, add_team, add_usage, set_budget

USD = 1_000_000
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


# -- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, micros",
    [
        ("$400", 400 * USD),
        ("400", 400 * USD),
        ("5k", 5000 * USD),
        ("5K", 5000 * USD),
        ("1.5k", 1500 * USD),
        ("$50,000", 50_000 * USD),
        ("$1,234,567.89", 1_234_567_890_000),
        ("$99.50", 99_500_000),
        ("0.01", 10_000),
        ("$10,000,000", 10_000_000 * USD),
        ("10000k", 10_000_000 * USD),
    ],
)
def test_amounts_parse_exactly_to_micros(text, micros):
    assert budgets.parse_amount(text) == micros


@pytest.mark.parametrize(
    "text, says",
    [
        ("-5", "negative"),
        ("-$400", "negative"),
        ("$-400", "negative"),
        ("0", "zero"),
        ("$0.00", "zero"),
        ("0k", "zero"),
        ("$10,000,000.01", "typo"),
        ("20000k", "typo"),
        ("999999999999", "typo"),
        ("lots", "not an amount"),
        ("$", "not an amount"),
        ("1e5", "not an amount"),
        ("NaN", "not an amount"),
        ("five", "not an amount"),
        ("5,00", "commas go only between thousands"),
        ("5.000,00", "commas go only between thousands"),
        ("5m", "ambiguous"),
        ("$2M", "ambiguous"),
        ("1.005", "fractions of a cent"),
        ("", "missing"),
    ],
)
def test_bad_amounts_are_refused_precisely(text, says):
    with pytest.raises(BudgetError) as error:
        budgets.parse_amount(text)
    assert says in str(error.value)


@pytest.mark.parametrize(
    "text, says",
    [
        ("5k/yr", "ambiguous"),
        ("5k/year", "$1,250.00/quarter"),
        ("$100/day", "not daily"),
        ("$100/fortnight", "no period I know"),
        ("$100/", "ends with a slash"),
        ("-5/month", "negative"),
    ],
)
def test_bad_periods_on_amounts(text, says):
    with pytest.raises(BudgetError) as error:
        budgets.parse_amount_period(text)
    assert says in str(error.value)


def test_amount_with_period_and_default():
    assert budgets.parse_amount_period("5k/month") == (5000 * USD, "month")
    assert budgets.parse_amount_period("$400/wk") == (400 * USD, "week")
    assert budgets.parse_amount_period("$50,000/quarter") == (50_000 * USD, "quarter")
    assert budgets.parse_amount_period("$400") == (400 * USD, None)


def test_set_grammar_covers_targets_vendors_and_options():
    spec = budgets.parse_set(["<@U123|ana>", "$400/month"])
    assert (spec.target.kind, spec.target.slack_id, spec.amount_micros, spec.period) == (
        "person",
        "U123",
        400 * USD,
        "month",
    )
    assert (
        spec.vendor == "" and spec.include_seats is None and spec.thresholds is None and not spec.floor_given
    )
    group = budgets.parse_set(["<!subteam^S123|@platform-team>", "5k/month", "cursor"])
    assert (group.target.kind, group.target.slack_id, group.target.name, group.vendor) == (
        "group",
        "S123",
        "platform-team",
        "cursor",
    )
    org = budgets.parse_set(
        ["org", "$50,000/quarter", "floor", "20000", "include", "seats", "thresholds", "50,90"]
    )
    assert (org.target.kind, org.period, org.floor_micros, org.include_seats, org.thresholds) == (
        "org",
        "quarter",
        20_000 * USD,
        True,
        (50, 90),
    )
    channel = budgets.parse_set(["<#C9|payments>", "300", "per", "week", "copilot", "floor", "off"])
    assert (
        channel.target.kind,
        channel.period,
        channel.vendor,
        channel.floor_given,
        channel.floor_micros,
    ) == (
        "channel",
        "week",
        "github_copilot",
        True,
        None,
    )
    assert budgets.parse_set(["<@U1>", "$400"]).period == "month"  # the default period


@pytest.mark.parametrize(
    "args, says",
    [
        ([], "Say who and how much"),
        (["@ana", "$400"], "pick it from Slack's @ or # list"),
        (["ana", "$400"], "pick it from Slack's @ or # list"),
        (["<@U1>"], "How much"),
        (["<@U1>", "5k/yr"], "ambiguous"),
        (["<@U1>", "$400", "bananas"], "not a vendor or an option"),
        (["<@U1>", "$400", "cursor", "openai"], "One vendor per budget"),
        (["<@U1>", "$400", "floor"], "needs an amount"),
        (["<@U1>", "$400", "floor", "$500"], "must be below the ceiling"),
        (["<@U1>", "$400", "include", "people"], "Say `include seats`"),
        (["<@U1>", "$400", "thresholds", "50,abc"], "not a list of percents"),
        (["<@U1>", "$400", "thresholds", "0,50"], "from 1 to 200"),
        (["<@U1>", "$400", "thresholds", "10,20,30,40,50,60,70"], "At most 6"),
    ],
)
def test_set_grammar_errors(args, says):
    with pytest.raises(BudgetError) as error:
        budgets.parse_set(args)
    assert says in str(error.value)


def test_request_grammar():
    assert budgets.parse_request(["$200", "load", "tests"]) == (200 * USD, "load tests")
    for args, says in [([], "how much more"), (["$200"], "Say why"), (["lots", "x"], "not an amount")]:
        with pytest.raises(BudgetError) as error:
            budgets.parse_request(args)
        assert says in str(error.value)
    with pytest.raises(BudgetError, match="under 500"):
        budgets.parse_request(["$5", "x" * 501])


# -- periods in the org's timezone -------------------------------------------------------------


def test_month_end_follows_the_org_timezone_not_utc():
    # 22:30 UTC on Mar 31 is already April 1st in Berlin (CEST, UTC+2).
    late = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
    assert budgets.current_period("month", late, BERLIN).start == date(2026, 4, 1)
    assert budgets.current_period("month", late, ZoneInfo("UTC")).start == date(2026, 3, 1)
    earlier = datetime(2026, 3, 31, 21, 30, tzinfo=UTC)
    march = budgets.current_period("month", earlier, BERLIN)
    assert (march.start, march.end) == (date(2026, 3, 1), date(2026, 4, 1))
    assert budgets.reset_at(march, BERLIN) == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)


def test_quarter_start_in_the_org_timezone():
    # New Year in New York is 05:00 UTC: at 04:59 UTC it is still Q4.
    assert budgets.current_period("quarter", datetime(2027, 1, 1, 4, 59, tzinfo=UTC), NEW_YORK).start == date(
        2026, 10, 1
    )
    q1 = budgets.current_period("quarter", datetime(2027, 1, 1, 5, 0, tzinfo=UTC), NEW_YORK)
    assert (q1.start, q1.end, q1.label) == (date(2027, 1, 1), date(2027, 4, 1), "Q1 2027")
    assert budgets.reset_at(q1, NEW_YORK) == datetime(2027, 4, 1, 4, 0, tzinfo=UTC)  # EDT by April


def test_week_across_the_dst_change_resets_at_local_midnight():
    # Europe springs forward on Sunday 2026-03-29: that week (Mon 23rd..) is 167 hours long.
    during = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    week = budgets.current_period("week", during, BERLIN)
    assert (week.start, week.end) == (date(2026, 3, 23), date(2026, 3, 30))
    started = datetime.combine(week.start, datetime.min.time(), tzinfo=BERLIN)
    assert budgets.reset_at(week, BERLIN) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert budgets.reset_at(week, BERLIN) - started.astimezone(UTC) == timedelta(hours=167)
    # New York falls back on Sunday 2026-11-01, which is also a month start.
    assert budgets.current_period("month", datetime(2026, 11, 1, 3, 59, tzinfo=UTC), NEW_YORK).start == date(
        2026, 10, 1
    )
    november = budgets.current_period("month", datetime(2026, 11, 1, 4, 0, tzinfo=UTC), NEW_YORK)
    assert november.start == date(2026, 11, 1)
    assert budgets.reset_at(november, NEW_YORK) == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # EST by then


# -- forecast maths ----------------------------------------------------------------------------

NOV = Period(date(2026, 11, 1), date(2026, 12, 1), "November 2026")


def test_run_rate_uses_the_last_seven_complete_days():
    today = date(2026, 11, 10)
    daily = {date(2026, 11, d): 10 * USD for d in range(1, 11)}  # today (the 10th) is partial
    daily[date(2026, 11, 2)] = 999 * USD  # older than 7 days: ignored
    assert budgets.run_rate(daily, today) == Fraction(70 * USD, 7)
    assert budgets.run_rate({}, today) == 0


def test_forecast_reach_days_and_projection():
    today = date(2026, 11, 10)
    rate = Fraction(10 * USD)
    # $100 spent, $10/day: $320 (80% of $400) needs 22 more days -> day 22 counting today as 1: Dec 1 (past).
    assert budgets.reach_day(100 * USD, 320 * USD, rate, today, NOV) is None
    # $200 spent: 80% ($320) needs 12 days -> the 21st; 100% ($400) needs 20 days -> the 29th.
    assert budgets.reach_day(200 * USD, 320 * USD, rate, today, NOV) == date(2026, 11, 21)
    assert budgets.reach_day(200 * USD, 400 * USD, rate, today, NOV) == date(2026, 11, 29)
    assert budgets.reach_day(400 * USD, 400 * USD, rate, today, NOV) == today  # already there
    assert budgets.reach_day(200 * USD, 400 * USD, Fraction(0), today, NOV) is None
    # The last day of the period still counts (21 days: the 30th); one more day is past the reset.
    assert budgets.reach_day(190 * USD, 400 * USD, rate, today, NOV) == date(2026, 11, 30)
    assert budgets.reach_day(189 * USD, 400 * USD, rate, today, NOV) is None
    # A pace of one micro-dollar a day would reach $400 in 400 million days: never, not an overflow.
    assert budgets.reach_day(0, 400 * USD, Fraction(1), today, NOV) is None
    # Remaining days include today: 21 days from the 10th through the 30th.
    assert budgets.projected(200 * USD, rate, today, NOV) == 410 * USD
    assert budgets.projected(200 * USD, Fraction(1, 3), today, NOV) == 200 * USD + 7  # floor of 21/3
    assert budgets.threshold_micros(333, 50) == 167  # reached at or above half, rounded up


def _status(**kw) -> BudgetStatus:
    row = Budget(
        id=1,
        target_kind=kw.pop("kind", "person"),
        target_id="7",
        vendor=kw.pop("vendor", ""),
        period="month",
        amount_micros=kw.pop("amount", 400 * USD),
        floor_micros=kw.pop("floor", None),
        thresholds=kw.pop("thresholds", (50, 80, 100)),
        include_seats=False,
    )
    values = {
        "budget": row,
        "team": None,
        "period": NOV,
        "today": date(2026, 11, 10),
        "ceiling_micros": row.amount_micros,
        "extra_micros": 0,
        "spent_micros": 200 * USD,
        "rate": Fraction(10 * USD),
        "person_slack_id": "U7",
    }
    values.update(kw)
    return BudgetStatus(**values)


def test_status_thresholds_forecast_and_floor_pace():
    status = _status()
    assert status.percent == 50 and status.crossed == [50] and status.next_threshold == 80
    assert status.reach(80) == date(2026, 11, 21) and status.forecast_over
    assert views.forecast_text(status) == "at this pace you reach 80% on the 21st"
    slow = _status(rate=Fraction(1 * USD))
    assert (
        not slow.forecast_over and views.forecast_text(slow) == "at this pace you stay under 80% this period"
    )
    over = _status(spent_micros=450 * USD)
    assert over.over and over.crossed == [50, 80, 100] and views.forecast_text(over) == "over by $50.00"
    # Floor $300 in a 30-day month: by the 16th (15 full days) a steady pace is $150.
    floor = _status(floor=300 * USD, today=date(2026, 11, 16), spent_micros=100 * USD)
    assert floor.floor_expected_micros == 150 * USD and floor.past_mid_period and floor.below_floor_pace
    early = _status(floor=300 * USD, today=date(2026, 11, 14), spent_micros=10 * USD)
    assert not early.past_mid_period and not early.below_floor_pace  # nudges wait for mid-period
    assert not _status(floor=300 * USD, today=date(2026, 11, 16), spent_micros=160 * USD).below_floor_pace


def test_tightest_is_the_closest_to_its_ceiling():
    loose = _status(spent_micros=100 * USD)
    tight = _status(spent_micros=390 * USD)
    hidden = _status(spent_micros=399 * USD, visibility=budgets.HIDDEN)
    assert budgets.tightest([loose, tight, hidden]) is tight
    lines = views._status_lines([loose, tight])
    assert lines[1].startswith("*Tightest:*") and not lines[0].startswith("*Tightest:*")


# -- builders ----------------------------------------------------------------------------------


def test_builders_stay_within_slack_limits_and_carry_the_numbers():
    status = _status(spent_micros=330 * USD)
    alert = views.build_threshold_alert(status, threshold=80, audience="person")
    assert "82% of your monthly AI budget is used: $330.00 of $400.00 in November 2026" in alert.text
    text = " ".join(b["text"]["text"] for b in alert.blocks if "text" in b)
    assert "/tokens me" in str(alert.blocks) and "Resets Tue Dec 1" in text
    forecast = views.build_forecast_alert(_status(), audience="person")
    assert "runs out on the 29th" in forecast.text and "$10.00 a day" in forecast.text
    team = views.build_threshold_alert(_status(kind="group"), threshold=100, audience="team")
    assert "of <!subteam^7>" in team.text
    request = BudgetRequest(
        id=3, person_id=7, requester_user_id="U7", budget_id=1, amount_micros=200 * USD, reason="<b>x</b>",
        status="pending", decided_by="", decided_at=None, granted_micros=None, scope="", period_start=None,
    )  # fmt: skip
    dm = request_views.build_request_dm(request, requester="<@U7>", status=status)
    assert [e["action_id"] for e in dm.blocks[-2]["elements"]] == [request_views.APPROVE, request_views.DENY]
    assert dm.blocks[2]["element"]["initial_value"] == "$200.00"
    assert "&lt;b&gt;" in dm.blocks[0]["text"]["text"]  # the reason is escaped
    many = [_status(spent_micros=i * USD) for i in range(130)]
    for built in (
        alert,
        forecast,
        dm,
        views.build_floor_nudge(_status(floor=300 * USD), audience="person", peers=None),
        views.build_budget_show(many, title="Budgets", empty="none"),
        views.with_budgets(message("x", [section("a"), context("footer")]), many),
    ):
        assert validate(built.blocks) == [], built.text
    me = views.with_budgets(message("x", [section("a"), context("footer")]), [status])
    assert [b["type"] for b in me.blocks] == ["section", "divider", "section", "context"]


# -- the database side -------------------------------------------------------------------------

W = "w"
DAY = date(2026, 11, 10)


_person = functools.partial(add_person, workspace_id=W, domain="x.io")
_usage = functools.partial(add_usage, workspace_id=W, model="m")
_team = functools.partial(add_team, workspace_id=W, today=DAY)
_set = functools.partial(set_budget, workspace_id=W)


def test_status_counts_vendor_scope_seats_teams_and_the_org(engine):
    with engine.begin() as conn:
        ana, ben, cy = _person(conn, "ana", "UANA"), _person(conn, "ben", "UBEN"), _person(conn, "cy")
        team = _team(conn, "SPLAT", {"UANA": ana, "UBEN": ben})
        for day in (date(2026, 11, 2), date(2026, 11, 9)):
            _usage(conn, ana, day, 10 * USD)
            _usage(conn, ana, day, 5 * USD, vendor="cursor")
            _usage(conn, ana, day, 19 * USD, vendor="github_copilot", kind="seat")
            _usage(conn, ben, day, 7 * USD)
            _usage(conn, cy, day, 3 * USD)
        _usage(conn, ana, date(2026, 11, 9), 2 * USD, vendor="claude_code", in_org_total=False)
        _usage(conn, ana, date(2026, 10, 31), 1000 * USD)  # last month: never counts
        _usage(conn, None, date(2026, 11, 9), 4 * USD, actor="openai_key:unlinked")
        _, personal = _set(conn, "person", str(ana), "$400")
        _, cursor_only = _set(conn, "person", str(ana), "$100", "cursor")
        _, with_seats = _set(conn, "group", "SPLAT", "$1,000", "include", "seats", team=team)
        _, org = _set(conn, "org", "org", "$5k")
        rows = budgets.budgets_for_person(conn, workspace_id=W, person_id=ana)
        assert {b.id for b, _ in rows} == {personal.id, cursor_only.id, with_seats.id, org.id}
        assert budgets.budgets_for_person(conn, workspace_id=W, person_id=cy) == [(org, None)]
        found = {s.budget.id: s for s in budgets.statuses(conn, workspace_id=W, budgets=rows, today=DAY)}
    # Personal: all vendors, no seats, estimates included (like /tokens me): 2*(10+5) + 2.
    assert found[personal.id].spent_micros == 32 * USD
    assert found[cursor_only.id].spent_micros == 10 * USD
    # Team with seats: ana 2*(10+5+19)+2 and ben 2*7.
    assert found[with_seats.id].spent_micros == 84 * USD
    # Org: each dollar once (the covered estimate is out), unattributed in, seats out.
    assert found[org.id].spent_micros == (2 * (10 + 5 + 7 + 3) + 4) * USD
    # The run-rate covers Nov 3..9 (7 complete days before the 10th): the 2nd is outside it.
    assert found[personal.id].rate == Fraction(17 * USD, 7)
    assert found[personal.id].period == Period(date(2026, 11, 1), date(2026, 12, 1), "November 2026")


def test_set_keeps_options_clear_removes_and_both_are_audited(engine):
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        before, first = _set(conn, "person", str(ana), "$400", "floor", "100", "thresholds", "50,90")
        assert before is None and first.floor_micros == 100 * USD and first.thresholds == (50, 90)
        before, second = _set(conn, "person", str(ana), "$600/quarter")
        assert before == first
        assert (second.amount_micros, second.period, second.floor_micros, second.thresholds) == (
            600 * USD,
            "quarter",
            100 * USD,
            (50, 90),
        )
        with pytest.raises(BudgetError, match="floor"):
            _set(conn, "person", str(ana), "$50")  # below the kept floor
        removed = budgets.clear_budgets(
            conn, workspace_id=W, kind="person", target_id=str(ana), vendor=None, actor_user_id="UADMIN"
        )
        assert [r.id for r in removed] == [second.id]
        assert conn.execute(select(func.count()).select_from(Budget)).scalar() == 0
        audit = conn.execute(
            select(AuditLog.action, AuditLog.target, AuditLog.detail).order_by(AuditLog.id)
        ).all()
    assert [a for a, _, _ in audit] == ["budget.set", "budget.set", "budget.clear"]
    assert all(t == f"person:{ana}" for _, t, _ in audit)
    assert audit[1][2].startswith("$400.00/month") and "-> $600.00/quarter" in audit[1][2]


# -- the permission matrix ---------------------------------------------------------------------


def test_permission_matrix(engine):
    with engine.begin() as conn:
        ana, ben, olga = (
            _person(conn, "ana", "UANA"),
            _person(conn, "ben", "UBEN"),
            _person(conn, "olga", "UOLGA"),
        )
        mia = _person(conn, "mia", "UMIA")
        platform = _team(conn, "SPLAT", {"UANA": ana, "UBEN": ben, "UMIA": mia})
        other = _team(conn, "SOTHER", {"UOLGA": olga})
        teams.grant_role(
            conn,
            workspace_id=W,
            role="manager",
            slack_user_id="UMIA",
            team_id=platform.id,
            granted_by="UADMIN",
        )
        viewers = {
            "admin": access.Viewer("UADMIN", True, None),
            "manager": access.Viewer("UMIA", False, mia),
            "member": access.Viewer("UANA", False, ana),
            "outsider": access.Viewer("UOLGA", False, olga),
        }
        targets = {
            "ana": {"kind": "person", "person_id": ana},
            "olga": {"kind": "person", "person_id": olga},
            "platform": {"kind": "team", "team_id": platform.id},
            "other": {"kind": "team", "team_id": other.id},
            "org": {"kind": "org"},
        }

        def table(rule):
            return {
                who: "".join("Y" if rule(conn, W, viewer, **t).allowed else "." for t in targets.values())
                for who, viewer in viewers.items()
            }

        #                 ana olga platform other org
        assert table(access.can_manage_budget) == {
            "admin": "YYYYY",
            "manager": "Y.Y..",
            "member": ".....",
            "outsider": ".....",
        }
        assert table(access.can_view_budget) == {
            "admin": "YYYYY",
            "manager": "Y.Y.Y",
            "member": "Y.Y.Y",  # their own, their team's, the org's
            "outsider": ".Y.YY",
        }

        def decide(viewer, person_id, **t):
            return access.can_decide_budget_request(conn, W, viewer, person_id=person_id, **t).allowed

        assert decide(viewers["manager"], ana, kind="person")
        assert decide(viewers["manager"], ana, kind="team", team_id=platform.id)
        assert not decide(viewers["manager"], ana, kind="org")  # org budgets: admins only
        assert not decide(viewers["manager"], olga, kind="person")  # not their member
        assert not decide(viewers["manager"], mia, kind="person")  # their own request
        assert not decide(viewers["member"], ben, kind="person")
        assert decide(viewers["admin"], olga, kind="org")


def test_visibility_hides_small_team_totals_and_org_dollars(engine):
    with engine.begin() as conn:
        ana, ben = _person(conn, "ana", "UANA"), _person(conn, "ben", "UBEN")
        pair = _team(conn, "SPAIR", {"UANA": ana, "UBEN": ben})
        _, team_budget = _set(conn, "group", "SPAIR", "$1,000", team=pair)
        _, org = _set(conn, "org", "org", "$5k")
        member = access.Viewer("UANA", False, ana)
        today = date.today()
        seen = functools.partial(budgets.visibility, conn, W, today=today)
        assert seen(member, team_budget, pair, min_group_size=5) == budgets.HIDDEN
        # Big enough by members, but nobody besides Ana used AI tools: never dollars for a member
        # (a padded team), at most percentages when the active people reach the minimum.
        assert seen(member, team_budget, pair, min_group_size=2) == budgets.HIDDEN
        assert seen(member, org, None, min_group_size=5) == budgets.PERCENT
        admin = access.Viewer("UADMIN", True, None)
        assert seen(admin, org, None, min_group_size=5) == budgets.FULL
        assert seen(admin, team_budget, pair, min_group_size=5) == budgets.FULL
