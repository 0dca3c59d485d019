"""OpenAI: Usage API (completions) for tokens per user and key, Costs API for billed dollars,
users and project API keys (archived projects and every key included) to join ids to emails. See
docs/sources/openai.md.

Attribution: tokens go to the OpenAI user when the usage row carries a ``user_id`` (else to the
API key); billed dollars go to the API key, whose owner is the person. Costs arrive as dollars
(JSON numbers, parsed as Decimal). Usage rows have no price: OpenAI bills them, so nothing is
priced here and nothing is counted twice.

Costs grouped by ``api_key_id`` are documented but the live API may answer 400 (PostHog/posthog
#71784). Then, for the rest of the run, costs are read per ``project_id`` and ``line_item`` and
each line item's billed dollars are apportioned to the project's keys by their share of that
model's tokens in the Usage API: exact integer micro-USD summing to the bill, stored as
``estimated`` (the split is ours; the total is OpenAI's).

Usage and costs are separate rows (costs are ``kind="cost"``) fetched independently: when one
endpoint fails, the window's batch carries the other (``complete_kinds``), the failed part's
stored rows stay, the watermark stays (``incomplete``) and the run fails naming the endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar

from bot.domain.money import USD, Money, micros_to_usd, to_decimal, usd_to_micros
from bot.domain.records import BILLED, COST, ESTIMATED, USAGE, Batch, IdentityHint, UsageRecord
from bot.settings import Settings
from bot.sources.base import SourceError, split_window
from bot.sources.http import VendorHttp, collector_paused, decode_json, error_summary, wrong_key_kind
from bot.sources.values import count

log = logging.getLogger(__name__)

USAGE_ENDPOINT = "organization/usage/completions"
COSTS_ENDPOINT = "organization/costs"
MAX_PAGES = 10_000  # loop guard: a vendor cursor that never ends is an error, not a hang
# What reading an unexpected value raises (missing key, wrong type, bad number): a SourceError instead.
PARSE_ERRORS = (KeyError, TypeError, ValueError, ArithmeticError, AttributeError)
#: Usage rows carry no dollars; one shared (immutable) zero instead of a new Money per row.
NO_COST = Money.zero()
# Keys that cannot read the organization's usage, by prefix (the Admin key is sk-admin-...).
WRONG_KEYS = (
    ("sk-proj-", "an OpenAI project key (sk-proj-…)"),
    ("sk-svcacct-", "an OpenAI service account key (sk-svcacct-…)"),
    ("sk-None-", "an OpenAI user key (sk-None-…)"),
    ("sk-ant-", "an Anthropic key (sk-ant-…)"),
)
NEEDED_KEY = "usage and costs need an OpenAI Admin key (sk-admin-…, Organization settings → Admin keys)"
# Grouping fields of usage/costs results (null unless grouped by): a result's identity in its bucket.
DIMENSIONS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier", "line_item")
#: Token weights of one actor in one (day, project, model): (uncached input + cache writes,
#: cached input, output), the three kinds of token OpenAI's line items bill.
Weights = dict[tuple[date, str, str], dict[str, list[int]]]


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _day(epoch: Any) -> date:
    return datetime.fromtimestamp(int(epoch), UTC).date()


def model_of_line_item(line_item: str | None) -> str:
    """``"gpt-4o-2024-08-06, input"`` -> ``"gpt-4o-2024-08-06"``."""
    return (line_item or "").split(",")[0].strip()


def token_kind_of_line_item(line_item: str | None) -> int | None:
    """Which ``Weights`` entry a line item bills: ``"…, cached input"`` -> 1, ``"…, input"`` -> 0,
    ``"…, output"`` -> 2; None (all tokens) for anything else (training, audio, tools…)."""
    _, _, kind = (line_item or "").partition(",")
    kind = kind.strip().lower()
    if kind.startswith("cached input"):
        return 1
    return {"input": 0, "output": 2}.get(kind)


def apportion(total: int, weights: dict[str, int]) -> dict[str, int]:
    """``total`` micro-USD split by ``weights`` exactly: each actor gets its floor share and the
    micros left over go one each to the largest remainders (ties by actor), so the shares always
    sum to ``total`` (negative totals, such as credits, too)."""
    weights = {actor: weight for actor, weight in weights.items() if weight > 0}
    whole = sum(weights.values())
    if not whole:
        return {}
    shares = {actor: total * weight // whole for actor, weight in weights.items()}
    left = total - sum(shares.values())  # 0 <= left < len(weights): floor division
    for actor in sorted(weights, key=lambda actor: (-(total * weights[actor] % whole), actor))[:left]:
        shares[actor] += 1
    return shares


class GroupingRejected(SourceError):
    """The live API answered 400 to a documented ``group_by`` (costs by ``api_key_id``)."""


class OpenAIConnector:
    vendor: ClassVar[str] = "openai"

    def __init__(self, *, name: str, key: str, base_url: str, settings: Settings, transport=None) -> None:
        self.name = name
        self.lag = timedelta(minutes=15)
        self.trailing_days = 3
        self.max_window_days = 31
        refuse = wrong_key_kind(key, WRONG_KEYS, NEEDED_KEY)
        self.http = VendorHttp.bearer(
            key, settings, source=name, base_url=base_url, transport=transport, refuse=refuse
        )
        self._identities: list[IdentityHint] | None = None
        #: False once the live API rejected costs grouped by api_key_id: remembered for the run.
        self.costs_by_key = True

    def close(self) -> None:
        self.http.close()

    # -- pagination helpers -------------------------------------------------------------
    def _page(self, endpoint: str, query: list[tuple[str, Any]], *, may_reject_grouping: bool) -> Any:
        if not may_reject_grouping:
            return self.http.json("GET", endpoint, params=query)
        response = self.http.request("GET", endpoint, params=query, endpoint=endpoint)
        if response.status_code != 200:
            error = GroupingRejected if response.status_code == 400 else SourceError
            raise error(self.name, endpoint, f"HTTP {response.status_code}: {error_summary(response)}")
        return decode_json(response, self.name, endpoint)

    def _buckets(
        self,
        endpoint: str,
        params: list[tuple[str, Any]],
        read: Callable[[dict], Iterator[UsageRecord]],
        *,
        may_reject_grouping: bool = False,
    ) -> Iterator[UsageRecord]:
        """The records ``read`` makes of every bucket of every page.

        A page (up to thousands of results) is read into records and dropped with the collector
        paused, so the collector never scans it (see :func:`collector_paused`).
        """
        page: str | None = None
        seen: set[str] = set()
        # One result per (bucket, grouping values): seeing one twice means the data moved under the
        # cursor (pages changed while paging) and folding it would count those tokens/dollars twice.
        rows: set[tuple] = set()
        for _ in range(MAX_PAGES):
            query = list(params) + ([("page", page)] if page else [])
            with collector_paused():
                body = self._page(endpoint, query, may_reject_grouping=may_reject_grouping and not page)
                if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                    raise SourceError(self.name, endpoint, "unexpected response shape (no data list)")
                for bucket in body["data"]:
                    results = bucket.get("results") if isinstance(bucket, dict) else None
                    if not isinstance(results or [], list) or not all(
                        isinstance(r, dict) for r in results or []
                    ):
                        raise SourceError(self.name, endpoint, "unexpected response shape (bucket results)")
                    start_time = bucket.get("start_time")
                    for result in results or []:
                        row = (start_time, *map(str, map(result.get, DIMENSIONS)))  # C loops: 5,000 a page
                        if row in rows:
                            raise SourceError(
                                self.name, endpoint, "a result appeared twice (pages changed while paging)"
                            )
                        rows.add(row)
                records = [record for bucket in body["data"] for record in read(bucket)]
                page, more = body.get("next_page"), body.get("has_more")
                del body
            yield from records
            if not more:
                return
            if not page or page in seen:
                raise SourceError(
                    self.name, endpoint, "has_more is true but the next page cursor is missing or repeats"
                )
            seen.add(page)
        raise SourceError(self.name, endpoint, f"more than {MAX_PAGES} pages")

    def _list(self, endpoint: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        after: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            query = {"limit": 100, **(params or {})}
            if after:
                query["after"] = after
            body = self.http.json("GET", endpoint, params=query)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
                raise SourceError(self.name, endpoint, "unexpected response shape (no data list)")
            yield from data
            if not body.get("has_more"):
                return
            next_after = body.get("last_id") or (data[-1].get("id") if data else None)
            if not next_after or next_after == after or next_after in seen:
                raise SourceError(
                    self.name, endpoint, "has_more is true but the list cursor does not advance"
                )
            seen.add(next_after)
            after = next_after
        raise SourceError(self.name, endpoint, f"more than {MAX_PAGES} pages")

    # -- identities ----------------------------------------------------------------------
    def identities(self) -> list[IdentityHint]:
        if self._identities is not None:
            return self._identities
        hints: list[IdentityHint] = []
        for user in self._list("organization/users"):
            if user.get("email") and user.get("id"):
                hints.append(IdentityHint(f"openai_user:{user['id']}", user["email"], user.get("name") or ""))
        # Archived projects and keys whose owner lost access still have costs to attribute.
        for project in self._list("organization/projects", {"include_archived": "true"}):
            project_id = project.get("id")
            if not project_id:
                continue
            keys = self._list(f"organization/projects/{project_id}/api_keys", {"owner_project_access": "any"})
            for key in keys:
                owner = (key.get("owner") or {}).get("user") or {}
                if key.get("id") and owner.get("email"):
                    hints.append(
                        IdentityHint(f"openai_key:{key['id']}", owner["email"], owner.get("name") or "")
                    )
        self._identities = hints
        return hints

    # -- data ----------------------------------------------------------------------------
    def _usage(self, start: date, end: date, weights: Weights) -> Iterator[UsageRecord]:
        params = [
            ("start_time", _epoch(start)),
            ("end_time", _epoch(end)),
            ("bucket_width", "1d"),
            ("limit", 31),
            ("group_by", "user_id"),
            ("group_by", "api_key_id"),
            ("group_by", "model"),
            ("group_by", "project_id"),  # the key shares that apportion a project's costs
        ]
        read = partial(self._usage_of, start, end, weights)
        yield from self._buckets(USAGE_ENDPOINT, params, read)

    def _usage_of(self, start: date, end: date, weights: Weights, bucket: dict) -> Iterator[UsageRecord]:
        day = _day(bucket["start_time"])
        if not start <= day < end:
            raise SourceError(self.name, USAGE_ENDPOINT, f"bucket {day} outside window")
        for result in bucket.get("results") or []:
            get = result.get
            key_id, project_id = get("api_key_id"), get("project_id") or ""
            key_actor = f"openai_key:{key_id}" if key_id else f"openai_project:{project_id or 'org'}"
            if get("user_id"):
                actor = f"openai_user:{result['user_id']}"
            elif key_id:
                actor = key_actor
            else:
                actor = "openai:unattributed"
            # Token counts are JSON ints; anything else takes values.count's reading (and its errors).
            cached = get("input_cached_tokens")
            cached = cached if type(cached) is int else count(cached)
            cache_write = get("input_cache_write_tokens")
            cache_write = cache_write if type(cache_write) is int else count(cache_write)
            uncached = get("input_uncached_tokens")
            # OpenAI's input_tokens folds cached and cache-write tokens in; store them apart.
            if uncached is None:
                uncached = count(get("input_tokens")) - cached - cache_write
            elif type(uncached) is not int:
                uncached = count(uncached)
            output = get("output_tokens")
            output = output if type(output) is int else count(output)
            requests = get("num_model_requests")
            model = get("model") or ""
            uncached = max(uncached, 0)
            shares = weights.setdefault((day, project_id, model), {}).setdefault(key_actor, [0, 0, 0])
            shares[0] += uncached + cache_write
            shares[1] += cached
            shares[2] += output
            yield UsageRecord(
                day=day,
                actor=actor,
                model=model,
                cost=NO_COST,
                input_tokens=uncached,
                output_tokens=output,
                cache_read_tokens=cached,
                cache_write_tokens=cache_write,
                requests=requests if type(requests) is int else count(requests),
            )

    def _costs(self, start: date, end: date, weights: Weights | None) -> list[UsageRecord]:
        """The window's billed dollars: per key while the API accepts that grouping, else per
        project and line item, apportioned by ``weights`` (None: usage failed, so per project)."""
        if self.costs_by_key:
            try:
                return self._read(COSTS_ENDPOINT, self._cost_records(start, end, ("api_key_id",), None))
            except GroupingRejected as error:
                self.costs_by_key = False
                log.warning(
                    "%s: costs grouped by api_key_id were rejected (%s); for the rest of this run costs "
                    "are read per project and line item and apportioned to keys by their tokens",
                    self.name,
                    error,
                )
        return self._read(COSTS_ENDPOINT, self._cost_records(start, end, ("project_id",), weights))

    def _cost_records(
        self, start: date, end: date, grouping: tuple[str, ...], weights: Weights | None
    ) -> Iterator[UsageRecord]:
        params = [
            ("start_time", _epoch(start)),
            ("end_time", _epoch(end)),
            ("bucket_width", "1d"),
            ("limit", 180),
            *(("group_by", name) for name in grouping),
            ("group_by", "line_item"),
        ]
        models: dict[str, str] = {}  # line item -> model: a few dozen distinct ones
        read = partial(self._costs_of, start, end, models, weights)
        yield from self._buckets(COSTS_ENDPOINT, params, read, may_reject_grouping="api_key_id" in grouping)

    def _costs_of(
        self, start: date, end: date, models: dict[str, str], weights: Weights | None, bucket: dict
    ) -> Iterator[UsageRecord]:
        """A day's cost records, its line items of one (actor, model, basis) merged into one
        record as the engine's fold would (the same exact sums, in the same order), without a
        record and a ``Money`` addition per line item (docs/benchmarks.md, B1)."""
        day = _day(bucket["start_time"])
        if not start <= day < end:
            raise SourceError(self.name, COSTS_ENDPOINT, f"bucket {day} outside window")
        merged: dict[tuple[str, str, str], list] = {}  # (actor, model, basis) -> [micros, raw USD]

        def add(actor: str, model: str, basis: str, micros: int, raw: Decimal) -> None:
            found = merged.get((actor, model, basis))
            if found is None:
                merged[actor, model, basis] = [micros, raw]
            else:
                found[0] += micros
                found[1] += raw

        for result in bucket.get("results") or []:
            amount = result.get("amount") or {}
            currency = amount.get("currency")
            if currency != "usd":
                currency = str(currency or "usd").lower()
                if currency != "usd":
                    raise SourceError(self.name, COSTS_ENDPOINT, f"unsupported currency {currency!r}")
            value = amount.get("value")
            if value is None:
                continue
            # Money.from_usd, without its generic checks for the common Decimal value.
            dollars = value if type(value) is Decimal else to_decimal(value)
            key_id, project_id = result.get("api_key_id"), result.get("project_id") or ""
            actor = f"openai_key:{key_id}" if key_id else f"openai_project:{project_id or 'org'}"
            line_item = result.get("line_item")
            model = models.get(line_item) if type(line_item) is str else None
            if model is None:
                model = model_of_line_item(line_item)
                if type(line_item) is str:
                    models[line_item] = model
            micros = usd_to_micros(dollars)
            shares = None if key_id or weights is None else weights.get((day, project_id, model))
            if not shares:  # the vendor's own figure: per key, or a project nobody's tokens explain
                add(actor, model, BILLED, micros, dollars)
                continue
            kind = token_kind_of_line_item(line_item)
            split = apportion(micros, {a: w[kind] if kind is not None else sum(w) for a, w in shares.items()})
            if not split and kind is not None:  # e.g. a cached-input item nobody's counts show
                split = apportion(micros, {a: sum(w) for a, w in shares.items()})
            if not split:
                add(actor, model, BILLED, micros, dollars)
                continue
            for share_actor, share in split.items():
                if share:
                    add(share_actor, model, ESTIMATED, share, micros_to_usd(share))
        for (actor, model, basis), (micros, raw) in merged.items():
            cost = Money(micros, str(raw), USD)
            yield UsageRecord(day=day, actor=actor, model=model, cost=cost, cost_basis=basis, kind=COST)

    def _read(self, endpoint: str, records: Iterator[UsageRecord]) -> list[UsageRecord]:
        """All records of one endpoint; a value that cannot be read fails the run naming the endpoint."""
        try:
            return list(records)
        except PARSE_ERRORS as error:
            detail = f"{type(error).__name__}: {error}"[:200]
            raise SourceError(self.name, endpoint, f"unexpected value in response ({detail})") from None

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        hints = self.identities()
        for start, end in split_window(window_start, window_end, self.max_window_days):
            batch = Batch(start, end, identities=hints)
            hints = []  # identities go with the first batch only
            weights: Weights = {}
            failures: dict[str, SourceError] = {}
            try:
                batch.usage.extend(self._read(USAGE_ENDPOINT, self._usage(start, end, weights)))
            except SourceError as error:
                failures[USAGE] = error
            try:
                batch.usage.extend(self._costs(start, end, None if failures else weights))
            except SourceError as error:
                failures[COST] = error
            if len(failures) == 2:
                raise failures[USAGE]
            if failures:
                # One endpoint failed: store what the other fetched and keep the failed kind's
                # stored rows and the watermark; then fail the run naming the endpoint.
                batch.complete_kinds = frozenset({USAGE, COST} - failures.keys())
                batch.incomplete = True
                yield batch
                raise next(iter(failures.values()))
            yield batch


def from_settings(settings: Settings) -> list[OpenAIConnector]:
    return [
        OpenAIConnector(name=account.name, key=account.key, base_url=account.base_url, settings=settings)
        for account in settings.vendor_accounts(
            "openai", key=settings.openai_admin_key, base_url=settings.openai_admin_base_url
        )
    ]
