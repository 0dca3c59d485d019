"""OpenRouter: billed USD, tokens and requests per API key, per day and model, from ``/activity``
(management key). See docs/sources/openrouter.md.

Keys are listed in every workspace (``/workspaces``, then ``/keys?workspace_id=…``; ``/keys``
alone lists only the default workspace). A key's person is its creator (``creator_user_id``) as
an organization member (``/organization/members``: id -> email); only when the API states no
creator with an email is the key's name or label read as an email, and that link is marked
``name_guess``. Accounts without those endpoints (404) keep the default workspace and name
guesses.

``GET /activity?date=D`` covers only the last 30 *completed* UTC days, so the window is clamped
to ``[today - 30, today)`` (today is never asked for). For each day the org-level activity is
fetched once and then once per API key (``api_key_hash``); what the keys do not account for
(deleted keys, the chatroom, free-model tokens of keys that were skipped) becomes
``openrouter:unattributed``, computed exactly with Decimal per model, so the day's stored
dollars always equal OpenRouter's own total. ``usage`` is OpenRouter credits in USD (billed);
``byok_usage_inference`` is what a BYOK provider billed on its own invoice and is not stored
here (it would be counted twice with that provider's source).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Unpack

from bot.domain.clock import utc_today
from bot.domain.money import Money, to_decimal, usd_to_micros
from bot.domain.records import NAME_GUESS, Batch, IdentityHint, UsageRecord
from bot.settings import Settings
from bot.sources.base import ConnectorOptions, SourceError, split_window
from bot.sources.http import VendorHttp, decode_json, error_summary
from bot.sources.values import count, utc_day

log = logging.getLogger(__name__)

VENDOR = "openrouter"
UNATTRIBUTED = "openrouter:unattributed"
HISTORY_DAYS = 30  # /activity serves the last 30 completed UTC days
MAX_KEYS_PER_DAY = 300  # bound on per-key calls; the rest of the day stays in "unattributed"
KEYS_PAGE_MAX = 10_000  # loop guard for offset pagination (/keys, /workspaces, members)
PAGE_LIMIT = 100  # /workspaces and /organization/members: "max 100" per page
#: Statuses meaning "this account has no such endpoint" (older API, individual account).
NOT_OFFERED = (404,)
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def key_actor(key_hash: str) -> str:
    return f"openrouter_key:{key_hash}"


@dataclass(slots=True)
class _Totals:
    usage: Decimal = Decimal(0)
    prompt: int = 0
    completion: int = 0
    requests: int = 0

    def add(self, other: _Totals) -> None:
        self.usage += other.usage
        self.prompt += other.prompt
        self.completion += other.completion
        self.requests += other.requests


def _email_of(*labels: Any) -> str | None:
    for label in labels:
        if isinstance(label, str) and EMAIL.match(label.strip()):
            return label.strip().lower()
    return None


class OpenRouterConnector:
    vendor: ClassVar[str] = VENDOR

    def __init__(self, *, today: Callable[[], date] = utc_today, **options: Unpack[ConnectorOptions]) -> None:
        name, key, settings = options["name"], options["key"], options["settings"]
        self.name = name
        self.lag = timedelta(days=1)  # activity covers completed UTC days only
        self.trailing_days = 2
        self.max_window_days = 1  # /activity takes a single date
        self.today = today
        self.max_keys_per_day = MAX_KEYS_PER_DAY
        self.http = VendorHttp.bearer(
            key,
            settings,
            source=name,
            base_url=options["base_url"],
            per_minute=settings.openrouter_requests_per_minute,
            transport=options.get("transport"),
        )

    def close(self) -> None:
        self.http.close()

    def _get(self, endpoint: str, params: dict[str, Any], *, absent: tuple[int, ...] = ()) -> Any:
        """The decoded body; None when the status is one of ``absent`` (the endpoint is not offered)."""
        response = self.http.request("GET", endpoint, params=params, endpoint=endpoint)
        if response.status_code == 200:
            return decode_json(response, self.name, endpoint)
        if response.status_code in absent:
            return None
        summary = error_summary(response)
        if response.status_code == 403:
            raise SourceError(
                self.name,
                endpoint,
                f"HTTP 403: a management key is required: set OPENROUTER_MANAGEMENT_KEY to a management "
                f"(provisioning) key, not an inference key ({summary})",
            )
        if response.status_code == 401:
            raise SourceError(
                self.name,
                endpoint,
                f"HTTP 401: the key was rejected (check OPENROUTER_MANAGEMENT_KEY): {summary}",
            )
        raise SourceError(self.name, endpoint, f"HTTP {response.status_code}: {summary}")

    # -- keys and people ----------------------------------------------------------------
    def _offset_pages(
        self, endpoint: str, params: dict[str, Any], id_field: str, *, absent: tuple[int, ...] = ()
    ) -> list[dict] | None:
        """Every item of an offset-paged list, until an empty page, a page of items already seen
        (an API ignoring ``offset``) or ``total_count``; None if the endpoint is not offered."""
        found: list[dict] = []
        seen: set[str] = set()
        offset = 0
        for _ in range(KEYS_PAGE_MAX):
            body = self._get(endpoint, {**params, "offset": offset}, absent=absent)
            if body is None:
                return None
            page = body.get("data") if isinstance(body, dict) else None
            if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
                raise SourceError(self.name, endpoint, "unexpected response shape (no data list)")
            fresh = [item for item in page if item.get(id_field) and item[id_field] not in seen]
            if not fresh:
                return found
            seen.update(item[id_field] for item in fresh)
            found.extend(fresh)
            offset += len(page)
            total = body.get("total_count")
            if type(total) is int and offset >= total:
                return found
        raise SourceError(self.name, endpoint, f"more than {KEYS_PAGE_MAX} pages")

    def workspaces(self) -> list[str | None]:
        """Every workspace id; ``[None]`` (the default workspace) if the account has no workspaces API."""
        found = self._offset_pages("workspaces", {"limit": PAGE_LIMIT}, "id", absent=NOT_OFFERED)
        if found is None:
            log.info("%s: no workspaces endpoint; listing the default workspace's keys", self.name)
            return [None]
        return [str(item["id"]) for item in found] or [None]

    def keys(self) -> list[dict]:
        """Every API key of every workspace, disabled ones included."""
        found: list[dict] = []
        seen: set[str] = set()
        for workspace in self.workspaces():
            params: dict[str, Any] = {"include_disabled": "true"}
            if workspace is not None:
                params["workspace_id"] = workspace
            for item in self._offset_pages("keys", params, "hash") or []:
                if item["hash"] not in seen:  # a key is in one workspace; never count it twice
                    seen.add(item["hash"])
                    found.append(item)
        return found

    def members(self) -> dict[str, dict]:
        """Organization members by user id; empty for an account that is not an organization."""
        found = self._offset_pages(
            "organization/members", {"limit": PAGE_LIMIT}, "id", absent=(*NOT_OFFERED, 400, 403)
        )
        if found is None:
            log.info("%s: no organization members; keys are attributed by their names", self.name)
            return {}
        return {str(member["id"]): member for member in found}

    @staticmethod
    def identities(keys: list[dict], members: dict[str, dict] | None = None) -> list[IdentityHint]:
        """Who each key is: its creator's member email, else an email typed as its name or label."""
        hints = []
        for item in keys:
            name = item.get("name") if isinstance(item.get("name"), str) else ""
            label = item.get("label") if isinstance(item.get("label"), str) else ""
            # The HTTP API spells it creator_user_id; the SDKs' creatorUserId is accepted too.
            creator = (members or {}).get(str(item.get("creator_user_id") or item.get("creatorUserId")))
            email = _email_of(creator.get("email")) if creator else None
            if email:
                full = " ".join(str(creator.get(part) or "") for part in ("first_name", "last_name")).strip()
                hints.append(IdentityHint(key_actor(item["hash"]), email, full or name or label))
                continue
            guess = _email_of(name, label)
            origin = NAME_GUESS if guess else "auto"
            hints.append(IdentityHint(key_actor(item["hash"]), guess, name or label, origin=origin))
        return hints

    def _candidates(self, keys: list[dict], day: date) -> list[str]:
        """Keys that may have activity on ``day``, biggest lifetime spenders first, bounded.

        Skipped: keys created after the day, and keys that never spent anything (their possible
        free-model tokens stay in ``openrouter:unattributed``, dollars are exact either way).
        """
        chosen: list[tuple[Decimal, str]] = []
        for item in keys:
            try:
                spent = to_decimal(item.get("usage") or 0) + to_decimal(item.get("byok_usage") or 0)
                created = item.get("created_at")
                created_day = utc_day(created) if created else None
            except (ValueError, TypeError):
                raise SourceError(
                    self.name, "keys", f"key {item['hash'][:12]}: bad usage or created_at"
                ) from None
            if spent <= 0 or (created_day is not None and created_day > day):
                continue
            chosen.append((spent, item["hash"]))
        chosen.sort(key=lambda pair: pair[0], reverse=True)
        if len(chosen) > self.max_keys_per_day:
            log.warning(
                "%s: %d keys active; attributing the top %d, the rest of %s stays unattributed",
                self.name,
                len(chosen),
                self.max_keys_per_day,
                day,
            )
        return [key_hash for _, key_hash in chosen[: self.max_keys_per_day]]

    # -- activity ------------------------------------------------------------------------
    def activity(self, day: date, key_hash: str | None = None) -> dict[str, _Totals]:
        """``day``'s activity per model (for the org, or one key)."""
        endpoint = "activity"
        params = {"date": day.isoformat()}
        if key_hash:
            params["api_key_hash"] = key_hash
        body = self._get(endpoint, params)
        rows = body.get("data") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise SourceError(self.name, endpoint, "unexpected response shape (no data list)")
        per_model: dict[str, _Totals] = {}
        for row in rows:
            if not isinstance(row, dict):
                raise SourceError(self.name, endpoint, "unexpected response shape (a row is not an object)")
            try:
                row_day = str(row.get("date") or day.isoformat())[:10]
                if date.fromisoformat(row_day) != day:
                    continue  # another day's row: it belongs to that day's request
                totals = _Totals(
                    usage=to_decimal(row.get("usage") if row.get("usage") is not None else 0),
                    prompt=count(row.get("prompt_tokens"), "prompt_tokens"),
                    completion=count(row.get("completion_tokens"), "completion_tokens"),
                    requests=count(row.get("requests"), "requests"),
                )
            except (ValueError, TypeError) as error:
                raise SourceError(self.name, endpoint, f"bad activity row: {error}") from None
            model = str(row.get("model") or row.get("model_permaslug") or "")
            per_model.setdefault(model, _Totals()).add(totals)
        return per_model

    def _records(self, day: date, actor: str, per_model: dict[str, _Totals]) -> list[UsageRecord]:
        return [
            UsageRecord(
                day=day,
                actor=actor,
                model=model,
                cost=Money.from_usd(totals.usage),
                input_tokens=totals.prompt,
                output_tokens=totals.completion,
                requests=totals.requests,
            )
            for model, totals in per_model.items()
            if totals.usage or totals.prompt or totals.completion or totals.requests
        ]

    def day_batch(self, day: date, keys: list[dict]) -> Batch:
        batch = Batch(day, day + timedelta(days=1))
        org = self.activity(day)
        attributed: dict[str, _Totals] = {}
        if org:  # no org activity that day: no key can have any
            for key_hash in self._candidates(keys, day):
                per_model = self.activity(day, key_hash)
                batch.usage.extend(self._records(day, key_actor(key_hash), per_model))
                for model, totals in per_model.items():
                    attributed.setdefault(model, _Totals()).add(totals)
        remainder: dict[str, _Totals] = {}
        for model in org.keys() | attributed.keys():
            total, part = org.get(model, _Totals()), attributed.get(model, _Totals())
            rest = _Totals(
                total.usage - part.usage,
                total.prompt - part.prompt,
                total.completion - part.completion,
                total.requests - part.requests,
            )
            if usd_to_micros(rest.usage) == 0:
                rest.usage = Decimal(0)  # float noise between the two sums (< half a micro-dollar)
            if min(rest.usage, rest.prompt, rest.completion, rest.requests) < 0:
                # The keys add up to more than the org reports: no exact remainder exists. Store
                # the keys as reported and no unattributed row for this model (documented).
                log.warning(
                    "%s: per-key activity exceeds the org total for %s %r; no unattributed row",
                    self.name,
                    day,
                    model,
                )
                continue
            remainder[model] = rest
        batch.usage.extend(self._records(day, UNATTRIBUTED, remainder))
        return batch

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        today = self.today()
        start = max(window_start, today - timedelta(days=HISTORY_DAYS))
        end = min(window_end, today)  # today is not complete: never asked for
        if start >= end:
            return
        keys = self.keys()
        hints = self.identities(keys, self.members())
        for day, _ in split_window(start, end, self.max_window_days):
            batch = self.day_batch(day, keys)
            batch.identities = hints
            hints = []  # identities go with the first batch only
            yield batch


def from_settings(settings: Settings) -> list[OpenRouterConnector]:
    return [
        OpenRouterConnector(name=account.name, key=account.key, base_url=account.base_url, settings=settings)
        for account in settings.vendor_accounts(
            VENDOR, key=settings.openrouter_management_key, base_url=settings.openrouter_base_url
        )
    ]
