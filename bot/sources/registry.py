"""Which sources exist and which are enabled. A source is enabled when its key is set; extra
accounts of one vendor come from ``[[accounts]]`` in tokenwise.toml."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from datetime import date

from bot.settings import Settings
from bot.sources.base import Connector
from bot.sources.overrides import VendorSecret, apply_overrides

# Source name -> module exposing ``from_settings(settings) -> list[Connector]``.
SOURCE_MODULES: dict[str, str] = {
    "openai": "bot.sources.openai",
    "anthropic": "bot.sources.anthropic",
    "claude_code": "bot.sources.claude_code",
    "cursor": "bot.sources.cursor",
    "windsurf": "bot.sources.windsurf",
    "github_copilot": "bot.sources.github_copilot",
    "github_delivery": "bot.sources.github_delivery",
    "openrouter": "bot.sources.openrouter",
    "codex": "bot.sources.openai_codex",
}

DEMO = "demo"


class UnknownSourceError(ValueError):
    pass


def known_sources() -> list[str]:
    return sorted([*SOURCE_MODULES, DEMO])


def _factory(name: str) -> Callable[[Settings], list[Connector]]:
    return importlib.import_module(SOURCE_MODULES[name]).from_settings


def enabled_connectors(
    settings: Settings,
    *,
    only: str | None = None,
    today: date | None = None,
    include_demo: bool | None = None,
    secret_overrides: Mapping[str, VendorSecret] | None = None,
) -> list[Connector]:
    """Connectors for every enabled source (or just ``only``, which may also be an account name).
    ``secret_overrides`` (source -> key a workspace stored with ``/tokens sources``) win over
    the environment's keys."""
    from bot.domain.clock import utc_today
    from bot.sources.demo import demo_connectors

    settings = apply_overrides(settings, secret_overrides or {})
    connectors: list[Connector] = []
    for name in SOURCE_MODULES:
        connectors.extend(_factory(name)(settings))
    if include_demo if include_demo is not None else (settings.demo or only == DEMO):
        connectors.extend(demo_connectors(today or utc_today()))
    if only is None:
        return connectors
    chosen = [
        c for c in connectors if only in (c.name, c.vendor) or (only == DEMO and c.name.startswith("demo-"))
    ]
    if not chosen:
        for connector in connectors:
            connector.close()
        names = sorted({*known_sources(), *(a.name for a in settings.accounts)})
        if only in names:
            raise UnknownSourceError(f"source {only!r} is not enabled: set its key (see README, Sources)")
        raise UnknownSourceError(f"unknown source {only!r}; known sources: {', '.join(names)}")
    for connector in connectors:
        if connector not in chosen:
            connector.close()
    return chosen
