"""Spend beside value in every view, through the real Bolt app (signed requests, the fake Slack
on loopback, SQLite and PostgreSQL): ``/tokens me``, ``/tokens team``, ``/tokens org`` and the
App Home each carry one "Spend beside value" line with the three measures side by side (never
one score) and buttons to switch the period."""

from __future__ import annotations

import re

import pytest

from bot.slack.blocks.common import validate
from tests.support.slack_app import PLATFORM, all_text, post_event, send

pytestmark = pytest.mark.usefixtures("slack_team")

VALUE = re.compile(r"\*Spend beside value\*: (.+)")
MEASURE = re.compile(r"per accepted line|accepted lines|AI commits?|merged PRs?")


def _value_line(text: str) -> str:
    lines = VALUE.findall(text)
    assert len(lines) == 1, text
    return lines[0]


def _buttons(blocks: list[dict]) -> dict[str, str]:
    return {
        element["action_id"]: element.get("value", "")
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }


def test_every_view_sets_spend_beside_the_three_value_measures(client, fake_slack):
    assert "Refreshed" in all_text(send(client, f"team refresh {PLATFORM}", user_id="UADMIN"))
    replies = {
        "me": send(client, "me", user_id="UANA"),
        "team": send(client, f"team {PLATFORM}", user_id="UADMIN"),
        "org": send(client, "org", user_id="UADMIN"),
    }
    post_event(client, {"type": "app_home_opened", "user": "UANA", "tab": "home"}, event_id="EvValue")
    home = fake_slack.wait_for("views.publish", timeout=30)[0].params["view"]
    views = {**{name: (reply["blocks"], all_text(reply)) for name, reply in replies.items()}}
    views["home"] = (home["blocks"], all_text(home))
    for name, (blocks, text) in views.items():
        assert validate(blocks, max_blocks=100 if name == "home" else 50) == [], name
        line = _value_line(text)
        # Three measures, each its own figure: separated, never summed into one score.
        assert len(line.split(" · ")) == 3 and len(MEASURE.findall(line)) == 3, (name, line)
        assert "score" not in line
        buttons = _buttons(blocks)
        periods = {value for action, value in buttons.items() if "period" in action}
        assert len(periods) >= 3, (name, buttons)  # 7 days, 30 days, quarter at least
    # A person's line carries the team's median beside their own (7 colleagues >= the minimum group).
    assert "(@platform median $" in _value_line(views["me"][1])
    assert "median" not in _value_line(views["org"][1])  # the org is no one's peer group
