"""Builders for ``/tokens team`` and ``/tokens role`` answers (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.db.models import Team
from bot.services.reports import SpendReport
from bot.services.teams import Grant
from bot.slack.blocks.common import (
    Message,
    context,
    divider,
    escape,
    fields_section,
    header,
    message,
    section,
)
from bot.slack.blocks.format import comparison_text, count, shown_span, team_label, team_mention_of, usd
from bot.slack.blocks.reports import ESTIMATE_NOTE, _spend_lines, value_section

MAX_MEMBER_LINES = 40  # section text stays under 3,000 characters


def build_team(
    report: SpendReport,
    *,
    team: Team,
    members: int,
    models: list[tuple[str, str, int]],
    member_spend: list[tuple[str, int]] | None,
    notes: list[str],
    compare_previous: bool = True,
    delivery: Sequence[str] = (),
) -> Message:
    """``member_spend`` (label, micros) is given only to managers and admins. ``compare_previous``
    False: the previous period fails the member rules, so neither its amount nor the change (which
    gives the amount) is shown."""
    total = usd(report.total_micros)
    compare = (
        comparison_text(report.total_micros, report.previous_total_micros, report.comparison)
        if compare_previous
        else "no comparison with the previous period: too few people were active then to show it"
    )
    per_person = usd(report.total_micros // report.active_people) if report.active_people else "n/a"
    blocks = [
        header(f"Team AI spend: {team_label(team)} · {report.period.label}"),
        section(
            f"*{total}* in {shown_span(report.period, report.comparison)} for {team_mention_of(team)}"
            + (" _(includes estimates)_" if report.estimated_micros else "")
            + f"\n{compare}"
        ),
        fields_section(
            [
                f"*Members*\n{members}",
                f"*Active people*\n{report.active_people}",
                f"*Per active person*\n{per_person}",
                f"*Tokens*\n{count(report.tokens)}",
            ]
        ),
    ]
    if report.vendors:
        blocks.append(section("*Per vendor*\n" + "\n".join(_spend_lines(report, org=False))))
    else:
        blocks.append(section("No AI spend recorded for this team in this period."))
    if models:
        blocks.append(
            section("*Per model*\n" + "\n".join(f"{escape(model)}: {usd(cost)}" for _, model, cost in models))
        )
    blocks.append(value_section(report))
    if delivery:  # the team's merged PRs: survival and review load (docs/value.md)
        blocks.append(section("\n".join(delivery)))
    if member_spend is not None:
        lines = [f"{label}: {usd(cost)}" for label, cost in member_spend[:MAX_MEMBER_LINES]]
        if len(member_spend) > MAX_MEMBER_LINES:
            lines.append(f"…and {len(member_spend) - MAX_MEMBER_LINES} more")
        blocks.append(divider())
        blocks.append(
            section(
                "*Members with spend* (you manage this team)\n" + ("\n".join(lines) if lines else "None.")
            )
        )
    footer = [ESTIMATE_NOTE]
    footer.append(
        "Private to you; viewing members was audited."
        if member_spend is not None
        else "Private to you: team aggregates only, no individual numbers."
    )
    blocks.append(context(*footer))
    for note in notes:
        blocks.append(context(note))
    return message(f"Team AI spend {team_label(team)} {report.period.label}: {total} ({compare})", blocks)


def build_roles(grants: list[Grant], *, admin_view: bool) -> Message:
    if not grants:
        text = (
            "No roles granted yet. Admins grant one with `/tokens role add manager @user @group`."
            if admin_view
            else "You manage no team. An admin can make you a manager of one."
        )
        return message(text, [section(text)])
    lines = [f"<@{g.slack_user_id}>: {g.role} of {team_mention_of(g.team)}" for g in grants[:80]]
    if len(grants) > 80:
        lines.append(f"…and {len(grants) - 80} more")
    title = "Roles" if admin_view else "Teams you manage"
    return message(f"{title}: {len(grants)}", [header(title), section("\n".join(lines))])


def build_done(text: str) -> Message:
    return message(text, [section(text)])
