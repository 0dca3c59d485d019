"""Anomaly messages (pure): the person's DM with the "Expected" buttons, the managers' and the
admins' DMs, the answer to a click, ``/tokens anomalies`` and the App Home section.

Every one is a DM or an ephemeral answer: nothing here is ever posted to a channel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from bot.db.models import AnomalyIncident, Person, Team
from bot.services.anomalies.detectors import DRIFT, IDLE, RUNAWAY, TEAM, UNATTRIBUTED
from bot.services.anomalies.incidents import EXPECTED, MUTE_DAYS, OPEN, Answer
from bot.slack.blocks.common import Block, Message, button, context, escape, header, message, section
from bot.slack.blocks.format import team_mention_of, usd

EXPECTED_ACTION = "anomaly_expected"  # + "_<days>": one action id per button of a message
EXPECTED_BLOCK = "anomaly_expected"

TITLES = {
    RUNAWAY: "Runaway spend",
    IDLE: "Spend with nothing to show",
    DRIFT: "Shift to the most expensive models",
    UNATTRIBUTED: "Spend on an account that maps to nobody",
}


def _figures(incident: AnomalyIncident) -> dict[str, int]:
    return json.loads(incident.figures or "{}")


def describe(incident: AnomalyIncident) -> str:
    """The rule's figures in one sentence."""
    f = _figures(incident)
    spent = f"*{usd(incident.spend_micros)}* on {incident.day:%a %b %d} (UTC)"
    if incident.rule in (RUNAWAY, UNATTRIBUTED):
        if "median_micros" not in f:
            return (
                f"{spent}, with fewer than the usual active days of history to compare with; any day "
                f"over {usd(f.get('floor_micros', 0))} is flagged until there are."
            )
        return (
            f"{spent}, against a usual day of {usd(f['median_micros'])} "
            f"(median of {f['active_days']} active days; flagged from {usd(f['limit_micros'])})."
        )
    if incident.rule == IDLE:
        return (
            f"{spent} with no accepted lines, commits, pull requests, reviews or sessions from any tool "
            f"that day (value signals showed on {f.get('signal_days', 0)} earlier days)."
        )
    if incident.rule == DRIFT:
        whose = "the team's" if incident.subject_kind == TEAM else "your"
        return (
            f"{f.get('share_percent', 0)}% of {spent} went to the most expensive models "
            f"({usd(f.get('premium_micros', 0))}), against {f.get('baseline_percent', 0)}% over {whose} "
            f"last {f.get('active_days', 0)} active days."
        )
    return spent


def subject_label(incident: AnomalyIncident, labels: Mapping[int | str, Person | Team]) -> str:
    """A person's or a team's mention (rows from ``incidents.subjects``), else their name, or the
    actor itself."""
    if incident.subject_kind == TEAM:
        team = labels.get(f"team:{incident.subject_key}")
        return team_mention_of(team) if isinstance(team, Team) else f"team {incident.subject_key}"
    if incident.person_id is not None:
        person = labels.get(incident.person_id)
        if isinstance(person, Person) and person.slack_user_id:
            return f"<@{person.slack_user_id}>"
        return (person.display_name if person else "") or f"person {incident.person_id}"
    return f"`{escape(incident.subject_key[:120])}`"


def expected_buttons(incident: AnomalyIncident) -> Block:
    return {
        "type": "actions",
        "block_id": EXPECTED_BLOCK,
        "elements": [
            button(
                f"Expected: mute {days} day{'s' if days > 1 else ''}",
                f"{EXPECTED_ACTION}_{days}",
                str(incident.id),
            )
            for days in MUTE_DAYS
        ],
    }


def build_person_notice(incident: AnomalyIncident, *, escalate_hours: int) -> Message:
    title = TITLES.get(incident.rule, incident.rule)
    text = f"{title}: {usd(incident.spend_micros)} on {incident.day:%b %d}"
    return message(
        text,
        [
            header(f":rotating_light: {title}"),
            section(describe(incident)),
            section(
                "If this is expected (a migration, a batch job, a deadline), say so and I mute this check "
                "for you for the span you pick. If it is not, an agent or a script may be running away."
            ),
            expected_buttons(incident),
            context(
                f"Only you see this. If it is still going and unanswered after {escalate_hours} hours, "
                "your managers are told. `/tokens anomalies` lists your incidents."
            ),
        ],
    )


def build_manager_notice(incident: AnomalyIncident, *, who: str, unreachable: bool) -> Message:
    title = TITLES.get(incident.rule, incident.rule)
    why = (
        "I could not reach them on Slack."
        if unreachable
        else "They were told first and have not said it is expected."
    )
    return message(
        f"{title} for {who}",
        [
            header(f":rotating_light: {title}"),
            section(f"{who}: {describe(incident)}"),
            context(
                f"{why} Open since {incident.first_seen_at:%Y-%m-%d %H:%M} UTC. You see this as their "
                "manager; they can see that you did (`/tokens audit me`)."
            ),
        ],
    )


def build_team_notice(incident: AnomalyIncident, *, team: str) -> Message:
    """A team's own incident (drift), to its managers: the team's figures, no member named."""
    title = TITLES.get(incident.rule, incident.rule)
    return message(
        f"{title} for {team}",
        [
            header(f":rotating_light: {title}"),
            section(f"{team}: {describe(incident)}"),
            section(
                "If this is expected (a new project, a model trial), mark it to mute this check for the team."
            ),
            expected_buttons(incident),
            context(
                "Sent to the team's managers only: a team's figures never go to a channel. Members with "
                "incidents of their own are told privately first."
            ),
        ],
    )


def build_admin_notice(incident: AnomalyIncident) -> Message:
    title = TITLES.get(incident.rule, incident.rule)
    actor = f"`{escape(incident.subject_key[:120])}`"
    return message(
        f"{title}: {incident.subject_key[:80]}",
        [
            header(f":rotating_light: {title}"),
            section(f"{actor}: {describe(incident)}"),
            section(
                "Link it to its owner (`/tokens link <vendor> <id> @user`) so it counts for them, or mark it "
                "expected to mute this check for it."
            ),
            expected_buttons(incident),
            context("Sent to the admins only: the account maps to nobody."),
        ],
    )


def build_answer(answer: Answer, *, tz: ZoneInfo) -> Message:
    if answer.outcome == "muted" and answer.until is not None and answer.incident is not None:
        until = f"{answer.until.astimezone(tz):%a %b %d %H:%M %Z}"
        if answer.incident.person_id is None:
            whom = "the team" if answer.incident.subject_kind == TEAM else "this account"
            text = f":white_check_mark: Marked expected. This check is muted for {whom} until {until}."
        else:
            text = (
                f":white_check_mark: Marked expected. This check is muted for you until {until}; "
                "your managers will not be told."
            )
    elif answer.outcome == "already":
        text = "This incident is already closed (back to normal, or answered before): nothing changed."
    elif answer.outcome == "refused":
        text = (
            "Only the person this incident is about (an admin, for unlinked accounts; a manager, for a "
            "team) can mark it expected."
        )
    else:
        text = "I cannot find that incident any more."
    return message(text, [section(text)])


def _line(incident: AnomalyIncident, labels: Mapping[int | str, Person | Team], tz: ZoneInfo) -> str:
    title = TITLES.get(incident.rule, incident.rule)
    if incident.status == OPEN:
        state = f"open since {incident.first_seen_at.astimezone(tz):%b %d %H:%M}"
    elif incident.status == EXPECTED:
        state = "marked expected"
    else:
        hours = (incident.close_seconds or 0) // 3600
        state = f"closed after {hours} h"
    return f"*{title}* · {subject_label(incident, labels)} · {state}\n{describe(incident)}"


def build_anomalies(
    incidents: list[AnomalyIncident], *, labels: Mapping[int | str, Person | Team], tz: ZoneInfo, scope: str
) -> Message:
    if not incidents:
        text = f"No anomalies in {scope} over the last 7 days."
        return message(text, [section(f":white_check_mark: {text}")])
    blocks: list[Block] = [header("Anomalies")]
    blocks.extend(section(_line(i, labels, tz)) for i in incidents)
    blocks.append(context(f"{scope.capitalize()}: open incidents and those closed in the last 7 days."))
    return message(f"{len(incidents)} anomalies in {scope}", blocks)


def home_blocks(incidents: list[AnomalyIncident]) -> list[Block]:
    """The App Home section: the viewer's own open incidents (nothing when there are none)."""
    if not incidents:
        return []
    lines = [f"*{TITLES.get(i.rule, i.rule)}*: {describe(i)}" for i in incidents[:5]]
    return [
        section(":rotating_light: *Open anomalies*\n" + "\n".join(lines)),
        context("`/tokens anomalies` lists them; the DM I sent lets you mark one expected."),
    ]
