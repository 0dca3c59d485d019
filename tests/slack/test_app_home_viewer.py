"""The App Home sees its viewer as the commands do, through the real Bolt app (signed events,
the fake Slack Web API on loopback, SQLite and PostgreSQL): an admin (Slack's ``is_admin`` or
TOKENWISE_ADMINS) sees org budgets in dollars, a member as a percentage; a demo-mode caller is
told whose numbers they see; a person linked by Slack id with no email on record is never told
that Slack shows no email."""

from __future__ import annotations

import calendar
import json
import re

import pytest
from sqlalchemy import update

from bot.db.models import Person
from bot.slack.blocks.common import validate
from bot.sources.demo import PEOPLE
from tests.support.slack_app import TODAY, all_text, post_event, send, slack_client

pytestmark = pytest.mark.usefixtures("slack_team")

ORG_DOLLARS = "the org · $500.00/month (all vendors): *$"


def _home(client, fake, user: str, event_id: str) -> tuple[dict, str]:
    before = len(fake.calls_to("views.publish"))
    post_event(client, {"type": "app_home_opened", "user": user, "tab": "home"}, event_id=event_id)
    view = fake.wait_for("views.publish", before + 1, timeout=30)[before].params["view"]
    assert validate(view["blocks"], max_blocks=100) == []
    return view, all_text(view)


def _org_budget_line(text: str) -> str:
    lines = [line for line in text.splitlines() if "the org ·" in line]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(
    ("how", "settings"),
    [("slack", {}), ("listed", {"TOKENWISE_ADMINS": "UANA"})],
)
def test_an_admins_home_shows_the_org_budget_in_dollars(seeded, fake_slack, how, settings):
    if how == "slack":
        fake_slack.users["UANA"]["is_admin"] = True  # users.info says so
    with slack_client(seeded, fake_slack, **settings) as client:
        send(client, "budget set org $500/month", user_id="UADMIN")
        me = all_text(send(client, "me", user_id="UANA"))
        _, home = _home(client, fake_slack, "UANA", f"EvAdm{how}")
    assert ORG_DOLLARS in me and ORG_DOLLARS in home  # the same as /tokens me shows them
    assert _org_budget_line(home) in me


def test_a_members_home_shows_the_org_budget_as_a_percentage_only(seeded, fake_slack):
    with slack_client(seeded, fake_slack) as client:
        send(client, "budget set org $500/month", user_id="UADMIN")
        me = all_text(send(client, "me", user_id="UANA"))
        _, home = _home(client, fake_slack, "UANA", "EvMember")
    assert ORG_DOLLARS not in home and "$500.00" not in home and ORG_DOLLARS not in me
    assert "monthly budget (all vendors): *" in _org_budget_line(home) and "%* used" in _org_budget_line(home)


def test_a_demo_callers_home_names_the_demo_person_they_are_shown_as(seeded, fake_slack):
    with slack_client(seeded, fake_slack, TOKENWISE_DEMO="1") as client:
        me = all_text(send(client, "me", user_id="UNOMAIL"))  # no email, no person: a demo person
        view, home = _home(client, fake_slack, "UNOMAIL", "EvDemoNote")
    note = f"Demo mode: you are shown as *{PEOPLE[0].name}*"
    assert note in me and note in home
    # Before the numbers: the note comes right after the total.
    texts = [json.dumps(block) for block in view["blocks"]]
    assert next(i for i, t in enumerate(texts) if "Demo mode" in t) < next(
        i for i, t in enumerate(texts) if "Per vendor" in t
    )


def test_outside_demo_mode_the_home_has_no_demo_note(client, fake_slack):
    _, home = _home(client, fake_slack, "UANA", "EvNoDemo")
    assert "Demo mode" not in home and "$" in home


def test_a_person_linked_by_slack_id_without_an_email_is_not_told_slack_shows_none(seeded, fake_slack):
    # Ben is linked by his Slack id, but his person has no email (an import without one); Slack
    # shows ben@example.com. His vendor rows were attributed to him through an email he no
    # longer has, so nothing is linked now.
    with seeded.begin() as conn:
        moved = update(Person).where(Person.email == "ben@example.com").values(email="x-ben@nowhere.test")
        conn.execute(moved)
        conn.execute(
            Person.__table__.insert().values(workspace_id="default", slack_user_id="UBEN", email=None)
        )
    with slack_client(seeded, fake_slack) as client:
        me = all_text(send(client, "me", user_id="UBEN"))
        _, home = _home(client, fake_slack, "UBEN", "EvNoEmail")
    for text in (me, home):
        assert "Slack shows me no email" not in text, text
        assert "your Slack account is linked to you, but I have no email on record for you" in text
        assert "/tokens link <vendor> <id> @you" in text
    # Not triggered: a Slack user with no email and no person still hears that Slack shows none.
    with slack_client(seeded, fake_slack) as client:
        assert "Slack shows me no email for you" in all_text(send(client, "me", user_id="UNOMAIL"))


def test_the_home_says_which_days_the_month_covers_and_marks_this_week_partial(client, fake_slack):
    _, home = _home(client, fake_slack, "UANA", "EvSoFar")
    days = calendar.monthrange(TODAY.year, TODAY.month)[1]
    # The month in progress: the days covered so far, never its future end as if it were data.
    assert f"so far ({TODAY.day} of {days} days)" in home, home
    assert f"{TODAY.replace(day=days):%b} {days}, {TODAY.year}" not in home or TODAY.day == days
    # The 8-week trend: only the current week is partial, with its days so far.
    partial = re.findall(r"\(so far, (\d) of 7 days\)", home)
    assert partial == [str(TODAY.weekday() + 1)], home
