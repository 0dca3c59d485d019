"""One typed settings object, read from the environment and an optional ``tokenwise.toml``.

The environment names are a public interface (README lists them): rename nothing without a
deprecation path. Secrets are ``SecretStr`` so they never print in a repr, a log or an error.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "tokenwise"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SourceAccount(BaseModel):
    """An extra vendor account declared in ``tokenwise.toml`` (e.g. a second OpenAI org).

    ``[[accounts]]`` tables: ``name = "openai-eu"``, ``vendor = "openai"``, ``key = "sk-admin-..."``,
    optional ``base_url`` and ``org`` (GitHub organisation for the GitHub sources).
    """

    name: str
    vendor: str
    key: SecretStr
    base_url: str | None = None
    org: str | None = None


@dataclass(frozen=True)
class VendorAccount:
    """One account of a vendor, resolved from the main keys or from ``[[accounts]]``."""

    name: str
    key: str
    base_url: str
    org: str | None = None


def _env(name: str, *more: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name, *more))


def _setting(name: str, default: Any, **constraints: Any) -> Any:
    """A setting read from the environment variable ``name``, ``default`` when it is unset;
    ``constraints`` are pydantic's (``ge``, ``gt``, ``le``, ...)."""
    return Field(default=default, validation_alias=name, **constraints)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None,
        extra="ignore",
        populate_by_name=True,
        toml_file="tokenwise.toml",
        case_sensitive=False,
    )

    # Storage
    data_dir: Path = _setting("TOKENWISE_DATA_DIR", DEFAULT_DATA_DIR)
    database_url: str | None = _setting("DATABASE_URL", None)

    # Slack
    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _env("SLACK_APP_TOKEN")
    slack_api_url: str = _setting("SLACK_API_URL", "https://slack.com/api/")
    # Multi-workspace install (Slack OAuth): on when SLACK_CLIENT_ID is set (SLACK_BOT_TOKEN unused).
    slack_client_id: str | None = _env("SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = _env("SLACK_CLIENT_SECRET")
    slack_redirect_uri: str | None = _env("SLACK_REDIRECT_URI")
    port: int = _setting("PORT", 3000)
    host: str = _setting("TOKENWISE_HOST", "0.0.0.0")
    # HTTP worker processes for `tokenwise run` (one per core uses them all; jobs stay in one process).
    workers: int = _setting("TOKENWISE_WORKERS", 1, ge=1)

    # Org
    timezone: str = _setting("TOKENWISE_TIMEZONE", "UTC")
    admins: str = _setting("TOKENWISE_ADMINS", "")
    min_group_size: int = _setting("TOKENWISE_MIN_GROUP_SIZE", 5, ge=1)
    # Team membership older than this is re-read from Slack before it is used.
    team_refresh_minutes: int = _setting("TOKENWISE_TEAM_REFRESH_MINUTES", 360, ge=1)
    workspace_id: str = _setting("TOKENWISE_WORKSPACE_ID", "default")

    # Ingestion
    sync_interval_minutes: int = _setting("TOKENWISE_SYNC_INTERVAL_MINUTES", 60, ge=1)
    # Budget alerts are also checked after every sync; this is the extra schedule between syncs.
    budget_check_minutes: int = _setting("TOKENWISE_BUDGET_CHECK_MINUTES", 30, ge=1)
    trailing_days: int | None = _setting("TOKENWISE_TRAILING_DAYS", None, ge=0)
    backfill_days: int = _setting("TOKENWISE_BACKFILL_DAYS", 30, ge=1)
    http_timeout_seconds: float = _setting("TOKENWISE_HTTP_TIMEOUT", 30.0, gt=0)
    http_max_retries: int = _setting("TOKENWISE_HTTP_MAX_RETRIES", 5, ge=0)
    http_max_backoff_seconds: float = _setting("TOKENWISE_HTTP_MAX_BACKOFF", 60.0, gt=0)

    # OTLP intake (POST /v1/metrics, /v1/logs; docs/sources/otel.md). The body ceiling holds for
    # the compressed body and for what it inflates to (a gzip bomb stops at the ceiling).
    otel_max_body_bytes: int = _setting("TOKENWISE_OTEL_MAX_BODY_BYTES", 4 * 1024 * 1024, ge=1024)
    # Per ingest token and web process: every person's agent exports once a minute by default.
    otel_requests_per_minute: int = _setting("TOKENWISE_OTEL_REQUESTS_PER_MINUTE", 3000, ge=1)
    otel_max_people_per_request: int = _setting("TOKENWISE_OTEL_MAX_PEOPLE_PER_REQUEST", 200, ge=1)
    otel_max_points_per_request: int = _setting("TOKENWISE_OTEL_MAX_POINTS_PER_REQUEST", 20_000, ge=1)
    # Points older than this are refused (400): the daily rows of older days are settled.
    otel_max_age_days: int = _setting("TOKENWISE_OTEL_MAX_AGE_DAYS", 35, ge=1)
    # Raw OTel points older than this are pruned (the daily rows they made stay); never less than
    # the age of points still accepted, or a late point could refold a day from a partial set.
    otel_retention_days: int = _setting("TOKENWISE_OTEL_RETENTION_DAYS", 35, ge=1)

    # Vendors: a source is enabled when its key is set.
    openai_admin_key: SecretStr | None = _env("OPENAI_ADMIN_KEY")
    openai_admin_base_url: str = _setting("OPENAI_ADMIN_BASE_URL", "https://api.openai.com/v1")
    anthropic_admin_key: SecretStr | None = _env("ANTHROPIC_ADMIN_KEY")
    anthropic_admin_base_url: str = _setting("ANTHROPIC_ADMIN_BASE_URL", "https://api.anthropic.com")
    cursor_admin_key: SecretStr | None = _env("CURSOR_ADMIN_KEY")
    cursor_admin_base_url: str = _setting("CURSOR_ADMIN_BASE_URL", "https://api.cursor.com")
    # Cursor's Admin API allows 20 requests per minute per team; pace below it.
    cursor_requests_per_minute: int = _setting("CURSOR_REQUESTS_PER_MINUTE", 20, ge=1)
    # One /activity call per key per day adds up: modest pacing by default.
    openrouter_requests_per_minute: int = _setting("OPENROUTER_REQUESTS_PER_MINUTE", 120, ge=1)
    github_copilot_token: SecretStr | None = _env("GITHUB_COPILOT_TOKEN")
    github_copilot_org: str | None = _env("GITHUB_COPILOT_ORG")
    github_api_base_url: str = _setting("GITHUB_API_BASE_URL", "https://api.github.com")
    copilot_seat_price_usd: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "business": Decimal("19"),
            "enterprise": Decimal("39"),
            "unknown": Decimal("19"),
        },
        validation_alias="COPILOT_SEAT_PRICES",
    )
    # Cursor Teams' list price of a paid seat (Standard, per user per month; Premium is $120),
    # spread over the days of the month as the estimated daily seat cost (docs/sources/cursor.md).
    cursor_seat_price_usd: Decimal = Field(
        default=Decimal("40"), ge=0, validation_alias="CURSOR_SEAT_PRICE_USD"
    )
    # Read Copilot's metered usage (AI credits) from the billing usage reports; off for orgs that
    # have none to read (GitHub Enterprise Server, no enhanced billing platform).
    github_copilot_billing: bool = _setting("GITHUB_COPILOT_BILLING", True)
    github_delivery_token: SecretStr | None = _env("GITHUB_DELIVERY_TOKEN")
    github_delivery_org: str | None = _env("GITHUB_DELIVERY_ORG")
    # Comma lists of repo names or globs ("api", "acme/web", "infra-*"); deny wins, empty allow = all.
    github_delivery_repos_allow: str = _setting("GITHUB_DELIVERY_REPOS_ALLOW", "")
    github_delivery_repos_deny: str = _setting("GITHUB_DELIVERY_REPOS_DENY", "")
    # Spend in a week with no merged PR within this many days after it is "idle" (recap).
    github_delivery_idle_days: int = _setting("GITHUB_DELIVERY_IDLE_DAYS", 14, ge=1)
    # A merged PR followed within this many days by a fix PR touching its files did not survive.
    github_delivery_fix_days: int = _setting("GITHUB_DELIVERY_FIX_DAYS", 14, ge=1, le=90)
    openrouter_management_key: SecretStr | None = _env("OPENROUTER_MANAGEMENT_KEY")
    openrouter_base_url: str = _setting("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1")
    windsurf_service_key: SecretStr | None = _env("WINDSURF_SERVICE_KEY")
    windsurf_base_url: str = _setting("WINDSURF_BASE_URL", "https://server.codeium.com/api/v1")
    # OpenAI Codex Enterprise Analytics (docs/sources/codex.md): a key scoped
    # ``codex.enterprise.analytics.read`` and the ChatGPT workspace it reads.
    codex_analytics_key: SecretStr | None = _env("CODEX_ANALYTICS_KEY")
    codex_workspace_id: str | None = _env("CODEX_WORKSPACE_ID")
    codex_analytics_base_url: str = _setting(
        "CODEX_ANALYTICS_BASE_URL", "https://api.chatgpt.com/v1/analytics/codex"
    )
    # USD per Codex credit under the workspace's own contract. OpenAI publishes no dollar rate for
    # credits: unset, credits are kept as reported and their cost is unknown (unpriced).
    codex_usd_per_credit: Decimal | None = _setting("CODEX_USD_PER_CREDIT", None, gt=0)
    accounts: list[SourceAccount] = Field(default_factory=list)

    # Same-day anomalies (docs/anomalies.md states each rule and its limits); amounts in USD.
    anomaly_check_minutes: int = _setting("TOKENWISE_ANOMALY_CHECK_MINUTES", 60, ge=1)
    anomaly_baseline_days: int = _setting("TOKENWISE_ANOMALY_BASELINE_DAYS", 28, ge=7)
    anomaly_min_active_days: int = _setting("TOKENWISE_ANOMALY_MIN_ACTIVE_DAYS", 5, ge=2)
    anomaly_recent_days: int = _setting("TOKENWISE_ANOMALY_RECENT_DAYS", 2, ge=1, le=7)
    anomaly_runaway_floor_usd: Decimal = _setting("TOKENWISE_ANOMALY_RUNAWAY_FLOOR", Decimal(50), ge=0)
    anomaly_runaway_ratio: Decimal = _setting("TOKENWISE_ANOMALY_RUNAWAY_RATIO", Decimal(3), gt=1)
    anomaly_runaway_mads: Decimal = _setting("TOKENWISE_ANOMALY_RUNAWAY_MADS", Decimal(5), gt=0)
    anomaly_new_subject_floor_usd: Decimal = _setting("TOKENWISE_ANOMALY_NEW_FLOOR", Decimal(200), ge=0)
    anomaly_idle_floor_usd: Decimal = _setting("TOKENWISE_ANOMALY_IDLE_FLOOR", Decimal(25), ge=0)
    anomaly_drift_floor_usd: Decimal = _setting("TOKENWISE_ANOMALY_DRIFT_FLOOR", Decimal(25), ge=0)
    anomaly_drift_points: int = _setting("TOKENWISE_ANOMALY_DRIFT_POINTS", 40, ge=1, le=100)
    # A model is in the most expensive tier when its list output price is at least this per million.
    anomaly_premium_output_usd: Decimal = _setting("TOKENWISE_ANOMALY_PREMIUM_OUTPUT", Decimal(40), gt=0)
    anomaly_unattributed_floor_usd: Decimal = _setting(
        "TOKENWISE_ANOMALY_UNATTRIBUTED_FLOOR", Decimal(50), ge=0
    )
    anomaly_escalate_hours: int = _setting("TOKENWISE_ANOMALY_ESCALATE_HOURS", 24, ge=0)

    # Value in money (docs/value.md). A team "adopted" AI tools in the first week its
    # spend reached this; the weeks before are its own baseline.
    adoption_threshold_usd: Decimal = _setting("TOKENWISE_ADOPTION_THRESHOLD", Decimal(50), gt=0)
    # Seats: reassignable after this many days unused, reducible at renewal after this many.
    seat_idle_days: int = _setting("TOKENWISE_SEAT_IDLE_DAYS", 30, ge=1)
    seat_reduce_days: int = _setting("TOKENWISE_SEAT_REDUCE_DAYS", 60, ge=1)
    # Vendor -> its next seat renewal (ISO date), e.g. {"cursor": "2027-03-01"}; a vendor not
    # named renews monthly, on the 1st (GitHub Copilot bills seats per calendar month).
    seat_renewals: dict[str, date] = Field(default_factory=dict, validation_alias="TOKENWISE_SEAT_RENEWALS")

    # Fernet key(s) for vendor keys stored per workspace; comma-separated, the first encrypts.
    secret_key: SecretStr | None = _env("TOKENWISE_SECRET_KEY")

    # Demo source: on only when asked for (``tokenwise demo`` or TOKENWISE_DEMO=1).
    demo: bool = _setting("TOKENWISE_DEMO", False)

    # Console log level; unset, Tokenwise logs INFO and its libraries (alembic, apscheduler,
    # matplotlib, ...) only warnings. Set (or `tokenwise run -v`), every logger uses it.
    log_level: str | None = _env("TOKENWISE_LOG_LEVEL")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file, so a deployment can override one value of a shared toml.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any, info) -> Any:
        # `export OPENAI_ADMIN_KEY=` means "not set", not "an empty key".
        field = cls.model_fields.get(info.field_name)
        if isinstance(value, str) and not value.strip() and field is not None and field.default is None:
            return None
        return value

    @model_validator(mode="after")
    def _well_formed_secrets(self) -> Settings:
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                if any(ch.isspace() for ch in secret) or not secret.isprintable():
                    alias = field.validation_alias
                    label = alias.choices[0] if isinstance(alias, AliasChoices) else (alias or name.upper())
                    # Never echo the value: say what is wrong with it.
                    raise ValueError(
                        f"{label} is malformed: it contains spaces, line breaks or control characters"
                    )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Europe/Berlin)") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r} (use one of {', '.join(LOG_LEVELS)})")
        return value.strip().upper()

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith("postgres://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgres://")
        elif value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        if not value.startswith(("sqlite://", "postgresql+psycopg://")):
            raise ValueError("DATABASE_URL must be sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        return value

    @cached_property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tokenwise.db'}"

    @property
    def multi_workspace(self) -> bool:
        """OAuth installs: every workspace that installs the app gets its own data and bot token."""
        return bool(self.slack_client_id)

    @property
    def admin_entries(self) -> set[str]:
        return {entry.strip().lower() for entry in self.admins.split(",") if entry.strip()}

    def vendor_accounts(
        self,
        vendor: str,
        *,
        key: SecretStr | None,
        base_url: str,
        org: str | None = None,
        name: str | None = None,
    ) -> list[VendorAccount]:
        """The main account (when its key is set) plus every ``[[accounts]]`` entry of ``vendor``.

        Extra accounts never inherit the main org: that would count the same org twice.
        """
        found = []
        if key is not None:
            found.append(VendorAccount(name or vendor, key.get_secret_value(), base_url, org))
        for account in self.accounts:
            if account.vendor == vendor:
                found.append(
                    VendorAccount(
                        account.name,
                        account.key.get_secret_value(),
                        account.base_url or base_url,
                        account.org,
                    )
                )
        return found

    def secret_values(self) -> list[str]:
        """Every configured secret, so log filters and tests can check none leaks."""
        found: list[str] = []
        for value in self.__dict__.values():
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.append(value.get_secret_value())
        found.extend(a.key.get_secret_value() for a in self.accounts)
        return found


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
