"""The connector protocol every vendor module implements, and the error a source's run raises.

A connector turns a vendor's admin API into ``bot.domain.records.Batch`` objects, each a complete
window of UTC days (the rules of a batch are in ``bot.domain.records``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, ClassVar, NotRequired, Protocol, TypedDict, runtime_checkable

from bot.domain.records import Batch
from bot.observability import mask_secrets
from bot.settings import Settings

if TYPE_CHECKING:
    import httpx


class ConnectorOptions(TypedDict):
    """What a vendor connector is built from: its source name, key, API base and settings; a
    test's ``transport`` stands in for the network."""

    name: str
    key: str
    base_url: str
    settings: Settings
    transport: NotRequired[httpx.BaseTransport | None]


class SourceError(Exception):
    """A source's run failed; the message names the endpoint and never contains a secret: any
    credential a vendor client sent is masked out of it (``bot.observability.SECRETS``), so a
    vendor's echo of the key cannot reach sync_state, ``/tokens status`` or a log."""

    def __init__(self, source: str, endpoint: str, message: str) -> None:
        endpoint = mask_secrets(endpoint)
        # No endpoint: the run failed before any request (e.g. a key of the wrong kind).
        where = f"{endpoint}: " if endpoint else ""
        super().__init__(mask_secrets(f"{source}: {where}{message}"))
        self.source = source
        self.endpoint = endpoint


@runtime_checkable
class Connector(Protocol):
    """One configured source instance (a vendor account)."""

    vendor: ClassVar[str]
    name: str
    #: How long the vendor takes to publish data (for /tokens status).
    lag: timedelta
    #: Days re-fetched before the watermark on every run, because vendors revise recent data.
    trailing_days: int
    #: The largest window one batch may cover (the vendor's own limit, or what keeps memory flat).
    max_window_days: int

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        """Yield complete batches covering ``[window_start, window_end)`` in order."""
        ...

    def close(self) -> None: ...


def split_window(start: date, end: date, max_days: int) -> Iterator[tuple[date, date]]:
    """Cut ``[start, end)`` into consecutive windows of at most ``max_days``."""
    cursor = start
    while cursor < end:
        stop = min(end, cursor + timedelta(days=max_days))
        yield cursor, stop
        cursor = stop
