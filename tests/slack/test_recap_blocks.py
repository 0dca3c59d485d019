"""The recap's pure builders: the one-line balance at the top, no dangling sentence when a side
is empty, whole numbers for people, the channel's name in header and notification text, and the
subscribe reply's warning when the post would be withheld."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.db.models import RecapSubscription
from bot.slack.blocks.common import validate
from bot.slack.blocks.recap import build_recap, build_subscribed, verdict
from tests.support.recap_builders import make_recap, week


@pytest.mark.parametrize(
    ("for_n", "against_n", "balance"),
    [
        (0, 0, "no finding either way this week"),
        (2, 2, "evenly balanced, 2 points for and 2 against"),
        (1, 1, "evenly balanced, 1 point for and 1 against"),
        (3, 1, "more for than against, 3 points for and 1 against"),
        (0, 1, "more against than for, 1 point against and 0 for"),
    ],
)
def test_the_verdict_counts_both_sides_in_one_line(for_n, against_n, balance):
    recap = make_recap(case_for=for_n, case_against=against_n)
    line = verdict(recap)
    assert line == f"*On balance:* {balance}; $1,200.00 spent, ▲ 9% vs last week ($1,100.00)."
    assert "\n" not in line


def test_the_recap_opens_with_the_verdict_and_names_the_channel():
    message = build_recap(make_recap(case_against=1))
    assert validate(message.blocks) == []
    header, top = message.blocks[0], message.blocks[1]
    assert header["text"]["text"] == "Weekly AI recap: #payments"
    assert top["text"]["text"].startswith("*On balance:* more against than for, 1 point against and 0 for;")
    assert message.text.startswith("Weekly AI recap: #payments, ")
    assert "On balance: more against than for, 1 point against and 0 for. Was it worth it?" in message.text
    text = str(message.blocks)
    # An empty side says so in a whole sentence, never "... makes the case for."
    assert "Nothing in this week's data speaks for the spend." in text and "makes the case for." not in text
    with_for = str(build_recap(make_recap(case_for=1)).blocks)
    assert "No warning signs in this week's data." in with_for and "speaks for the spend" not in with_for


def test_people_are_whole_numbers_even_as_an_average():
    weeks = [week(0, 500, active=9), week(1, 400, active=6), week(2, 400, active=7), week(3, 400, active=6)]
    weeks += [week(n, 400, active=6) for n in range(4, 8)]
    text = str(build_recap(make_recap(weeks)).blocks)
    assert "*9* people used AI tools; 4-wk avg 6" in text  # 6.25 people: shown as 6
    assert "6.2" not in text and "6.3" not in text


def _sub(group: str = "") -> RecapSubscription:
    return RecapSubscription(
        id=1,
        workspace_id="default",
        channel_id="CPAYMENTS",
        group_id=group,
        weekday=0,
        local_time="09:00",
        post_when_empty=True,
        created_by="UADMIN",
    )


def test_subscribing_warns_only_when_the_post_would_be_withheld():
    now = datetime(2026, 3, 9, 9, tzinfo=UTC)
    warned = build_subscribed(_sub("SPAIR"), created=True, next_run=now, tz=ZoneInfo("UTC"), withheld_below=5)
    assert validate(warned.blocks) == []
    assert (
        ":warning: Fewer than 5 people in <!subteam^SPAIR> used AI tools recently, the minimum "
        "group for a channel. As things stand the recap would be withheld"
    ) in warned.text
    calm = build_subscribed(_sub(), created=True, next_run=now, tz=ZoneInfo("UTC"))
    assert ":warning:" not in calm.text and "withheld" not in calm.text
