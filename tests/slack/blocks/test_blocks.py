"""Builders are pure: data in, Block Kit out, always within Slack's limits."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.periods import parse_period
from bot.services.people import UnlinkedActor
from bot.services.reports import SpendReport, Value, VendorSpend
from bot.services.status import SourceStatus, StatusReport
from bot.slack.blocks.common import MAX_MESSAGE_BLOCKS, message, section, validate
from bot.slack.blocks.reports import build_error, build_help, build_me, build_org, build_status

PERIOD = parse_period("2026-03", date(2026, 3, 20))


def _report():
    return SpendReport(
        PERIOD,
        vendors=[
            VendorSpend(
                "cursor", cost_micros=12_340_000, input_tokens=1_000_000, output_tokens=20_000, requests=40
            ),
            VendorSpend(
                "claude_code",
                cost_micros=5_000_000,
                estimated_micros=5_000_000,
                unattributed_micros=1_000_000,
            ),
        ],
        value=[Value("cursor", lines_accepted=420, acceptances=30, rejections=10)],
        previous_total_micros=10_000_000,
        active_people=3,
    )


def test_me_shows_total_change_estimates_and_value():
    msg = build_me(_report(), who="Ana", models=[("cursor", "gpt-5", 12_340_000)], tz=ZoneInfo("UTC"))
    text = str(msg.blocks)
    assert "$17.34" in text and "▲ 73% vs previous period ($10.00)" in text
    assert "*Claude Code*: $5.00 _(est.)_" in text
    assert "420 lines accepted, 75% acceptance" in text
    assert "Top models: gpt-5 ($12.34)" in text
    assert msg.text.startswith("Your AI spend March 2026: $17.34")
    assert validate(msg.blocks) == []


def test_org_shows_unattributed():
    msg = build_org(_report(), models=[])
    assert "Unattributed (not linked to a person): $1.00" in str(msg.blocks)
    assert validate(msg.blocks) == []


def test_empty_report_says_so():
    msg = build_me(SpendReport(PERIOD), who="Ana", models=[], tz=ZoneInfo("UTC"))
    assert "No AI spend recorded" in str(msg.blocks)
    assert "no value signals recorded for this period" in str(msg.blocks)


def test_help_error_and_status_are_valid():
    assert validate(build_help(is_admin=True).blocks) == []
    error = build_error("bad thing", "/tokens me [period]")
    assert "Usage: `/tokens me [period]`" in str(error.blocks)
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    status = StatusReport(
        [
            SourceStatus("openai", True, timedelta(minutes=15), None, now, None, None, 0, 120),
            SourceStatus(
                "cursor",
                True,
                timedelta(hours=1),
                None,
                now,
                "cursor: teams/spend: HTTP 500",
                now + timedelta(1),
                2,
                0,
            ),
        ],
        [UnlinkedActor("openrouter", "openrouter_key:abc", 2_500_000)],
    )
    msg = build_status(status, tz=ZoneInfo("Europe/Berlin"))
    text = str(msg.blocks)
    assert "2026-03-01 13:00 CET" in text and "HTTP 500" in text and "$2.50" in text
    assert msg.text == "Tokenwise sources: 1 of 2 healthy"
    assert validate(msg.blocks) == []


def test_message_caps_blocks_and_validate_catches_overflows():
    msg = message("t", [section(f"row {i}") for i in range(80)])
    assert len(msg.blocks) == MAX_MESSAGE_BLOCKS and "left out" in str(msg.blocks[-1])
    assert validate([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
    assert section("y" * 5000)["text"]["text"].endswith("…")


def test_spend_beside_value_is_three_measures_side_by_side():
    from bot.slack.blocks.reports import value_line

    report = _report()  # $17.34, 420 lines accepted in Cursor
    report.value.append(Value("github_delivery", prs_merged=4, ai_prs_merged=2, commits=9))
    report.value.append(Value("claude_code", commits=3))
    ratios = report.ratios()
    # $17.34 / 420 = $0.0413; / 3 AI commits (the code host's 9 are not AI commits); / 4 PRs
    assert (ratios.per_accepted_line, ratios.per_ai_commit, ratios.per_merged_pr) == (
        41_286,
        5_780_000,
        4_335_000,
    )
    assert value_line(ratios) == (
        "*Spend beside value*: $0.04 per accepted line · $5.78 per AI commit · $4.34 per merged PR"
    )


def test_a_persons_value_line_carries_the_team_median_where_there_is_one():
    from bot.services.reports import ValueRatios
    from bot.slack.blocks.reports import value_line

    mine = ValueRatios(per_accepted_line=50_000, per_ai_commit=None, per_merged_pr=9_000_000)
    team = ValueRatios(per_accepted_line=40_000, per_ai_commit=2_000_000, per_merged_pr=None)
    assert value_line(mine, [("team", team)]) == (
        "*Spend beside value*: $0.05 per accepted line (team median $0.04) · no AI commits"
        " · $9.00 per merged PR"
    )
    assert value_line(ValueRatios()) == (
        "*Spend beside value*: no value signals recorded for this period, so it cannot be weighed yet."
    )
