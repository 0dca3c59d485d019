"""Who may see and change what. The single place commands ask (later issues extend it)."""

from __future__ import annotations

from bot.settings import Settings


def is_admin(settings: Settings, *, user_id: str, email: str | None, slack_admin: bool) -> bool:
    """Workspace admins and owners, plus anyone listed in TOKENWISE_ADMINS (id or email)."""
    entries = settings.admin_entries
    return slack_admin or user_id.lower() in entries or bool(email and email.lower() in entries)


def admins_hint(settings: Settings) -> str:
    named = [e for e in settings.admin_entries if not e.startswith(("u", "w")) or "@" in e]
    return "a workspace admin" + (f" or {', '.join(sorted(named)[:3])}" if named else "")
