"""The App Home dashboard: the pure builder within Block Kit limits, and publishing through
the fake Slack from a signed ``app_home_opened`` event."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.db.models import Team, UsageDaily
from bot.domain.money import format_usd
from bot.domain.periods import Period, calendar_period
from bot.services import home, teams
from bot.services.reports import SpendReport, VendorSpend
from bot.slack.blocks.home import bar, build_home, build_home_not_linked, sparkline, validate_view
from bot.slack.handlers.home import RecentEvents
from tests.support.inbound import inbound
from tests.support.slack_app import (
    PLATFORM,
    TODAY,
    person_id,
    post_event,
    send,
)

pytestmark = pytest.mark.usefixtures("slack_team")

NOW = datetime(2026, 3, 18, 9, 30, tzinfo=UTC)


def _texts(view: dict) -> str:
    parts = []
    for block in view["blocks"]:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        for item in block.get("fields", []) + block.get("elements", []):
            parts.append(item.get("text", "") if isinstance(item.get("text"), str) else "")
    return "\n".join(parts)


def test_sparkline_and_bars_scale_to_the_biggest_week():
    assert sparkline([0, 5, 10]) == "▁▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert bar(10, 10, 4) == "████" and bar(0, 10, 4) == "░░░░"
    assert bar(1, 1000, 4) == "█░░░"  # any spend shows


def _dashboard(team_count: int) -> home.Dashboard:
    month = calendar_period("month", date(2026, 3, 18))
    report = SpendReport(
        month,
        [
            VendorSpend("openai", 12_345_670, input_tokens=1000),
            VendorSpend("cursor", 2_000_000, seat_micros=2_000_000),
        ],
        [],
        10_000_000,
        1,
    )
    weeks = [(date(2026, 1, 26) + timedelta(days=7 * i), i * 1_000_000) for i in range(8)]
    team_summaries = [
        home.TeamSummary(
            Team(
                id=i,
                workspace_id="default",
                kind=teams.USERGROUP,
                slack_id=f"S{i}",
                name=f"team{i}",
                refreshed_at=NOW,
            ),
            6,
            report,
        )
        for i in range(team_count)
    ]
    return home.Dashboard("Ana", report, [("openai", "gpt-4.1", 12_345_670)], weeks, team_summaries)


def test_home_view_is_within_block_kit_limits_even_with_many_teams():
    for team_count in (0, 1, home.MAX_TEAMS):
        view = build_home(_dashboard(team_count), tz=ZoneInfo("Europe/Berlin"), now=NOW)
        assert validate_view(view) == []
        assert len(view["blocks"]) <= 100
        assert len(json.dumps(view)) < 250_000
        text = _texts(view)
        assert "$14.35" in text and "gpt-4.1" in text and "Last 8 weeks" in text
        assert ("Teams you manage" in text) == bool(team_count)
        assert "/tokens forget me" in text and "Updated 2026-03-18 10:30 CET" in text
    assert validate_view(build_home_not_linked(admins_hint="a workspace admin")) == []
    assert validate_view({"type": "modal", "blocks": []}) == ["view type 'modal' is not 'home'"]


def test_recent_events_expire():
    recent = RecentEvents(ttl=10)
    assert recent.seen("Ev1", now=0) is False
    assert recent.seen("Ev1", now=5) is True
    assert recent.seen("Ev1", now=11) is False


# -- end to end ------------------------------------------------------------------------------


def _open_home(client, user: str, event_id: str, tab: str = "home") -> None:
    post_event(client, inbound("app_home_opened", user=user, tab=tab), event_id=event_id)


def test_opening_home_publishes_the_dashboard_once_per_event(client, fake_slack, seeded):
    _open_home(client, "UANA", "Ev1")
    published = fake_slack.wait_for("views.publish")[0].params
    assert published["user_id"] == "UANA"
    view = published["view"]
    assert view["type"] == "home" and validate_view(view) == []
    month = calendar_period("month", TODAY)
    with seeded.connect() as conn:
        ana = person_id(conn, "ana@example.com")
        total = conn.execute(
            select(func.sum(UsageDaily.cost_micros)).where(
                UsageDaily.person_id == ana, UsageDaily.day >= month.start, UsageDaily.day < month.end
            )
        ).scalar()
        weeks = home.trend_start(TODAY)
        week_total = conn.execute(
            select(func.sum(UsageDaily.cost_micros)).where(
                UsageDaily.person_id == ana,
                UsageDaily.day >= weeks,
                UsageDaily.day < weeks + timedelta(days=7),
            )
        ).scalar()
    text = _texts(view)
    assert format_usd(total or 0) in text and format_usd(week_total or 0) in text
    assert "Teams you manage" not in text
    # Slack retries the same event: skipped. Another open: published again (idempotent view).
    _open_home(client, "UANA", "Ev1")
    _open_home(client, "UANA", "Ev2")
    fake_slack.wait_for("views.publish", 2)
    time.sleep(0.2)
    assert len(fake_slack.calls_to("views.publish")) == 2


def test_messages_tab_publishes_nothing_and_unlinked_users_get_help(client, fake_slack):
    _open_home(client, "UANA", "Ev3", tab="messages")
    _open_home(client, "UNOMAIL", "Ev4")
    published = fake_slack.wait_for("views.publish")[0].params
    time.sleep(0.2)
    assert len(fake_slack.calls_to("views.publish")) == 1 and published["user_id"] == "UNOMAIL"
    assert "no AI usage linked to you" in _texts(published["view"])


def test_managers_see_their_teams(client, fake_slack):
    send(client, f"role add manager <@UBEN|ben> {PLATFORM}", user_id="UADMIN")
    _open_home(client, "UBEN", "Ev5")
    view = fake_slack.wait_for("views.publish")[0].params["view"]
    text = _texts(view)
    assert validate_view(view) == []
    assert "Teams you manage" in text and "<!subteam^SPLATFORM>" in text and "8 members" in text


def test_dashboard_trend_has_eight_weeks_ending_this_week(seeded):
    with seeded.connect() as conn:
        ana = person_id(conn, "ana@example.com")
        board = home.load_dashboard(
            conn, workspace_id="default", person_id=ana, who="Ana", slack_user_id="UANA", today=TODAY
        )
        total = conn.execute(
            select(func.sum(UsageDaily.cost_micros)).where(
                UsageDaily.person_id == ana, UsageDaily.day >= board.weeks[0][0]
            )
        ).scalar()
    assert len(board.weeks) == 8 and board.weeks[-1][0] <= TODAY < board.weeks[-1][0] + timedelta(days=7)
    assert sum(m for _, m in board.weeks) == total
    assert isinstance(board.month.period, Period) and board.teams == []
