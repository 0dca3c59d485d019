"""Seats as the vendor reports them (today GitHub Copilot's seat list), for the weekly recap.

Stored activity says when a person last used a tool; for Copilot, GitHub's own seat list is the
better judge of an idle seat (it sees editors that send no usage the bot can read), so the recap
asks here first and falls back to stored activity when the vendor cannot be asked.
"""

from __future__ import annotations

import logging

from bot.services.recap_rules import IDLE_SEAT_DAYS
from bot.settings import Settings
from bot.sources.github_copilot import actor_of
from bot.sources.registry import UnknownSourceError, enabled_connectors

log = logging.getLogger(__name__)


def idle_seat_actors(settings: Settings, *, days: int = IDLE_SEAT_DAYS) -> set[str] | None:
    """Actors of GitHub Copilot seats idle for ``days`` days, as GitHub reports them (None when
    the source is off or GitHub cannot be read: the recap then judges seats from stored activity).
    Blocking HTTP: call it from a worker thread."""
    try:
        connectors = enabled_connectors(settings, only="github_copilot")
    except UnknownSourceError:
        return None
    found: set[str] = set()
    try:
        for connector in connectors:
            found.update(actor_of(login) for login in connector.idle_seats(days))
    except Exception as error:
        log.warning("idle Copilot seats unavailable: %s", type(error).__name__)
        return None
    finally:
        for connector in connectors:
            connector.close()
    return found
