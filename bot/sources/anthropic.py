"""Anthropic (Console organisations, Admin API): billed dollars per person from the Usage & Cost
Analytics API when the key can read it, else the legacy Usage and Cost reports; tokens per account
/ API key / model from the Usage report; users and API keys to join ids to emails. See
docs/sources/anthropic.md. One concern (the Anthropic Admin API: its client, reports and directory,
shared with ``claude_code`` through ``AdminApiConnector``), kept whole though it is long.

Money, with the Analytics API (``analytics/cost``, beta, from 2026-01-01 and within 365 days): its
post-discount cost per actor (user, API key, service account), model and day is the truth
(``cost_basis="billed"``, ``in_org_total=True``), so a person's Anthropic dollars are billed, not
estimated. The Usage report's tokens ride on the same (billed) rows with no dollars of their own.
Claude Code's own estimates for API users then carry tokens only (``bot.sources.claude_code``).

Money, without it (the key or organisation is refused, or the window is older): the Cost report
is the truth per workspace (``anthropic_workspace:<id|default>``); Usage rows carry the tokens per
person plus an estimate from ``bot.sources.prices`` with ``in_org_total=False``, or ``unpriced``
when the model has no price. A person's own total must not count Claude Code twice: for every day
this connector also reads Claude Code Analytics, and a usage row whose person (or key name) had
Claude Code API usage that day keeps its tokens but carries no dollars (raw unit
``tokens_only``): that person's Anthropic dollars for the day come from Claude Code's estimate.

The Admin API helpers here (client, RFC 3339 days, report and list pagination, the users / keys
directory, Claude Code day records, the Analytics API probe) are shared with
``bot.sources.claude_code``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import InvalidOperation
from typing import Any, ClassVar, Unpack

import httpx

from bot.domain.clock import utc_today
from bot.domain.money import USD_CENTS, Money, to_decimal
from bot.domain.records import BILLED, ESTIMATED, TOKENS_ONLY, Batch, IdentityHint, UsageRecord, fold
from bot.settings import Settings
from bot.sources.base import ConnectorOptions, SourceError, split_window
from bot.sources.http import VendorHttp, decode_json, error_summary, wrong_key_kind
from bot.sources.prices import estimate_or_unpriced
from bot.sources.values import count, utc_day

log = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
MAX_PAGES = 10_000  # loop guard: a vendor cursor that never ends is an error, not a hang

USAGE_ENDPOINT = "v1/organizations/usage_report/messages"
COST_ENDPOINT = "v1/organizations/cost_report"
USERS_ENDPOINT = "v1/organizations/users"
KEYS_ENDPOINT = "v1/organizations/api_keys"
CLAUDE_CODE_ENDPOINT = "v1/organizations/usage_report/claude_code"
ANALYTICS_COST_ENDPOINT = "v1/organizations/analytics/cost"
ANALYTICS_BETA = "analytics-usage-cost-2026-08-24"
#: The Analytics API answers from this day on, and at most 365 days back.
ANALYTICS_FIRST_DAY = date(2026, 1, 1)
ANALYTICS_MAX_AGE = timedelta(days=364)  # a whole UTC day inside "the last 365 days"

PARSE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, InvalidOperation)


# -- shared Admin API helpers ---------------------------------------------------------------
# Keys the Admin API refuses, by prefix (the Admin key is sk-ant-admin...).
WRONG_KEYS = (
    ("sk-ant-api", "an Anthropic API key (sk-ant-api…)"),
    ("sk-ant-oat", "a Claude Code OAuth token (sk-ant-oat…)"),
    ("sk-admin-", "an OpenAI Admin key (sk-admin-…)"),
    ("sk-proj-", "an OpenAI project key (sk-proj-…)"),
)
NEEDED_KEY = (
    "the Admin API needs an Anthropic Admin key (sk-ant-admin…, created by an organization admin "
    "in the Console)"
)


def admin_http(*, name: str, key: str, base_url: str, settings: Settings, transport=None) -> VendorHttp:
    return VendorHttp.configured(
        settings,
        source=name,
        base_url=base_url,
        headers={"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION},
        transport=transport,
        refuse=wrong_key_kind(key, WRONG_KEYS, NEEDED_KEY),
    )


def rfc3339(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


class Refused(Exception):
    """The first page of a report was refused: the endpoint is not available to this key."""


def reports(
    http: VendorHttp,
    endpoint: str,
    params: list[tuple[str, Any]],
    *,
    missing: tuple[int, ...] = (),
    refused: Callable[[httpx.Response], bool] | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[dict]:
    """Every ``data`` item of a ``page``/``next_page``/``has_more`` report, all pages.

    A first page answered with a status in ``missing`` (e.g. 404: the report is not available to
    this organisation) yields nothing; one that ``refused`` says is a refusal raises ``Refused``;
    any other non-200 status is a SourceError.
    """
    page: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        query = list(params) + ([("page", page)] if page else [])
        if (missing or refused) and page is None:
            response = http.request("GET", endpoint, params=query, headers=headers)
            if response.status_code in missing:
                return
            summary = error_summary(response) if response.status_code != 200 else ""
            if refused is not None and refused(response):
                raise Refused(f"HTTP {response.status_code}: {summary}")
            if response.status_code != 200:
                raise SourceError(http.source, endpoint, f"HTTP {response.status_code}: {summary}")
            body = decode_json(response, http.source, endpoint)
        else:
            body = http.json("GET", endpoint, params=query, headers=headers)
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


# -- the Usage & Cost Analytics API ----------------------------------------------------------
def _beta_refused(response: httpx.Response) -> bool:
    """403 / 404 (the key or organisation cannot read it), or a 400 that names the beta header."""
    if response.status_code in (403, 404):
        return True
    return response.status_code == 400 and "beta" in error_summary(response).lower()


class CostAnalytics:
    """Whether this key reads billed cost from the Usage & Cost Analytics API.

    Found out once per run (a connector lives for one run): the first refusal is logged once and
    remembered, and everything after it uses the legacy reports. Days before the API's first day,
    or older than it keeps, always use the legacy reports.
    """

    def __init__(self, http: VendorHttp, today: Callable[[], date]) -> None:
        self.http = http
        self.today = today
        self.available: bool | None = None  # None: not asked yet

    def first_day(self) -> date:
        return max(ANALYTICS_FIRST_DAY, self.today() - ANALYTICS_MAX_AGE)

    def may_cover(self, day: date) -> bool:
        """The API may answer for ``day`` onwards (unknown until asked, False once refused)."""
        return self.available is not False and day >= self.first_day()

    def refuse(self, reason: str) -> None:
        if self.available is not False:
            log.warning(
                "%s: Usage & Cost Analytics API not available (%s); using the legacy usage and cost "
                "reports (estimated per person) for this run",
                self.http.source,
                reason,
            )
        self.available = False

    def rows(self, start: date, end: date) -> Iterator[dict]:
        """Cost rows per UTC day, actor and model for ``[start, end)``; raises Refused."""
        params: list[tuple[str, Any]] = [
            ("starting_at", rfc3339(start)),
            ("ending_at", rfc3339(end)),
            ("time_bucket_width", "1d"),
            ("group_by[]", "actor"),
            ("group_by[]", "model"),
        ]
        headers = {"anthropic-beta": ANALYTICS_BETA}
        yield from reports(self.http, ANALYTICS_COST_ENDPOINT, params, refused=_beta_refused, headers=headers)

    def covers(self, day: date) -> bool:
        """Whether ``day`` is billed through the API, asking it once if nobody has yet."""
        if not self.may_cover(day):
            return False
        if self.available is None:
            try:
                next(self.rows(day, day + timedelta(days=1)), None)  # the first page answers it
                self.available = True
            except Refused as refusal:
                self.refuse(str(refusal))
        return bool(self.available)


def analytics_actor(value: Any) -> tuple[str, IdentityHint | None]:
    """An Analytics API ``group.actor`` -> (actor, identity hint from the actor's own email).

    Documented as an object (``{"type": "user_actor", "user_id", "email_address", "name"}``, or a
    service-account / API-key actor with its tagged id); a bare tagged id (``user_…``, ``svac_…``,
    ``apikey_…``) is read too. No actor (e.g. federated identities) is ``anthropic:unattributed``.
    """
    actor = value if isinstance(value, dict) else {}
    tagged = value if isinstance(value, str) else None
    tagged = tagged or actor.get("user_id") or actor.get("service_account_id") or actor.get("api_key_id")
    tagged = tagged or actor.get("id")
    if not isinstance(tagged, str) or not tagged:
        return "anthropic:unattributed", None
    kind = actor.get("type") or ""
    if tagged.startswith("svac_") or kind == "service_account_actor" or "service_account_id" in actor:
        return f"anthropic_service_account:{tagged}", None
    if tagged.startswith("apikey_") or kind in ("api_actor", "api_key_actor") or "api_key_id" in actor:
        return f"anthropic_key:{tagged}", None
    name = f"anthropic_user:{tagged}"
    email = actor.get("email_address")
    hint = (
        IdentityHint(name, email.strip().lower(), actor.get("name") or "")
        if isinstance(email, str) and email.strip()
        else None
    )
    return name, hint


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


class AdminApiConnector:
    """What both Admin API connectors (this one and ``claude_code``) share: the client, the Cost
    report's coverage and the organisation's directory, read once per run."""

    def __init__(self, *, today: Callable[[], date] = utc_today, **options: Unpack[ConnectorOptions]) -> None:
        self.name = options["name"]
        self.http = admin_http(**options)
        self.analytics = CostAnalytics(self.http, today)
        self._directory: Directory | None = None

    def close(self) -> None:
        self.http.close()

    def directory(self) -> Directory:
        if self._directory is None:
            self._directory = load_directory(self.http)
        return self._directory


class AnthropicConnector(AdminApiConnector):
    vendor: ClassVar[str] = "anthropic"
    lag = timedelta(minutes=5)
    trailing_days = 3
    max_window_days = 31  # the Usage report's largest 1d page

    def __init__(self, *, claude_code_enabled: bool = True, **options) -> None:
        """``options`` as for ``AdminApiConnector``; ``claude_code_enabled``: the claude_code
        source runs too, so its overlap with the Usage report is removed here."""
        super().__init__(**options)
        self.claude_code_enabled = claude_code_enabled

    # -- identities ----------------------------------------------------------------------
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
    def _tokens(self, start: date, end: date) -> dict[tuple[date, str, str, str], list[int]]:
        """Usage-report tokens per (day, actor, model, service tier):
        [input, output, cache read, cache write (all), cache write (1 hour)]."""
        params: list[tuple[str, Any]] = [
            ("starting_at", rfc3339(start)),
            ("ending_at", rfc3339(end)),
            ("bucket_width", "1d"),
            ("limit", 31),
            ("group_by[]", "account_id"),
            ("group_by[]", "api_key_id"),
            ("group_by[]", "model"),
            ("group_by[]", "service_tier"),
        ]
        tokens: dict[tuple[date, str, str, str], list[int]] = {}
        for bucket in reports(self.http, USAGE_ENDPOINT, params):
            try:
                day = utc_day(bucket["starting_at"])
                _inside(self.name, USAGE_ENDPOINT, day, start, end)
                for result in bucket.get("results") or []:
                    if result.get("account_id"):
                        actor = f"anthropic_user:{result['account_id']}"
                    elif result.get("api_key_id"):
                        actor = f"anthropic_key:{result['api_key_id']}"
                    else:
                        actor = "anthropic:console"  # Console / Workbench usage
                    creation = result.get("cache_creation") or {}
                    one_hour = count(creation.get("ephemeral_1h_input_tokens"))
                    counts = (
                        count(result.get("uncached_input_tokens")),
                        count(result.get("output_tokens")),
                        count(result.get("cache_read_input_tokens")),
                        one_hour + count(creation.get("ephemeral_5m_input_tokens")),
                        one_hour,
                    )
                    key = (day, actor, result.get("model") or "", result.get("service_tier") or "standard")
                    total = tokens.setdefault(key, [0, 0, 0, 0, 0])
                    for i, value in enumerate(counts):
                        total[i] += value
            except PARSE_ERRORS as error:
                raise SourceError(
                    self.name, USAGE_ENDPOINT, f"cannot parse bucket ({type(error).__name__})"
                ) from None
        return tokens

    def _estimated(self, tokens: dict[tuple[date, str, str, str], list[int]]) -> list[UsageRecord]:
        """Legacy path: the tokens with an estimate (or unpriced, or tokens only for Claude Code users)."""
        covers = {day: self.claude_code_cover(day) for day in sorted({key[0] for key in tokens})}
        records = []
        for (day, actor, model, tier), (inp, out, read, write, write_1h) in tokens.items():
            if self._covered(actor, covers[day]):
                cost, basis = Money(0, "0", TOKENS_ONLY), ESTIMATED
            else:
                cost, basis = estimate_or_unpriced(
                    self.name, model, inp, out, read, write, write_1h, tier=tier
                )
            records.append(
                _usage_row(day, actor, model, cost, basis, (inp, out, read, write, write_1h), False)
            )
        return fold(records)

    def _costs(self, start: date, end: date) -> Iterator[UsageRecord]:
        """Legacy path: the Cost report's billed dollars per workspace."""
        params: list[tuple[str, Any]] = [
            ("starting_at", rfc3339(start)),
            ("ending_at", rfc3339(end)),
            ("bucket_width", "1d"),
            ("group_by[]", "workspace_id"),
            ("group_by[]", "description"),
        ]
        for bucket in reports(self.http, COST_ENDPOINT, params):
            try:
                day = utc_day(bucket["starting_at"])
                _inside(self.name, COST_ENDPOINT, day, start, end)
                for result in bucket.get("results") or []:
                    _usd(self.name, COST_ENDPOINT, result.get("currency"))
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

    def _billed(self, start: date, end: date) -> tuple[list[UsageRecord], list[IdentityHint]]:
        """Analytics path: billed cost per day, actor and model (raises Refused)."""
        records: list[UsageRecord] = []
        hints: dict[str, IdentityHint] = {}
        for row in self.analytics.rows(start, end):
            try:
                day = utc_day(row["starting_at"])
                _inside(self.name, ANALYTICS_COST_ENDPOINT, day, start, end)
                cost = row.get("cost") or {}
                _usd(self.name, ANALYTICS_COST_ENDPOINT, cost.get("currency"))
                if cost.get("amount") is None:
                    continue
                group = row.get("group") or {}
                actor, hint = analytics_actor(group.get("actor"))
                if hint:
                    hints[actor] = hint
                model = group.get("model") or group.get("cost_type") or group.get("product") or ""
                records.append(
                    UsageRecord(day=day, actor=actor, model=model, cost=Money.from_cents(cost["amount"]))
                )
            except PARSE_ERRORS as error:
                raise SourceError(
                    self.name, ANALYTICS_COST_ENDPOINT, f"cannot parse row ({type(error).__name__})"
                ) from None
        return records, list(hints.values())

    def _window(self, start: date, end: date) -> tuple[list[UsageRecord], list[IdentityHint]]:
        if self.analytics.may_cover(start):
            try:
                billed, hints = self._billed(start, end)
            except Refused as refusal:
                self.analytics.refuse(str(refusal))
            else:
                self.analytics.available = True
                # The tokens ride on the actors' billed rows: no dollars of their own.
                tokens = [
                    _usage_row(day, actor, model, Money.zero(USD_CENTS), BILLED, counts, True)
                    for (day, actor, model, _), counts in self._tokens(start, end).items()
                ]
                return fold(billed + tokens), hints
        return self._estimated(self._tokens(start, end)) + list(self._costs(start, end)), []

    def windows(self, window_start: date, window_end: date) -> Iterator[tuple[date, date]]:
        """Batches of at most ``max_window_days``, cut where the Analytics API's range begins, so
        each day is billed the same way here as in ``claude_code`` (which decides per day)."""
        first = self.analytics.first_day()
        for start, end in split_window(window_start, window_end, self.max_window_days):
            yield from ((start, first), (first, end)) if start < first < end else ((start, end),)

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        hints = self.identities()
        for start, end in self.windows(window_start, window_end):
            usage, billed_hints = self._window(start, end)
            yield Batch(start, end, usage=usage, identities=hints + billed_hints)
            hints = []  # the directory's identities go with the first batch only


def _usage_row(
    day: date, actor: str, model: str, cost: Money, basis: str, counts, in_org_total: bool
) -> UsageRecord:
    inp, out, read, write, write_1h = counts
    return UsageRecord(
        day=day,
        actor=actor,
        model=model,
        cost=cost,
        cost_basis=basis,
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
        in_org_total=in_org_total,
    )


def _usd(source: str, endpoint: str, currency: Any) -> None:
    code = str(currency or "USD").upper()
    if code != "USD":
        raise SourceError(source, endpoint, f"unsupported currency {code!r}")


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
