"""Privacy: folding small groups, names by opt-in, forgetting without moving org totals,
the audit trail and the admin CSV export."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.db.models import ActivityDaily, AuditLog, Identity, Person, RoleGrant, TeamMembership, UsageDaily
from bot.domain.periods import parse_period
from bot.services import privacy, reports
from bot.services.privacy import Group, channel_name, fold_small_groups
from bot.slack.blocks.privacy import FORGET_CONFIRM
from tests.support.slack_app import (
    PLATFORM,
    TODAY,
    all_text,
    cancel_forget,
    person_id,
    post_action,
    send,
)

pytestmark = pytest.mark.usefixtures("slack_team")

# -- fold_small_groups -----------------------------------------------------------------------


def test_small_groups_fold_into_others():
    groups = [
        Group("platform", 8, {"cost": 800}),
        Group("payments", 3, {"cost": 300}),
        Group("mobile", 6, {"cost": 600}),
        Group("design", 2, {"cost": 200, "prs": 4}),
    ]
    assert fold_small_groups(groups, 5) == [
        Group("platform", 8, {"cost": 800}),
        Group("mobile", 6, {"cost": 600}),
        Group("others", 5, {"cost": 500, "prs": 4}),
    ]


def test_others_too_small_takes_the_smallest_kept_group_along():
    # "others" would be 2 people: anyone could subtract it from the total, so mobile folds in.
    groups = [
        Group("platform", 8, {"cost": 8}),
        Group("mobile", 6, {"cost": 6}),
        Group("solo", 2, {"cost": 2}),
    ]
    assert fold_small_groups(groups, 5) == [
        Group("platform", 8, {"cost": 8}),
        Group("others", 8, {"cost": 8}),
    ]


def test_nothing_is_shown_when_everyone_together_is_too_few():
    assert fold_small_groups([Group("a", 2, {"cost": 1}), Group("b", 2, {"cost": 1})], 5) == []
    assert fold_small_groups([], 5) == []
    assert fold_small_groups([Group("a", 5, {"cost": 1})], 5) == [Group("a", 5, {"cost": 1})]
    with pytest.raises(ValueError):
        fold_small_groups([Group("a", 5)], 0)


@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 10**9)), max_size=12),
    st.integers(1, 10),
)
def test_folding_keeps_totals_and_never_shows_a_small_group(rows, min_size):
    groups = [Group(f"g{i}", people, {"cost": cost}) for i, (people, cost) in enumerate(rows)]
    folded = fold_small_groups(groups, min_size)
    if sum(p for p, _ in rows) < min_size:
        assert folded == []
        return
    assert all(g.people >= min_size for g in folded)
    assert sum(g.people for g in folded) == sum(p for p, _ in rows)
    assert sum(g.metrics.get("cost", 0) for g in folded) == sum(c for _, c in rows)
    assert [g.label for g in folded].count("others") <= 1


def test_names_only_by_opt_in():
    assert channel_name("Ana", True) == "Ana"
    assert channel_name("Ana", False) is None
    assert channel_name("", True) is None


# -- forgetting ------------------------------------------------------------------------------


def _org_snapshot(engine):
    """Org totals per vendor (spend, estimates, tokens, requests), value, and raw table sums.
    Only the attributed/unattributed split may change when someone is forgotten."""
    period = parse_period("90d", TODAY)
    with engine.connect() as conn:
        report = reports.org_report(conn, workspace_id="default", period=period)
        usage = conn.execute(select(func.count(), func.sum(UsageDaily.cost_micros))).one()
        activity = conn.execute(select(func.count(), func.sum(ActivityDaily.lines_accepted))).one()
    vendors = [
        (v.vendor, v.cost_micros, v.estimated_micros, v.seat_micros, v.tokens, v.requests)
        for v in report.vendors
    ]
    return vendors, report.total_micros, report.value, tuple(usage), tuple(activity)


def _unattributed(engine) -> int:
    with engine.connect() as conn:
        report = reports.org_report(conn, workspace_id="default", period=parse_period("90d", TODAY))
    return report.unattributed_micros


def test_forget_anonymises_and_keeps_org_totals_identical(seeded):
    before, unattributed = _org_snapshot(seeded), _unattributed(seeded)
    period = parse_period("90d", TODAY)
    with seeded.begin() as conn:
        ana = person_id(conn, "ana@example.com")
        ana_org_spend = conn.execute(
            select(func.sum(UsageDaily.cost_micros)).where(
                UsageDaily.person_id == ana,
                UsageDaily.in_org_total.is_(True),
                UsageDaily.day >= period.start,
                UsageDaily.day < period.end,
            )
        ).scalar()
        conn.execute(
            TeamMembership.__table__.insert().values(
                workspace_id="default", team_id=_team(conn), person_id=ana, joined_on=TODAY
            )
        )
        conn.execute(Person.__table__.update().where(Person.id == ana).values(slack_user_id="UANA"))
        conn.execute(
            RoleGrant.__table__.insert().values(
                workspace_id="default",
                role="manager",
                slack_user_id="UANA",
                team_id=_team(conn),
                granted_by="U",
            )
        )
        own_rows = conn.execute(select(func.count()).where(UsageDaily.person_id == ana)).scalar()
        result = privacy.forget_person(conn, workspace_id="default", person_id=ana, actor_user_id="UADMIN")
    assert _org_snapshot(seeded) == before
    assert _unattributed(seeded) == unattributed + ana_org_spend  # her spend is now nobody's
    assert result.usage_rows == own_rows > 0 and result.identities >= 1
    with seeded.connect() as conn:
        person = conn.execute(select(Person.__table__).where(Person.id == ana)).mappings().one()
        assert (person["email"], person["display_name"], person["slack_user_id"]) == (None, "", None)
        assert person["forgotten_at"] is not None
        assert conn.execute(select(func.count()).where(UsageDaily.person_id == ana)).scalar() == 0
        assert conn.execute(select(func.count()).where(UsageDaily.actor.like("%:ana@%"))).scalar() == 0
        assert conn.execute(select(func.count()).where(ActivityDaily.actor.like("%:ana@%"))).scalar() == 0
        assert (
            conn.execute(select(func.count()).where(UsageDaily.actor.like("forgotten:%"))).scalar()
            == own_rows
        )
        assert conn.execute(select(func.count()).where(Identity.person_id == ana)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(TeamMembership)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(RoleGrant)).scalar() == 0
        audit = conn.execute(select(AuditLog.action, AuditLog.target, AuditLog.detail)).all()
    assert audit == [("person.forget", f"person:{ana}", "")]  # that it happened, not who it was
    with seeded.begin() as conn, pytest.raises(LookupError):
        privacy.forget_person(conn, workspace_id="default", person_id=ana, actor_user_id="UADMIN")


def _team(conn) -> int:
    from bot.services import teams

    return teams.ensure_team(conn, workspace_id="default", kind=teams.USERGROUP, slack_id="SX").id


def test_cli_forget(seeded, db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    before = _org_snapshot(seeded)
    runner = CliRunner()
    declined = runner.invoke(cli_app, ["people", "forget", "ben@example.com"], input="n\n")
    assert declined.exit_code == 1
    with seeded.connect() as conn:
        assert person_id(conn, "ben@example.com")
    unknown = runner.invoke(cli_app, ["people", "forget", "nobody@example.com", "--yes"])
    assert unknown.exit_code == 2 and "no person" in unknown.output
    done = runner.invoke(cli_app, ["people", "forget", "Ben@Example.com", "--yes"])
    assert done.exit_code == 0, done.output
    assert "usage" in done.output and "anonymised" in done.output
    assert _org_snapshot(seeded) == before
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).where(Person.email == "ben@example.com")).scalar() == 0
        assert conn.execute(select(AuditLog.action, AuditLog.actor_user_id)).all() == [
            ("person.forget", "cli")
        ]


# -- Slack: forget me, privacy names, export, audit ------------------------------------------


def _button(reply: dict, action_id: str) -> dict:
    for block in reply["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no {action_id} button")


def test_forget_me_asks_first_then_forgets_on_the_button(client, seeded, fake_slack):
    send(client, "me", user_id="UBEN")  # matches UBEN to ben@example.com
    before = _org_snapshot(seeded)
    prompt = send(client, "forget me", user_id="UBEN")
    assert prompt["response_type"] == "ephemeral" and "cannot be undone" in all_text(prompt)
    confirm = _button(prompt, FORGET_CONFIRM)
    with seeded.connect() as conn:
        ben = person_id(conn, "ben@example.com")
    assert confirm["value"] == str(ben) and confirm["style"] == "danger"
    # Someone else clicking a copy of the button forgets nothing of Ben's.
    post_action(
        client,
        user_id="UANA",
        action_id=FORGET_CONFIRM,
        value=confirm["value"],
        response_url=fake_slack.server.url_for("/response_url/other"),
    )
    other = fake_slack.wait_for("response_url")[0].params
    assert "out of date" in other["text"] and other["replace_original"] is True
    post_action(
        client,
        user_id="UBEN",
        action_id=FORGET_CONFIRM,
        value=confirm["value"],
        response_url=fake_slack.server.url_for("/response_url/ben"),
    )
    done = fake_slack.wait_for("response_url", 2)[1].params
    assert "you are forgotten" in done["text"]
    assert _org_snapshot(seeded) == before
    with seeded.connect() as conn:
        assert conn.execute(select(Person.forgotten_at).where(Person.id == ben)).scalar() is not None
        assert conn.execute(select(func.count()).where(Person.email == "ben@example.com")).scalar() == 0


def test_forget_me_finds_people_by_email_before_their_first_command(client, seeded):
    with seeded.connect() as conn:
        assert (
            conn.execute(select(Person.slack_user_id).where(Person.email == "chen@example.com")).scalar()
            is None
        )
    prompt = send(client, "forget me", user_id="UCHEN")
    with seeded.connect() as conn:
        chen = person_id(conn, "chen@example.com")
    assert _button(prompt, FORGET_CONFIRM)["value"] == str(chen)


def test_forget_cancel_and_bad_input(client, seeded, fake_slack):
    assert "only ask me to forget you" in all_text(send(client, "forget <@UBEN>", user_id="UADMIN"))
    assert "only ask me to forget you" in all_text(send(client, "forget", user_id="UBEN"))
    assert "nothing to forget" in all_text(send(client, "forget me", user_id="UNOMAIL"))
    cancel_forget(client, fake_slack)
    assert "nothing was forgotten" in fake_slack.wait_for("response_url")[0].params["text"]
    with seeded.connect() as conn:
        assert conn.execute(select(func.count()).where(Person.forgotten_at.is_not(None))).scalar() == 0


def test_privacy_names_on_and_off(client, seeded):
    status = all_text(send(client, "privacy", user_id="UANA"))
    assert "never show your name" in status and "at least 5 people" in status
    assert "Saved: channel posts now may show your name" in all_text(
        send(client, "privacy names on", user_id="UANA")
    )
    with seeded.connect() as conn:
        assert conn.execute(
            select(Person.show_name_in_channels).where(Person.slack_user_id == "UANA")
        ).scalar()
    send(client, "privacy names off", user_id="UANA")
    with seeded.connect() as conn:
        assert not conn.execute(
            select(Person.show_name_in_channels).where(Person.slack_user_id == "UANA")
        ).scalar()
        details = (
            conn.execute(select(AuditLog.detail).where(AuditLog.action == "privacy.names")).scalars().all()
        )
    assert details == ["on", "off"]
    assert "names on" in all_text(send(client, "privacy names maybe", user_id="UANA"))
    assert "link" in all_text(send(client, "privacy names on", user_id="UNOMAIL"))


def test_export_sends_a_csv_by_direct_message_and_is_audited(client, seeded, fake_slack):
    reply = all_text(send(client, "export 30d", user_id="UADMIN"))
    assert "in a direct message" in reply
    assert fake_slack.calls_to("conversations.open")[0].params["users"] == "UADMIN"
    complete = fake_slack.calls_to("files.completeUploadExternal")[0].params
    assert complete["channel_id"] == "DUADMIN"
    content = fake_slack.uploads[0].decode()
    rows = list(csv.DictReader(io.StringIO(content)))
    period = parse_period("30d", TODAY)
    with seeded.connect() as conn:
        expected = conn.execute(
            select(func.sum(UsageDaily.cost_micros)).where(
                UsageDaily.person_id.is_not(None), UsageDaily.day >= period.start, UsageDaily.day < period.end
            )
        ).scalar()
        accepted = conn.execute(
            select(func.sum(ActivityDaily.lines_accepted)).where(
                ActivityDaily.person_id.is_not(None),
                ActivityDaily.day >= period.start,
                ActivityDaily.day < period.end,
            )
        ).scalar()
        audit = conn.execute(select(AuditLog.action, AuditLog.actor_user_id)).all()
    assert sum(Decimal(r["cost_usd"]) for r in rows) * 1_000_000 == expected
    assert sum(int(r["lines_accepted"]) for r in rows) == accepted
    assert {r["email"] for r in rows} >= {"ana@example.com", "ben@example.com"}
    assert all(period.start.isoformat() <= r["day"] <= period.last_day.isoformat() for r in rows)
    assert audit == [("export.usage", "UADMIN")]


def test_csv_defuses_formulas():
    assert privacy._safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert privacy._safe_cell("Ana") == "Ana"


def test_people_see_who_looked_at_their_numbers(client, seeded):
    assert "Nobody but you" in all_text(send(client, "audit me", user_id="UBEN"))
    send(client, "<@UBEN|ben> 30d", user_id="UADMIN")
    send(client, f"team {PLATFORM} 30d", user_id="UADMIN")
    send(client, "me", user_id="UBEN")  # own views are not listed
    mine = all_text(send(client, "audit me", user_id="UBEN"))
    assert "<@UADMIN> viewed the numbers of <@UBEN>" in mine
    assert "<@UADMIN> viewed, in a team view, the numbers of <@UBEN>" in mine
    assert "<@UANA>" not in mine  # only entries about Ben
    full = all_text(send(client, "audit <@UBEN|ben>", user_id="ULISTED"))
    assert "Views of <@UBEN>'s numbers" in full and "<@UADMIN> viewed the numbers of <@UBEN>" in full
    everything = all_text(send(client, "audit", user_id="UADMIN"))
    assert "<@UANA>" in everything and "<@UBEN>" in everything
    assert "$" not in everything


def test_forgotten_person_stays_forgotten_after_the_next_sync(engine):
    """A re-sync of the trailing window must neither double count nor bring the person back."""
    from datetime import date

    from sqlalchemy import func, select

    from bot.db.models import Person, UsageDaily
    from bot.services.privacy import forget_person
    from bot.services.sync import run_source
    from bot.sources.demo import PEOPLE, demo_connectors

    today = date(2026, 11, 20)
    window = dict(workspace_id="W", since=date(2026, 11, 1), until=date(2026, 11, 21), today=today)
    run_source(engine, demo_connectors(today)[0], **window)

    def totals():
        with engine.connect() as conn:
            return conn.execute(select(func.count(), func.sum(UsageDaily.cost_micros))).one()

    before = totals()
    with engine.begin() as conn:
        ana = conn.execute(select(Person.id).where(Person.email == PEOPLE[0].email)).scalar_one()
        forget_person(conn, workspace_id="W", person_id=ana, actor_user_id="UADMIN")
    run_source(engine, demo_connectors(today)[0], **window)
    assert totals() == before
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(Person.email == PEOPLE[0].email)).scalar() == 0
        assert (
            conn.execute(select(func.count()).where(UsageDaily.actor == f"email:{PEOPLE[0].email}")).scalar()
            == 0
        )
        forgotten = conn.execute(
            select(func.count()).where(UsageDaily.actor.like("forgotten:%"), UsageDaily.person_id.is_(None))
        ).scalar()
    assert forgotten > 0


def test_forget_prompt_says_what_a_later_sync_does(client):
    """The tombstones keep later usage unattributed: the prompt must not promise otherwise."""
    text = all_text(send(client, "forget me", user_id="UBEN"))
    assert "linked to you again" not in text
    assert "stays unattributed" in text and "never linked to you" in text
    assert "no new record of you is made from it" in text


def _looks_at_ben(engine, n: int) -> int:
    """``n`` admin looks at Ben's numbers, oldest first, a minute apart (Ben's person id)."""
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    with engine.begin() as conn:
        ben = person_id(conn, "ben@example.com")
        conn.execute(
            AuditLog.__table__.insert(),
            [
                {
                    "workspace_id": "default",
                    "at": start + timedelta(minutes=i),
                    "actor_user_id": "UADMIN",
                    "action": "view.person",
                    "target": privacy.person_target(ben),
                    "detail": f"look {i + 1}",
                }
                for i in range(n)
            ],
        )
    return ben


def test_audit_me_pages_and_never_drops_an_older_look(client, seeded):
    """The attack: 60 looks, then `audit me`. Before, only the newest 25 showed, silently."""
    _looks_at_ben(seeded, 60)
    send(client, "me", user_id="UBEN")  # Ben's own looks are neither listed nor counted
    first = all_text(send(client, "audit me", user_id="UBEN"))
    assert "Showing 1–25 of 60 (page 1 of 3)" in first and "`/tokens audit me page 2`" in first
    assert "look 60" in first and "look 35" not in first
    middle = all_text(send(client, "audit me page 2", user_id="UBEN"))
    assert "Showing 26–50 of 60 (page 2 of 3)" in middle and "look 35" in middle
    assert "`/tokens audit me page 3`" in middle and "`/tokens audit me page 1`" in middle
    last = all_text(send(client, "audit me page 3", user_id="UBEN"))
    assert "Showing 51–60 of 60 (page 3 of 3)" in last and "look 1)" in last
    seen = "".join(all_text(send(client, f"audit me page {n}", user_id="UBEN")) for n in (1, 2, 3))
    assert all(f"look {i})" in seen for i in range(1, 61))  # every look, on some page
    # Past the end answers the last page rather than an empty list that hides entries.
    assert "Showing 51–60 of 60" in all_text(send(client, "audit me page 9", user_id="UBEN"))


def test_audit_of_one_person_pages_for_admins_and_refuses_bad_pages(client, seeded):
    _looks_at_ben(seeded, 30)
    send(client, "me", user_id="UBEN")  # links UBEN to Ben's record
    first = all_text(send(client, "audit <@UBEN|ben>", user_id="UADMIN"))
    assert "Showing 1–25 of 30" in first and "`/tokens audit <@UBEN> page 2`" in first
    older = all_text(send(client, "audit <@UBEN|ben> page 2", user_id="UADMIN"))
    assert "Showing 26–30 of 30" in older and "look 1)" in older
    assert "Showing 1–25 of 30" in all_text(send(client, "audit page 1", user_id="UADMIN"))
    for bad in ("audit me page x", "audit me page 0", "audit me page", "audit me page -1"):
        reply = send(client, bad, user_id="UBEN")
        assert reply["response_type"] == "ephemeral" and "page" in all_text(reply).lower()
        assert "Showing" not in all_text(reply)
    # A member paging someone else's log is refused like before.
    assert "for admins" in all_text(send(client, "audit <@UBEN|ben> page 2", user_id="UANA"))
