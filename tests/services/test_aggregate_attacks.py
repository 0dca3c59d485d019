"""Attacks on the aggregates a member may see (issue: privacy under attack, items 1, 2, 3, 5, 8),
each performed through the real HTTP app with signed requests and the recording fake Slack.

The world: 14 people with usage (each a different amount, so any difference names one person),
three colleagues who use no AI tools, and channels an attacker (U01, a plain member) builds.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.db.engine import make_engine
from bot.db.models import Person, Team, TeamMembership
from bot.domain.money import format_usd
from bot.services import aggregates
from tests import factories
from tests.support.slack_app import TODAY, all_text, send, slack_client

ACTIVE = [f"U{n:02d}" for n in range(1, 15)]  # U01 .. U14 use AI tools
IDLE = ["UIDLE1", "UIDLE2", "UIDLE3"]  # members who use none
ATTACKER, TARGET = "U01", "U02"
DAY = TODAY  # in every period asked, whatever the date


def spend(user_id: str) -> int:
    """Each active person's spend on DAY, in micro-USD: all different."""
    return (100 + 7 * ACTIVE.index(user_id)) * 1_000_000 + ACTIVE.index(user_id) * 13_000


def channel(slack_id: str) -> str:
    return f"<#{slack_id}|{slack_id.lower()}>"


def dollars(text: str) -> list[str]:
    return re.findall(r"\$[\d,]+\.\d\d", text)


def add_usage(conn, user_id: str, *, day, micros: int, vendor: str = "openai", model: str = "gpt-5") -> None:
    """One billed usage row of ``user_id`` (written directly, so the rollups are rebuilt)."""
    person = conn.execute(select(Person.id).where(Person.slack_user_id == user_id)).scalar_one()
    factories.add_usage(
        conn,
        person,
        day,
        micros,
        workspace_id="default",
        vendor=vendor,
        model=model,
        input_tokens=1000,
        actor=f"email:{user_id.lower()}@example.com",
    )


@pytest.fixture
def world(db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for user_id in ACTIVE + IDLE:
            factories.add_person(conn, user_id.lower(), user_id, workspace_id="default", display_name=user_id)
        for user_id in ACTIVE:
            add_usage(conn, user_id, day=DAY, micros=spend(user_id))
    yield engine
    engine.dispose()


@pytest.fixture
def fake_slack(fake_slack):
    """The world's people in the fake Slack's directory."""
    for user_id in [*ACTIVE, *IDLE, "UADMIN"]:
        fake_slack.users[user_id] = {
            "id": user_id,
            "name": user_id.lower(),
            "real_name": user_id,
            "is_admin": user_id == "UADMIN",
            "is_owner": False,
            "deleted": False,
            "profile": {"email": f"{user_id.lower()}@example.com", "real_name": user_id},
        }
    return fake_slack


@pytest.fixture
def client(world, fake_slack):
    with slack_client(world, fake_slack) as test_client:
        yield test_client


def test_padding_with_idle_colleagues_does_not_reach_the_minimum(client, fake_slack):
    """Attack 1: the caller, three colleagues who use no AI tools and the target. Five members,
    two active: the total minus the caller's own spend would be the target's exact spend."""
    fake_slack.channels["CPAD"] = [ATTACKER, *IDLE, TARGET]
    reply = send(client, f"team {channel('CPAD')} 30d", user_id=ATTACKER)
    text = all_text(reply)
    assert "fewer than 5 people besides you who used AI tools" in text
    assert dollars(text) == [] and format_usd(spend(TARGET)) not in text


def test_the_callers_own_share_is_not_counted_towards_the_minimum(client, fake_slack):
    """Five active people, the caller one of them: four others, so the total minus the caller's
    own is the sum of four people: refused. Six active people (five others) are shown."""
    fake_slack.channels["CFIVE"] = ACTIVE[:5]
    text = all_text(send(client, f"team {channel('CFIVE')} 30d", user_id=ATTACKER))
    assert "fewer than 5 people besides you" in text and dollars(text) == []
    six = [ATTACKER, *ACTIVE[8:13]]  # far from CFIVE's set, so no differencing either
    fake_slack.channels["CSIX"] = six
    shown = all_text(send(client, f"team {channel('CSIX')} 30d", user_id=ATTACKER))
    assert format_usd(sum(spend(u) for u in six)) in shown


@pytest.mark.parametrize("first", ["CSMALL", "CLARGE"])
def test_two_channels_that_differ_by_one_person_cannot_be_subtracted(client, fake_slack, first):
    """Attack 2: #large minus #small (they differ by the target) would give the target's spend.
    Whichever the attacker asks first, the second is withheld; an admin still sees both."""
    small = [ATTACKER, *ACTIVE[2:8]]  # the caller and six others
    fake_slack.channels["CSMALL"], fake_slack.channels["CLARGE"] = small, [*small, TARGET]
    second = "CLARGE" if first == "CSMALL" else "CSMALL"
    shown = all_text(send(client, f"team {channel(first)} 30d", user_id=ATTACKER))
    assert dollars(shown), shown
    withheld = all_text(send(client, f"team {channel(second)} 30d", user_id=ATTACKER))
    assert "differs from it by fewer than 5 active people" in withheld
    assert dollars(withheld) == []
    # The attacker's arithmetic has nothing to subtract: no second total anywhere.
    assert format_usd(spend(TARGET)) not in shown + withheld
    admin = all_text(send(client, f"team {channel('CLARGE')} 30d", user_id="UADMIN"))
    assert format_usd(spend(TARGET)) in admin  # per-member lines, for admins


def test_a_channel_that_holds_the_org_does_not_give_members_the_org_total(client, fake_slack):
    """Attack 3: #general holds everyone: its total is the org total `/tokens org` refuses."""
    fake_slack.channels["CGENERAL"] = [*ACTIVE, *IDLE]
    org_total = format_usd(sum(spend(u) for u in ACTIVE))
    refused_org = all_text(send(client, "org 30d", user_id=ATTACKER))
    assert org_total not in refused_org
    general = all_text(send(client, f"team {channel('CGENERAL')} 30d", user_id=ATTACKER))
    assert "its totals would be the org's" in general and dollars(general) == []
    # All but a handful is the same attack: the org minus three people.
    fake_slack.channels["CALMOST"] = ACTIVE[:11]
    almost = all_text(send(client, f"team {channel('CALMOST')} 30d", user_id=ATTACKER))
    assert "its totals would be the org's" in almost and dollars(almost) == []
    assert org_total in all_text(send(client, "org 30d", user_id="UADMIN"))


def test_the_org_budget_shows_members_percentages_only(client, fake_slack):
    """Attack 5: "319% used · over by $219.86" gives the org's spend. Members see percentages."""
    set_reply = all_text(send(client, "budget set org $500/month", user_id="UADMIN"))
    assert "Budget set" in set_reply, set_reply
    member = all_text(send(client, "budget show org", user_id=ATTACKER))
    assert re.search(r"\*\d+%\* used", member) and "over by 3" in member, member
    assert dollars(member) == [], member
    admin = all_text(send(client, "budget show org", user_id="UADMIN"))
    assert "spent" in admin and dollars(admin)


def test_people_who_left_are_not_listed_for_the_days_after_they_left(client, fake_slack, world):
    """Attack 8: a manager's or admin's per-member lines cover only days of membership."""
    fake_slack.channels["CTEAM"] = ACTIVE[:8]
    assert dollars(all_text(send(client, f"team {channel('CTEAM')} 30d", user_id="UADMIN")))
    with world.begin() as conn:
        team_id = conn.execute(select(Team.id).where(Team.slack_id == "CTEAM")).scalar_one()
        target = conn.execute(select(Person.id).where(Person.slack_user_id == TARGET)).scalar_one()
        conn.execute(  # the target left before the day of their usage
            update(TeamMembership)
            .where(TeamMembership.team_id == team_id, TeamMembership.person_id == target)
            .values(left_on=DAY - timedelta(days=1))
        )
    text = all_text(send(client, f"team {channel('CTEAM')} 7d", user_id="UADMIN"))
    assert f"<@{TARGET}>" not in text and format_usd(spend(TARGET)) not in text
    assert format_usd(sum(spend(u) for u in ACTIVE[:8] if u != TARGET)) in text


def test_the_rule_is_symmetric_and_counts_active_people_only():
    """The pure rule: padding, the caller's share, differencing both ways, the org's remainder."""
    org = frozenset(range(1, 15))
    team = frozenset(range(1, 8))
    assert (
        aggregates.judge(team, caller_person_id=1, org_active=org, other_teams=[], min_group_size=5) == "ok"
    )
    assert aggregates.judge(
        frozenset({1, 2}), caller_person_id=1, org_active=org, other_teams=[], min_group_size=5
    ) == (aggregates.TOO_FEW_ACTIVE)
    for other in (team | {9}, team - {7}, (team - {7}) | {9}):
        assert (
            aggregates.judge(team, caller_person_id=1, org_active=org, other_teams=[other], min_group_size=5)
            == aggregates.OVERLAPS_TEAM
        )
    assert (
        aggregates.judge(team, caller_person_id=1, org_active=org, other_teams=[team], min_group_size=5)
        == "ok"
    )
    assert (
        aggregates.judge(
            frozenset(range(1, 11)), caller_person_id=1, org_active=org, other_teams=[], min_group_size=5
        )
        == aggregates.NEAR_ORG
    )


def test_the_previous_period_of_a_shown_team_is_checked_too(client, fake_slack, world):
    """Yesterday only the target used AI: today's view passes, but "▲ N% vs the previous day
    ($X)" would give the target's exact spend. The comparison is left out for members."""
    yesterday = TODAY - timedelta(days=1)
    with world.begin() as conn:
        add_usage(conn, TARGET, day=yesterday, micros=55_560_000)
    fake_slack.channels["CSEVEN"] = ACTIVE[:7]
    text = all_text(send(client, f"team {channel('CSEVEN')} {TODAY}..{TODAY}", user_id=ATTACKER))
    assert format_usd(sum(spend(u) for u in ACTIVE[:7])) in text  # today's total is fine
    assert "$55.56" not in text and "▲" not in text and "no comparison with the previous" in text
    admin = all_text(send(client, f"team {channel('CSEVEN')} {TODAY}..{TODAY}", user_id="UADMIN"))
    assert "$55.56" in admin


def test_a_manager_with_an_unapproved_joiner_gets_no_team_total(client, fake_slack, world):
    """The manager can look up each member they reach one by one; the team total minus those is
    the joiner's spend. While anyone in it is outside the grant, the team's dollars are withheld."""
    fake_slack.channels["CMANAGED"] = ACTIVE[:8]
    assert "Members with spend" in all_text(send(client, f"team {channel('CMANAGED')} 30d", user_id="UADMIN"))
    granted = all_text(
        send(client, f"role add manager <@{ATTACKER}> {channel('CMANAGED')}", user_id="UADMIN")
    )
    assert "now manages <#CMANAGED>" in granted, granted
    fake_slack.channels["CMANAGED"] = [*ACTIVE[:8], "U09"]  # the manager invites U09
    send(client, f"team refresh {channel('CMANAGED')}", user_id=ATTACKER)
    text = all_text(send(client, f"team {channel('CMANAGED')} 30d", user_id=ATTACKER))
    assert "joined <#CMANAGED> after you were made its manager" in text and dollars(text) == []


def test_a_vendor_or_model_only_one_person_uses_is_folded_for_members(client, fake_slack, world):
    """The team passes the rules, but the target alone uses Anthropic: its vendor and model lines
    would be the target's exact spend. Members see them folded; admins see every line."""
    with world.begin() as conn:
        add_usage(conn, TARGET, day=DAY, micros=77_780_000, vendor="anthropic", model="claude-opus-4-7")
    fake_slack.channels["CSEVEN"] = ACTIVE[:7]
    member = all_text(send(client, f"team {channel('CSEVEN')} 30d", user_id=ATTACKER))
    everyone = sum(spend(u) for u in ACTIVE[:7]) + 77_780_000
    assert format_usd(everyone) in member  # the total is the team's, whole
    assert "$77.78" not in member and "Claude Opus 4.7" not in member and "Anthropic" not in member
    admin = all_text(send(client, f"team {channel('CSEVEN')} 30d", user_id="UADMIN"))
    assert "$77.78" in admin and "Claude Opus 4.7" in admin


def test_small_lines_fold_into_other_or_into_one_line():
    people = {"a": {1, 2, 3, 4, 5, 6}, "b": {2}, "c": {3}}
    split = aggregates.split_small_lines(["a", "b", "c"], people.get, caller_person_id=1, min_group_size=5)
    assert split is None  # b and c together are two people: their sum would name them
    people["c"] = {3, 4, 5, 6, 7}
    split = aggregates.split_small_lines(["a", "b", "c"], people.get, caller_person_id=1, min_group_size=5)
    assert split is None  # c now reaches the minimum, but b alone would be one person
    people["d"] = {7, 8, 9, 10}
    split = aggregates.split_small_lines(["a", "b", "d"], people.get, caller_person_id=1, min_group_size=5)
    assert split == (["a"], ["b", "d"])  # b and d together: five people, one "other" line
