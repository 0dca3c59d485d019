"""Builders for the weekly recap and ``/tokens recap``. Pure: data in, Message out.

The recap is one channel message of about 16 blocks whatever the team's size: spend, value,
efficiency (several measures side by side, never one score), the case for, the case against
and the vote. Long lists are capped so every section stays under Slack's 3,000 characters.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.db.models import Person, RecapDelivery, RecapSubscription
from bot.services.recap.ledger import FAILED, POSTED, SKIPPED
from bot.services.recap.model import (
    CHOICES,
    EfficiencyLine,
    Recap,
    SpendLine,
    Tally,
    ValueLine,
    channel_label,
)
from bot.services.recap.rules import Finding, PersonFact
from bot.services.recap.subscriptions import schedule_text
from bot.slack.blocks.common import (
    MAX_SECTION_TEXT,
    Block,
    Message,
    button,
    context,
    divider,
    escape,
    fields_section,
    header,
    message,
    section,
)
from bot.slack.blocks.format import (
    change,
    count,
    duration,
    local_time,
    period_text,
    rate,
    scope_label,
    scope_mention,
    usd,
    vendor_name,
)

VOTE_PREFIX = "tokenwise_recap_vote_"
VOTE_ACTIONS = {choice: f"{VOTE_PREFIX}{choice}" for choice in CHOICES}
TALLY_BLOCK = "tokenwise_recap_tally"
PREVIEW_VALUE = "preview"

MAX_LINES = 10  # vendors / model families listed; the rest are summed in one line
MAX_NAMED = 5  # opted-in names per finding; the rest are counted
MAX_DETAIL_PEOPLE = 40  # per finding in the managers' DM
BMI_NOTE = (
    "Token use is like a body-mass index: a rough signal that says nothing about muscle. "
    "Read spend beside value, never alone."
)


def _vendor(label: str) -> str:
    return vendor_name(label) if label != "others" else "others"


def _basis(line: SpendLine) -> str:
    if not line.this_micros:
        return ""
    if line.estimated_micros == line.this_micros:
        return " _est._"
    if line.estimated_micros:
        return f" _({usd(line.estimated_micros)} est.)_"
    return " _billed_"


def _spend_line(line: SpendLine, name: str) -> str:
    parts = [f"*{escape(name)}* {usd(line.this_micros)}{_basis(line)}"]
    if line.seat_micros:
        parts[0] += f" _(incl. {usd(line.seat_micros)} seats)_"
    parts.append(f"last week {usd(line.last_micros)}")
    average = line.average_micros
    if average is not None:
        parts.append(f"4-wk avg {usd(average)}")
    return " · ".join(parts)


def _spend_lines(lines: list[SpendLine], *, vendors: bool) -> list[str]:
    shown = lines[:MAX_LINES]
    text = [_spend_line(line, _vendor(line.label) if vendors else line.label) for line in shown]
    rest = lines[MAX_LINES:]
    if rest:
        text.append(
            f"…and {len(rest)} more: {usd(sum(r.this_micros for r in rest))} this week, "
            f"{usd(sum(r.last_micros for r in rest))} last week"
        )
    return text


def _versus(current: int, average: float | None) -> str:
    if average is None or average <= 0:
        return ""
    ratio = current / average - 1
    if abs(ratio) < 0.005:
        return " (flat vs 4-wk avg)"
    return f" ({'▲' if ratio > 0 else '▼'} {abs(ratio):.0%} vs 4-wk avg)"


def _value_line(line: ValueLine) -> str | None:
    this, base, weeks = line.this, line.base, line.base_weeks

    def avg(value: int) -> float | None:
        return value / weeks if weeks else None

    parts = []
    if this.lines_accepted or base.lines_accepted:
        versus = _versus(this.lines_accepted, avg(base.lines_accepted))
        parts.append(f"{count(this.lines_accepted)} lines accepted{versus}")
    if this.acceptance_rate is not None:
        parts.append(f"{rate(this.acceptance_rate)} acceptance")
    if this.lines_added and line.vendor != "github_delivery":
        parts.append(f"{count(this.lines_added)} lines added")
    if this.commits or base.commits:
        label = "commits" if line.vendor == "github_delivery" else "AI commits"
        parts.append(f"{count(this.commits)} {label}{_versus(this.commits, avg(base.commits))}")
    if this.pull_requests or base.pull_requests:
        versus = _versus(this.pull_requests, avg(base.pull_requests))
        parts.append(f"{count(this.pull_requests)} PRs by the tool{versus}")
    if this.prs_merged or base.prs_merged:
        share = (
            f", {rate(min(1.0, this.ai_prs_merged / this.prs_merged))} AI-assisted" if this.prs_merged else ""
        )
        parts.append(
            f"{count(this.prs_merged)} PRs merged{share}{_versus(this.prs_merged, avg(base.prs_merged))}"
        )
    if this.sessions:
        parts.append(f"{count(this.sessions)} sessions")
    if this.active_seconds:
        parts.append(f"{duration(timedelta(seconds=this.active_seconds))} active")
    if not parts:
        return None
    return f"*{escape(_vendor(line.vendor))}*: " + ", ".join(parts)


def _efficiency_field(line: EfficiencyLine) -> str:
    now = usd(line.this_micros) if line.this_micros is not None else "n/a"
    text = f"*Spend per {line.label}*\n{now}"
    if line.base_micros is not None:
        text += f" (4-wk {usd(line.base_micros)}"
        if line.this_micros is not None and line.base_micros:
            ratio = line.this_micros / line.base_micros - 1
            text += ", flat" if abs(ratio) < 0.005 else f", {'▲' if ratio > 0 else '▼'} {abs(ratio):.0%}"
        text += ")"
    return text


def _people_text(finding: Finding, people: dict[int, Person], managers: bool) -> str:
    if not finding.people:
        return ""
    named: list[tuple[str, PersonFact]] = []
    hidden = 0
    for fact in finding.people:
        label = channel_label(people.get(fact.person_id))
        if label:
            named.append((label, fact))
        else:
            hidden += 1
    parts = [
        f"{escape(label)} ({fact.note})" if fact.note else escape(label) for label, fact in named[:MAX_NAMED]
    ]
    if len(named) > MAX_NAMED:
        parts.append(f"{len(named) - MAX_NAMED} more who opted in to names")
    if hidden:
        who = f"{hidden} {'person' if hidden == 1 else 'people'}"
        if managers:
            who += " (details sent privately to the team's managers)"
        else:
            who += " (not named: no manager is set for this team to receive the details)"
        parts.append(who)
    return " Who: " + "; ".join(parts) + "."


def _findings(title: str, findings: list[Finding], recap: Recap, empty: str) -> list[Block]:
    """The findings under their title, in as many sections as 3,000 characters each allow (a
    finding is never cut in the middle of its numbers)."""
    if not findings:
        return [section(f"{title}\n{empty}")]
    blocks: list[Block] = []
    text = title
    for finding in findings:
        line = f"• {escape(finding.text)}{_people_text(finding, recap.people, bool(recap.managers))}"
        if len(text) + 1 + len(line) > MAX_SECTION_TEXT:
            blocks.append(section(text))
            text = ""
        text = f"{text}\n{line}" if text else line
    blocks.append(section(text))
    return blocks


def tally_text(tally: Tally | None) -> str:
    if tally is None or tally.total == 0:
        return "No votes yet. One vote per person; click again to change yours."
    counts = " · ".join(f"{label} *{n}*" for label, n in tally.counts())
    return f"Votes so far: {counts} ({tally.total} in all; click again to change yours)"


def tally_block(tally: Tally | None) -> Block:
    block = context(tally_text(tally))
    block["block_id"] = TALLY_BLOCK
    return block


def with_tally(blocks: list[Block], tally: Tally) -> list[Block]:
    """The posted recap's blocks with the live tally replaced (for chat.update on a vote)."""
    return [tally_block(tally) if block.get("block_id") == TALLY_BLOCK else block for block in blocks]


def _vote_blocks(recap: Recap) -> list[Block]:
    value = str(recap.delivery_id) if recap.delivery_id is not None else PREVIEW_VALUE
    blocks: list[Block] = []
    if recap.last_vote is not None:
        last = recap.last_vote
        if last.total:
            result = " · ".join(f"{label} {n}" for label, n in last.counts())
            blocks.append(context(f"Last week's vote: {result} ({last.total} votes)"))
        else:
            blocks.append(context("Last week's vote: nobody voted."))
    blocks.append(section("*Was this week's AI spend worth it?* Argue from the numbers above."))
    styles = {"worth": "primary", "not_worth": "danger"}
    blocks.append(
        {
            "type": "actions",
            "block_id": "tokenwise_recap_vote",
            "elements": [
                button(label, VOTE_ACTIONS[choice], value, style=styles.get(choice))
                for choice, label in CHOICES.items()
            ],
        }
    )
    blocks.append(tally_block(None if recap.delivery_id is None else Tally()))
    return blocks


def headline(recap: Recap) -> str:
    this = recap.facts.this
    average = recap.facts.average_micros(lambda w: w.spend_micros)
    last = recap.facts.weeks[1].spend_micros if len(recap.facts.weeks) > 1 else 0
    text = f"*{usd(this.spend_micros)}* in {period_text(recap.period)}"
    text += f"\n{change(this.spend_micros, last, 'last week')}"
    if average is not None:
        text += f" · {change(this.spend_micros, average, 'the 4-week average')}"
    notes = []
    if this.estimated_micros:
        notes.append(f"{usd(this.estimated_micros)} estimated")
    if this.seat_micros:
        notes.append(f"{usd(this.seat_micros)} seats")
    if notes:
        text += f"\n_includes {', '.join(notes)}_"
    return text


def _points(n: int) -> str:
    return f"{n} point{'' if n == 1 else 's'}"


def balance(recap: Recap) -> str:
    """The balance of the case for and against, counted (never weighed) and naming no one."""
    for_n, against_n = len(recap.case_for), len(recap.case_against)
    if for_n == against_n == 0:
        return "no finding either way this week"
    if for_n == against_n:
        return f"evenly balanced, {_points(for_n)} for and {against_n} against"
    if for_n > against_n:
        return f"more for than against, {_points(for_n)} for and {against_n} against"
    return f"more against than for, {_points(against_n)} against and {for_n} for"


def verdict(recap: Recap) -> str:
    """One neutral line at the top: the balance, with the week's spend beside it; the reader
    decides in the vote."""
    facts = recap.facts
    last = facts.weeks[1].spend_micros if len(facts.weeks) > 1 else 0
    spend = f"{usd(facts.this.spend_micros)} spent, {change(facts.this.spend_micros, last, 'last week')}"
    return f"*On balance:* {balance(recap)}; {spend}."


def build_recap(recap: Recap, *, preview: bool = False) -> Message:
    """The whole recap (empty and too-small teams get their short messages instead)."""
    if recap.empty:
        return build_empty(recap)
    if recap.too_small:
        return build_too_small(recap)
    facts = recap.facts
    title = f"Weekly AI recap: {scope_label(recap)}"
    blocks: list[Block] = [header(("Preview: " if preview else "") + title), section(verdict(recap))]
    blocks.append(section(f"{scope_mention(recap)} · {escape(recap.period.label)}\n" + headline(recap)))
    if recap.vendors:
        blocks.append(section("*Spend by vendor*\n" + "\n".join(_spend_lines(recap.vendors, vendors=True))))
    if recap.families:
        blocks.append(
            section("*Spend by model family*\n" + "\n".join(_spend_lines(recap.families, vendors=False)))
        )
    # A budget's spend so far is shown only when at least the minimum of people made it.
    shown_budgets = [b for b in facts.budgets if len(b.spenders) >= recap.min_group_size]
    if shown_budgets:
        lines = [
            f"{escape(b.label)}: {usd(b.spent_micros)} of {usd(b.amount_micros)} "
            f"({b.ratio:.0%}, {escape(b.period_label)})"
            for b in shown_budgets[:MAX_LINES]
        ]
        blocks.append(section("*Budget*\n" + "\n".join(lines)))
    blocks.append(divider())
    value_lines = [text for line in recap.values if (text := _value_line(line))]
    average_active = facts.average(lambda w: w.active_people)
    active = f"*{facts.this.active_people}* people used AI tools"
    if facts.members:
        active += f" (of {facts.members} members)"
    if average_active is not None:
        active += f"; 4-wk avg {round(average_active):,}"  # people: a whole unit
    blocks.append(
        section(
            "*Value*\n"
            + active
            + "\n"
            + ("\n".join(value_lines) if value_lines else "No value signals recorded.")
        )
    )
    if recap.efficiency:
        blocks.append(section("*Efficiency*: spend divided by each measure, side by side; no single score."))
        blocks.append(fields_section([_efficiency_field(line) for line in recap.efficiency]))
    if recap.money:  # cost per merged PR and the pre-adoption baseline (recap.money_rules)
        blocks.extend(_findings(":moneybag: *Cost per PR and baseline*", recap.money, recap, ""))
    blocks.append(divider())
    blocks.extend(
        _findings(
            ":white_check_mark: *The case for*",
            recap.case_for,
            recap,
            "Nothing in this week's data speaks for the spend.",
        )
    )
    blocks.extend(
        _findings(
            ":warning: *The case against*",
            recap.case_against,
            recap,
            "No warning signs in this week's data.",
        )
    )
    blocks.append(divider())
    blocks.extend(_vote_blocks(recap))
    notes = [
        BMI_NOTE,
        "_est._ = estimated from tokens and list prices; the rest is billed. Names appear only for people "
        "who opted in (`/tokens privacy names on`).",
    ]
    if recap.hidden_before is not None or recap.withheld:
        notes.append(
            f"Left out: figures from fewer than {recap.min_group_size} people"
            + (f" (weeks before {recap.hidden_before:%b %-d})" if recap.hidden_before else "")
            + (", sent to the team's managers only" if recap.withheld and recap.managers else "")
            + "."
        )
    if preview:
        notes.append("Preview: only you see this; nothing was recorded. The chart goes in the thread.")
    else:
        notes.append("The chart of the last 8 weeks is in the thread.")
    blocks.append(context(*notes))
    text = (
        f"{title}, {period_text(recap.period)}: {usd(facts.this.spend_micros)} "
        f"({change(facts.this.spend_micros, facts.weeks[1].spend_micros, 'last week')}). "
        f"On balance: {balance(recap)}. Was it worth it? Vote in the message."
    )
    return message(text, blocks)


def build_empty(recap: Recap) -> Message:
    text = f"No AI usage recorded for {scope_mention(recap)} this week ({period_text(recap.period)})."
    return message(
        f"No AI usage recorded for {scope_label(recap)} this week.",
        [
            section(f":zzz: {text}"),
            context("Tokenwise weekly recap · `/tokens recap list` shows the schedule"),
        ],
    )


def build_too_small(recap: Recap) -> Message:
    text = (
        f"The weekly recap of {scope_mention(recap)} covers fewer than {recap.min_group_size} people with AI "
        "usage, so its numbers stay out of channels: they would all but name each person."
    )
    if recap.overlaps_team:
        text = (
            f"This week another team's people with AI usage differ from {scope_label(recap)}'s by fewer "
            f"than {recap.min_group_size}, so its numbers stay out of channels: the two recaps, "
            "subtracted, would give those few people's figures."
        )
    return message(
        f"The weekly recap of {scope_label(recap)} is not shown: fewer than {recap.min_group_size} people.",
        [section(f":lock: {text}"), context("Managers and admins see the team with `/tokens team`.")],
    )


def build_manager_detail(recap: Recap, *, reach: Collection[int] | None = None) -> Message | None:
    """The people behind the findings, for the team's managers only (a DM). ``reach``: the people
    this manager's grant reaches; a finding that involves anyone else is left out whole, since its
    figure would come partly from people the manager may not see."""
    details = recap.hidden_people_within(reach)
    if not details:
        return None
    blocks: list[Block] = [header(f"Recap detail: {scope_label(recap)}")]
    blocks.append(
        section(
            f"This week's recap of {scope_mention(recap)} ({period_text(recap.period)}) held back findings "
            f"from fewer than {recap.min_group_size} people and counted people who did not opt in to "
            "being named in channels. Here they are, for you as the team's manager."
        )
    )
    withheld = {id(f) for f in recap.withheld}
    for finding, rows in details[:20]:
        head = f"*{escape(finding.text)}*"
        if id(finding) in withheld:
            head = f"_Not posted in the channel (fewer than {recap.min_group_size} people):_\n" + head
        lines: list[str] = []
        used = len(head) + 40  # room for the "…and N more" line
        for info, fact in rows[:MAX_DETAIL_PEOPLE]:
            name = (info.display_name if info and info.display_name else None) or f"person {fact.person_id}"
            line = f"• {escape(name)}: {escape(fact.note) if fact.note else usd(fact.micros)}"
            if used + len(line) + 1 > MAX_SECTION_TEXT:
                break
            lines.append(line)
            used += len(line) + 1
        if len(rows) > len(lines):
            lines.append(f"…and {len(rows) - len(lines)} more")
        blocks.append(section(head + "\n" + "\n".join(lines)))
    blocks.append(
        context("Only you see this. Each person can see that you were shown it (`/tokens audit me`).")
    )
    return message(f"Recap detail for {scope_label(recap)}: the people behind this week's findings", blocks)


def build_preview_vote_note() -> Message:
    text = "This is a preview: votes count on the recap posted in the channel."
    return message(text, [section(text)])


# -- /tokens recap subscribe | list | unsubscribe ------------------------------------------------


def _team_mention(sub: RecapSubscription) -> str:
    return f"<!subteam^{sub.group_id}>" if sub.group_id else f"the members of <#{sub.channel_id}>"


def build_subscribed(
    sub: RecapSubscription,
    *,
    created: bool,
    next_run: datetime,
    tz: ZoneInfo,
    note: str = "",
    withheld_below: int | None = None,
) -> Message:
    """``withheld_below``: the minimum group, when the team's recap would be withheld now (fewer
    people with AI usage than that in the weeks it shows, or this week)."""
    verb = "Subscribed" if created else "Updated"
    text = (
        f":calendar: {verb}: <#{sub.channel_id}> gets the weekly recap of {_team_mention(sub)} on "
        f"{schedule_text(sub)} ({tz.key}). Next one: {local_time(next_run, tz)}."
    )
    if not sub.post_when_empty:
        text += " Weeks with no AI usage are skipped."
    if withheld_below is not None:
        text += (
            f"\n:warning: Fewer than {withheld_below} people in {_team_mention(sub)} used AI tools "
            "recently, the minimum group for a channel. As things stand the recap would be "
            "withheld: the channel gets a short notice instead of the numbers until enough people "
            "use AI tools (`TOKENWISE_MIN_GROUP_SIZE`, docs/privacy.md)."
        )
    if note:
        text += f"\n{note}"
    return message(
        text,
        [
            section(text),
            context(
                "`/tokens recap preview` shows it now, only to you · `/tokens recap list` · "
                "`/tokens recap unsubscribe`"
            ),
        ],
    )


def build_unsubscribed(channel_id: str, group_id: str) -> Message:
    who = f"<!subteam^{group_id}>" if group_id else f"the members of <#{channel_id}>"
    text = f"Unsubscribed: <#{channel_id}> no longer gets the weekly recap of {who}."
    return message(text, [section(text)])


def _delivery_text(delivery: RecapDelivery | None, tz: ZoneInfo) -> str:
    if delivery is None:
        return "not posted yet"
    week = f"week of {delivery.week_start:%b %-d}"
    if delivery.status == POSTED:
        return f"last posted {local_time(delivery.posted_at, tz)}"
    if delivery.status == SKIPPED:
        return f"{week}: skipped ({escape(delivery.error or 'no usage')})"
    if delivery.status == FAILED:
        error = escape((delivery.error or "")[:200])
        return f":x: {week}: failed after {delivery.attempts} attempt(s): `{error}`"
    return f"{week}: being posted"


def build_list(
    subs: list[RecapSubscription],
    latest: dict[int, RecapDelivery],
    *,
    tz: ZoneInfo,
    now: datetime,
    next_runs: dict[int, datetime],
) -> Message:
    if not subs:
        text = "No channel gets the weekly recap yet. `/tokens recap subscribe #channel @group` sets one up."
        return message(text, [section(text)])
    lines = []
    for sub in subs[:60]:
        line = (
            f"<#{sub.channel_id}>: {_team_mention(sub)}, {schedule_text(sub)}"
            + ("" if sub.post_when_empty else ", skip-empty")
            + f" · next {local_time(next_runs[sub.id], tz)} · {_delivery_text(latest.get(sub.id), tz)}"
        )
        lines.append(line)
    blocks: list[Block] = [header("Weekly recaps")]
    chunk: list[str] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > 2800:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    if len(subs) > 60:
        blocks.append(context(f"…and {len(subs) - 60} more."))
    blocks.append(context(f"Times are in {tz.key}."))
    return message(f"{len(subs)} weekly recap subscription(s)", blocks)
