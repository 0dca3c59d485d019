"""The budget authorization rule on its own (the Slack path through it is in test_budgets_slack),
and budget rows read back as their tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from bot.db.models import Budget, BudgetRequest, Person, Team
from bot.services import budgets
from bot.services.budgets import authorization as auth
from bot.services.budgets import parse_target
from bot.services.budgets.authorization import Refused
from bot.services.teams import USERGROUP

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
TEAM = Team(
    id=1,
    workspace_id="default",
    kind=USERGROUP,
    slack_id="S1",
    name="eng",
    refreshed_at=NOW - timedelta(minutes=5),
)
ORG = parse_target("org")
ANA = parse_target("<@U7|ana>")
GROUP = parse_target("<!subteam^S2|@ops>")


def test_admins_may_try_any_budget_others_only_within_their_teams():
    assert auth.may_manage(ORG, is_admin=True, managed=[]).allowed
    assert auth.may_manage(ANA, is_admin=False, managed=[TEAM]).allowed
    assert auth.may_manage(ORG, is_admin=False, managed=[TEAM]).refused == Refused.ORG_BY_ADMINS
    assert auth.may_manage(ANA, is_admin=False, managed=[]).refused == Refused.MANAGES_NO_TEAM


def test_each_refusal_names_its_reason():
    assert auth.manage_refusal(ORG, []).refused == Refused.ORG_BY_ADMINS  # before "no team"
    assert auth.manage_refusal(GROUP, []).refused == Refused.MANAGES_NO_TEAM
    assert auth.manage_refusal(ANA, [TEAM]).refused == Refused.PERSON_OUTSIDE_TEAMS
    assert auth.manage_refusal(GROUP, [TEAM]).refused == Refused.TEAM_NOT_MANAGED


def test_a_new_person_must_be_a_live_human_with_an_email():
    assert auth.new_person(found=False).refused == Refused.UNKNOWN_USER
    assert auth.new_person(found=True, deleted=True).refused == Refused.INACTIVE_USER
    assert auth.new_person(found=True, is_bot=True).refused == Refused.INACTIVE_USER
    assert auth.new_person(found=True).allowed
    assert auth.matched_person(False).refused == Refused.NO_EMAIL and auth.matched_person(True).allowed


def test_teams_are_re_read_when_unknown_or_stale_and_kept_when_slack_fails():
    assert auth.team_needs_reading(None, now=NOW, max_age=timedelta(minutes=60))
    assert not auth.team_needs_reading(TEAM, now=NOW, max_age=timedelta(minutes=60))
    assert auth.team_needs_reading(TEAM, now=NOW, max_age=timedelta(minutes=5))
    assert auth.unreadable_team(TEAM).allowed
    assert auth.unreadable_team(None).refused == Refused.TEAM_UNREADABLE


def test_the_viewer_carries_the_callers_person():
    viewer = auth.viewer("U7", is_admin=False, person_id=None)
    assert (viewer.user_id, viewer.is_admin, viewer.person_id) == ("U7", False, None)


def test_stored_thresholds_and_message_refs_read_back_typed(engine):
    """The rows are the tables: thresholds read as percents (a hand-edited bad value as the
    default, so one row cannot stop every check) and the request's DM refs as pairs."""
    with engine.begin() as conn:
        person_id = conn.execute(
            Person.__table__.insert().values(workspace_id="W", email="ana@example.com", display_name="Ana")
        ).inserted_primary_key[0]
        spec = budgets.parse_set(["org", "$400/month", "thresholds", "90,50"])
        _, after = budgets.set_budget(
            conn, workspace_id="W", kind=budgets.ORG, target_id=budgets.ORG, spec=spec, actor_user_id="UA"
        )
        assert isinstance(after, Budget) and after.thresholds == (50, 90)
        assert conn.execute(select(Budget.__table__.c.thresholds)).scalar_one() == (50, 90)
        for stored in ("0,500", "lots", "1,2,3,4,5,6,7"):
            conn.execute(update(Budget).values(thresholds=stored))
            found = budgets.budget_by_id(conn, workspace_id="W", budget_id=after.id)
            assert found.thresholds == budgets.DEFAULT_THRESHOLDS, stored
        request = budgets.create_request(
            conn, workspace_id="W", person_id=person_id, requester_user_id="U7", budget=after,
            amount_micros=1_000_000, reason="load tests",
        )  # fmt: skip
        assert isinstance(request, BudgetRequest) and request.notified == []
        budgets.set_notified(conn, workspace_id="W", request_id=request.id, refs=[("D1", "1.2")])
        found = budgets.get_request(conn, workspace_id="W", request_id=request.id)
        assert found.notified == [("D1", "1.2")]
        conn.execute(update(BudgetRequest).values(notified="not json"))
        assert budgets.get_request(conn, workspace_id="W", request_id=request.id).notified == []
