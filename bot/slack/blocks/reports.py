"""Builders for /tokens answers: help, me, org, status and errors. Pure: data in, Message out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.db.models import Team
from bot.services.commands import SUBCOMMANDS, usage_line
from bot.services.demo import DEMO_PEOPLE, is_demo_source
from bot.services.me import TeamMedian
from bot.services.reports import SpendReport, Value, ValueRatios
from bot.services.status import SourceStatus, StatusReport
from bot.slack.blocks.common import (
    MAX_MESSAGE_BLOCKS,
    MAX_SECTION_TEXT,
    MAX_VIEW_BLOCKS,
    Block,
    Message,
    button,
    clip,
    context,
    divider,
    escape,
    fields_section,
    header,
    message,
    section,
)
from bot.slack.blocks.format import (
    comparison_text,
    count,
    duration,
    local_time,
    rate,
    shown_span,
    team_label,
    team_mention_of,
    usd,
    vendor_name,
)

ESTIMATE_NOTE = (
    "_(est.)_ marks estimates from token counts and list prices; the rest is billed by the vendor."
)


def build_help(*, is_admin: bool) -> Message:
    lines = [f"`{usage_line(name)}`: {desc}" for name, (_, desc) in SUBCOMMANDS.items()]
    lines.append("`/tokens @user [period]`: someone's numbers (themself, their managers and admins)")
    blocks = [
        header("Tokenwise: AI spend next to value"),
        section("\n".join(lines)),
        context(
            "Periods: `7d`, `30d`, `week`, `month` (default), `quarter`, `2026-03`, "
            "`2026-03-01..2026-03-15`.",
            "Admin commands are marked; you are an admin."
            if is_admin
            else "Your numbers are shown only to you.",
        ),
    ]
    return message("Tokenwise help: /tokens me, /tokens org, /tokens status, /tokens link", blocks)


def build_error(text: str, usage: str | None = None) -> Message:
    blocks = [section(f":warning: {text}")]
    if usage:
        blocks.append(context(f"Usage: `{usage}` · `/tokens help` lists every command"))
    else:
        blocks.append(context("`/tokens help` lists every command"))
    return message(text if not usage else f"{text} Usage: {usage}", blocks)


def demo_note(who: str) -> Block:
    """Whose numbers a demo-mode caller sees (``/tokens me`` and the App Home)."""
    return context(
        f":test_tube: Demo mode: you are shown as *{escape(who[:200])}*, a person of the synthetic org "
        "(`TOKENWISE_DEMO=1`); the link stays until an admin changes it."
    )


def with_demo_note(reply: Message, who: str) -> Message:
    """``reply`` (a ``/tokens me`` answer in demo mode) saying whose numbers these are."""
    return message(reply.text, [*reply.blocks, demo_note(who)])


def build_not_linked(*, admins_hint: str) -> Message:
    text = (
        "I could not find your AI usage yet: your Slack email does not match any vendor account. "
        f"Ask an admin to link you ({admins_hint}): `/tokens link <vendor> <id> @you`, "
        "or claim your GitHub login yourself with `/tokens link github <login>`."
    )
    return message(text, [section(f":mag: {text}")])


def _spend_lines(report: SpendReport, *, org: bool) -> list[str]:
    lines = []
    for spend in report.vendors:
        label = usd(spend.cost_micros)
        notes = []
        if spend.estimated_micros:
            notes.append(
                "est."
                if spend.estimated_micros == spend.cost_micros
                else f"{usd(spend.estimated_micros)} est."
            )
        if spend.seat_micros:
            notes.append(f"{usd(spend.seat_micros)} seats")
        if org and spend.unattributed_micros:
            notes.append(f"{usd(spend.unattributed_micros)} unattributed")
        if org and spend.covered_micros:
            notes.append(f"{usd(spend.covered_micros)} est. already billed under another source")
        note = f" _({', '.join(notes)})_" if notes else ""
        tokens = f" · {count(spend.tokens)} tokens" if spend.tokens else ""
        requests = f" · {count(spend.requests)} requests" if spend.requests else ""
        lines.append(f"*{vendor_name(spend.vendor)}*: {label}{note}{tokens}{requests}")
    return lines


def _value_lines(values: list[Value]) -> list[str]:
    lines = []
    for v in values:
        parts = []
        if v.lines_accepted:
            parts.append(f"{count(v.lines_accepted)} lines accepted")
        if v.lines_added:
            parts.append(f"{count(v.lines_added)} lines added")
        if v.acceptance_rate is not None:
            parts.append(f"{rate(v.acceptance_rate)} acceptance")
        if v.commits:
            parts.append(f"{count(v.commits)} commits")
        if v.pull_requests:
            parts.append(f"{count(v.pull_requests)} PRs by the tool")
        if v.prs_merged:
            # ai_prs_merged counts PRs marked AI-assisted on GitHub (trailer, label, agent).
            share = rate(min(1.0, v.ai_prs_merged / v.prs_merged))
            parts.append(f"{count(v.prs_merged)} PRs merged ({share} AI-assisted)")
        if v.sessions:
            parts.append(f"{count(v.sessions)} sessions")
        if v.active_seconds:
            parts.append(f"{duration(timedelta(seconds=v.active_seconds))} active")
        if parts:
            lines.append(f"*{vendor_name(v.vendor)}*: " + ", ".join(parts))
    return lines


_MEASURES = (
    ("per_accepted_line", "accepted line", "no accepted lines"),
    ("per_ai_commit", "AI commit", "no AI commits"),
    ("per_merged_pr", "merged PR", "no merged PRs"),
)


def value_line(ratios: ValueRatios, medians: Sequence[tuple[str, ValueRatios]] = ()) -> str:
    """Spend beside value, three measures side by side and never one score; with ``medians``
    ((label, ratios) of the person's teams), each team's median of the same measure after it."""
    if ratios.is_empty:
        return "*Spend beside value*: no value signals recorded for this period, so it cannot be weighed yet."
    parts = []
    for name, unit, missing in _MEASURES:
        amount = getattr(ratios, name)
        if amount is None:
            parts.append(missing)
            continue
        beside = [
            f"{label} median {usd(getattr(median, name))}"
            for label, median in medians
            if getattr(median, name) is not None
        ]
        parts.append(f"{usd(amount)} per {unit}" + (f" ({', '.join(beside)})" if beside else ""))
    return "*Spend beside value*: " + " · ".join(parts)


def value_section(report: SpendReport, medians: Sequence[TeamMedian] = ()) -> Block:
    """The value signals of a report and, last, the one line that weighs its spend against them
    (with the person's teams' medians, where the privacy rules allow one)."""
    labelled = [(team_label(m.team), m.ratios) for m in medians]
    lines = [*_value_lines(report.value), value_line(report.ratios(), labelled)]
    return section(clip("*Value signals*\n" + "\n".join(lines), MAX_SECTION_TEXT))


# -- buttons: switch period, open a managed team ---------------------------------------------
# A button's value is the text of a /tokens command, run again for whoever clicks (as if they
# typed it): the listener (handlers/reports.py) never trusts it beyond that, and the handler
# decides who may see what exactly as for the typed command.

PERIOD_ACTION = "tokens_period"
OPEN_TEAM_ACTION = "tokens_open_team"
PERIOD_CHOICES = (("7d", "Last 7 days"), ("30d", "Last 30 days"), ("quarter", "This quarter"))
MAX_TEAM_BUTTONS = 5


def _actions(block_id: str, elements: list[Block]) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": elements}


def period_buttons(command: str) -> Block:
    """7d / 30d / quarter for ``command`` (``me``, ``org``, ``team <mention>``, ``<@U…>``)."""
    return _actions(
        "tokens_periods",
        [button(label, f"{PERIOD_ACTION}_{word}", f"{command} {word}") for word, label in PERIOD_CHOICES],
    )


def open_team_buttons(managed: Sequence[Team]) -> Block | None:
    """One "Open" button per managed team (the first few), or None for a non-manager."""
    if not managed:
        return None
    return _actions(
        "tokens_open_teams",
        [
            button(f"Open {team_label(team)}", f"{OPEN_TEAM_ACTION}_{index}", f"team {team_mention_of(team)}")
            for index, team in enumerate(managed[:MAX_TEAM_BUTTONS])
        ],
    )


WORKING = Message("Working on it…", [section(":hourglass_flowing_sand: Working on it…")])


def as_modal(reply: Message) -> dict:
    """A reply shown in a modal (a click on the App Home has no message to answer): only the
    person who clicked sees it, like an ephemeral message."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Tokenwise"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": list(reply.blocks)[:MAX_VIEW_BLOCKS],
    }


def with_actions(reply: Message, *extra: Block | None) -> Message:
    """``reply`` with button rows at the end, kept even when the body fills the message."""
    rows = [block for block in extra if block is not None]
    body = list(reply.blocks)[: MAX_MESSAGE_BLOCKS - len(rows)]
    return message(reply.text, [*body, *rows])


def build_me(
    report: SpendReport,
    *,
    who: str,
    models: list[tuple[str, str, int]],
    tz: ZoneInfo,
    self_view: bool = True,
    medians: Sequence[TeamMedian] = (),
    notice: Sequence[Block] = (),
    delivery: Sequence[str] = (),
) -> Message:
    """A person's numbers; ``notice``: blocks said right after the total (why it is empty);
    ``delivery``: lines on their merged PRs (survival, review load, cost per PR)."""
    title = "Your AI spend" if self_view else f"AI spend of {who}"
    period = shown_span(report.period, report.comparison)
    total = usd(report.total_micros)
    compare = comparison_text(report.total_micros, report.previous_total_micros, report.comparison)
    blocks = [
        header(f"{title}: {report.period.label}"),
        section(
            f"*{total}* in {period}"
            + (" _(includes estimates)_" if report.estimated_micros else "")
            + f"\n{compare}"
        ),
    ]
    blocks.extend(notice)
    if report.vendors:
        blocks.append(section("\n".join(_spend_lines(report, org=False))))
        blocks.append(
            fields_section(
                [
                    f"*Tokens*\n{count(report.tokens)}",
                    f"*Requests*\n{count(report.requests)}",
                ]
            )
        )
    else:
        blocks.append(section("No AI spend recorded for this period."))
    blocks.append(divider())
    blocks.append(value_section(report, medians))
    if delivery:
        blocks.append(section("\n".join(delivery)))
    if models:
        top = ", ".join(f"{escape(model)} ({usd(cost)})" for _, model, cost in models)
        blocks.append(context(f"Top models: {top}"))
    blocks.append(
        context(
            ESTIMATE_NOTE, "Only you can see this." if self_view else "Private to you; this view was audited."
        )
    )
    text = f"{title} {report.period.label}: {total} ({compare})"
    return message(text, blocks)


def build_org(report: SpendReport, *, models: list[tuple[str, str, int]]) -> Message:
    total = usd(report.total_micros)
    compare = comparison_text(report.total_micros, report.previous_total_micros, report.comparison)
    blocks = [
        header(f"Org AI spend: {report.period.label}"),
        section(
            f"*{total}* in {shown_span(report.period, report.comparison)}"
            f" · {report.active_people} active people\n{compare}\n"
            f"Unattributed (not linked to a person): {usd(report.unattributed_micros)}"
        ),
    ]
    if report.vendors:
        blocks.append(section("\n".join(_spend_lines(report, org=True))))
    else:
        blocks.append(section("No AI spend recorded for this period."))
    blocks.append(value_section(report))
    if models:
        top = ", ".join(f"{escape(model)} ({usd(cost)})" for _, model, cost in models)
        blocks.append(context(f"Top models: {top}"))
    blocks.append(
        context(
            ESTIMATE_NOTE,
            "Org totals count each dollar once: estimates already billed elsewhere are left out.",
        )
    )
    return message(f"Org AI spend {report.period.label}: {total} ({compare})", blocks)


def _source_lines(status: SourceStatus, tz: ZoneInfo, *, vendor: bool = True) -> list[str]:
    """When a source last synced, how much and, when it is failing, its last error."""
    lag = f" · vendor lag ~{duration(status.lag)}" if vendor else ""
    rows = f"{count(status.last_rows)} rows last run"
    lines = [f"last success {local_time(status.last_success_at, tz)}{lag} · {rows}"]
    if status.last_error and not status.healthy:
        lines.append(
            f"last error ({local_time(status.last_error_at, tz)}): `{escape(status.last_error[:300])}`"
        )
    return lines


def _demo_section(sources: list[SourceStatus], *, demo_mode: bool, tz: ZoneInfo) -> Block:
    """The demo's sources as what they are: a synthetic org, not vendors that may be down."""
    if demo_mode:
        head = (
            f":test_tube: *Demo mode* (`TOKENWISE_DEMO=1`): these sources are a synthetic org of "
            f"{DEMO_PEOPLE} people that Tokenwise generates itself. No vendor is asked and no key is "
            "needed; each sync regenerates the recent days. Set a vendor key (README, Sources) and "
            "unset `TOKENWISE_DEMO` for real data."
        )
    else:
        head = (
            ":test_tube: *Demo data* from `tokenwise demo` is in the database, but demo mode is off, "
            "so it is no longer refreshed. Set `TOKENWISE_DEMO=1` to keep it current, or set a vendor "
            "key (README, Sources) for real data."
        )
    rows = []
    for status in sources[:10]:
        icon = ":white_check_mark:" if status.healthy else ":x:"
        rows.append(
            f"{icon} `{escape(status.source)}`: " + " · ".join(_source_lines(status, tz, vendor=False))
        )
    return section(head + "\n" + "\n".join(rows))


def _status_text(real: list[SourceStatus], demo_sources: list[SourceStatus], demo_mode: bool) -> str:
    healthy = sum(1 for s in real if s.healthy and s.enabled)
    if real:
        text = f"Tokenwise sources: {healthy} of {len(real)} healthy"
        return text + (", plus demo data" if demo_sources else "")
    if demo_mode:
        return f"Tokenwise sources: demo mode, {len(demo_sources)} synthetic sources (no vendor connected)"
    if demo_sources:
        return "Tokenwise sources: no vendor connected; demo data from `tokenwise demo` only (not refreshed)"
    return "Tokenwise sources: none configured"


def build_status(report: StatusReport, *, tz: ZoneInfo, demo_mode: bool = False) -> Message:
    """Per-source health. ``demo_mode``: TOKENWISE_DEMO is set, so the demo's sources are
    expected, and said to be synthetic rather than counted as vendors."""
    blocks = [header("Tokenwise sources")]
    real = [s for s in report.sources if not is_demo_source(s.source)]
    demo_sources = [s for s in report.sources if is_demo_source(s.source)]
    if not report.sources:
        blocks.append(
            section("No source is configured yet. Set a vendor key (see the README) and run a sync.")
        )
    for status in real[:40]:
        icon = ":white_check_mark:" if status.healthy else ":x:"
        if not status.enabled:
            icon = ":zzz:"
        title = f"{icon} *{escape(status.source)}*" + ("" if status.enabled else " (disabled)")
        blocks.append(section("\n".join([title, *_source_lines(status, tz)])))
    if demo_sources:
        blocks.append(_demo_section(demo_sources, demo_mode=demo_mode, tz=tz))
    if report.agents:
        rows = [
            f"*{escape(vendor_name(a.agent))}* (OTLP): {a.people_last_day} people in the last day"
            f" · last data {local_time(a.last_received_at, tz)}"
            for a in report.agents[:10]
        ]
        blocks.append(divider())
        blocks.append(section("*Coding agents*\n" + "\n".join(rows)))
    if report.unlinked:
        rows = [
            f"`{escape(a.actor[:80])}` ({escape(a.source)}): {usd(a.cost_micros)}" for a in report.unlinked
        ]
        blocks.append(divider())
        blocks.append(
            section(
                "*Biggest unlinked actors* (link with `/tokens link <vendor> <id> @user`)\n" + "\n".join(rows)
            )
        )
    if report.recaps:
        rows = []
        for problem in report.recaps[:10]:
            team = f"<!subteam^{problem.group_id}>" if problem.group_id else "channel members"
            then = "retrying" if problem.retrying else "not retried; `/tokens recap list`"
            rows.append(
                f":x: <#{problem.channel_id}> ({team}), week of {problem.week_start:%b %-d}: "
                f"{problem.status} after {problem.attempts} attempt(s), {then}: "
                f"`{escape((problem.error or 'interrupted')[:200])}`"
            )
        blocks.append(divider())
        blocks.append(section("*Weekly recaps not delivered*\n" + "\n".join(rows)))
    return message(_status_text(real, demo_sources, demo_mode), blocks)
