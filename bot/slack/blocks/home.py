"""The App Home tab: a personal dashboard (pure: data in, a ``views.publish`` view out).

Home tabs allow 100 blocks; this view uses about 15 plus two per managed team (at most 15).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.services.home import Dashboard, TeamSummary
from bot.services.no_usage import NONE_IN_PERIOD, NoUsage
from bot.slack.blocks.anomalies import home_blocks
from bot.slack.blocks.budgets import budget_home_blocks
from bot.slack.blocks.common import (
    MAX_VIEW_BLOCKS,
    Block,
    button,
    context,
    divider,
    escape,
    fields_section,
    header,
    section,
    validate,
)
from bot.slack.blocks.format import comparison_text, count, shown_span, team_mention_of, usd
from bot.slack.blocks.no_usage import no_usage_blocks
from bot.slack.blocks.reports import ESTIMATE_NOTE, _spend_lines, demo_note, open_team_buttons, value_section

SPARK = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 16

COMMANDS = (
    ("/tokens me [period]", "your numbers for any period"),
    ("/tokens team @group [period]", "a team's aggregates (members, managers, admins)"),
    ("/tokens privacy names on|off", "whether channel posts may show your name"),
    ("/tokens audit me", "who looked at your numbers"),
    ("/tokens forget me", "erase your identity, keep the org's totals"),
    ("/tokens help", "every command"),
)


def sparkline(values: list[int]) -> str:
    """One character per value, scaled to the largest (all zero: the lowest bar)."""
    top = max(values, default=0)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, (v * (len(SPARK) - 1) + top // 2) // top)] for v in values)


def bar(value: int, top: int, width: int = BAR_WIDTH) -> str:
    filled = 0 if top <= 0 else round(width * value / top)
    if value > 0 and filled == 0:
        filled = 1  # any spend is visible
    return "█" * filled + "░" * (width - filled)


def trend_block(weeks: list[tuple[date, int]], today: date | None = None) -> Block:
    """Weekly spend bars; the week holding ``today`` is marked as partial (its days so far)."""
    values = [micros for _, micros in weeks]
    top = max(values, default=0)
    lines = []
    for start, micros in weeks:
        line = f"{start:%b %d}  {bar(micros, top)}  {usd(micros)}"
        if today is not None and start <= today < start + timedelta(days=7):
            line += f"  (so far, {(today - start).days + 1} of 7 days)"
        lines.append(line)
    return section(
        f"*Last {len(weeks)} weeks*  {sparkline(values)}\n```" + "\n".join(lines) + "```",
    )


def _team_block(summary: TeamSummary, when: str = "this month") -> Block:
    report = summary.report
    if report is None:
        return section(
            f"*{team_mention_of(summary.team)}* · {summary.members} members\n"
            f"{summary.unapproved} member(s) joined after you were made its manager; its figures show here "
            f"once an admin approves them (`/tokens team approve @user {team_mention_of(summary.team)}`)."
        )
    total = report.total_micros
    per_person = usd(total // report.active_people) if report.active_people else "n/a"
    compare = comparison_text(total, report.previous_total_micros, report.comparison)
    return section(
        f"*{team_mention_of(summary.team)}* · {summary.members} members\n"
        f"*{usd(total)}* {when} · {report.active_people} active · {per_person} per active person\n"
        f"{compare}"
    )


HOME_PERIOD_ACTION = "tokens_home_period"
#: The periods the Home's buttons offer: the word parse_period reads, and the button's text.
HOME_PERIODS = (
    ("month", "This month"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("quarter", "This quarter"),
)


def home_period_buttons() -> Block:
    """Switch the Home's period: the listener re-publishes the tab (handlers/home.py)."""
    return {
        "type": "actions",
        "block_id": "tokens_home_periods",
        "elements": [button(label, f"{HOME_PERIOD_ACTION}_{word}", word) for word, label in HOME_PERIODS],
    }


def build_home(
    dashboard: Dashboard,
    *,
    tz: ZoneInfo,
    now: datetime,
    admins_hint: str = "an admin",
    demo_as: str | None = None,
) -> dict:
    """The tab; ``demo_as`` names the demo person a demo-mode caller is shown as."""
    month = dashboard.month
    total = usd(month.total_micros)
    compare = comparison_text(month.total_micros, month.previous_total_micros, month.comparison)
    blocks: list[Block] = [
        header(f"Your AI spend: {month.period.label}"),
        section(
            # The days the total covers, as /tokens me says them: "Dec 1–2, 2026 so far (2 of 31 days)".
            f"*{total}* {dashboard.when} · {shown_span(month.period, month.comparison)}"
            + (" _(includes estimates)_" if month.estimated_micros else "")
            + f"\n{compare}"
        ),
    ]
    if demo_as:  # whose numbers these are, before the numbers
        blocks.append(demo_note(demo_as))
    if dashboard.no_usage is None or dashboard.no_usage.reason == NONE_IN_PERIOD:
        blocks.append(home_period_buttons())  # another period cannot help one with nothing linked
    if dashboard.no_usage is not None:  # say why it is $0.00 before showing the zeros
        blocks.extend(
            no_usage_blocks(dashboard.no_usage, admins_hint=admins_hint, tz=tz, period_label=dashboard.when)
        )
    blocks.extend(home_blocks(dashboard.anomalies))  # open anomalies first: they are today's news
    blocks.extend(budget_home_blocks(dashboard.budgets))  # the same lines and tightest as /tokens me
    if month.vendors:
        blocks.append(section("*Per vendor*\n" + "\n".join(_spend_lines(month, org=False))))
        blocks.append(
            fields_section([f"*Tokens*\n{count(month.tokens)}", f"*Requests*\n{count(month.requests)}"])
        )
    else:
        blocks.append(section(f"No AI spend recorded {dashboard.when} yet."))
    blocks.append(trend_block(dashboard.weeks, now.astimezone(tz).date()))
    blocks.append(value_section(month, dashboard.medians))
    if dashboard.models:
        top = "\n".join(
            f"{i}. {escape(model)}: {usd(cost)}" for i, (_, model, cost) in enumerate(dashboard.models, 1)
        )
        blocks.append(section(f"*Top models*\n{top}"))
    if dashboard.teams:
        blocks.append(divider())
        blocks.append(header("Teams you manage"))
        for summary in dashboard.teams:
            blocks.append(_team_block(summary, dashboard.when))
        opener = open_team_buttons([summary.team for summary in dashboard.teams])
        if opener is not None:
            blocks.append(opener)
        tail = f"{dashboard.more_teams} more: " if dashboard.more_teams else ""
        blocks.append(context(f"{tail}`/tokens team @group` shows a team's members and models."))
    blocks.append(divider())
    blocks.append(section("*Commands*\n" + "\n".join(f"`{cmd}`: {what}" for cmd, what in COMMANDS)))
    blocks.append(
        context(
            ESTIMATE_NOTE,
            f"Only you can see this tab. Updated {now.astimezone(tz):%Y-%m-%d %H:%M %Z}.",
        )
    )
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}


def build_home_not_linked(
    *, admins_hint: str, explained: NoUsage | None = None, tz: ZoneInfo | None = None
) -> dict:
    if explained is not None and tz is not None:
        why = no_usage_blocks(explained, admins_hint=admins_hint, tz=tz, period_label="this month")
    else:
        why = [
            section(
                ":mag: I have no AI usage linked to you yet: your Slack email does not match a vendor "
                f"account, or I cannot see your email. Ask an admin ({admins_hint}) to link you, or "
                "claim your GitHub login with `/tokens link github <login>`."
            )
        ]
    return {
        "type": "home",
        "blocks": [
            header("Tokenwise"),
            *why,
            divider(),
            section("*Commands*\n" + "\n".join(f"`{cmd}`: {what}" for cmd, what in COMMANDS)),
        ],
    }


def validate_view(view: dict) -> list[str]:
    problems = validate(view.get("blocks", []), max_blocks=MAX_VIEW_BLOCKS)
    if view.get("type") != "home":
        problems.append(f"view type {view.get('type')!r} is not 'home'")
    return problems
