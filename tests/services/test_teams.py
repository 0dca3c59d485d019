"""Teams: dated membership, team reports, /tokens team and /tokens role end to end."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import func, select, update

from bot.db import rollups
from bot.db.models import ActivityDaily, AuditLog, Person, RoleGrant, Team, TeamMembership
from bot.domain.money import format_usd
from bot.domain.periods import Period, parse_period
from bot.domain.records import ACTIVITY_FIELDS
from bot.jobs.team_refresh import team_refresh_job
from bot.services import reports, teams
from bot.services.teams import EARLIEST, SlackMember
from bot.slack import membership
from tests.factories import add_activity, add_person, add_usage
from tests.support.slack_app import (
    PAIR,
    PAYMENTS,
    PLATFORM,
    TODAY,
    all_text,
    make_runtime,
    person_id,
    send,
    spend_of,
)

pytestmark = pytest.mark.usefixtures("slack_team")

PLATFORM_EMAILS = [f"{n}@example.com" for n in ("ana", "ben", "chen", "dana", "emil", "farah", "gus", "hana")]
D0 = date(2026, 3, 10)


_person = partial(add_person, workspace_id="w")
_usage = partial(add_usage, workspace_id="w", model="gpt-4.1", input_tokens=10, actor="p:{person_id}")


def _refresh(conn, team_id: int, known: dict[str, int], today: date, new=()):
    return teams.apply_refresh(
        conn, workspace_id="w", team_id=team_id, known=known, new_members=list(new), today=today
    )


def test_membership_counts_only_the_days_a_person_belonged(engine):
    with engine.begin() as conn:
        a, b, c = (_person(conn, f"{n}@x.io", f"U{n.upper()}") for n in ("a", "b", "c"))
        team = teams.ensure_team(conn, workspace_id="w", kind=teams.USERGROUP, slack_id="S1", name="eng")
        first = _refresh(conn, team.id, {"UA": a, "UB": b}, D0)
        # Day 1: a leaves, c joins. Day 3: a rejoins.
        second = _refresh(conn, team.id, {"UB": b, "UC": c}, D0 + timedelta(days=1))
        _refresh(conn, team.id, {"UA": a, "UB": b, "UC": c}, D0 + timedelta(days=3))
        for day in range(-2, 5):
            for pid in (a, b, c):
                _usage(conn, pid, D0 + timedelta(days=day), 1_000_000 * pid)
    assert (first.joined, first.left, second.joined, second.left) == (2, 0, 1, 1)
    with engine.connect() as conn:
        rows = conn.execute(
            select(TeamMembership.person_id, TeamMembership.joined_on, TeamMembership.left_on).order_by(
                TeamMembership.id
            )
        ).all()
        assert rows == [
            (a, EARLIEST, D0 + timedelta(days=1)),  # present at the first refresh: whole history
            (b, EARLIEST, None),
            (c, D0 + timedelta(days=1), None),
            (a, D0 + timedelta(days=3), None),
        ]
        period = Period(D0 - timedelta(days=2), D0 + timedelta(days=5), "test")
        report = reports.team_report(conn, workspace_id="w", team_id=team.id, period=period)
        # a: days -2..0 and 3..4 (5 days); b: all 7; c: days 1..4 (4 days)
        expected = 5 * 1_000_000 * a + 7 * 1_000_000 * b + 4 * 1_000_000 * c
        assert report.total_micros == expected
        assert report.active_people == 3
        # History stays with the person: a's own report still has all 7 days.
        mine = reports.person_report(conn, workspace_id="w", person_ids=[a], period=period)
        assert mine.total_micros == 7 * 1_000_000 * a
        members = dict(report.member_spend)
        assert members == {a: 5_000_000 * a, b: 7_000_000 * b, c: 4_000_000 * c}
        assert teams.member_count(conn, team_id=team.id) == 3


def test_team_report_has_vendors_models_value_and_the_previous_period(engine):
    period = Period(D0, D0 + timedelta(days=7), "week")
    with engine.begin() as conn:
        a, b = _person(conn, "a@x.io", "UA"), _person(conn, "b@x.io", "UB")
        outsider = _person(conn, "o@x.io", "UO")
        team = teams.ensure_team(conn, workspace_id="w", kind=teams.CHANNEL, slack_id="C1", name="eng")
        _refresh(conn, team.id, {"UA": a, "UB": b}, D0)
        _usage(conn, a, D0, 3_000_000, model="o3")
        _usage(conn, b, D0 + timedelta(days=1), 1_000_000, model="claude-sonnet-4", vendor="cursor")
        _usage(conn, a, D0 - timedelta(days=3), 2_000_000)  # previous period
        _usage(conn, outsider, D0, 50_000_000)
        _usage(conn, None, D0, 70_000_000)  # unattributed: never a team's
        conn.execute(
            ActivityDaily.__table__.insert().values(
                workspace_id="w",
                source="cursor",
                vendor="cursor",
                day=D0,
                actor="p",
                person_id=b,
                **{**dict.fromkeys(ACTIVITY_FIELDS, 0), "lines_accepted": 40},
            )
        )
        rollups.rebuild(conn)  # written directly: bring the rollups in step
    with engine.connect() as conn:
        report = reports.team_report(conn, workspace_id="w", team_id=team.id, period=period)
        models = report.models
    assert [(v.vendor, v.cost_micros) for v in report.vendors] == [
        ("openai", 3_000_000),
        ("cursor", 1_000_000),
    ]
    assert report.previous_total_micros == 2_000_000
    assert report.value_total().lines_accepted == 40
    assert models == [("openai", "o3", 3_000_000), ("cursor", "Claude Sonnet 4", 1_000_000)]


def test_a_person_in_several_teams_counts_in_each(engine):
    with engine.begin() as conn:
        a, b = _person(conn, "a@x.io", "UA"), _person(conn, "b@x.io", "UB")
        one = teams.ensure_team(conn, workspace_id="w", kind=teams.USERGROUP, slack_id="S1")
        two = teams.ensure_team(conn, workspace_id="w", kind=teams.CHANNEL, slack_id="C2")
        _refresh(conn, one.id, {"UA": a, "UB": b}, D0)
        _refresh(conn, two.id, {"UA": a}, D0)
        _usage(conn, a, D0, 4_000_000)
        _usage(conn, b, D0, 1_000_000)
    period = Period(D0, D0 + timedelta(days=1), "day")
    with engine.connect() as conn:
        assert (
            reports.team_report(conn, workspace_id="w", team_id=one.id, period=period).total_micros
            == 5_000_000
        )
        assert (
            reports.team_report(conn, workspace_id="w", team_id=two.id, period=period).total_micros
            == 4_000_000
        )
        assert [t.slack_id for t in teams.teams_of(conn, workspace_id="w", person_id=a)] == ["S1", "C2"]


def test_new_slack_members_are_matched_by_email_and_those_without_are_not_counted(engine):
    with engine.begin() as conn:
        team, result = teams.record_refresh(
            conn,
            workspace_id="w",
            kind=teams.USERGROUP,
            slack_id="S9",
            name="new",
            known={},
            new_members=[SlackMember("UX", "X@Example.com", "Xa"), SlackMember("UY", None, "Ya")],
            today=D0,
        )
        person = conn.execute(select(Person.email, Person.slack_user_id)).all()
    assert (result.members, result.joined, result.not_counted) == (1, 1, 1)
    assert person == [("x@example.com", "UX")]
    assert team.refreshed_at is not None and team.name == "new"


# -- end to end ----------------------------------------------------------------------------


def test_member_sees_team_aggregates_only(client, fake_slack, seeded):
    reply = send(client, f"team {PLATFORM} 30d", user_id="UANA")
    assert reply["response_type"] == "ephemeral"
    text = all_text(reply)
    period = parse_period("30d", TODAY)
    with seeded.connect() as conn:
        expected = spend_of(conn, PLATFORM_EMAILS, period.start, period.end)
    assert "Team AI spend: @platform" in text
    assert format_usd(expected) in text
    assert "*Members*\n8" in text and "Per active person" in text
    assert "1 member(s) have no email visible to me" in text  # UNOMAIL
    assert "<@UBEN>" not in text and "Members with spend" not in text
    assert fake_slack.calls_to("usergroups.users.list")[0].params["usergroup"] == "SPLATFORM"
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditLog)).scalar() == 0


def test_a_member_without_a_visible_email_is_told_why(client, seeded):
    text = all_text(send(client, f"team {PLATFORM}", user_id="UNOMAIL"))
    assert "cannot see your email" in text and "$" not in text


def test_non_members_and_small_teams_are_refused_without_numbers(client, seeded):
    refused = all_text(send(client, f"team {PLATFORM}", user_id="UIVAN"))
    assert "visible to its members" in refused and "$" not in refused
    small = all_text(send(client, f"team {PAIR}", user_id="UANA"))
    assert "fewer than 5 people" in small and "$" not in small
    admin = all_text(send(client, f"team {PAIR} 30d", user_id="UADMIN"))
    assert "Members with spend" in admin and "<@UANA>" in admin and "<@UBEN>" in admin


def test_manager_sees_members_one_by_one_and_each_view_is_audited(client, seeded):
    assert "Only admins" in all_text(send(client, f"role add manager <@UBEN|ben> {PLATFORM}", user_id="UANA"))
    done = all_text(send(client, f"role add manager <@UBEN|ben> {PLATFORM}", user_id="UADMIN"))
    assert "<@UBEN> now manages <!subteam^SPLATFORM>" in done
    text = all_text(send(client, f"team {PLATFORM} 30d", user_id="UBEN"))
    assert "Members with spend" in text and "<@UCHEN>" in text and "<@UANA>" in text
    period = parse_period("30d", TODAY)
    with seeded.connect() as conn:
        assert format_usd(spend_of(conn, ["chen@example.com"], period.start, period.end)) in text
        views = conn.execute(
            select(AuditLog.actor_user_id, AuditLog.target).where(AuditLog.action == "view.team_member")
        ).all()
        chen, ben = person_id(conn, "chen@example.com"), person_id(conn, "ben@example.com")
    # Every member has spend in the demo; the manager's own line is not a view of someone else.
    assert ("UBEN", f"person:{chen}") in views and len(views) == 7
    assert ("UBEN", f"person:{ben}") not in views


def test_channel_members_are_read_page_by_page_and_bots_skipped(client, fake_slack, monkeypatch):
    monkeypatch.setattr(membership, "MEMBERS_PAGE_SIZE", 3)
    text = all_text(send(client, f"team {PAYMENTS} 30d", user_id="UADMIN"))
    pages = fake_slack.calls_to("conversations.members")
    assert [c.params.get("cursor") for c in pages] == [None, "3", "6", "9"]
    assert "*Members*\n9" in text  # 10 members, one of them a bot
    assert "Team AI spend: #payments" in text


def test_bad_targets_get_clear_answers_and_change_nothing(client, seeded, fake_slack):
    cases = {
        "team <#CSECRET|secret>": "I am not in <#CSECRET>",
        "team <#CNOPE|>": "it does not exist or it is private",
        "team <!subteam^SNOPE|@gone>": "cannot find that user group",
        "team <!subteam^SEMPTY|@empty>": "has no members I can count",
        "team": "Name a user group or a channel",
        "team platform": "is not a user group or a channel",
        f"team {PLATFORM} lastyear": "not a period",
        f"team refresh {PLATFORM} 30d": "takes one user group or channel",
        f"role add boss <@UBEN> {PLATFORM}": "not a role",
        f"role add manager ben {PLATFORM}": "as a person",
        "role add manager <@UNOBODY> <!subteam^SPLATFORM|@platform>": "cannot find <@UNOBODY>",
        "role add manager <@UGONE> <!subteam^SPLATFORM|@platform>": "deactivated account or a bot",
        f"role remove manager <@UBEN> {PLATFORM}": "is not a manager of",
        "role add manager <@UBEN>": "I need add or remove",
    }
    for text, expected in cases.items():
        reply = send(client, text, user_id="UADMIN")
        assert expected in all_text(reply), (text, all_text(reply))
    with seeded.connect() as conn:
        teams_left = conn.execute(select(Team.slack_id)).scalars().all()
        assert conn.execute(select(func.count()).select_from(RoleGrant)).scalar() == 0
    assert teams_left == ["SEMPTY"]  # read successfully, just empty: failed reads leave no trace


def test_role_add_list_remove(client, seeded):
    assert "You manage no team" in all_text(send(client, "role list", user_id="UBEN"))
    send(client, f"role add manager <@UBEN|ben> {PLATFORM}", user_id="UADMIN")
    again = all_text(send(client, f"role add manager <@UBEN|ben> {PLATFORM}", user_id="UADMIN"))
    assert "already manages" in again
    listed = all_text(send(client, "role list", user_id="UADMIN"))
    assert "<@UBEN>: manager of <!subteam^SPLATFORM>" in listed
    own = all_text(send(client, "role", user_id="UBEN"))
    assert "Teams you manage" in own and "SPLATFORM" in own
    assert "Only admins" in all_text(send(client, f"role remove manager <@UBEN> {PLATFORM}", user_id="UBEN"))
    removed = all_text(send(client, f"role remove manager <@UBEN> {PLATFORM}", user_id="UADMIN"))
    assert "no longer manages" in removed
    with seeded.connect() as conn:
        actions = conn.execute(select(AuditLog.action, AuditLog.detail).order_by(AuditLog.id)).all()
        assert conn.execute(select(func.count()).select_from(RoleGrant)).scalar() == 0
    assert actions == [("role.add", "manager UBEN"), ("role.remove", "manager UBEN")]
    log = all_text(send(client, "audit", user_id="UADMIN"))
    assert "<@UADMIN> granted a role: <!subteam^SPLATFORM> _(manager UBEN)_" in log


def test_refresh_on_demand_records_leavers_and_manager_loses_sight(client, seeded, fake_slack):
    send(client, f"role add manager <@UBEN|ben> {PLATFORM}", user_id="UADMIN")
    assert "AI spend of <@UCHEN>" in all_text(send(client, "<@UCHEN|chen> 30d", user_id="UBEN"))
    fake_slack.usergroups["SPLATFORM"] = [u for u in fake_slack.usergroups["SPLATFORM"] if u != "UCHEN"]
    # Once the membership is stale, the manager's view re-reads it before deciding.
    with seeded.begin() as conn:
        conn.execute(update(Team).values(refreshed_at=datetime.now(UTC) - timedelta(days=2)))
    refused = all_text(send(client, "<@UCHEN|chen> 30d", user_id="UBEN"))
    assert "visible to them, their managers and admins" in refused and "$" not in refused
    with seeded.connect() as conn:
        chen = person_id(conn, "chen@example.com")
        left = conn.execute(
            select(TeamMembership.left_on).where(TeamMembership.person_id == chen)
        ).scalar_one()
    assert left == TODAY
    forced = all_text(send(client, f"team refresh {PLATFORM}", user_id="UANA"))
    assert "Refreshed <!subteam^SPLATFORM>: 7 members counted (0 joined, 0 left)" in forced


def test_scheduler_job_refreshes_stale_teams(seeded, fake_slack):
    runtime = make_runtime(seeded, fake_slack)
    with seeded.begin() as conn:
        team = teams.ensure_team(conn, workspace_id="default", kind=teams.CHANNEL, slack_id="CPAYMENTS")
        teams.ensure_team(conn, workspace_id="default", kind=teams.CHANNEL, slack_id="CSECRET")
    assert team_refresh_job(runtime) == 1  # CSECRET cannot be read and is skipped
    assert team_refresh_job(runtime) == 0  # fresh now
    with seeded.connect() as conn:
        assert teams.member_count(conn, team_id=team.id) == 9


_activity = partial(add_activity, workspace_id="w", vendor="cursor")


def test_team_median_ratios_need_the_minimum_group_of_active_people(engine):
    period = Period(D0, D0 + timedelta(days=7), "week")
    with engine.begin() as conn:
        a, b, c, idle = (_person(conn, f"{n}@x.io", f"U{n.upper()}") for n in ("a", "b", "c", "idle"))
        team = teams.ensure_team(conn, workspace_id="w", kind=teams.CHANNEL, slack_id="C1", name="eng")
        _refresh(conn, team.id, {"UA": a, "UB": b, "UC": c, "UIDLE": idle}, D0)
        for pid, micros, lines, commits in (
            (a, 4_000_000, 100, 2),
            (b, 9_000_000, 100, 0),
            (c, 1_000_000, 0, 1),
        ):
            _usage(conn, pid, D0, micros)
            _activity(conn, pid, D0, lines_accepted=lines, vendor="cursor")
            _activity(conn, pid, D0, commits=commits, vendor="claude_code")
        _activity(conn, idle, D0, lines_accepted=500)  # value without usage: not an active person
    with engine.connect() as conn:
        two = reports.team_median_ratios(
            conn, workspace_id="w", team_id=team.id, period=period, min_group_size=2
        )
        four = reports.team_median_ratios(
            conn, workspace_id="w", team_id=team.id, period=period, min_group_size=4
        )
    # per accepted line: a $0.04, b $0.09 (c has none) -> median of two, $0.065
    # per AI commit: a $2.00, c $1.00 (b has none) -> $1.50; nobody merged a PR
    # (each measure needs the minimum group itself: tests/services/test_medians.py)
    assert two == reports.ValueRatios(per_accepted_line=65_000, per_ai_commit=1_500_000, per_merged_pr=None)
    assert four is None  # three active people are too few for a group of four: no median at all
