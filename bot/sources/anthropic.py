"""Anthropic (Console organisations, Admin API): the Usage report for tokens per account / API key
/ model, the Cost report for billed dollars per workspace, and users and API keys to join ids to
emails. See docs/sources/anthropic.md.

Money: the Cost report is the truth (``cost_basis="billed"``, ``in_org_total=True``); it has no
per-person grouping, so its rows belong to ``anthropic_workspace:<id|default>``. Usage rows carry
the tokens per person plus an estimate from ``bot.sources.prices`` with ``in_org_total=False``
(the billed rows already hold those dollars).

A person's own total must not count Claude Code twice: Claude Code's API traffic is in the Usage
report *and* in Claude Code Analytics (the ``claude_code`` source, enabled by the same admin key),
which estimates it per email. So for every day this connector also reads Claude Code Analytics,
and a usage row whose person (or key name) had Claude Code API usage that day keeps its tokens but
carries no dollars (raw unit ``tokens_only``): that person's Anthropic dollars for the day come
from Claude Code's own estimate.

The Admin API helpers here (client, RFC 3339 days, report and list pagination, the users / keys
directory, Claude Code day records) are shared with ``bot.sources.claude_code``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from bot.money import Money, to_decimal
from bot.settings import Settings
from bot.sources.base import (
    BILLED,
    ESTIMATED,
    TOKENS_ONLY,
    Batch,
    IdentityHint,
    SourceError,
    UsageRecord,
    split_window,
)
from bot.sources.http import VendorHttp, decode_json, error_summary
from bot.sources.prices import estimate

ANTHROPIC_VERSION = "2023-06-01"
MAX_PAGES = 10_000  # loop guard: a vendor cursor that never ends is an error, not a hang

USAGE_ENDPOINT = "v1/organizations/usage_report/messages"
COST_ENDPOINT = "v1/organizations/cost_report"
USERS_ENDPOINT = "v1/organizations/users"
KEYS_ENDPOINT = "v1/organizations/api_keys"
CLAUDE_CODE_ENDPOINT = "v1/organizations/usage_report/claude_code"

#: Raw unit of a usage row for a model missing from the price table.
UNPRICED = "unpriced"

PARSE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, InvalidOperation)


# -- shared Admin API helpers ---------------------------------------------------------------
def admin_http(*, name: str, key: str, base_url: str, settings: Settings, transport=None) -> VendorHttp:
    return VendorHttp(
        source=name,
        base_url=base_url,
        headers={"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION},
        timeout=settings.http_timeout_seconds,
        max_retries=settings.http_max_retries,
        max_backoff=settings.http_max_backoff_seconds,
        transport=transport,
    )


def rfc3339(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def parse_day(value: Any) -> date:
    """``2025-08-08``, ``2025-08-08T00:00:00Z`` or any RFC 3339 time -> its UTC calendar day."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a date: {value!r}")
    if len(value) == 10:
        return date.fromisoformat(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def count(value: Any) -> int:
    """A token or event count; null/missing is 0. Integral Decimals and numeric strings are accepted."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"not a count: {value!r}")
    if isinstance(value, int):
        return value
    number = Decimal(value.strip()) if isinstance(value, str) else value
    if not isinstance(number, Decimal) or not number.is_finite() or number != number.to_integral_value():
        raise ValueError(f"not a count: {value!r}")
    return int(number)


def reports(
    http: VendorHttp, endpoint: str, params: list[tuple[str, Any]], *, missing: tuple[int, ...] = ()
) -> Iterator[dict]:
    """Every ``data`` item of a ``page``/``next_page``/``has_more`` report, all pages.

    A first page answered with a status in ``missing`` (e.g. 404: the report is not available to
    this organisation) yields nothing; any other non-200 status is a SourceError.
    """
    page: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        query = list(params) + ([("page", page)] if page else [])
        if missing and page is None:
            response = http.request("GET", endpoint, params=query)
            if response.status_code in missing:
                return
            if response.status_code != 200:
                raise SourceError(
                    http.source, endpoint, f"HTTP {response.status_code}: {error_summary(response)}"
                )
            body = decode_json(response, http.source, endpoint)
        else:
            body = http.json("GET", endpoint, params=query)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise SourceError(http.source, endpoint, "unexpected response shape (no data list)")
        yield from body["data"]
        if not body.get("has_more"):
            return
        page = body.get("next_page")
        if not isinstance(page, str) or not page or page in seen:
            raise SourceError(
                http.source, endpoint, "has_more is true but the next page cursor is missing or repeats"
            )
        seen.add(page)
    raise SourceError(http.source, endpoint, f"more than {MAX_PAGES} pages")


def listed(http: VendorHttp, endpoint: str) -> Iterator[dict]:
    """Every object of an ``after_id``/``last_id``/``has_more`` list endpoint."""
    after: str | None = None
    for _ in range(MAX_PAGES):
        query: dict[str, Any] = {"limit": 1000}
        if after:
            query["after_id"] = after
        body = http.json("GET", endpoint, params=query)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise SourceError(http.source, endpoint, "unexpected response shape (no data list)")
        yield from (item for item in data if isinstance(item, dict))
        if not body.get("has_more"):
            return
        last = data[-1] if data and isinstance(data[-1], dict) else {}
        next_after = body.get("last_id") or last.get("id")
        if not next_after or next_after == after:
            raise SourceError(http.source, endpoint, "has_more is true but the list cursor does not advance")
        after = next_after
    raise SourceError(http.source, endpoint, f"more than {MAX_PAGES} pages")


@dataclass
class Directory:
    """Organisation users and API keys: who an ``account_id`` or ``api_key_id`` is."""

    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # user id -> (email, name)
    keys: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # key id -> (name, creator id)

    def user(self, user_id: str | None) -> tuple[str, str] | None:
        return self.users.get(user_id) if user_id else None

    def key_creator(self, key_id: str) -> tuple[str, str] | None:
        _, creator = self.keys.get(key_id, ("", None))
        return self.user(creator)

    def key_name(self, key_id: str) -> str:
        return self.keys.get(key_id, ("", None))[0]

    def creator_of_key_named(self, name: str) -> tuple[str, str] | None:
        """The creator of the only key called ``name``; None when the name is missing or ambiguous."""
        matches = {creator for key_name, creator in self.keys.values() if key_name == name}
        return self.user(matches.pop()) if len(matches) == 1 else None


def load_directory(http: VendorHttp) -> Directory:
    directory = Directory()
    for user in listed(http, USERS_ENDPOINT):
        if user.get("id") and isinstance(user.get("email"), str) and user["email"].strip():
            directory.users[user["id"]] = (user["email"].strip().lower(), user.get("name") or "")
    for key in listed(http, KEYS_ENDPOINT):
        if key.get("id"):
            creator = key.get("created_by") if isinstance(key.get("created_by"), dict) else {}
            directory.keys[key["id"]] = (key.get("name") or "", creator.get("id"))
    return directory


def claude_code_records(http: VendorHttp, day: date, *, missing: tuple[int, ...] = ()) -> Iterator[dict]:
    """Claude Code Analytics records for one UTC day, all pages."""
    params: list[tuple[str, Any]] = [("starting_at", day.isoformat()), ("limit", 1000)]
    for record in reports(http, CLAUDE_CODE_ENDPOINT, params, missing=missing):
        if not isinstance(record, dict):
            raise SourceError(http.source, CLAUDE_CODE_ENDPOINT, "a record is not an object")
        yield record


# -- the Usage and Cost connector -----------------------------------------------------------
@dataclass
class ClaudeCodeCover:
    """Who had Claude Code *API* usage on a day (their dollars come from Claude Code's estimate)."""

    emails: set[str] = field(default_factory=set)
    key_names: set[str] = field(default_factory=set)


def _has_model_usage(record: dict) -> bool:
    for item in record.get("model_breakdown") or []:
        tokens = item.get("tokens") or {}
        cost = (item.get("estimated_cost") or {}).get("amount")
        if any(count(tokens.get(k)) for k in ("input", "output", "cache_read", "cache_creation")):
            return True
        if cost is not None and to_decimal(cost) != 0:
            return True
    return False


class AnthropicConnector:
    vendor: ClassVar[str] = "anthropic"

    def __init__(
        self,
        *,
        name: str,
        key: str,
        base_url: str,
        settings: Settings,
        claude_code_enabled: bool = True,
        transport=None,
    ) -> None:
        self.name = name
        self.lag = timedelta(minutes=5)
        self.trailing_days = 3
        self.max_window_days = 31  # the Usage report's largest 1d page
        self.claude_code_enabled = claude_code_enabled
        self.http = admin_http(name=name, key=key, base_url=base_url, settings=settings, transport=transport)
        self._directory: Directory | None = None

    def close(self) -> None:
        self.http.close()

    # -- identities ----------------------------------------------------------------------
    def directory(self) -> Directory:
        if self._directory is None:
            self._directory = load_directory(self.http)
        return self._directory

    def identities(self) -> list[IdentityHint]:
        directory = self.directory()
        hints = [
            IdentityHint(f"anthropic_user:{user_id}", email, name)
            for user_id, (email, name) in directory.users.items()
        ]
        for key_id in directory.keys:
            creator = directory.key_creator(key_id)
            if creator:
                hints.append(IdentityHint(f"anthropic_key:{key_id}", creator[0], creator[1]))
        return hints

    # -- Claude Code overlap -------------------------------------------------------------
    def claude_code_cover(self, day: date) -> ClaudeCodeCover:
        cover = ClaudeCodeCover()
        if not self.claude_code_enabled:
            return cover
        try:
            # 403/404: Claude Code Analytics is not available here, so the claude_code source
            # stores nothing either and there is no overlap to remove.
            for record in claude_code_records(self.http, day, missing=(403, 404)):
                if (record.get("customer_type") or "api") != "api" or not _has_model_usage(record):
                    continue  # subscription usage is not in the Usage report
                actor = record.get("actor") if isinstance(record.get("actor"), dict) else {}
                if actor.get("email_address"):
                    cover.emails.add(str(actor["email_address"]).strip().lower())
                elif actor.get("api_key_name"):
                    cover.key_names.add(str(actor["api_key_name"]))
        except PARSE_ERRORS as error:
            raise SourceError(
                self.name, CLAUDE_CODE_ENDPOINT, f"cannot parse record ({type(error).__name__})"
            ) from None
        return cover

    def _covered(self, actor: str, cover: ClaudeCodeCover) -> bool:
        directory = self.directory()
        namespace, _, ident = actor.partition(":")
        if namespace == "anthropic_user":
            user = directory.user(ident)
            return bool(user and user[0] in cover.emails)
        if namespace == "anthropic_key":
            creator = directory.key_creator(ident)
            return directory.key_name(ident) in cover.key_names or bool(
                creator and creator[0] in cover.emails
            )
        return False

    # -- data ----------------------------------------------------------------------------
    def _usage(self, start: date, end: date) -> list[UsageRecord]:
        params: list[tuple[str, Any]] = [
            ("starting_at", rfc3339(start)),
            ("ending_at", rfc3339(end)),
            ("bucket_width", "1d"),
            ("limit", 31),
            ("group_by[]", "account_id"),
            ("group_by[]", "api_key_id"),
            ("group_by[]", "model"),
        ]
        tokens: dict[tuple[date, str, str], list[int]] = {}
        for bucket in reports(self.http, USAGE_ENDPOINT, params):
            try:
                day = parse_day(bucket["starting_at"])
                _inside(self.name, USAGE_ENDPOINT, day, start, end)
                for result in bucket.get("results") or []:
                    if result.get("account_id"):
                        actor = f"anthropic_user:{result['account_id']}"
                    elif result.get("api_key_id"):
                        actor = f"anthropic_key:{result['api_key_id']}"
                    else:
                        actor = "anthropic:console"  # Console / Workbench usage
                    creation = result.get("cache_creation") or {}
                    counts = (
                        count(result.get("uncached_input_tokens")),
                        count(result.get("output_tokens")),
                        count(result.get("cache_read_input_tokens")),
                        count(creation.get("ephemeral_1h_input_tokens"))
                        + count(creation.get("ephemeral_5m_input_tokens")),
                    )
                    total = tokens.setdefault((day, actor, result.get("model") or ""), [0, 0, 0, 0])
                    for i, value in enumerate(counts):
                        total[i] += value
            except PARSE_ERRORS as error:
                raise SourceError(
                    self.name, USAGE_ENDPOINT, f"cannot parse bucket ({type(error).__name__})"
                ) from None
        covers = {day: self.claude_code_cover(day) for day in sorted({day for day, _, _ in tokens})}
        records = []
        for (day, actor, model), (inp, out, read, write) in tokens.items():
            if self._covered(actor, covers[day]):
                cost = Money(0, "0", TOKENS_ONLY)
            else:
                cost = estimate(model, inp, out, read, write) or Money(0, "0", UNPRICED)
            records.append(
                UsageRecord(
                    day=day,
                    actor=actor,
                    model=model,
                    cost=cost,
                    cost_basis=ESTIMATED,
                    input_tokens=inp,
                    output_tokens=out,
                    cache_read_tokens=read,
                    cache_write_tokens=write,
                    in_org_total=False,
                )
            )
        return records

    def _costs(self, start: date, end: date) -> Iterator[UsageRecord]:
        params: list[tuple[str, Any]] = [
            ("starting_at", rfc3339(start)),
            ("ending_at", rfc3339(end)),
            ("bucket_width", "1d"),
            ("group_by[]", "workspace_id"),
            ("group_by[]", "description"),
        ]
        for bucket in reports(self.http, COST_ENDPOINT, params):
            try:
                day = parse_day(bucket["starting_at"])
                _inside(self.name, COST_ENDPOINT, day, start, end)
                for result in bucket.get("results") or []:
                    currency = str(result.get("currency") or "USD").upper()
                    if currency != "USD":
                        raise SourceError(self.name, COST_ENDPOINT, f"unsupported currency {currency!r}")
                    if result.get("amount") is None:
                        continue
                    yield UsageRecord(
                        day=day,
                        actor=f"anthropic_workspace:{result.get('workspace_id') or 'default'}",
                        model=result.get("model") or result.get("cost_type") or "",
                        cost=Money.from_cents(result["amount"]),
                        cost_basis=BILLED,
                    )
            except PARSE_ERRORS as error:
                raise SourceError(
                    self.name, COST_ENDPOINT, f"cannot parse bucket ({type(error).__name__})"
                ) from None

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        hints = self.identities()
        for start, end in split_window(window_start, window_end, self.max_window_days):
            batch = Batch(start, end, identities=hints)
            batch.usage.extend(self._usage(start, end))
            batch.usage.extend(self._costs(start, end))
            yield batch
            hints = []  # identities go with the first batch only


def _inside(source: str, endpoint: str, day: date, start: date, end: date) -> None:
    if not start <= day < end:
        raise SourceError(source, endpoint, f"bucket for {day} outside the requested {start}..{end}")


def from_settings(settings: Settings) -> list[AnthropicConnector]:
    """One connector for ANTHROPIC_ADMIN_KEY plus one per ``[[accounts]]`` with vendor "anthropic".

    The same key enables the ``claude_code`` source (see ``bot.sources.claude_code.from_settings``),
    so the Claude Code overlap rule is always on.
    """
    return [
        AnthropicConnector(name=account.name, key=account.key, base_url=account.base_url, settings=settings)
        for account in settings.vendor_accounts(
            "anthropic", key=settings.anthropic_admin_key, base_url=settings.anthropic_admin_base_url
        )
    ]
