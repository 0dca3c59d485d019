"""Scope that must not grow by itself (issue 14, items 6 and 7), attacked through the real HTTP
app: a non-member's `/tokens team refresh` and a manager who invites someone into their channel.
The rules are in docs/privacy.md, "Manager scope"."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from bot.db.models import AuditLog, Budget, ManagerScope, Person, RoleGrant, Team, TeamMembership
from bot.domain.money import format_usd
from bot.domain.periods import parse_period
from bot.services import access, budgets, teams
from tests.support.inbound import inbound
from tests.support.slack_app import (
    PLATFORM,
    TODAY,
    all_text,
    make_runtime,
    person_id,
    post_event,
    send,
    spend_of,
)

pytestmark = pytest.mark.usefixtures("slack_team")

PRIVATE = "<#CPRIVATE|private>"
START = ["UBEN", "UANA", "UCHEN", "UDANA", "UEMIL", "UFARAH"]


@pytest.fixture
def fake_slack(fake_slack):
    fake_slack.channels["CPRIVATE"] = list(START)
    fake_slack.channels["CNEW"] = ["UANA", "UBEN", "UCHEN", "UDANA", "UEMIL"]
    return fake_slack


def _membership(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            select(
                TeamMembership.team_id,
                TeamMembership.person_id,
                TeamMembership.joined_on,
                TeamMembership.left_on,
            ).order_by(TeamMembership.id)
        ).all()


def _teams(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(select(Team.slack_id, Team.refreshed_at).order_by(Team.id)).all()


# -- item 6: refresh applies the view's rule ---------------------------------------------------


def test_refresh_by_a_non_member_is_refused_like_the_view_and_writes_nothing(client, seeded, fake_slack):
    assert "Team AI spend: #private" in all_text(send(client, f"team {PRIVATE} 30d", user_id="UADMIN"))
    # The channel changes in Slack; an outsider tries to make Tokenwise record it.
    fake_slack.channels["CPRIVATE"] = [u for u in START if u != "UCHEN"] + ["UGUS"]
    before_rows, before_teams = _membership(seeded), _teams(seeded)
    view = send(client, f"team {PRIVATE}", user_id="UIVAN")
    refresh = send(client, f"team refresh {PRIVATE}", user_id="UIVAN")
    assert all_text(refresh) == all_text(view)  # the same refusal, word for word
    assert "visible to its members" in all_text(refresh) and "Refreshed" not in all_text(refresh)
    assert _membership(seeded) == before_rows and _teams(seeded) == before_teams
    # A team never read before: the outsider's refresh leaves no team, person or membership.
    with seeded.connect() as conn:
        people_before = conn.execute(select(func.count()).select_from(Person)).scalar_one()
    new = all_text(send(client, "team refresh <#CNEW|new>", user_id="UIVAN"))
    assert new == all_text(send(client, "team <#CNEW|new>", user_id="UIVAN"))
    assert "visible to its members" in new
    assert [slack_id for slack_id, _ in _teams(seeded)] == ["CPRIVATE"]
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Person)).scalar_one() == people_before
    assert _membership(seeded) == before_rows


def test_refresh_by_those_who_may_see_the_team_records_joiners_and_leavers(client, seeded, fake_slack):
    send(client, f"team {PRIVATE}", user_id="UADMIN")
    fake_slack.channels["CPRIVATE"] = [u for u in START if u != "UCHEN"] + ["UGUS"]
    done = all_text(send(client, f"team refresh {PRIVATE}", user_id="UADMIN"))
    assert "Refreshed <#CPRIVATE>: 6 members counted (1 joined, 1 left)" in done
    with seeded.connect() as conn:
        gus, chen = person_id(conn, "gus@example.com"), person_id(conn, "chen@example.com")
    rows = {(pid, left) for _, pid, _, left in _membership(seeded)}
    assert (gus, None) in rows and (chen, TODAY) in rows


# -- item 7: a manager's reach is what an admin granted ----------------------------------------


def _grant_ben(client) -> None:
    done = all_text(send(client, f"role add manager <@UBEN|ben> {PRIVATE}", user_id="UADMIN"))
    assert "<@UBEN> now manages <#CPRIVATE>" in done


def _invite_ivan(client, fake_slack) -> None:
    """The manager invites Ivan into the channel and re-reads it (an admin's refresh as well,
    so the membership is recorded whatever the team view's member rules decide for Ben)."""
    fake_slack.channels["CPRIVATE"].append("UIVAN")
    send(client, f"team refresh {PRIVATE}", user_id="UBEN")
    send(client, f"team refresh {PRIVATE}", user_id="UADMIN")


def test_a_manager_who_invites_someone_sees_nothing_of_them_until_an_admin_approves(
    client, seeded, fake_slack
):
    _grant_ben(client)
    assert "AI spend of <@UANA>" in all_text(send(client, "<@UANA|ana> 30d", user_id="UBEN"))
    _invite_ivan(client, fake_slack)
    with seeded.connect() as conn:
        ivan = person_id(conn, "ivan@example.com")
        team_id = conn.execute(select(Team.id).where(Team.slack_id == "CPRIVATE")).scalar_one()
        assert teams.is_member(conn, team_id=team_id, person_id=ivan)  # the invite is recorded
    # Personal history: the same refusal a stranger gets.
    history = all_text(send(client, "<@UIVAN|ivan> 30d", user_id="UBEN"))
    stranger = all_text(send(client, "<@UIVAN|ivan> 30d", user_id="UKOFI"))
    assert history == stranger and "visible to them, their managers and admins" in history
    assert "$" not in history
    # Budget: refused, nothing stored.
    budget = all_text(send(client, "budget set <@UIVAN|ivan> $300", user_id="UBEN"))
    assert "Nothing changed" in budget and "not yet approved by an admin" in budget
    # Team view: no member lines while the grant does not reach everyone in it.
    view = all_text(send(client, f"team {PRIVATE} 30d", user_id="UBEN"))
    assert "<@UIVAN>" not in view and "Members with spend" not in view
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Budget)).scalar_one() == 0
        looked = conn.execute(
            select(func.count()).where(AuditLog.target == f"person:{ivan}", AuditLog.actor_user_id == "UBEN")
        ).scalar_one()
    assert looked == 0
    # Members at grant time stay within reach.
    assert "AI spend of <@UANA>" in all_text(send(client, "<@UANA|ana> 30d", user_id="UBEN"))

    # Only an admin approves, and only a current member.
    refused = all_text(send(client, f"team approve <@UIVAN|ivan> {PRIVATE}", user_id="UBEN"))
    assert "Only admins approve" in refused
    assert "not a member of <#CPRIVATE>" in all_text(
        send(client, f"team approve <@UKOFI|kofi> {PRIVATE}", user_id="UADMIN")
    )
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).where(ManagerScope.reason == "approved")).scalar_one() == 0
    approved = all_text(send(client, f"team approve <@UIVAN|ivan> {PRIVATE}", user_id="UADMIN"))
    assert "now see <@UIVAN>'s numbers" in approved
    again = all_text(send(client, f"team approve <@UIVAN|ivan> {PRIVATE}", user_id="UADMIN"))
    assert "already within reach" in again

    allowed = all_text(send(client, "<@UIVAN|ivan> 30d", user_id="UBEN"))
    period = parse_period("30d", TODAY)
    with seeded.connect() as conn:
        assert format_usd(spend_of(conn, ["ivan@example.com"], period.start, period.end)) in allowed
        actions = conn.execute(select(AuditLog.action, AuditLog.target).order_by(AuditLog.id)).all()
    assert "AI spend of <@UIVAN>" in allowed
    assert "*Budget set* for <@UIVAN>" in all_text(
        send(client, "budget set <@UIVAN|ivan> $300", user_id="UBEN")
    )
    assert ("scope.approve", f"person:{ivan}") in actions
    members = all_text(send(client, f"team {PRIVATE} 30d", user_id="UBEN"))
    assert "Members with spend" in members and "<@UIVAN>" in members


def test_a_refused_manager_is_told_why_and_a_revoked_grant_leaves_no_scope(client, seeded, fake_slack):
    _grant_ben(client)
    fake_slack.channels["CPRIVATE"].append("UIVAN")
    send(client, f"team refresh {PRIVATE}", user_id="UADMIN")
    fake_slack.channels["CPRIVATE"].remove("UBEN")  # a manager need not be a member themself
    send(client, f"team refresh {PRIVATE}", user_id="UADMIN")
    told = all_text(send(client, f"team {PRIVATE} 30d", user_id="UBEN"))
    assert "1 member(s) joined <#CPRIVATE> after you were made its manager" in told and "$" not in told
    send(client, f"role remove manager <@UBEN|ben> {PRIVATE}", user_id="UADMIN")
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ManagerScope)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(RoleGrant)).scalar_one() == 0


def test_granting_again_over_the_channel_as_it_is_covers_the_joiners(client, seeded, fake_slack):
    _grant_ben(client)
    _invite_ivan(client, fake_slack)
    assert "AI spend of <@UIVAN>" not in all_text(send(client, "<@UIVAN|ivan> 30d", user_id="UBEN"))
    again = all_text(send(client, f"role add manager <@UBEN|ben> {PRIVATE}", user_id="UADMIN"))
    assert "the grant now also reaches the 1 member(s) who joined since" in again
    assert "AI spend of <@UIVAN>" in all_text(send(client, "<@UIVAN|ivan> 30d", user_id="UBEN"))
    unchanged = all_text(send(client, f"role add manager <@UBEN|ben> {PRIVATE}", user_id="UADMIN"))
    assert "already manages <#CPRIVATE>; nothing changed" in unchanged
    with seeded.connect() as conn:
        details = conn.execute(select(AuditLog.detail).where(AuditLog.action == "role.add")).scalars().all()
    assert details == ["manager UBEN", "manager UBEN +1 member(s)"]


def test_user_group_managers_reach_the_groups_members(client, seeded, fake_slack):
    """User groups are managed by admins in Slack: their current members are the scope."""
    send(client, f"role add manager <@UBEN|ben> {PLATFORM}", user_id="UADMIN")
    fake_slack.usergroups["SPLATFORM"].append("UIVAN")
    send(client, f"team refresh {PLATFORM}", user_id="UADMIN")
    assert "AI spend of <@UIVAN>" in all_text(send(client, "<@UIVAN|ivan> 30d", user_id="UBEN"))


def test_app_home_hides_a_team_total_over_someone_the_grant_does_not_reach(client, seeded, fake_slack):
    """Team total minus the members the manager may look up one by one would be the invitee's spend."""
    _grant_ben(client)
    _invite_ivan(client, fake_slack)
    post_event(client, inbound("app_home_opened", user="UBEN"), event_id="Ev1")
    view = fake_slack.wait_for("views.publish")[0].params["view"]
    team_block = next(
        b["text"]["text"] for b in view["blocks"] if "<#CPRIVATE>" in b.get("text", {}).get("text", "")
    )
    assert "1 member(s) joined after you were made its manager" in team_block and "$" not in team_block
    with seeded.connect() as conn:
        ivan = person_id(conn, "ivan@example.com")
        assert budgets.managers_of_person(conn, workspace_id="default", person_id=ivan) == []
        send(client, f"team approve <@UIVAN|ivan> {PRIVATE}", user_id="UADMIN")
        assert budgets.managers_of_person(conn, workspace_id="default", person_id=ivan) == ["UBEN"]


# -- the rule itself, on the database ----------------------------------------------------------


def test_manages_person_follows_the_grant_not_the_channel(engine):
    with engine.begin() as conn:
        ids = {}
        for name in ("a", "b", "c", "m"):
            conn.execute(
                Person.__table__.insert().values(
                    workspace_id="w", email=f"{name}@x.io", slack_user_id=f"U{name}"
                )
            )
            ids[name] = conn.execute(select(Person.id).where(Person.email == f"{name}@x.io")).scalar_one()
        team = teams.ensure_team(conn, workspace_id="w", kind=teams.CHANNEL, slack_id="C1", name="c")
        day = date(2026, 3, 1)
        teams.apply_refresh(
            conn, workspace_id="w", team_id=team.id, known={"Ua": ids["a"]}, new_members=[], today=day
        )
        teams.grant_role(
            conn, workspace_id="w", role="manager", slack_user_id="UM", team_id=team.id, granted_by="UADM"
        )
        joined = {"Ua": ids["a"], "Ub": ids["b"]}
        teams.apply_refresh(conn, workspace_id="w", team_id=team.id, known=joined, new_members=[], today=day)
    with engine.connect() as conn:
        assert access.manages_person(conn, "w", "UM", ids["a"])  # member at grant time
        assert not access.manages_person(conn, "w", "UM", ids["b"])  # joined later
        assert not access.manages_person(conn, "w", "UM", ids["c"])  # never a member
        assert access.unapproved_members(conn, "w", "UM", team.id) == [ids["b"]]
        assert access.unapproved_members(conn, "w", "UOTHER", team.id) == []
    with engine.begin() as conn:
        assert (
            teams.approve_member(
                conn, workspace_id="w", team_id=team.id, person_id=ids["b"], approved_by="UADM"
            )
            == 1
        )
        assert (
            teams.approve_member(
                conn, workspace_id="w", team_id=team.id, person_id=ids["b"], approved_by="UADM"
            )
            == 0
        )
        # b leaves: out of reach again, whatever the approval.
        teams.apply_refresh(
            conn, workspace_id="w", team_id=team.id, known={"Ua": ids["a"]}, new_members=[], today=day
        )
    with engine.connect() as conn:
        assert not access.manages_person(conn, "w", "UM", ids["b"])
        assert access.manages_person(conn, "w", "UM", ids["a"])


def test_a_manager_sees_no_team_budget_spend_over_a_joiner_the_grant_does_not_reach(
    client, seeded, fake_slack
):
    """The team budget's dollars, before and after an invite, would give the joiner's spend."""
    _grant_ben(client)
    assert "Budget set" in all_text(send(client, f"budget set {PRIVATE} $5000/month", user_id="UADMIN"))
    assert "* spent" in all_text(send(client, f"budget show {PRIVATE}", user_id="UBEN"))
    _invite_ivan(client, fake_slack)
    after = all_text(send(client, f"budget show {PRIVATE}", user_id="UBEN"))
    assert "Budgets of" in after and "spent" not in after, after
    assert "spent" in all_text(send(client, f"budget show {PRIVATE}", user_id="UADMIN"))


def test_team_budget_alerts_skip_a_manager_whose_grant_misses_a_joiner(client, seeded, fake_slack):
    """An alert says "$X of $Y" for the whole team: after the invite, not to Ben but to the admins."""
    _grant_ben(client)
    assert "Budget set" in all_text(send(client, f"budget set {PRIVATE} $5000/month", user_id="UADMIN"))

    def recipients():
        with seeded.connect() as conn:
            team = teams.get_team(conn, workspace_id="default", kind="channel", slack_id="CPRIVATE")
            [budget] = budgets.budgets_of_target(
                conn, workspace_id="default", kind="channel", target_id="CPRIVATE"
            )
            return budgets.alert_recipients(
                conn,
                workspace_id="default",
                budget=budget,
                team=team,
                settings=make_runtime(seeded, fake_slack).settings,
            )

    assert recipients() == ["UBEN"]
    _invite_ivan(client, fake_slack)
    after = recipients()
    assert "UBEN" not in after and after
