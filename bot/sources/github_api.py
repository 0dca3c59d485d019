"""The GitHub REST client the GitHub modules share (github_delivery, github_copilot, github_users).

Built on ``VendorHttp`` (its retries of 429/5xx and transport errors, secret masking), it adds
what every GitHub call needs:

- the headers: ``Authorization: Bearer <token>`` (when there is a token),
  ``Accept: application/vnd.github+json`` and ``X-GitHub-Api-Version: 2022-11-28``;
- ``Link: rel="next"`` paging, followed on the API's own host only, never to a page seen before,
  at most ``MAX_PAGES`` pages per listing;
- conditional GETs when the client is given an ``EtagCache``: the parsed (slimmed) body of each
  URL is kept with its ETag, and a ``304 Not Modified`` (which GitHub does not count against the
  rate limit) reuses it;
- rate limits, when the client is made with ``wait_rate_limits=True``: a 403/429 with
  ``Retry-After``, a "secondary rate limit" 403 and an exhausted primary limit that resets within
  TOKENWISE_HTTP_MAX_BACKOFF are waited out and retried (VendorHttp itself retries 429/5xx
  only). Off by default: a Slack-facing lookup must not block on it, and the Copilot source has
  never waited (kept so by this shared client);
- errors as ``SourceError``: ``HTTP <status>: <GitHub's message>``, followed by the exhausted
  rate limit's reset time or by the caller's hint for that status (which token, which
  permission). A body GitHub sends is decoded with Decimal numbers; a parser's ValueError,
  TypeError, KeyError, AttributeError or ArithmeticError is "unexpected response: ...".
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, Unpack

import httpx

from bot.settings import Settings
from bot.sources.base import SourceError
from bot.sources.http import VendorHttp, decode_json, error_summary, retry_after_seconds

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
MAX_PAGES = 10_000  # loop guard per listing
SECONDARY_WAIT = 60.0  # GitHub: "wait at least one minute" when no Retry-After is given
PARSE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, ArithmeticError)


def actor_of(login: str) -> str:
    """The actor both GitHub sources store for a login: ``github:<login lower-case>``."""
    return f"github:{login.strip().lower()}"


def _as_is(body: Any) -> Any:
    return body


class Reading(TypedDict):
    """How a GET's body is read: ``parse`` turns the decoded JSON into the page's body (as is by
    default); a status in ``empty`` means "nothing here" (None / no pages) instead of an error."""

    parse: NotRequired[Callable[[Any], Any]]
    empty: NotRequired[tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class Page:
    body: Any  # what the parser made of the response
    next_url: str | None


class EtagCache:
    """ETag and parsed page per request URL, least recently used first out (thread-safe).

    Lives in the process, so consecutive sync runs of the bot revalidate instead of re-download;
    a restart starts cold. Bodies are slimmed by the parsers before they are kept.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[str, Page]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> tuple[str, Page] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple[str, str], etag: str, page: Page) -> None:
        with self._lock:
            self._entries[key] = (etag, page)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def rate_limit_exhausted(response: httpx.Response) -> bool:
    """A 403/429 because the primary rate limit is used up (``x-ratelimit-remaining: 0``)."""
    return response.status_code in (403, 429) and response.headers.get("x-ratelimit-remaining") == "0"


class GitHubApi:
    """One GitHub account's REST client. ``hints`` maps a status (401, 403, 404, ...) to the
    advice appended to its error; ``cache`` makes every GET conditional."""

    def __init__(
        self,
        *,
        source: str,
        token: str | None,
        base_url: str,
        settings: Settings,
        hints: Mapping[int, str] | None = None,
        cache: EtagCache | None = None,
        wait_rate_limits: bool = False,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.hints = dict(hints or {})
        self.cache = cache
        self.wait_rate_limits = wait_rate_limits
        self.max_retries = settings.http_max_retries
        self.max_backoff = settings.http_max_backoff_seconds
        self._sleep = sleep
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if token:
            headers = {"Authorization": f"Bearer {token}", **headers}
        self.http = VendorHttp.configured(
            settings,
            source=source,
            base_url=base_url,
            headers=headers,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def fail(self, endpoint: str, response: httpx.Response) -> SourceError:
        """The error for a response that is not the expected one."""
        status = response.status_code
        if rate_limit_exhausted(response):
            reset = response.headers.get("x-ratelimit-reset")
            hint = f"GitHub API rate limit exhausted (resets at epoch {reset})"
        else:
            hint = self.hints.get(status, "")
        summary = error_summary(response)
        return SourceError(self.source, endpoint, f"HTTP {status}: {summary}" + (f"; {hint}" if hint else ""))

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying a rate-limited response, or None when it is not one
        (or the wait is longer than we are willing to block a sync for)."""
        if not self.wait_rate_limits or response.status_code not in (403, 429):
            return None
        hinted = retry_after_seconds(response)
        if hinted is not None:
            return min(hinted, self.max_backoff)
        if response.headers.get("x-ratelimit-remaining") == "0":
            try:
                wait = float(response.headers.get("x-ratelimit-reset", "")) - time.time()
            except ValueError:
                return None
            return max(0.0, wait) if wait <= self.max_backoff else None
        if "secondary rate limit" in error_summary(response).lower():
            return min(SECONDARY_WAIT, self.max_backoff)
        return None

    def _send(self, path: str, params: Mapping[str, Any] | None, endpoint: str, etag: str | None):
        """The final response to one GET, rate limits waited out; a 304 only when ``etag`` was sent."""
        headers = {"If-None-Match": etag} if etag else {}
        response: httpx.Response | None = None
        for attempt in range(self.max_retries + 1):
            response = self.http.request("GET", path, params=params, headers=headers, endpoint=endpoint)
            if response.status_code == 304 and self.cache is not None:
                if headers:
                    return response
                continue  # we sent no validator, yet got a 304: ask again for the body
            wait = self._rate_limit_wait(response)
            if wait is None:
                break
            if attempt == self.max_retries:
                raise SourceError(
                    self.source, endpoint, f"still rate limited after {self.max_retries + 1} attempts"
                )
            log.warning(
                "%s %s: rate limited (HTTP %d), waiting %.1fs",
                self.source,
                endpoint,
                response.status_code,
                wait,
            )
            self._sleep(wait)
        assert response is not None
        return response

    def get(
        self, path: str, params: Mapping[str, Any] | None, endpoint: str, **how: Unpack[Reading]
    ) -> Page | None:
        """One GET: a fresh parsed page, the cached one on 304, None on a status in ``empty``."""
        parse, empty = how.get("parse", _as_is), how.get("empty", ())
        key = cached = None
        if self.cache is not None:
            url = self.http.client.build_request("GET", path.lstrip("/"), params=params).url
            key = (self.source, str(url))
            cached = self.cache.get(key)
        response = self._send(path, params, endpoint, cached[0] if cached else None)
        if response.status_code == 304 and cached is not None:
            return cached[1]
        if response.status_code in empty:
            return None
        if response.status_code != 200:
            raise self.fail(endpoint, response)
        body = decode_json(response, self.source, endpoint)
        try:
            parsed = parse(body)
        except PARSE_ERRORS as error:
            raise SourceError(self.source, endpoint, f"unexpected response: {error}") from None
        page = Page(parsed, response.links.get("next", {}).get("url"))
        etag = response.headers.get("etag")
        if etag and key is not None and self.cache is not None:
            self.cache.put(key, etag, page)
        return page

    def pages(
        self, path: str, params: Mapping[str, Any] | None, endpoint: str, **how: Unpack[Reading]
    ) -> Iterator[Any]:
        """Each page's parsed body, following ``Link: rel="next"`` on the API's own host only.
        A page is asked for only when the one before it has been consumed."""
        base = self.http.client.base_url
        url, query = path, params
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = self.get(url, query, endpoint, **how)
            if page is None:
                return
            yield page.body
            if not page.next_url:
                return
            target = httpx.URL(page.next_url)
            if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
                raise SourceError(self.source, endpoint, "Link rel=next points to another host")
            if page.next_url in seen:
                raise SourceError(self.source, endpoint, "Link rel=next repeats a page")
            seen.add(page.next_url)
            url, query = page.next_url, None
        raise SourceError(self.source, endpoint, f"more than {MAX_PAGES} pages")
