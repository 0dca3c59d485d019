"""The GitHub delivery connector run once against a loopback GitHub (pytest-httpserver)."""

from __future__ import annotations

from datetime import date

from bot.services.sync import SyncOutcome, run_source
from bot.settings import Settings
from bot.sources.github_delivery import SHARED_CACHE, from_settings


def run_delivery(
    engine, httpserver, *, token: str, since: date, today: date, workspace_id: str = "W", org: str = "lab"
) -> SyncOutcome:
    """One sync of the ``org`` delivery connector from ``since`` to ``today``, with a cold cache."""
    SHARED_CACHE.clear()
    settings = Settings(
        GITHUB_DELIVERY_TOKEN=token,
        GITHUB_DELIVERY_ORG=org,
        GITHUB_API_BASE_URL=httpserver.url_for("/"),
        TOKENWISE_HTTP_MAX_BACKOFF=0.01,
    )
    (connector,) = from_settings(settings)
    return run_source(engine, connector, workspace_id=workspace_id, since=since, until=today, today=today)
