"""The HTTP client every connector uses: bounded retries on 429, 5xx and transport errors
(honouring ``Retry-After``), request pacing for vendors with per-minute limits, JSON parsed with
Decimal so money stays exact (msgspec), and errors that name the endpoint but never the key.

Every credential a client sends (an auth-like header's value and its last word, HTTP Basic's
user and password, a body, form or query field named like a key, token, secret or signature) is
handed to ``bot.observability.SECRETS`` before it is sent: from then on that value is masked, in
every encoding, out of log records, ``SourceError`` messages and error summaries, whichever
connector builds the text. A vendor that echoes the key back (raw, in a Basic header's base64,
URL-encoded) shows ``[redacted]``."""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot.observability import mask_secrets, remember_secrets
from bot.sources.base import SourceError

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# getaddrinfo's answers that mean "this name does not exist" (not "the resolver is unreachable",
# EAI_AGAIN, which a retry may fix).
_NO_SUCH_HOST = frozenset(
    getattr(socket, name)
    for name in ("EAI_NONAME", "EAI_NODATA", "EAI_FAIL", "EAI_SERVICE")
    if hasattr(socket, name)
)


class RetryableResponse(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Pacer:
    """At most ``per_minute`` requests in any sliding minute (thread-safe)."""

    def __init__(self, per_minute: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock = clock

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            time.sleep(delay)


class VendorHttp:
    @classmethod
    def configured(cls, settings: Settings, *, source: str, base_url: str, **options) -> VendorHttp:
        """A client with the timeout and retry limits of the settings (``HTTP_*``); ``options``
        as for the constructor (headers, auth, pacing, transport, refuse)."""
        return cls(
            source=source,
            base_url=base_url,
            timeout=settings.http_timeout_seconds,
            max_retries=settings.http_max_retries,
            max_backoff=settings.http_max_backoff_seconds,
            **options,
        )

    @classmethod
    def bearer(cls, key: str, settings: Settings, *, source: str, base_url: str, **options) -> VendorHttp:
        """:meth:`configured`, for an API that takes its key as a Bearer token."""
        headers = {"Authorization": f"Bearer {key}"}
        return cls.configured(settings, source=source, base_url=base_url, headers=headers, **options)

    def __init__(
        self,
        *,
        source: str,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_backoff: float = 60.0,
        per_minute: int | None = None,
        transport: httpx.BaseTransport | None = None,
        refuse: str | None = None,
    ) -> None:
        """``refuse``: why no request may be sent (e.g. a key of the wrong kind): every request
        fails at once with that reason, before anything reaches the network."""
        self.source = source
        self.secrets = _secrets_of(headers, auth)
        remember_secrets(*self.secrets)
        self.max_retries = max_retries
        self.max_backoff = max_backoff
        self.pacer = Pacer(per_minute)
        self.refusal = refuse
        options: dict[str, Any] = dict(
            headers={"User-Agent": "tokenwise/0.1", **(headers or {})},
            auth=auth,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        try:
            self.client = httpx.Client(base_url=base_url.rstrip("/") + "/", **options)
        except httpx.InvalidURL as error:
            # A base URL httpx cannot even parse: the source is still listed, and its runs fail
            # with this reason (the connector is built long before anything is fetched).
            self.client = httpx.Client(**options)
            self.refusal = self.refusal or f"invalid base URL {base_url!r}: {error}"

    def close(self) -> None:
        self.client.close()

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableResponse):
            hinted = retry_after_seconds(error.response)
            if hinted is not None:
                return min(hinted, self.max_backoff)
        return wait_exponential_jitter(multiplier=0.5, max=self.max_backoff, jitter=0.5)(state)

    def request(
        self, method: str, path: str, *, endpoint: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send with retries; returns the final non-retryable response (any status)."""
        endpoint = endpoint or path.split("?")[0]
        remember_secrets(*_fields_sent(path, kwargs))
        if self.refusal:
            raise SourceError(self.source, "", self.refusal)

        def attempt() -> httpx.Response:
            self.pacer.wait()
            response = self.client.request(method, path.lstrip("/"), **kwargs)
            if response.status_code in RETRYABLE_STATUS:
                response.read()
                raise RetryableResponse(response)
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(
                lambda e: (
                    isinstance(e, RetryableResponse)
                    or (isinstance(e, httpx.TransportError) and unfixable(e) is None)
                )
            ),
            reraise=True,
            before_sleep=lambda s: log.warning(
                "%s %s: retrying after %s (attempt %d)",
                self.source,
                endpoint,
                _describe(s.outcome.exception()),
                s.attempt_number,
            ),
        )
        try:
            return retrying(attempt)
        except RetryableResponse as error:
            raise SourceError(
                self.source,
                endpoint,
                f"HTTP {error.response.status_code} after {self.max_retries + 1} attempts",
            ) from None
        except httpx.TransportError as error:
            url = _tried(error)
            reason = unfixable(error)
            if reason is not None:  # retrying cannot help: say so after the first attempt
                raise SourceError(
                    self.source, endpoint, f"cannot reach {url}: {reason}; not retried"
                ) from None
            raise SourceError(
                self.source, endpoint, f"{_describe(error)} after {self.max_retries + 1} attempts to {url}"
            ) from None
        except httpx.InvalidURL as error:  # a path or query httpx cannot build into a URL
            raise SourceError(self.source, endpoint, f"invalid URL ({error}); not retried") from None
        except httpx.HTTPError as error:  # not retried, e.g. a body that cannot be decoded
            raise SourceError(self.source, endpoint, f"broken response ({type(error).__name__})") from None

    def json(
        self, method: str, path: str, *, endpoint: str | None = None, ok: tuple[int, ...] = (200,), **kw: Any
    ) -> Any:
        """Request and decode JSON (numbers as Decimal); any other status is a clear SourceError."""
        endpoint = endpoint or path.split("?")[0]
        response = self.request(method, path, endpoint=endpoint, **kw)
        if response.status_code not in ok:
            summary = error_summary(response)
            raise SourceError(self.source, endpoint, f"HTTP {response.status_code}: {summary}")
        return decode_json(response, self.source, endpoint)


#: Pages are decoded by msgspec (about 1.5x the standard library on a costs page, B1), numbers
#: with a fraction or an exponent as Decimal, exactly as ``json.loads(parse_float=Decimal)``
#: reads them. Unlike it, NaN and Infinity are refused (no vendor sends them as an amount).
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(response: httpx.Response, source: str, endpoint: str) -> Any:
    try:
        return _DECODER.decode(response.content)
    except (ValueError, UnicodeDecodeError):  # msgspec.DecodeError is a ValueError
        raise SourceError(source, endpoint, "response is not valid JSON") from None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while one page of decoded JSON is read.

    A page is thousands of dicts that live exactly as long as the page. With the collector on,
    every 700 new objects it scans the young ones and, as the page still holds them, promotes
    them, so its full collections scan them again: about 15% of a year's backfill in the B1
    profile (docs/benchmarks.md). Decoded JSON has no cycles, so reference counting frees the page
    as soon as it is dropped: drop it inside the block and the collector never sees it. Nothing
    may be yielded inside the block (a suspended generator would keep the collector off); any
    cyclic garbage made meanwhile, by any thread, waits for the next collection after it. Only
    the block that paused the collector resumes it, so nested and concurrent use is safe.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def error_summary(response: httpx.Response) -> str:
    """A short, key-free description of an error body (vendors put a message in different places).
    Masked before it is cut short: a cut through an echoed key would leave a part unmasked."""
    return mask_secrets(_error_text(response))[:200] or response.reason_phrase


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or "").strip()
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("type") or error)
        if error:
            return str(body.get("message") or error)
        if body.get("message"):
            return str(body["message"])
    return str(body)


CREDENTIAL_WORDS = ("auth", "key", "token", "secret", "password", "credential", "sig")


def _is_credential_name(name: object) -> bool:
    return isinstance(name, str) and any(word in name.lower() for word in CREDENTIAL_WORDS)


def _secrets_of(headers: Mapping[str, str] | None, auth: Any) -> list[str]:
    """The credentials this client sends (auth-like header values, their last word, basic-auth parts)."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        if _is_credential_name(name):
            found += [value, value.split()[-1] if value.split() else value]
    if isinstance(auth, tuple):
        found += [str(part) for part in auth]
    return sorted({s for s in found if len(s) >= 8}, key=len, reverse=True)


def _fields_sent(path: str, kwargs: Mapping[str, Any]) -> list[str]:
    """Credential-named values one request carries: in its JSON or form body, its query
    parameters, or the query string of a full URL (a signed download link)."""
    pairs: list[tuple[Any, Any]] = list(httpx.URL(path).params.multi_items())
    for field in ("json", "data", "params"):
        value = kwargs.get(field)
        if isinstance(value, Mapping):
            pairs += list(value.items())
        elif isinstance(value, list | tuple):
            pairs += [item for item in value if isinstance(item, tuple) and len(item) == 2]
    return [str(value) for name, value in pairs if _is_credential_name(name) and isinstance(value, str)]


def wrong_key_kind(key: str, kinds: tuple[tuple[str, str], ...], needed: str) -> str | None:
    """Why ``key`` cannot work, said before anything is sent (a 401 would not say which key was
    needed): ``kinds`` are (prefix, what a key with it is); None for any other key."""
    for prefix, kind in kinds:
        if key.startswith(prefix):
            return f"the key is {kind}: {needed}"
    return None


def unfixable(error: httpx.TransportError) -> str | None:
    """Why retrying this transport error cannot help (a URL no server can answer), or None."""
    if isinstance(error, httpx.UnsupportedProtocol):
        return "the URL must start with https:// or http://"
    try:
        if not error.request.url.host:
            return "the URL has no host name"
    except RuntimeError:  # no request attached
        pass
    if isinstance(error, httpx.ConnectError):
        cause: BaseException | None = error
        while cause is not None:
            if isinstance(cause, socket.gaierror) and cause.errno in _NO_SUCH_HOST:
                return "its host name does not resolve (DNS)"
            cause = cause.__cause__ or cause.__context__
    return None


def _tried(error: httpx.TransportError) -> str:
    """The URL a failed request went to, without its query or user info (they may carry a key)."""
    try:
        url = error.request.url
    except RuntimeError:  # raised before a request existed
        return "(no URL)"
    return str(url.copy_with(query=None, fragment=None, userinfo=b""))


def _describe(error: BaseException | None) -> str:
    if isinstance(error, RetryableResponse):
        return f"HTTP {error.response.status_code}"
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.TransportError):
        return f"connection error ({type(error).__name__})"
    return type(error).__name__
