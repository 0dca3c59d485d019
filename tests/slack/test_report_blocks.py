"""Pure builders of the report buttons, the team medians and the "why $0.00" explanation: their
words, and Block Kit's limits (50 blocks, 3000-character sections, 75-character buttons)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.db.models import Team
from bot.domain.periods import calendar_period
from bot.services import teams
from bot.services.me import TeamMedian
from bot.services.no_usage import NO_EMAIL, NO_MATCH, NONE_IN_PERIOD, ConnectedSource, NoUsage
from bot.services.reports import SpendReport, Value, ValueRatios
from bot.slack.blocks.common import Message, context, message, section, validate
from bot.slack.blocks.no_usage import build_no_usage, no_usage_blocks
from bot.slack.blocks.reports import (
    as_modal,
    open_team_buttons,
    period_buttons,
    value_line,
    value_section,
    with_actions,
)

TZ = ZoneInfo("Europe/Berlin")
SYNCED = datetime(2026, 3, 18, 8, 0, tzinfo=UTC)


def _team(index: int, name: str = "platform") -> Team:
    return Team(id=index, workspace_id="default", kind=teams.USERGROUP, slack_id=f"S{index}", name=name)


def test_each_team_median_follows_the_same_measure_and_never_becomes_one_score():
    mine = ValueRatios(per_accepted_line=50_000, per_ai_commit=3_000_000, per_merged_pr=None)
    platform = ValueRatios(per_accepted_line=40_000, per_ai_commit=None, per_merged_pr=9_000_000)
    pair = ValueRatios(per_accepted_line=60_000, per_ai_commit=2_000_000, per_merged_pr=None)
    assert value_line(mine, [("@platform", platform), ("@pair", pair)]) == (
        "*Spend beside value*: $0.05 per accepted line (@platform median $0.04, @pair median $0.06)"
        " · $3.00 per AI commit (@pair median $2.00) · no merged PRs"
    )
    assert (
        value_line(mine)
        == "*Spend beside value*: $0.05 per accepted line · $3.00 per AI commit · no merged PRs"
    )


def test_the_value_section_names_the_team_by_its_label():
    report = SpendReport(
        calendar_period("month", date(2026, 3, 18)), [], [Value("cursor", lines_accepted=10)]
    )
    block = value_section(report, [TeamMedian(_team(1), ValueRatios(per_accepted_line=1))])
    assert "Value signals" in block["text"]["text"] and validate([block]) == []


def test_period_buttons_carry_the_command_to_run_again():
    block = period_buttons("team <!subteam^S1>")
    values = {e["action_id"]: e["value"] for e in block["elements"]}
    assert values == {
        "tokens_period_7d": "team <!subteam^S1> 7d",
        "tokens_period_30d": "team <!subteam^S1> 30d",
        "tokens_period_quarter": "team <!subteam^S1> quarter",
    }
    assert validate([block]) == []


def test_open_team_buttons_only_for_managers_and_within_limits():
    assert open_team_buttons([]) is None
    block = open_team_buttons([_team(i, "a-very-long-team-name-" * 5) for i in range(9)])
    assert len(block["elements"]) == 5  # the first few; the App Home lists every team
    assert all(len(e["text"]["text"]) <= 75 for e in block["elements"])
    assert block["elements"][3]["value"] == "team <!subteam^S3>"
    assert len({e["action_id"] for e in block["elements"]}) == 5  # unique within the block


def test_buttons_stay_when_the_body_fills_the_message():
    full = message("t", [section(f"row {i}") for i in range(60)])
    kept = with_actions(full, period_buttons("me"), None, open_team_buttons([_team(1)]))
    assert len(kept.blocks) == 50 and [b["type"] for b in kept.blocks[-2:]] == ["actions", "actions"]
    assert validate(kept.blocks) == []
    short = with_actions(message("t", [section("a")]), period_buttons("me"))
    assert len(short.blocks) == 2


def test_a_modal_holds_the_reply_within_a_views_limits():
    modal = as_modal(Message("t", [context(f"{i}") for i in range(120)]))  # never from message()
    assert modal["type"] == "modal" and len(modal["blocks"]) == 100
    assert len(modal["title"]["text"]) <= 24


def _explained(reason: str, **kw) -> NoUsage:
    sources = [ConnectedSource("cursor", True, SYNCED), ConnectedSource("openai", False, None)]
    return NoUsage(reason, kw.pop("email", "lena@x.io"), kw.pop("identities", []), sources, **kw)


def test_the_explanation_names_the_email_the_sources_and_the_next_step():
    no_match = all_text(no_usage_blocks(_explained(NO_MATCH, identities=["email:lena@x.io"]), **ARGS))
    assert "I matched your Slack email `lena@x.io`" in no_match
    assert "`/tokens link <vendor> <id> @you`" in no_match and "`/tokens link github <login>`" in no_match
    assert (
        "Cursor (ok, last sync 2026-03-18 09:00 CET)" in no_match
        and "OpenAI (failing, last sync never)" in no_match
    )
    assert (
        "OpenAI failed to sync lately" in no_match
        and "Identities linked to you: `email:lena@x.io`" in no_match
    )

    no_email = all_text(no_usage_blocks(_explained(NO_EMAIL, email=None), **ARGS))
    assert "Slack shows me no email for you" in no_email and "ask an admin (Ana)" in no_email
    assert "github <login>" not in no_email  # a claim still needs the email to find the person

    quiet = all_text(no_usage_blocks(_explained(NONE_IN_PERIOD, last_day=date(2026, 2, 27)), **ARGS))
    assert "*No usage in March 2026:*" in quiet and "last recorded usage was on Feb 27, 2026" in quiet
    assert "Next step" not in quiet  # linked: nothing to fix


def test_no_sources_at_all_is_said_too_and_everything_fits():
    lonely = NoUsage(NO_MATCH, "x" * 400 + "@x.io", ["github:" + "y" * 300] * 10, [])
    reply = build_no_usage(lonely, **ARGS)
    assert "No vendor source is connected yet" in all_text(reply.blocks)
    assert validate(reply.blocks) == [] and "Why $0.00" in reply.text


ARGS = {"admins_hint": "Ana", "tz": TZ, "period_label": "March 2026"}


def all_text(blocks: list[dict]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        parts.extend(e.get("text", "") for e in block.get("elements", []) if isinstance(e.get("text"), str))
    return "\n".join(parts)
