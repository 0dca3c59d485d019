"""One model, one line, in every view: the demo's Cursor rows say ``claude-4-sonnet`` and its
Claude Code rows ``claude-sonnet-4``, and ``/tokens me``, ``/tokens team``, ``/tokens org`` and
the App Home each list "Claude Sonnet 4" once, through the real Bolt app (signed requests, the
fake Slack on loopback, SQLite and PostgreSQL); the vendors' own names stay in storage."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.db.models import UsageDaily
from bot.slack.blocks.common import validate
from tests.support.slack_app import PLATFORM, all_text, post_event, send

pytestmark = pytest.mark.usefixtures("slack_team")

# A model with its cost: "Claude Sonnet 4 ($1.00)" (me, org), "Claude Sonnet 4: $1.00" (team, Home).
MODEL_LINE = re.compile(r"Claude Sonnet 4(?: \(|: )\$")


def _model_lines(text: str) -> list[str]:
    return MODEL_LINE.findall(text)


def test_the_raw_names_differ_but_every_view_lists_the_family_once(client, fake_slack, seeded):
    with seeded.connect() as conn:
        raw = set(conn.execute(select(UsageDaily.model).distinct()).scalars())
    assert {"claude-4-sonnet", "claude-sonnet-4"} <= raw  # two vendors' names for one model
    assert "Refreshed" in all_text(send(client, f"team refresh {PLATFORM}", user_id="UADMIN"))
    replies = {
        "me": send(client, "me", user_id="UANA"),
        "team": send(client, f"team {PLATFORM}", user_id="UADMIN"),
        "org": send(client, "org", user_id="UADMIN"),
    }
    for name, reply in replies.items():
        assert validate(reply["blocks"]) == [], name
        assert len(_model_lines(all_text(reply))) == 1, (name, all_text(reply))
    post_event(client, {"type": "app_home_opened", "user": "UANA", "tab": "home"}, event_id="EvModels")
    view = fake_slack.wait_for("views.publish", timeout=30)[0].params["view"]
    assert len(_model_lines(all_text(view))) == 1, all_text(view)
    # Not folded away: another model of the demo (GPT-5) is its own line beside it.
    assert re.search(r"GPT-5 \(\$", all_text(replies["org"]))
