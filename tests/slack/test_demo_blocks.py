"""``tokenwise demo`` writes demo-blocks.json so each message pastes into Block Kit Builder as
is: a list of {"name", "text", "message": {"blocks": [...]}} where ``message`` is the Builder's
object, every message within Slack's limits."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.slack.blocks.builder import OutsideSlackLimits, builder_messages
from bot.slack.blocks.common import MAX_MESSAGE_BLOCKS, Message, section, validate


def test_demo_blocks_json_holds_one_builder_object_per_message(tmp_path):
    out = tmp_path / "demo-blocks.json"
    result = CliRunner().invoke(
        app, ["demo", "--database-url", f"sqlite:///{tmp_path}/d.db", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "paste each one's \"message\" into Slack's Block Kit Builder" in result.output
    written = json.loads(out.read_text())
    assert [m["name"] for m in written] == [
        "/tokens me 30d  (as Ana Souza)",
        "/tokens org 30d  (admin)",
        "/tokens status  (TOKENWISE_DEMO=1)",
        "weekly recap  (everyone in the demo)",
    ]
    for entry in written:
        assert set(entry) == {"name", "text", "message"} and set(entry["message"]) == {"blocks"}
        assert validate(entry["message"]["blocks"]) == [], entry["name"]
        assert 1 <= len(entry["text"]) <= 3000
    status, weekly = written[2], written[3]
    assert status["text"] == "Tokenwise sources: demo mode, 4 synthetic sources (no vendor connected)"
    assert weekly["message"]["blocks"][0]["text"]["text"].startswith("Weekly AI recap: #demo")
    assert weekly["message"]["blocks"][1]["text"]["text"].startswith("*On balance:* ")


def test_a_message_outside_slacks_limits_is_refused_by_name():
    fits = Message("ok", [section("fine")])
    assert builder_messages([("fits", fits)]) == [
        {"name": "fits", "text": "ok", "message": {"blocks": fits.blocks}}
    ]
    too_many = Message("many", [section(f"row {i}") for i in range(MAX_MESSAGE_BLOCKS + 1)])
    with pytest.raises(OutsideSlackLimits, match="too many: 51 blocks > 50"):
        builder_messages([("fits", fits), ("too many", too_many)])
    with pytest.raises(OutsideSlackLimits, match="no text: text length"):
        builder_messages([("no text", Message("", fits.blocks))])
