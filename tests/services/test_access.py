"""Who sees whose numbers: the rules in bot.services.access, and every command that shows
someone else's data, allowed and refused."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from bot.db.models import AuditLog
from bot.services import access, teams
from bot.services.access import Viewer
from tests.factories import add_person
from tests.support.slack_app import (
    PAIR,
    PLATFORM,
    all_text,
    person_id,
    send,
)

pytestmark = pytest.mark.usefixtures("slack_team")

D0 = date(2026, 3, 10)


def _people(conn, *names: str) -> list[int]:
    return [add_person(conn, name, f"U{name.upper()}", workspace_id="w", domain="x.io") for name in names]


@pytest.fixture
def org(engine):
    """Team S1 = a, b, c, d, e (five people); team S2 = a, b; m manages S1; f is in no team."""
    with engine.begin() as conn:
        a, b, c, d, e, f = _people(conn, "a", "b", "c", "d", "e", "f")
        big = teams.ensure_team(conn, workspace_id="w", kind=teams.USERGROUP, slack_id="S1")
        small = teams.ensure_team(conn, workspace_id="w", kind=teams.USERGROUP, slack_id="S2")
        known = {f"U{n}": pid for n, pid in zip("ABCDE", (a, b, c, d, e), strict=True)}
        teams.apply_refresh(conn, workspace_id="w", team_id=big.id, known=known, new_members=[], today=D0)
        teams.apply_refresh(
            conn, workspace_id="w", team_id=small.id, known={"UA": a, "UB": b}, new_members=[], today=D0
        )
        teams.grant_role(
            conn, workspace_id="w", role="manager", slack_user_id="UM", team_id=big.id, granted_by="UX"
        )
    return {"a": a, "b": b, "c": c, "f": f, "big": big.id, "small": small.id}


def test_can_view_person(engine, org):
    a, b, f = org["a"], org["b"], org["f"]
    with engine.connect() as conn:

        def decide(viewer, target):
            return access.can_view_person(conn, "w", viewer, target)

        assert decide(Viewer("UA", False, a), a) == access.Decision(True, "self", access.PERSON_WHO_CAN)
        assert decide(Viewer("UADMIN", True, None), f).reason == "admin"
        assert decide(Viewer("UM", False, None), b).reason == "manager"
        manager_on_outsider = decide(Viewer("UM", False, None), f)
        assert (
            not manager_on_outsider.allowed
            and manager_on_outsider.who_can == "them, their managers and admins"
        )
        assert decide(Viewer("UA", False, a), b).reason == "denied"  # teammates do not see each other
        assert decide(Viewer("UA", False, a), None).reason == "denied"  # no person: same refusal
        assert decide(Viewer("UNONE", False, None), None).allowed is False


def test_manager_loses_sight_of_someone_who_left(engine, org):
    with engine.begin() as conn:
        known = {"UA": org["a"], "UC": org["c"]}  # b left
        teams.apply_refresh(conn, workspace_id="w", team_id=org["big"], known=known, new_members=[], today=D0)
        assert not access.can_view_person(conn, "w", Viewer("UM", False, None), org["b"]).allowed
        assert access.can_view_person(conn, "w", Viewer("UM", False, None), org["c"]).allowed


def test_can_view_team(engine, org):
    big, small = org["big"], org["small"]
    with engine.connect() as conn:

        def decide(viewer, team_id):
            return access.can_view_team(conn, "w", viewer, team_id, min_group_size=5)

        member = decide(Viewer("UA", False, org["a"]), big)
        assert (member.allowed, member.reason, member.sees_individuals) == (True, "member", False)
        assert decide(Viewer("UA", False, org["a"]), small).reason == "too_small"
        manager = decide(Viewer("UM", False, None), big)
        assert manager.sees_individuals and manager.reason == "manager"
        assert decide(Viewer("UM", False, None), small).reason == "denied"
        assert decide(Viewer("UADMIN", True, None), small).sees_individuals
        outsider = decide(Viewer("UF", False, org["f"]), big)
        assert not outsider.allowed and not outsider.sees_individuals
        assert "its managers and admins" in outsider.who_can
        assert access.can_view_team(conn, "w", Viewer("UA", False, org["a"]), small, min_group_size=2).allowed


def test_exports_roles_and_the_full_audit_log_are_for_admins():
    admin, person = Viewer("UADMIN", True, None), Viewer("UA", False, 1)
    assert access.can_export(admin) and not access.can_export(person)
    assert access.can_manage_roles(admin) and not access.can_manage_roles(person)
    assert access.can_read_audit(person, own=True) and not access.can_read_audit(person, own=False)
    assert access.can_read_audit(admin, own=False)


# -- end to end: every command that shows someone else's data --------------------------------


def _views(engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(AuditLog.actor_user_id, AuditLog.target, AuditLog.detail)
                .where(AuditLog.action == "view.person")
                .order_by(AuditLog.id)
            ).all()
        ]


def test_user_view_allows_self_managers_and_admins_and_audits_others(client, seeded):
    send(client, f"role add manager <@UBEN|ben> {PLATFORM}", user_id="UADMIN")
    assert "Your AI spend" in all_text(send(client, "<@UANA|ana> 30d", user_id="UANA"))
    assert "AI spend of <@UANA>" in all_text(send(client, "<@UANA|ana> 30d", user_id="UBEN"))
    assert "AI spend of <@UANA>" in all_text(send(client, "<@UANA|ana> 30d", user_id="ULISTED"))
    with seeded.connect() as conn:
        ana = person_id(conn, "ana@example.com")
    views = _views(seeded)
    assert [(actor, target) for actor, target, _ in views] == [
        ("UBEN", f"person:{ana}"),
        ("ULISTED", f"person:{ana}"),
    ]
    assert views[0][2].endswith("as=manager") and views[1][2].endswith("as=admin")


def test_refusal_is_identical_whatever_the_target(client, seeded, fake_slack):
    """A stranger learns nothing: a person with data, one without a record and an unknown id
    get the same words, and the target is not even looked up."""
    texts = {}
    for target in ("UBEN", "UNOMAIL", "UNOBODY"):
        reply = send(client, f"<@{target}> 30d", user_id="UIVAN")
        texts[target] = all_text(reply).replace(target, "X")
        assert "$" not in texts[target]
    assert texts["UBEN"] == texts["UNOMAIL"] == texts["UNOBODY"]
    assert "visible to them, their managers and admins" in texts["UBEN"]
    assert [c.params["user"] for c in fake_slack.calls_to("users.info")] == ["UIVAN"]  # the caller, cached
    assert _views(seeded) == []


def test_a_manager_is_refused_outside_their_teams_with_the_same_words(client, seeded):
    send(client, f"role add manager <@UBEN|ben> {PLATFORM}", user_id="UADMIN")
    outside = all_text(send(client, "<@UIVAN> 30d", user_id="UBEN")).replace("UIVAN", "X")
    unknown = all_text(send(client, "<@UNOBODY> 30d", user_id="UBEN")).replace("UNOBODY", "X")
    assert outside == unknown and "$" not in outside
    assert _views(seeded) == []


def test_admins_get_clear_answers_for_unknown_and_unlinked_users(client):
    assert "cannot find <@UNOBODY>" in all_text(send(client, "<@UNOBODY>", user_id="UADMIN"))
    assert "no usage linked to <@UNOMAIL>" in all_text(send(client, "<@UNOMAIL>", user_id="UADMIN"))
    assert "deactivated" in all_text(send(client, "<@UGONE>", user_id="UADMIN"))


def test_team_view_roles(client, seeded):
    member = all_text(send(client, f"team {PLATFORM}", user_id="UCHEN"))
    assert "Team AI spend" in member and "Members with spend" not in member
    stranger = all_text(send(client, f"team {PLATFORM}", user_id="UIVAN"))
    assert "visible to its members" in stranger and "$" not in stranger
    assert "fewer than 5" in all_text(send(client, f"team {PAIR}", user_id="UANA"))
    admin = all_text(send(client, f"team {PLATFORM}", user_id="UADMIN"))
    assert "Members with spend" in admin


def test_audit_and_export_roles(client, seeded, fake_slack):
    refused = all_text(send(client, "audit", user_id="UANA"))
    assert "for admins" in refused and "audit me" in refused
    assert "for admins" in all_text(send(client, "audit <@UBEN>", user_id="UANA"))
    assert "Who looked at your numbers" in all_text(send(client, "audit <@UANA>", user_id="UANA"))
    assert "Exports are for admins" in all_text(send(client, "export 30d", user_id="UANA"))
    assert fake_slack.calls_to("files.getUploadURLExternal") == []
    assert "Audit log" in all_text(send(client, "audit", user_id="UADMIN"))
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditLog)).scalar() == 0  # reading is not logged
