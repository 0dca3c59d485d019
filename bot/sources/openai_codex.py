"""OpenAI Codex Enterprise Analytics: per-user daily Codex usage of one ChatGPT workspace
(credits, tokens, threads, turns, lines). See docs/sources/codex.md for what each field comes from
and which parts OpenAI's public pages leave undefined.

``GET {base}/workspaces/{workspace_id}/usage`` with ``start_time`` (inclusive) and ``end_time``
(exclusive) in Unix seconds, ``group_by=day``, ``limit`` and the ``page`` cursor of the previous
answer's ``next_page``; ``group`` is omitted, so every row is one user's UTC day. Answers are
``page`` objects (``data``, ``has_more``, ``next_page``).

Money: Codex bills **credits**, and OpenAI publishes no dollar rate for them. Each row keeps its
credits as the raw amount (unit ``codex_credits``); dollars come only from a rate the workspace
documents itself (``CODEX_USD_PER_CREDIT``, its contract) or from the row's own
``estimated_cost_usd``, both stored as ``estimated`` outside the org total; otherwise the row is
``unpriced`` (cost unknown, never a silent $0). A money-like field this module does not know
(a new cost or credit field) fails the run instead of being dropped.

Actors: ``email:<email>`` when the row names one (with the ``codex_user:<user_id>`` identity
linked to it), else ``codex_user:<user_id>`` for an admin to link.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from bot.domain.clock import utc_today
from bot.domain.money import Money, kind_of, to_decimal, usd_to_micros
from bot.domain.records import (
    ESTIMATED,
    UNPRICED,
    ActivityRecord,
    Batch,
    IdentityHint,
    UsageRecord,
    email_actor,
    fold,
)
from bot.settings import Settings, VendorAccount
from bot.sources.base import SourceError, split_window
from bot.sources.http import VendorHttp
from bot.sources.values import count

log = logging.getLogger(__name__)

USAGE = "workspaces/{workspace_id}/usage"
CREDITS = "codex_credits"
PAGE_SIZE = 1000
MAX_PAGES = 10_000  # loop guard: a cursor that never ends is an error, not a hang
DAY_SECONDS = 86_400
LOOKBACK_DAYS = 90  # "Requests can look back up to 90 days" (governance page)

#: ``totals`` fields read, and the money-like words that make an unknown field an error.
TOKEN_FIELDS = {
    "uncached_text_input_tokens": "input_tokens",
    "cached_text_input_tokens": "cache_read_tokens",
    "text_output_tokens": "output_tokens",
}
KNOWN_TOTALS = {
    *TOKEN_FIELDS,
    "threads",
    "turns",
    "credits",
    "text_total_tokens",
    "estimated_cost_usd",
    "cost_usd",
}
MONEY_WORDS = ("cost", "credit", "usd", "price", "amount", "charge", "spend")


def epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _amount(value: Any, field: str) -> Decimal:
    """A non-negative exact amount; null is 0."""
    if value is None:
        return Decimal(0)
    if isinstance(value, bool):
        raise ValueError(f"{field} is not a number but {kind_of(value)}")
    amount = to_decimal(value)
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{field} is not a non-negative number")
    return amount


def _day(row: dict) -> date:
    start = count(row.get("start_time"), "start_time", negative=False)
    end = count(row.get("end_time"), "end_time", negative=False)
    if start % DAY_SECONDS or end - start != DAY_SECONDS:
        raise ValueError(f"bucket [{start}, {end}) is not one UTC day (the request asked for group_by=day)")
    return datetime.fromtimestamp(start, UTC).date()


def _person(row: dict) -> tuple[str, IdentityHint | None]:
    actor = row.get("actor") if isinstance(row.get("actor"), dict) else {}
    user_id = row.get("user_id") or actor.get("user_id")
    if not isinstance(user_id, str) or not user_id.strip():
        raise ValueError("a row without user_id (the request asked for per-user rows)")
    account = f"codex_user:{user_id.strip()}"
    email = actor.get("email") or row.get("email")
    if isinstance(email, str) and email.strip():
        return email_actor(email), IdentityHint(account, email.strip().lower())
    return account, None


def _cost(totals: dict, usd_per_credit: Decimal | None) -> tuple[Money, str]:
    credits = _amount(totals.get("credits"), "credits")
    estimate = totals.get("estimated_cost_usd")
    if usd_per_credit is not None:
        return Money(usd_to_micros(credits * usd_per_credit), str(credits), CREDITS), ESTIMATED
    if estimate is not None:
        return Money(usd_to_micros(_amount(estimate, "estimated_cost_usd")), str(credits), CREDITS), ESTIMATED
    return Money(0, str(credits), CREDITS), UNPRICED


def parse_row(
    row: Any, *, usd_per_credit: Decimal | None = None
) -> tuple[UsageRecord, ActivityRecord, IdentityHint | None]:
    """One per-user daily row -> its usage (credits and tokens), activity and identity hint.
    Raises ValueError for anything that cannot be read as documented."""
    if not isinstance(row, dict):
        raise ValueError(f"a row is not an object but {kind_of(row)}")
    day = _day(row)
    actor, hint = _person(row)
    totals = row.get("totals")
    if not isinstance(totals, dict):
        raise ValueError("a row without totals")
    unknown = sorted(set(totals) - KNOWN_TOTALS)
    money_like = [name for name in unknown if any(word in name.lower() for word in MONEY_WORDS)]
    if money_like:
        raise ValueError(
            f"unknown money field(s) {', '.join(money_like)} in totals: refusing to guess their unit"
        )
    if unknown:
        log.warning("codex analytics: ignoring unknown totals field(s) %s", ", ".join(unknown))
    if _amount(totals.get("cost_usd"), "cost_usd"):
        # Not defined by any public OpenAI page: storing it would be guessing what it bills.
        raise ValueError("totals.cost_usd is set; its meaning is not documented, so it is not stored")
    cost, basis = _cost(totals, usd_per_credit)
    usage = UsageRecord(day=day, actor=actor, model="", cost=cost, cost_basis=basis, in_org_total=False)
    for field, measure in TOKEN_FIELDS.items():
        setattr(usage, measure, count(totals.get(field), field, negative=False))
    lines = row.get("code_attribution") if isinstance(row.get("code_attribution"), dict) else {}
    activity = ActivityRecord(
        day=day,
        actor=actor,
        sessions=count(totals.get("threads"), "threads", negative=False),
        requests=count(totals.get("turns"), "turns", negative=False),
        lines_added=count(lines.get("lines_added"), "lines_added", negative=False),
        lines_removed=count(lines.get("lines_removed"), "lines_removed", negative=False),
    )
    return usage, activity, hint


def page_rows(payload: Any) -> tuple[list, str | None]:
    """A ``page`` object's rows and the cursor of the next page (None: the last page)."""
    if (
        not isinstance(payload, dict)
        or payload.get("object") != "page"
        or not isinstance(payload.get("data"), list)
    ):
        raise ValueError("the answer is not a page object with a data list")
    has_more = payload.get("has_more")
    if not isinstance(has_more, bool):
        raise ValueError(f"has_more is not a boolean but {kind_of(has_more)}")
    cursor = payload.get("next_page")
    if has_more and not (isinstance(cursor, str) and cursor):
        raise ValueError("has_more is true but next_page is empty")
    return payload["data"], cursor if has_more else None


class CodexAnalyticsConnector:
    vendor: ClassVar[str] = "codex"

    def __init__(
        self,
        account: VendorAccount,
        settings: Settings,
        *,
        transport=None,
        today: Callable[[], date] = utc_today,
    ) -> None:
        """``account.org`` is the ChatGPT workspace id."""
        name, key, base_url, workspace_id = account.name, account.key, account.base_url, account.org
        self.name = name
        self.today = today
        self.lag = timedelta(hours=12)  # "Usage data can lag by up to 12 hours"
        self.trailing_days = 3
        self.max_window_days = 31
        self.workspace_id = (workspace_id or "").strip()
        self.usd_per_credit = settings.codex_usd_per_credit
        self.endpoint = USAGE.format(workspace_id=self.workspace_id or "-")
        refuse = None if self.workspace_id else "no ChatGPT workspace id: set CODEX_WORKSPACE_ID"
        self.http = VendorHttp.bearer(
            key, settings, source=name, base_url=base_url, transport=transport, refuse=refuse
        )

    def close(self) -> None:
        self.http.close()

    def _rows(self, start: date, end: date) -> Iterator[Any]:
        params: dict[str, Any] = {
            "start_time": epoch(start),
            "end_time": epoch(end),
            "group_by": "day",
            "limit": PAGE_SIZE,
        }
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            payload = self.http.json("GET", self.endpoint, params=params)
            try:
                rows, cursor = page_rows(payload)
            except ValueError as error:
                raise SourceError(self.name, self.endpoint, str(error)) from None
            yield from rows
            if cursor is None:
                return
            if cursor in seen:
                raise SourceError(self.name, self.endpoint, "next_page repeats an earlier cursor")
            seen.add(cursor)
            params["page"] = cursor
        raise SourceError(self.name, self.endpoint, f"more than {MAX_PAGES} pages")

    def _window(self, start: date, end: date) -> Batch:
        batch = Batch(start, end)
        hints: dict[str, IdentityHint] = {}
        for row in self._rows(start, end):
            try:
                usage, activity, hint = parse_row(row, usd_per_credit=self.usd_per_credit)
            except (ValueError, TypeError) as error:
                raise SourceError(self.name, self.endpoint, f"cannot read a usage row: {error}") from None
            if not start <= usage.day < end:
                raise SourceError(self.name, self.endpoint, f"a row for {usage.day} outside [{start}, {end})")
            batch.usage.append(usage)
            batch.activity.append(activity)
            if hint is not None:
                hints[hint.actor] = hint
        batch.usage = fold(batch.usage)
        batch.activity = fold(batch.activity)
        batch.identities = list(hints.values())
        return batch

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        oldest = self.today() - timedelta(days=LOOKBACK_DAYS)
        if window_start < oldest:
            # Said before any request: the API cannot answer, and an empty window would claim zero.
            raise SourceError(
                self.name,
                self.endpoint,
                f"the window starts {window_start}, but the Analytics API looks back at most "
                f"{LOOKBACK_DAYS} days (to {oldest}): sync from {oldest} on",
            )
        for start, end in split_window(window_start, window_end, self.max_window_days):
            yield self._window(start, end)


def from_settings(settings: Settings) -> list[CodexAnalyticsConnector]:
    """CODEX_ANALYTICS_KEY (with CODEX_WORKSPACE_ID) enables this source; so does every
    ``[[accounts]]`` entry with vendor "codex" (its ``org`` is the workspace id)."""
    accounts = settings.vendor_accounts(
        "codex",
        key=settings.codex_analytics_key,
        base_url=settings.codex_analytics_base_url,
        org=settings.codex_workspace_id,
    )
    return [CodexAnalyticsConnector(account, settings) for account in accounts]
