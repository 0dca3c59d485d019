"""Vendor keys that a workspace stores itself (``/tokens sources``) instead of the environment.

Each source here is enabled by one key and an optional base URL, so a stored pair maps onto two
``Settings`` fields; connectors are then built by the unchanged ``from_settings`` factories.
A source that needs one more value to work (Codex: the ChatGPT workspace it reads) names a third
field, ``extra_field``; that value is stored encrypted with the key. The GitHub sources also need
an organisation and stay environment-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from bot.settings import Settings


@dataclass(frozen=True)
class VendorSecret:
    """A decrypted key. ``repr=False`` keeps it out of reprs, tracebacks and logs."""

    key: str = field(repr=False)
    base_url: str | None = None
    extra: str | None = field(default=None, repr=False)  # the ``extra_field`` value, if any


@dataclass(frozen=True)
class ConfigurableSource:
    source: str
    label: str
    key_field: str  # Settings attribute of the key
    base_url_field: str  # Settings attribute of the base URL
    key_kind: str  # what kind of key the vendor must issue
    extra_field: str = ""  # Settings attribute of a value the key needs beside it ("" = none)
    extra_label: str = ""  # what that value is, as the form names it


CONFIGURABLE: dict[str, ConfigurableSource] = {
    s.source: s
    for s in (
        ConfigurableSource("openai", "OpenAI", "openai_admin_key", "openai_admin_base_url", "Admin API key"),
        ConfigurableSource(
            "anthropic",
            "Anthropic + Claude Code",
            "anthropic_admin_key",
            "anthropic_admin_base_url",
            "Admin API key",
        ),
        ConfigurableSource("cursor", "Cursor", "cursor_admin_key", "cursor_admin_base_url", "Admin API key"),
        ConfigurableSource(
            "openrouter", "OpenRouter", "openrouter_management_key", "openrouter_base_url", "management key"
        ),
        ConfigurableSource(
            "windsurf", "Windsurf", "windsurf_service_key", "windsurf_base_url", "service key"
        ),
        ConfigurableSource(
            "codex",
            "OpenAI Codex",
            "codex_analytics_key",
            "codex_analytics_base_url",
            "analytics key (codex.enterprise.analytics.read)",
            extra_field="codex_workspace_id",
            extra_label="ChatGPT workspace id",
        ),
    )
}


_VENDOR_PREFIXES = ("openai_", "anthropic_", "cursor_", "github_", "openrouter_", "windsurf_", "codex_")


def default_base_url(source: str) -> str:
    return Settings.model_fields[CONFIGURABLE[source].base_url_field].default


def apply_overrides(settings: Settings, overrides: Mapping[str, VendorSecret]) -> Settings:
    """A copy of ``settings`` with each stored key (and base URL) in place of the environment's."""
    update: dict = {}
    for source, secret in overrides.items():
        spec = CONFIGURABLE.get(source)
        if spec is None:  # a source this version no longer offers: ignore, never crash a sync
            continue
        update[spec.key_field] = SecretStr(secret.key)
        update[spec.base_url_field] = secret.base_url or default_base_url(source)
        if spec.extra_field:
            update[spec.extra_field] = secret.extra
    return settings.model_copy(update=update) if update else settings


def without_environment_keys(settings: Settings) -> Settings:
    """A copy with no vendor key from the environment or tokenwise.toml: in a multi-workspace
    install those belong to one workspace (TOKENWISE_WORKSPACE_ID), never to every workspace."""
    update: dict = {
        name: None
        for name, value in settings.__dict__.items()
        if isinstance(value, SecretStr) and name.startswith(_VENDOR_PREFIXES)
    }
    update["accounts"] = []
    update["demo"] = False
    return settings.model_copy(update=update)
