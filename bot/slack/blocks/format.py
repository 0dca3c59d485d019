"""Number formatting shared by every builder (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.money import format_usd
from bot.domain.periods import Period

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
        return f"no spend in the {label} to compare with" if current else "no change"
    ratio = (current - previous) / previous
    if abs(ratio) < 0.005:
        return f"flat vs the {label}"
    arrow = "▲" if ratio > 0 else "▼"
    return f"{arrow} {abs(ratio):.0%} vs the {label} ({usd(previous)})"


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
