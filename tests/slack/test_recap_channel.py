"""The recap names its channel and warns before it would be withheld, end to end: signed
/tokens recap commands through the real Starlette+Bolt app, the scheduled delivery against the
recording fake Slack Web API (conversations.info as documented, or failing). SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.db.models import RecapSubscription
from bot.jobs.recaps import recap_job
from bot.services import teams
from bot.services.recap.subscriptions import DAY_NAMES
from bot.slack.blocks.common import validate
from tests.support.recaps import CHANNEL, NOW, subscribe
from tests.support.slack_app import (
    PAIR,
    PLATFORM,
    TODAY,
    all_text,
    make_runtime,
    send,
    slack_client,
)

pytestmark = pytest.mark.usefixtures("slack_team")


@pytest.fixture
def fake(slack_team):
    """The fake Slack with the demo org's whole team in its directory (conftest ``slack_team``)."""
    return slack_team


def posted(fake) -> list:
    return [c for c in fake.calls_to("chat.postMessage") if c.params.get("channel") == CHANNEL]


def make_due(engine) -> None:
    """Subscriptions made a month ago: today's 00:00 UTC moment has passed since."""
    with engine.begin() as conn:
        conn.execute(update(RecapSubscription).values(created_at=NOW - timedelta(days=30)))


def test_a_recap_of_the_channels_members_is_headed_by_the_channels_name(seeded, fake):
    today = DAY_NAMES[TODAY.weekday()][:3]
    with slack_client(seeded, fake) as client:
        # Typed in the channel, no mention: its name comes from conversations.info.
        done = send(client, f"recap subscribe {today} 00:00", user_id="UADMIN", channel_id=CHANNEL)
        assert "Subscribed: <#CPAYMENTS> gets the weekly recap of the members of <#CPAYMENTS>" in all_text(
            done
        )
        assert ":warning:" not in all_text(done)
    make_due(seeded)
    [outcome] = recap_job(make_runtime(seeded, fake), now=NOW)
    assert outcome.status == "posted"
    [post] = posted(fake)
    assert post.params["text"].startswith("Weekly AI recap: #payments, ")
    blocks = post.params["blocks"]
    assert validate(blocks) == []
    assert blocks[0]["text"]["text"] == "Weekly AI recap: #payments"
    assert blocks[1]["text"]["text"].startswith("*On balance:* ")
    assert "CPAYMENTS" not in blocks[0]["text"]["text"] + post.params["text"]


def test_without_the_channels_name_the_recap_shows_its_id_with_a_hash(seeded, fake):
    subscribe(seeded, group="", when=NOW)
    fake.fail_next("conversations.info", error="missing_scope")
    [outcome] = recap_job(make_runtime(seeded, fake), now=NOW)
    assert outcome.status == "posted"
    [post] = posted(fake)
    assert post.params["text"].startswith("Weekly AI recap: #CPAYMENTS, ")
    assert post.params["blocks"][0]["text"]["text"] == "Weekly AI recap: #CPAYMENTS"
    assert len(fake.calls_to("conversations.info")) == 1


def test_the_channels_name_is_asked_once_and_cached(seeded, fake):
    with slack_client(seeded, fake) as client:
        for _ in range(2):
            reply = send(client, "recap preview", user_id="UADMIN", channel_id=CHANNEL)
            assert "Preview: Weekly AI recap: #payments" in all_text(reply)
    assert len(fake.calls_to("conversations.info")) == 1
    with seeded.connect() as conn:
        team = teams.get_team(conn, workspace_id="default", kind=teams.CHANNEL, slack_id=CHANNEL)
    assert team.name == "payments"  # kept on the team too: a later post needs no lookup to name it


def test_subscribing_a_team_below_the_minimum_group_warns_that_the_post_would_be_withheld(seeded, fake):
    with slack_client(seeded, fake) as client:
        small = all_text(send(client, f"recap subscribe {PAIR}", user_id="UADMIN", channel_id=CHANNEL))
        large = all_text(send(client, f"recap subscribe {PLATFORM}", user_id="UADMIN", channel_id=CHANNEL))
    assert "Subscribed: <#CPAYMENTS> gets the weekly recap of <!subteam^SPAIR>" in small
    assert ":warning: Fewer than 5 people in <!subteam^SPAIR> used AI tools recently" in small
    assert "the recap would be withheld" in small
    assert "Subscribed: <#CPAYMENTS> gets the weekly recap of <!subteam^SPLATFORM>" in large
    assert ":warning:" not in large and "withheld" not in large
