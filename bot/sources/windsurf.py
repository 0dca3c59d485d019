"""Windsurf (Codeium) Enterprise Analytics API: value signals only. See docs/sources/windsurf.md.

Every call is a ``POST`` whose JSON body carries the ``service_key``; bodies are never logged and
every error is scrubbed of the key before it leaves this module. ``/UserPageAnalytics`` maps each
user's hashed API key to an email; ``/Analytics`` custom queries give autocomplete and chat
figures per hashed key per UTC day; ``/CascadeAnalytics`` gives Cascade lines per day, but its
results carry no user, so it is called once per user (only users whose last Cascade use falls in
the window, and at most ``max_cascade_calls`` calls per window).

Windsurf reports no dollars: ``promptsUsed`` is credits, not money, so nothing is stored as cost
and no UsageRecord is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, ClassVar, Unpack

from bot.domain.money import kind_of
from bot.domain.records import ActivityRecord, Batch, IdentityHint, email_actor
from bot.settings import Settings
from bot.sources.base import ConnectorOptions, SourceError, split_window
from bot.sources.http import VendorHttp
from bot.sources.values import count, utc_day

USER_PAGE = "UserPageAnalytics"
ANALYTICS = "Analytics"
CASCADE = "CascadeAnalytics"
UNATTRIBUTED = "windsurf:unattributed"
#: Cascade results carry no user, so one call per user: this bounds the calls per window.
MAX_CASCADE_CALLS = 500

_SUM = "QUERY_AGGREGATION_SUM"
_GROUP_BY_KEY_AND_DAY = [{"field": "api_key", "name": "api_key"}, {"field": "date", "name": "date"}]


def _rfc3339(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _date_filters(start: date, end: date) -> list[dict[str, str]]:
    """``start <= date < end`` with the documented operators (there is no ``QUERY_FILTER_LT``:
    ``QUERY_FILTER_LESS_THAN`` is the strict one)."""
    return [
        {"name": "date", "filter": "QUERY_FILTER_GE", "value": start.isoformat()},
        {"name": "date", "filter": "QUERY_FILTER_LESS_THAN", "value": end.isoformat()},
    ]


def analytics_queries(start: date, end: date) -> list[dict]:
    """Autocomplete and chat figures summed per hashed API key per UTC day."""
    return [
        {
            "data_source": "QUERY_DATA_SOURCE_USER_DATA",
            "selections": [
                {"field": "num_acceptances", "name": "acceptances", "aggregation_function": _SUM},
                {"field": "num_lines_accepted", "name": "lines_accepted", "aggregation_function": _SUM},
            ],
            "filters": _date_filters(start, end),
            "aggregations": _GROUP_BY_KEY_AND_DAY,
        },
        {
            "data_source": "QUERY_DATA_SOURCE_CHAT_DATA",
            "selections": [
                {"field": "chat_loc_used", "name": "chat_loc_used", "aggregation_function": _SUM},
                {"field": "num_chats_received", "name": "chats", "aggregation_function": _SUM},
            ],
            "filters": _date_filters(start, end),
            "aggregations": _GROUP_BY_KEY_AND_DAY,
        },
    ]


class WindsurfConnector:
    vendor: ClassVar[str] = "windsurf"

    def __init__(
        self, *, max_cascade_calls: int = MAX_CASCADE_CALLS, **options: Unpack[ConnectorOptions]
    ) -> None:
        name, key = options["name"], options["key"]
        self.name = name
        self.lag = timedelta(hours=3)  # "API data is refreshed every 3 hours"
        self.trailing_days = 3
        self.max_window_days = 31
        self.max_cascade_calls = max_cascade_calls
        self._key = key
        self.http = VendorHttp.configured(
            options["settings"],
            source=name,
            base_url=options["base_url"],
            transport=options.get("transport"),
        )
        self._users: list[dict] | None = None

    def close(self) -> None:
        self.http.close()

    # -- transport -----------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[service key]") if self._key else text

    def _post(self, endpoint: str, body: dict[str, Any]) -> dict:
        """POST with the key in the body; any error leaves without the key in its message."""
        try:
            result = self.http.json("POST", endpoint, json={"service_key": self._key, **body})
        except SourceError as error:
            message = str(error).removeprefix(f"{error.source}: {error.endpoint}: ")
            raise SourceError(self.name, endpoint, self._scrub(message)) from None
        if not isinstance(result, dict):
            raise SourceError(self.name, endpoint, "unexpected response shape (not an object)")
        if result.get("error"):
            raise SourceError(self.name, endpoint, self._scrub(str(result["error"])[:200]))
        return result

    def _error(self, endpoint: str, message: str) -> SourceError:
        return SourceError(self.name, endpoint, self._scrub(message))

    def _count(self, value: Any, endpoint: str) -> int:
        """Numbers arrive as JSON strings ("125"); omitted means zero."""
        if value == "":
            return 0
        try:
            return count(value, truncate=True)
        except (ValueError, TypeError):
            raise self._error(endpoint, f"unreadable number: {kind_of(value)}") from None

    def _day(self, value: Any, endpoint: str) -> date:
        """``2025-05-01`` or RFC 3339 ``2025-05-01T00:00:00Z`` -> the UTC day."""
        try:
            return utc_day(value)
        except ValueError:
            raise self._error(endpoint, f"unreadable date: {kind_of(value)}") from None

    # -- identities ----------------------------------------------------------------------
    def users(self) -> list[dict]:
        if self._users is None:
            body = self._post(USER_PAGE, {})
            stats = body.get("userTableStats", [])
            if not isinstance(stats, list) or not all(isinstance(u, dict) for u in stats):
                raise self._error(USER_PAGE, "unexpected response shape (no userTableStats list)")
            self._users = stats
        return self._users

    def identities(self) -> list[IdentityHint]:
        hints = []
        for user in self.users():
            email, api_key = user.get("email"), user.get("apiKey")
            if isinstance(email, str) and email.strip() and api_key:
                hints.append(
                    IdentityHint(f"windsurf_key:{api_key}", email.strip().lower(), user.get("name") or "")
                )
        return hints

    def _user_actor(self, user: dict) -> str:
        if user.get("apiKey"):
            return f"windsurf_key:{user['apiKey']}"
        return email_actor(user["email"])

    # -- data ----------------------------------------------------------------------------
    def _analytics(self, start: date, end: date, into: dict[tuple[date, str], ActivityRecord]) -> None:
        body = self._post(ANALYTICS, {"query_requests": analytics_queries(start, end)})
        results = body.get("queryResults", [])
        # One result per query, in request order (an empty answer may omit the list entirely).
        if not isinstance(results, list) or len(results) not in (0, 2):
            raise self._error(ANALYTICS, "unexpected response shape (queryResults)")
        for index, result in enumerate(results):
            items = result.get("responseItems", []) if isinstance(result, dict) else None
            if not isinstance(items, list):
                raise self._error(ANALYTICS, "unexpected response shape (responseItems)")
            for wrapper in items:
                item = wrapper.get("item") if isinstance(wrapper, dict) else None
                if not isinstance(item, dict):
                    raise self._error(ANALYTICS, "unexpected response shape (item)")
                day = self._day(item.get("date"), ANALYTICS)
                if not (start <= day < end):
                    continue
                actor = f"windsurf_key:{item['api_key']}" if item.get("api_key") else UNATTRIBUTED
                record = into.setdefault((day, actor), ActivityRecord(day=day, actor=actor))
                if index == 0:  # autocomplete
                    record.acceptances += self._count(item.get("acceptances"), ANALYTICS)
                    record.lines_accepted += self._count(item.get("lines_accepted"), ANALYTICS)
                else:  # chat: code used from chat answers counts as lines added, not accepted
                    record.lines_added += self._count(item.get("chat_loc_used"), ANALYTICS)
                    record.requests += self._count(item.get("chats"), ANALYTICS)

    def _cascade_users(self, start: date) -> list[dict]:
        """Users whose last Cascade use is on or after ``start`` (others have nothing to report)."""
        chosen = []
        for user in self.users():
            last = user.get("lastChatUsageTime")
            if not user.get("email") or not last:
                continue  # never used Cascade (Windsurf omits empty fields)
            try:
                recent = self._day(last, USER_PAGE) >= start
            except SourceError:
                recent = True  # an odd timestamp must not hide a user's lines
            if recent:
                chosen.append(user)
        if len(chosen) > self.max_cascade_calls:
            raise self._error(
                CASCADE,
                f"{len(chosen)} users used Cascade since {start}, more than the {self.max_cascade_calls} "
                "per-user calls allowed per window; sync a shorter window",
            )
        return chosen

    def _cascade(self, start: date, end: date, into: dict[tuple[date, str], ActivityRecord]) -> None:
        for user in self._cascade_users(start):
            body = self._post(
                CASCADE,
                {
                    "emails": [user["email"]],
                    "start_timestamp": _rfc3339(start),
                    "end_timestamp": _rfc3339(end),
                    "query_requests": [{"cascade_lines": {}}],
                },
            )
            results = body.get("queryResults", [])
            if not isinstance(results, list):
                raise self._error(CASCADE, "unexpected response shape (queryResults)")
            actor = self._user_actor(user)
            for result in results:
                wrapper = result.get("cascadeLines") if isinstance(result, dict) else None
                lines = wrapper.get("cascadeLines", []) if isinstance(wrapper, dict) else wrapper or []
                if not isinstance(result, dict) or not isinstance(lines, list):
                    raise self._error(CASCADE, "unexpected response shape (cascadeLines)")
                for row in lines:
                    day = self._day(row.get("day") if isinstance(row, dict) else None, CASCADE)
                    if not (start <= day < end):
                        continue
                    record = into.setdefault((day, actor), ActivityRecord(day=day, actor=actor))
                    record.lines_accepted += self._count(row.get("linesAccepted"), CASCADE)

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        self._users = None  # last-use times decide the Cascade calls: read them fresh each run
        hints = self.identities()
        for start, end in split_window(window_start, window_end, self.max_window_days):
            records: dict[tuple[date, str], ActivityRecord] = {}
            self._analytics(start, end, records)
            self._cascade(start, end, records)
            yield Batch(start, end, activity=list(records.values()), identities=hints)
            hints = []  # identities go with the first batch only


def from_settings(settings: Settings) -> list[WindsurfConnector]:
    return [
        WindsurfConnector(name=account.name, key=account.key, base_url=account.base_url, settings=settings)
        for account in settings.vendor_accounts(
            "windsurf", key=settings.windsurf_service_key, base_url=settings.windsurf_base_url
        )
    ]
