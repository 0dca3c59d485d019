"""The saved-time messages (bot.slack.blocks.saved_time) and the team incident DM are within
Slack's limits, whatever the repository name, and say what each answer did."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from bot.db.models import AnomalyIncident, Team
from bot.services.saved_time import Answer, DueAsk, Pref
from bot.slack.blocks import anomalies as anomaly_views
from bot.slack.blocks import saved_time as views
from bot.slack.blocks.common import validate

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def test_every_saved_time_message_is_within_slacks_limits():
    ask = DueAsk(1, "UANA", "o" * 90 + "/" + "r" * 109, 123456, NOW)
    built = [
        views.build_ask(ask, ask_id=7, min_group_size=5, tz=UTC),
        views.build_answer(Answer("recorded", "30m_2h", ask.repo, ask.number), tz=UTC),
        views.build_answer(Answer("changed", "more", "acme/api", 2), tz=UTC),
        views.build_answer(Answer("refused"), tz=UTC),
        views.build_answer(Answer("unknown"), tz=UTC),
        views.build_answer(Answer("snoozed", snoozed_until=NOW + timedelta(days=7)), tz=UTC),
        views.build_status(Pref(), now=NOW, tz=UTC, min_group_size=5),
        views.build_status(Pref(True), now=NOW, tz=UTC, min_group_size=5),
        views.build_status(Pref(True, NOW + timedelta(days=3)), now=NOW, tz=UTC, min_group_size=5),
    ]
    for message in built:
        assert validate(message.blocks) == [], message.text
    assert "Changed to *More than 2 h* for acme/api#2" in built[2].text
    assert "Only the person" in built[3].text
    assert "No questions until Tue Dec 08 15:00" in built[5].text
    assert "Off." in built[6].text and "On: at most one" in built[7].text
    assert "snoozed until Fri Dec 04 15:00" in built[8].text
    # The snooze over, the status says so.
    assert (
        "On: at most one"
        in views.build_status(Pref(True, NOW - timedelta(hours=1)), now=NOW, tz=UTC, min_group_size=5).text
    )


def test_the_team_notice_is_within_slacks_limits_and_names_the_team_only():
    incident = AnomalyIncident(
        id=3, workspace_id="default", subject_kind="team", subject_key="12", person_id=None, rule="drift",
        status="open", day=date(2026, 12, 1), spend_micros=900_000_000, peak_micros=900_000_000,
        figures=json.dumps({"premium_micros": 800_000_000, "share_percent": 89, "baseline_percent": 10,
                            "active_days": 20}),
        first_seen_at=NOW, last_seen_at=NOW,
    )  # fmt: skip
    platform = Team(id=12, workspace_id="default", kind="usergroup", slack_id="SPLAT", name="platform")
    label = anomaly_views.subject_label(incident, {"team:12": platform})
    assert label == "<!subteam^SPLAT>"  # Slack renders the group's current name
    assert anomaly_views.subject_label(incident, {}) == "team 12"
    notice = anomaly_views.build_team_notice(incident, team=label)
    assert validate(notice.blocks) == []
    assert (
        "89% of" in notice.blocks[1]["text"]["text"]
        and "the team's last 20 active days" in notice.blocks[1]["text"]["text"]
    )
