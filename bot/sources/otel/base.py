"""The protocol every coding agent's OTel mapping implements, and what a mapping yields.

An agent module knows its agent's metric and event names: which carry tokens, cost (a client-side
estimate), lines, commits, pull requests, sessions and active time, and which attribute says who
the person is. It turns one OTLP data point (or log record) into ``Reading`` objects; the intake
(``bot.sources.otel.otlp``) walks the request and ``bot.services.otel`` stores and folds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import ClassVar, Protocol, runtime_checkable

from bot.domain.money import kind_of, usd_to_micros

#: What a reading measures. Token measures and ``cost_micros`` fold into ``usage_daily``; the
#: activity measures are ``ActivityRecord`` fields (``active_seconds``: time in the tool).
USAGE_MEASURES = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "requests")
COST = "cost_micros"
ACTIVITY_MEASURES = (
    "lines_added",
    "lines_removed",
    "commits",
    "pull_requests",
    "sessions",
    "acceptances",
    "rejections",
    "active_seconds",
)
MEASURES = frozenset((*USAGE_MEASURES, COST, *ACTIVITY_MEASURES))


class BadPayload(ValueError):
    """The request cannot be stored as sent (400): the message says why, never echoing a secret."""


@dataclass(frozen=True, slots=True)
class Person:
    """Who a point belongs to: ``actor`` (``email:...`` when the agent sends an email, else the
    agent's account id as an identity to link) and, when both are known, the account actor the
    email identifies (an ``IdentityHint``)."""

    actor: str
    email: str | None = None
    account_actor: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    measure: str
    value: int  # in the measure's unit: tokens, micro-USD, lines, a count, seconds
    model: str = ""


@runtime_checkable
class AgentMapping(Protocol):
    #: ``otel_<agent>`` is the source of its rows.
    agent: ClassVar[str]
    #: Vendor of its rows: the same vendor as the agent's admin-API source, so reports show one
    #: line per product.
    vendor: ClassVar[str]
    #: The vendor of the admin-API source whose figures win over this agent's telemetry for a
    #: person and day both report (the double-count rule, docs/sources/otel.md); "" for none.
    shadowed_by: ClassVar[str]
    #: True: the agent reports its own cost estimate (rows are ``estimated``); False: it sends
    #: tokens only (rows are ``unpriced``).
    priced: ClassVar[bool]
    #: The attribute naming the agent session a point belongs to (what a commit trailer can name
    #: to tie the session's spend to a pull request, bot/services/value/cost_per_pr.py).
    session_attribute: ClassVar[str]

    def claims_metric(self, name: str, resource: Mapping[str, object]) -> bool: ...

    def claims_event(self, name: str, resource: Mapping[str, object]) -> bool: ...

    def person(self, attributes: Mapping[str, object]) -> Person | None:
        """The person of a point's merged resource and point attributes; None: nobody to credit."""
        ...

    def metric_readings(
        self, name: str, attributes: Mapping[str, object], value: int | float
    ) -> list[Reading]:
        """Readings of one data point of metric ``name``; [] when the point is not one it folds."""
        ...

    def event_readings(self, name: str, attributes: Mapping[str, object]) -> list[Reading]:
        """Readings of one log record (event) ``name``; [] when the event carries nothing to fold."""
        ...


def text(attributes: Mapping[str, object], name: str) -> str:
    value = attributes.get(name)
    return value.strip() if isinstance(value, str) else ""


def session_of(agent: AgentMapping, attributes: Mapping[str, object]) -> str:
    """The point's agent session id, lower-case (trailers are matched case-blind), "" if none."""
    return text(attributes, agent.session_attribute).lower()[:128]


def whole(value: int | float | str | None, what: str) -> int:
    """A count as an exact non-negative integer (doubles round to the nearest whole)."""
    amount = decimal_of(value, what)
    return int(amount.to_integral_value())


def usd_micros(value: int | float | str | None, what: str) -> int:
    """US dollars (an OTel double) as micro-dollars, exact from the double's shortest repr."""
    return usd_to_micros(decimal_of(value, what))


def decimal_of(value: int | float | str | None, what: str) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation:
        raise BadPayload(f"{what} is not a number but {kind_of(value)}") from None
    if not amount.is_finite() or amount < 0:
        raise BadPayload(f"{what} is not a finite non-negative number")
    return amount
