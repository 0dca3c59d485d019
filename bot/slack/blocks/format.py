"""Number and mention formatting shared by every builder (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.db.models import Person, Team
from bot.domain.money import format_usd
from bot.domain.periods import NOT_STARTED, PARTIAL_HISTORY, Comparison, Period
from bot.services import mentions
from bot.services.recap.model import Recap

VENDOR_NAMES = {
    "openai": "OpenAI",
    "anthropic": "Anthropic API",
    "claude_code": "Claude Code",
    "codex": "OpenAI Codex",
    "cursor": "Cursor",
    "github_copilot": "GitHub Copilot",
    "github_delivery": "GitHub",
    "openrouter": "OpenRouter",
    "windsurf": "Windsurf",
}


def vendor_name(vendor: str) -> str:
    return VENDOR_NAMES.get(vendor, vendor)


def usd(micros: int) -> str:
    return format_usd(micros)


def count(value: int) -> str:
    """1,234 / 12.3k / 4.56M: compact but unambiguous."""
    if value < 10_000:
        return f"{value:,}"
    if value < 1_000_000:
        return f"{value / 1000:.1f}k"
    if value < 1_000_000_000:
        return f"{value / 1_000_000:.2f}M"
    return f"{value / 1_000_000_000:.2f}B"


def change(current: int, previous: int, label: str) -> str:
    if previous == 0:
        return f"no spend in {label} to compare with" if current else "no change"
    ratio = (current - previous) / previous
    if abs(ratio) < 0.005:
        return f"flat vs {label}"
    arrow = "▲" if ratio > 0 else "▼"
    return f"{arrow} {abs(ratio):.0%} vs {label} ({usd(previous)})"


def span_text(period: Period) -> str:
    """A short inclusive span: "Nov 1", "Nov 1–2", "Nov 28 – Dec 2", "Dec 29, 2025 – Jan 2, 2026"."""
    last = period.last_day
    if period.days <= 1:
        return f"{period.start:%b %-d}"
    if (period.start.year, period.start.month) == (last.year, last.month):
        return f"{period.start:%b %-d}–{last:%-d}"
    if period.start.year == last.year:
        return f"{period.start:%b %-d} – {last:%b %-d}"
    return f"{period.start:%b %-d, %Y} – {last:%b %-d, %Y}"


def shown_span(period: Period, comparison: Comparison | None) -> str:
    """The days a total covers: never a future day as if it were data ("Dec 1 – Dec 2, 2026 so far
    (2 of 31 days)" while the month runs)."""
    if comparison is None or comparison.status == NOT_STARTED:
        return period_text(period)
    if comparison.in_progress:
        return (
            f"{period_text(comparison.elapsed)} so far "
            f"({comparison.elapsed_days} of {comparison.total_days} days)"
        )
    return period_text(period)


def comparison_text(current: int, previous: int, comparison: Comparison | None) -> str:
    """The change against the fair comparison span, or why there is none."""
    if comparison is None:
        return change(current, previous, "previous period")
    if comparison.status == NOT_STARTED:
        return f"{comparison.period.label} has not started yet: there is no data for it."
    if comparison.status == PARTIAL_HISTORY:
        history = comparison.history_start
        return (
            f"No comparison with {span_text(comparison.previous)}: stored history starts "
            f"{history:%b %-d, %Y}, so those days were never fetched."
        )
    text = change(current, previous, span_text(comparison.previous))
    forecast = comparison.forecast_micros(current)
    if forecast is not None:
        text += f"\nForecast at this pace: ~{usd(forecast)} for the {comparison.total_days} days _(estimate)_"
    return text


def period_text(period: Period) -> str:
    last = period.last_day
    if period.start.year == last.year:
        return f"{period.start:%b %-d} – {last:%b %-d, %Y}"
    return f"{period.start:%b %-d, %Y} – {last:%b %-d, %Y}"


def local_time(moment: datetime | None, tz: ZoneInfo) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def duration(delta: timedelta | None) -> str:
    if delta is None:
        return "?"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"


def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def team_mention(kind: str, slack_id: str) -> str:
    """Slack markup that renders a user group or a channel for the reader."""
    return f"<!subteam^{slack_id}>" if kind == mentions.USERGROUP else f"<#{slack_id}>"


def team_mention_of(team: Team) -> str:
    """A stored team drawn for the reader (the client shows the current name)."""
    return team_mention(team.kind, team.slack_id)


def team_label(team: Team) -> str:
    """Plain text for headers and buttons: "@platform", "#payments"; the id in their place when
    the name is not known ("#C0123")."""
    return ("@" if team.kind == mentions.USERGROUP else "#") + (team.name or team.slack_id)


def scope_mention(recap: Recap) -> str:
    """Whose numbers a recap covers, for the reader: the team's mention, else its plain name."""
    return team_mention_of(recap.scope_team) if recap.scope_team else recap.scope_name


def scope_label(recap: Recap) -> str:
    """Whose numbers a recap covers in plain text (headers, the chart's title)."""
    return team_label(recap.scope_team) if recap.scope_team else recap.scope_name


def owner_mention(person: Person) -> str:
    """Who holds an identity, for admins in Slack: email and the Slack user's mention."""
    user = person.slack_user_id
    parts = [person.email or "", f"<@{user}>" if user else ""]
    return " ".join(p for p in parts if p) or f"person {person.id}"


def render_mention(found: mentions.Mention) -> str:
    """A parsed mention drawn back as Slack markup (the reader's client shows the current name)."""
    if found.kind == mentions.USER:
        return f"<@{found.id}>"
    return team_mention(found.kind, found.id)
