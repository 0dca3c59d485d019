"""Builders for budgets: confirmations, status lists, the ``/tokens me`` section and alert DMs
(pure: data in, Message or blocks out). The request-for-more flow is ``budget_requests.py``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

from bot.db.models import Budget, Team  # the budget and request rows are the tables
from bot.domain.periods import Period
from bot.services import budgets as b
from bot.services.budgets import BudgetStatus, PeerPace, TargetRef
from bot.slack.blocks.common import (
    Block,
    Message,
    clip,
    context,
    divider,
    header,
    message,
    section,
)
from bot.slack.blocks.format import period_text, team_mention, team_mention_of, usd, vendor_name

MAX_LINES = 40  # keeps each section under 3,000 characters

PERIOD_ADJECTIVE = {"week": "weekly", "month": "monthly", "quarter": "quarterly"}
SEE_ME = "`/tokens me` shows where your spend goes."


def ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def on_day(day: date, today: date) -> str:
    """``the 19th`` within the current month, ``Dec 2`` beyond it."""
    if (day.year, day.month) == (today.year, today.month):
        return f"the {ordinal(day.day)}"
    return f"{day:%b} {day.day}"


def period_name(period: Period, kind: str) -> str:
    if kind == "week":
        return f"the week of {period.start:%b} {period.start.day}"
    return period.label


def reset_text(period: Period) -> str:
    return f"resets {period.end:%a} {period.end:%b} {period.end.day}"


def target_text(
    budget: Budget, team: Team | None, person_slack_id: str | None = None, person_name: str = ""
) -> str:
    """Who a budget is for, drawn for the reader: a person's mention (else their name), the
    team's mention, or "the org"."""
    if budget.target_kind == b.PERSON:
        if person_slack_id:
            return f"<@{person_slack_id}>"
        return person_name or f"person {budget.target_id}"
    if budget.target_kind == b.ORG:
        return "the org"
    if team is not None:
        return team_mention_of(team)
    return team_mention(b.TEAM_KINDS[budget.target_kind], budget.target_id)


def status_target(status: BudgetStatus) -> str:
    return target_text(status.budget, status.team, status.person_slack_id, status.person_name)


def target_mention(target: TargetRef) -> str:
    """A target as written in a command, drawn for the reader."""
    if target.kind == b.PERSON:
        return f"<@{target.slack_id}>"
    if target.kind == b.ORG:
        return "the org"
    return team_mention(b.TEAM_KINDS[target.kind], target.slack_id)


def target_plain(target: TargetRef) -> str:
    """A target in plain text (headers and buttons draw no mention markup)."""
    if target.kind == b.ORG:
        return "the org"
    prefix = {b.PERSON: "@", b.GROUP: "@"}.get(target.kind, "#")
    return prefix + target.name if target.name else target.slack_id


def scope_text(budget: Budget) -> str:
    vendors = vendor_name(budget.vendor) if budget.vendor else "all vendors"
    return vendors + (", seats included" if budget.include_seats else "")


def amount_text(budget: Budget) -> str:
    return f"{usd(budget.amount_micros)}/{budget.period}"


def describe(budget: Budget | None) -> str:
    """One line for before/after confirmations."""
    if budget is None:
        return "_no budget_"
    parts = [f"*{amount_text(budget)}*", scope_text(budget)]
    parts.append(f"floor {usd(budget.floor_micros)}" if budget.floor_micros is not None else "no floor")
    parts.append(f"alerts at {', '.join(f'{t}%' for t in budget.thresholds)}")
    return " · ".join(parts)


def pace_subject(status: BudgetStatus, *, own: bool | None = None) -> str:
    """Who "reaches" a threshold at this pace: "you" only for the reader's own personal budget,
    "they" for someone else's (we do not know anyone's pronouns), else the team or the org."""
    if status.budget.target_kind == b.PERSON:
        return "you" if (status.own if own is None else own) else "they"
    return "the org" if status.budget.target_kind == b.ORG else "the team"


def forecast_text(status: BudgetStatus, *, amounts: bool = True, subject: str = "you") -> str:
    """``amounts=False`` for viewers who see percentages only: "over by $X" beside the percentage
    would give the spend behind it. ``subject`` is ``pace_subject``'s word."""
    if status.over:
        if not amounts:
            return f"over by {status.percent - 100}%"
        return f"over by {usd(status.spent_micros - status.ceiling_micros)}"
    target = status.next_threshold or 100
    day = status.reach(target)
    plural = subject in ("you", "they")
    if day is not None:
        reach = "reach" if plural else "reaches"
        return f"at this pace {subject} {reach} {target}% on {on_day(day, status.today)}"
    if status.rate == 0:
        return "no spend in the last 7 days"
    return f"at this pace {subject} {'stay' if plural else 'stays'} under {target}% this period"


def floor_text(status: BudgetStatus) -> str:
    floor = status.budget.floor_micros
    if floor is None:
        return ""
    expected = status.floor_expected_micros or 0
    if status.spent_micros >= floor:
        return f"floor {usd(floor)} reached"
    if status.past_mid_period and status.spent_micros < expected:
        return f"below the pace of its {usd(floor)} floor ({usd(expected)} expected by now)"
    return f"floor {usd(floor)}"


def status_line(status: BudgetStatus, *, highlight: bool = False) -> str:
    budget = status.budget
    who = status_target(status)
    subject = pace_subject(status)
    scope = scope_text(budget)
    reset = reset_text(status.period)
    if status.visibility == b.HIDDEN:
        return (
            f"{who} · {amount_text(budget)} ({scope}) · its status is shown to its managers only "
            f"(too few people to show a team total) · {reset}"
        )
    if status.visibility == b.PERCENT:
        icon = ":red_circle:" if status.over else ":large_green_circle:"
        return (
            f"{icon} {who} · {PERIOD_ADJECTIVE[budget.period]} budget ({scope}): *{status.percent}%* used · "
            f"{forecast_text(status, amounts=False, subject=subject)} · {reset}"
        )
    icon = (
        ":red_circle:"
        if status.over
        else (":large_orange_circle:" if status.percent >= 80 else ":large_green_circle:")
    )
    extra = f" (incl. +{usd(status.extra_micros)} approved for this period)" if status.extra_micros else ""
    parts = [
        f"{icon} {who} · {usd(status.ceiling_micros)}/{budget.period}{extra} ({scope}): "
        f"*{usd(status.spent_micros)}* spent, *{status.percent}%*",
        forecast_text(status, subject=subject),
    ]
    if floor := floor_text(status):
        parts.append(floor)
    parts.append(reset)
    line = " · ".join(parts)
    return f"*Tightest:* {line}" if highlight else line


def _status_lines(items: Sequence[BudgetStatus]) -> list[str]:
    tight = b.tightest(items) if len(items) > 1 else None
    return [status_line(s, highlight=s is tight) for s in items]


def chunks(lines: list[str]) -> list[Block]:
    """Sections of at most MAX_LINES lines, each well under Slack's 3,000 characters."""
    blocks = []
    for start in range(0, min(len(lines), MAX_LINES * 3), MAX_LINES):
        blocks.append(section("\n".join(lines[start : start + MAX_LINES])))
    if len(lines) > MAX_LINES * 3:
        blocks.append(context(f"…and {len(lines) - MAX_LINES * 3} more."))
    return blocks


# -- command answers ---------------------------------------------------------------------------


def build_budget_changed(
    *, before: Budget | None, after: Budget, status: BudgetStatus, tz: ZoneInfo
) -> Message:
    """The answer to ``/tokens budget set``: before and after, or "unchanged" when the budget
    already was as asked (``budgets.unchanged``: nothing written, nothing audited)."""
    who = status_target(status)
    if b.unchanged(before, after):
        text = f"Budget unchanged for {who}: it is already {amount_text(after)} ({scope_text(after)})"
        return message(
            text,
            [
                section(
                    f":information_source: *Budget unchanged* for {who}: it is already {describe(after)}."
                ),
                section(status_line(status)),
                context("Nothing was changed, so nothing was added to the audit log."),
            ],
        )
    verb = "Budget set" if before is None else "Budget changed"
    text = f"{verb} for {who}: {amount_text(after)} ({scope_text(after)})"
    blocks = [
        section(f":white_check_mark: *{verb}* for {who}."),
        section(f"*Before:* {describe(before)}\n*After:* {describe(after)}"),
        section(status_line(status)),
        context(
            f"Periods follow {tz.key}: this one is {period_text(status.period)} and "
            f"{reset_text(status.period)}. "
            "Alerts go by DM once per threshold per period. The change is in the audit log."
        ),
    ]
    return message(text, blocks)


def build_budget_cleared(removed: Sequence[Budget], *, target: TargetRef) -> Message:
    lines = [f"*Before:* {describe(r)}\n*After:* _no budget_" for r in removed]
    text = f"Removed {len(removed)} budget(s) of {target_mention(target)}."
    return message(
        text,
        [
            section(f":wastebasket: {text}"),
            *chunks(lines),
            context("Its alert history and any extra approved for this period went with it. Audited."),
        ],
    )


def build_budget_show(items: Sequence[BudgetStatus], *, title: str, empty: str, note: str = "") -> Message:
    if not items:
        return message(empty, [section(empty)])
    blocks = [header(title), *chunks(_status_lines(items))]
    footer = ["Percentages are of the current period's ceiling; the forecast uses the last 7 days' pace."]
    if note:
        footer.append(note)
    blocks.append(context(*footer))
    return message(f"{title}: {len(items)} budget(s)", blocks)


def _short_list(title: str, items: Sequence[BudgetStatus], limit: int = 8) -> str:
    lines = _status_lines(items)[:limit]
    if len(items) > limit:
        lines.append(f"…and {len(items) - limit} more: `/tokens budget`")
    return clip(title + "\n" + "\n".join(lines), 3000)


def budget_me_blocks(items: Sequence[BudgetStatus]) -> list[Block]:
    """The short ``/tokens me`` section: each budget that applies, the tightest highlighted."""
    if not items:
        return []
    return [divider(), section(_short_list("*Budgets*", items))]


def with_budgets(reply: Message, items: Sequence[BudgetStatus]) -> Message:
    """``reply`` (a ``/tokens me`` answer) with the budget section before its footer."""
    extra = budget_me_blocks(items)
    if not extra:
        return reply
    blocks = list(reply.blocks)
    at = len(blocks) - 1 if blocks and blocks[-1].get("type") == "context" else len(blocks)
    return message(reply.text, [*blocks[:at], *extra, *blocks[at:]])


def budget_home_blocks(items: Sequence[BudgetStatus]) -> list[Block]:
    """The App Home's budget section: the budgets that apply to the person, as in ``/tokens me``
    (the same lines, the same tightest)."""
    if not items:
        return []
    return [
        section(_short_list("*Your budgets*", items)),
        context("`/tokens budget request <amount> <reason>` asks for more."),
    ]


# -- alerts ------------------------------------------------------------------------------------


def _whose(status: BudgetStatus, audience: str) -> str:
    budget = status.budget
    adjective = PERIOD_ADJECTIVE[budget.period]
    vendors = f" {vendor_name(budget.vendor)}" if budget.vendor else ""
    if audience == b.PERSON:
        return f"your {adjective}{vendors} AI budget"
    return f"the {adjective}{vendors} AI budget of {status_target(status)}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def build_threshold_alert(
    status: BudgetStatus, *, threshold: int, audience: str, tightest: BudgetStatus | None = None
) -> Message:
    """``tightest``: the person's tightest budget when it is another one (a request raises it)."""
    whose = _whose(status, audience)
    ceiling = usd(status.ceiling_micros)
    head = f"{status.percent}% of {whose} is used" if status.percent < 100 else f"{whose} is used up"
    period = period_name(status.period, status.budget.period)
    text = _sentence(f"{head}: {usd(status.spent_micros)} of {ceiling} in {period} (the {threshold}% alert)")
    icon = ":rotating_light:" if threshold >= 100 else ":warning:"
    pace = forecast_text(status, subject=pace_subject(status, own=audience == b.PERSON))
    details = [_sentence(pace), _sentence(reset_text(status.period))]
    if audience == b.PERSON:
        ask = "Need more? `/tokens budget request <amount> <reason>` asks your manager"
        if tightest is None:
            details.append(f"{ask}.")
        else:
            shown = f"{tightest.percent}% used"
            details.append(
                f"{ask}; it raises your tightest budget, {budget_name(tightest, 'your')} ({shown})."
            )
    return message(
        text,
        [
            section(f"{icon} {text}"),
            section(" ".join(details)),
            context(SEE_ME + " Once per threshold per period."),
        ],
    )


def build_forecast_alert(status: BudgetStatus, *, audience: str) -> Message:
    whose = _whose(status, audience)
    day = status.reach(100)
    when = on_day(day, status.today) if day else "before the period ends"
    text = (
        f"Early warning: at this pace {whose} runs out on {when}, before it {reset_text(status.period)}. "
        f"{usd(status.spent_micros)} of {usd(status.ceiling_micros)} spent so far "
        f"({status.percent}%), about {usd(int(status.rate))} a day over the last 7 days; "
        f"projected {usd(status.projected_micros)} by the end of "
        f"{period_name(status.period, status.budget.period)}."
    )
    return message(
        text, [section(f":crystal_ball: {text}"), context(SEE_ME + " One early warning per period.")]
    )


def build_floor_nudge(status: BudgetStatus, *, audience: str, peers: PeerPace | None) -> Message:
    floor = status.budget.floor_micros or 0
    whose = _whose(status, audience)
    expected = status.floor_expected_micros or 0
    text = (
        f"A gentle nudge: {whose} expects at least {usd(floor)} of use in "
        f"{period_name(status.period, status.budget.period)}, and {usd(status.spent_micros)} is used so far "
        f"(a steady pace would be about {usd(expected)} by now)."
    )
    lines = [text]
    if peers is not None:
        who = "Your teammates" if audience == b.PERSON else "Its members"
        lines.append(
            f"{who} in {team_mention_of(peers.team)} average {usd(peers.average_micros)} each so far "
            f"({peers.people} people)."
        )
    lines.append("If the tools are not helping, that is worth knowing too. " + SEE_ME)
    return message(text, [section(":seedling: " + "\n".join(lines)), context("One nudge per period.")])


def budget_name(status: BudgetStatus, whose: str) -> str:
    """``your personal budget``, ``the budget of @platform``, ``the org budget``."""
    vendors = f" {vendor_name(status.budget.vendor)}" if status.budget.vendor else ""
    if status.budget.target_kind == b.PERSON:
        return f"{whose} personal{vendors} budget"
    if status.budget.target_kind == b.ORG:
        return f"the org{vendors} budget"
    return f"the{vendors} budget of {target_text(status.budget, status.team)}"
