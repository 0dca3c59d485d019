"""What every entry point shares: settings, the database engine and the enabled sources."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from bot.db.engine import make_engine
from bot.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    #: source name -> vendor lag, for /tokens status (filled from the registry at start)
    source_lags: dict[str, timedelta] = field(default_factory=dict)

    def workspace_for(self, team_id: str | None) -> str:
        """Single-workspace installs keep all data under one id; OAuth installs use the team id."""
        if self.settings.multi_workspace:
            if not team_id:  # never fall back to a shared id: that would mix workspaces' data
                raise ValueError("a multi-workspace install needs the request's team id")
            return team_id
        return self.settings.workspace_id

    def today(self) -> date:
        return datetime.now(self.settings.tz).date()


def build_runtime(settings: Settings, engine: Engine | None = None) -> Runtime:
    from bot.sources.registry import enabled_connectors

    engine = engine or make_engine(settings.resolved_database_url)
    lags = {}
    for connector in enabled_connectors(settings):
        lags[connector.name] = connector.lag
        connector.close()
    return Runtime(settings=settings, engine=engine, source_lags=lags)
