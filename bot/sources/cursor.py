"""Cursor: Admin API. Team members give names for emails, daily usage data gives value signals
(accepted lines, tab and suggestion accepts), filtered usage events give dollars and tokens per
person, day and model. See docs/sources/cursor.md.

Money: an event's charge is ``chargedCents`` (model cost plus Cursor's token fee) where Cursor
sends it, else ``tokenUsage.totalCents`` (model cost only, the older shape); both are JSON floats
in cents, arrive as ``Decimal`` and are summed exactly per (UTC day, email, model, basis) before one
conversion to micro-USD. Chargeable events are billed; events a plan includes ("Included in ...",
``isChargeable: false``) are covered by the seat, so they are stored as estimated and outside the
org total. ``/teams/spend`` (cycle-to-date spend per member) is the same money again: it is never
stored as usage, only reported as ``VendorTotal`` records that the reconciliation
(``/tokens reconcile``) compares with the stored events.

Seats: ``/teams/members`` (already read for names) says who holds a seat today: every member
with an email, not ``isRemoved``, whose role is not ``free-owner`` (an Unpaid Admin: no paid
seat); any other role, named or not, holds one. Cursor sends no prices nor seat types, so each
seat costs ``Settings.cursor_seat_price_usd`` (the Teams Standard list price) per month, spread
over its days as Copilot's seats are: one ``kind="seat"`` row per seat for today (the one day the
list speaks for, when the window holds it), ``cost_basis="estimated"``, in the org total. That
counts nothing twice: included usage (what the seat pays for) stays outside the org total, and
only chargeable (on-demand) usage is added to the seats. The list holds today's members only, so
batches are complete for usage alone (``complete_kinds``): a seat stored for a day stays when a
later run no longer sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any, ClassVar

from bot.domain.money import (
    USD_CENTS,
    Money,
    cents_to_micros,
    kind_of,
    micros_to_usd,
    to_decimal,
)
from bot.domain.records import (
    BILLED,
    ESTIMATED,
    SEAT,
    TOTAL_BILLED,
    TOTAL_BILLED_AND_ESTIMATED,
    USAGE,
    ActivityRecord,
    Batch,
    IdentityHint,
    UsageRecord,
    VendorTotal,
    email_actor,
)
from bot.settings import Settings
from bot.sources.base import SourceError, split_window
from bot.sources.github_copilot import daily_seat_micros
from bot.sources.http import VendorHttp, collector_paused
from bot.sources.values import count

log = logging.getLogger(__name__)

MAX_PAGES = 10_000  # loop guard: a page counter that never ends is an error, not a hang
EVENTS_PAGE_SIZE = 500
DAILY_PAGE_SIZE = 500
SPEND_PAGE_SIZE = 100
UNATTRIBUTED = "cursor:unattributed"
#: Event kinds a plan includes start with this ("Included in Business", "Included in Pro").
INCLUDED_KIND = "Included in"
#: Member roles that hold no paid seat: an Unpaid Admin is ``free-owner`` in the Admin API.
UNPAID_ROLES = frozenset({"free-owner"})
SEAT_MODEL = "cursor-seat"
SEAT_UNIT = "estimate:cursor-seat-list-price"

MEMBERS = "teams/members"
DAILY_USAGE = "teams/daily-usage-data"
EVENTS = "teams/filtered-usage-events"
SPEND = "teams/spend"

# daily-usage-data field -> ActivityRecord field (summed when several map to one).
_ACTIVITY_MAP: dict[str, tuple[str, ...]] = {
    "lines_accepted": ("acceptedLinesAdded",),
    "lines_added": ("totalLinesAdded",),
    "lines_removed": ("totalLinesDeleted",),
    "suggestions_shown": ("totalTabsShown",),
    "acceptances": ("totalTabsAccepted", "totalAccepts"),
    "rejections": ("totalRejects",),
    "requests": ("composerRequests", "chatRequests", "agentRequests", "cmdkUsages"),
}


MS_PER_DAY = 86_400_000
_ZERO = Decimal(0)
_PENDING = Money.zero("usd_cents")  # a record's cost until its window's cents are summed
_NESTED = "tokenUsage"
_ABSENT = object()


def epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def _day_of_ms(value: Any, endpoint: str, source: str) -> date:
    """Epoch milliseconds (a number, or a string in usage events) -> UTC day."""
    try:
        millis = int(to_decimal(value))
        return datetime.fromtimestamp(millis / 1000, UTC).date()
    except (ValueError, TypeError, InvalidOperation, OverflowError, OSError):
        raise SourceError(source, endpoint, f"unreadable epoch-ms timestamp: {kind_of(value)}") from None


def _millis(value: Any, source: str) -> int:
    """A usage event's ``timestamp`` (epoch ms as a string) as an int: ``int()`` for the usual
    digit string, else the same reading as :func:`_day_of_ms`."""
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            pass
    try:
        return int(to_decimal(value))
    except (ValueError, TypeError, InvalidOperation, OverflowError):
        raise SourceError(source, EVENTS, f"unreadable epoch-ms timestamp: {kind_of(value)}") from None


def _count(value: Any, endpoint: str, source: str) -> int:
    try:
        return count(value, truncate=True)
    except (ValueError, TypeError):
        raise SourceError(source, endpoint, f"unreadable number: {kind_of(value)}") from None


def _cents(value: Any, endpoint: str, source: str) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        return to_decimal(value)
    except (ValueError, TypeError):
        raise SourceError(source, endpoint, f"unreadable amount: {kind_of(value)}") from None


def _actor(email: Any) -> str:
    return email_actor(email) if isinstance(email, str) and email.strip() else UNATTRIBUTED


def paid_seat(member: Any) -> bool:
    """Whether a ``/teams/members`` entry holds a paid seat: it has an email, is not removed
    (``isRemoved: true``) and is not an Unpaid Admin (role ``free-owner``). Every other role
    (``member``, ``owner``, ``admin``, one Cursor adds later) is billed for a seat, so an unknown
    role is counted, never a silent $0."""
    if not isinstance(member, dict) or member.get("isRemoved") is True:
        return False
    email, role = member.get("email"), member.get("role")
    if not isinstance(email, str) or not email.strip():
        return False
    return not (isinstance(role, str) and role.strip().lower() in UNPAID_ROLES)


def seat_rows(members: list, day: date, monthly_usd: Decimal) -> list[UsageRecord]:
    """One estimated seat row per paid seat on ``day`` (a person listed twice holds one seat)."""
    micros = daily_seat_micros(monthly_usd, day)
    actors = sorted({email_actor(m["email"]) for m in members if paid_seat(m)})
    return [
        UsageRecord(
            day=day,
            actor=actor,
            model=SEAT_MODEL,
            cost=Money(micros, str(micros_to_usd(micros)), SEAT_UNIT),
            cost_basis=ESTIMATED,
            kind=SEAT,
        )
        for actor in actors
    ]


class CursorConnector:
    vendor: ClassVar[str] = "cursor"

    def __init__(self, *, name: str, key: str, base_url: str, settings: Settings, transport=None) -> None:
        self.name = name
        self.lag = timedelta(hours=1)  # "aggregated at the hourly level"
        self.trailing_days = 3
        self.max_window_days = 30  # /teams/daily-usage-data refuses longer ranges
        self.events_page_size = EVENTS_PAGE_SIZE
        self.http = VendorHttp.configured(
            settings,
            source=name,
            base_url=base_url,
            auth=(key, ""),  # HTTP Basic: the key is the user name, the password is empty
            per_minute=settings.cursor_requests_per_minute,
            transport=transport,
        )
        self._members: list | None = None
        self.seat_price = settings.cursor_seat_price_usd
        #: Today's UTC date: the end of the cycle-to-date spend (tests pin it).
        self.today = lambda: datetime.now(UTC).date()

    def close(self) -> None:
        self.http.close()

    def _dict(self, body: Any, endpoint: str, key: str) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise SourceError(self.name, endpoint, f"unexpected response shape (no {key} list)")
        return body

    # -- members: identities and seats --------------------------------------------------
    def members(self) -> list:
        """Today's ``/teams/members`` entries, read once per connector (once per run)."""
        if self._members is None:
            self._members = self._dict(self.http.json("GET", MEMBERS), MEMBERS, "teamMembers")["teamMembers"]
        return self._members

    def identities(self) -> list[IdentityHint]:
        hints = []
        for member in self.members():
            email = member.get("email") if isinstance(member, dict) else None
            if isinstance(email, str) and email.strip():
                hints.append(
                    IdentityHint(email_actor(email), email.strip().lower(), member.get("name") or "")
                )
        return hints

    def seat_costs(self, start: date, end: date) -> list[UsageRecord]:
        """Today's paid seats, when ``[start, end)`` holds today; else none (the member list says
        nothing about other days)."""
        today = self.today()
        return seat_rows(self.members(), today, self.seat_price) if start <= today < end else []

    # -- value signals -------------------------------------------------------------------
    def _daily_rows(self, start: date, end: date) -> Iterator[Any]:
        """Every daily-usage row of ``[start, end)``. Newer docs page this endpoint (``page``,
        ``pageSize``, ``pagination.hasNextPage``); older ones return every row at once with no
        ``pagination``: both shapes are read, and a missing flag means the last page."""
        for page in range(1, MAX_PAGES + 1):
            payload = {
                "startDate": epoch_ms(start),
                "endDate": epoch_ms(end) - 1,
                "page": page,
                "pageSize": DAILY_PAGE_SIZE,
            }
            body = self._dict(self.http.json("POST", DAILY_USAGE, json=payload), DAILY_USAGE, "data")
            yield from body["data"]
            pagination = body.get("pagination")
            if not isinstance(pagination, dict) or not pagination.get("hasNextPage"):
                return
            if not body["data"]:
                raise SourceError(self.name, DAILY_USAGE, f"page {page} is empty but hasNextPage is true")
        raise SourceError(self.name, DAILY_USAGE, f"more than {MAX_PAGES} pages")

    def _activity(self, start: date, end: date) -> Iterator[ActivityRecord]:
        for row in self._daily_rows(start, end):
            if not isinstance(row, dict):
                raise SourceError(self.name, DAILY_USAGE, "unexpected row shape")
            day = _day_of_ms(row.get("date"), DAILY_USAGE, self.name)
            if not (start <= day < end):
                continue
            values = {
                field: sum(_count(row.get(name), DAILY_USAGE, self.name) for name in names)
                for field, names in _ACTIVITY_MAP.items()
            }
            if row.get("isActive") is False and not any(values.values()):
                continue
            yield ActivityRecord(day=day, actor=_actor(row.get("email")), **values)

    # -- billed usage --------------------------------------------------------------------
    def _usage(self, start: date, end: date) -> list[UsageRecord]:
        """Every usage event of ``[start, end)``, all pages, each event once, summed per
        (UTC day, actor, model)."""
        totals = _EventTotals(self.name, start, end)
        for page in range(1, MAX_PAGES + 1):
            payload = {
                "startDate": epoch_ms(start),
                "endDate": epoch_ms(end) - 1,
                "page": page,
                "pageSize": self.events_page_size,
            }
            # A page is read into the totals and dropped before the collector runs again.
            with collector_paused():
                body = self._dict(self.http.json("POST", EVENTS, json=payload), EVENTS, "usageEvents")
                events = body["usageEvents"]
                totals.add(events)
                pagination = body.get("pagination") or {}
                has_next = pagination.get("hasNextPage")
                if has_next is None:
                    has_next = page < _count(pagination.get("numPages"), EVENTS, self.name)
                empty = not events
                del body, events, pagination
            if not has_next:
                return totals.usage()
            if empty:
                raise SourceError(self.name, EVENTS, f"page {page} is empty but hasNextPage is true")
        raise SourceError(self.name, EVENTS, f"more than {MAX_PAGES} pages")

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        hints = self.identities()
        windows = list(split_window(window_start, window_end, self.max_window_days))
        for number, (start, end) in enumerate(windows, 1):
            # Complete for usage only: seats stored on earlier days stay (see the module doc).
            batch = Batch(start, end, identities=hints, complete_kinds=frozenset({USAGE}))
            batch.activity.extend(self._activity(start, end))
            batch.usage.extend(self._usage(start, end))
            batch.usage.extend(self.seat_costs(start, end))
            if number == len(windows):  # the cycle-to-date spend goes with the last batch
                batch.vendor_totals.extend(self.vendor_totals())
            yield batch
            hints = []  # identities go with the first batch only

    # -- reconciliation ------------------------------------------------------------------
    def spend(self) -> tuple[Decimal, Decimal | None, int | None]:
        """Cycle-to-date spend of the whole team from ``/teams/spend``, in cents: the on-demand
        spend, the overall spend (on-demand plus included; None when Cursor does not say it) and
        the cycle start (epoch ms).

        Current clients read ``spendCents`` as on-demand and ``overallSpendCents`` as on-demand
        plus included. Some members carry ``includedSpendCents`` instead, with ``spendCents`` as
        the overall figure. Older docs have ``spendCents`` alone: then it is on-demand and the
        overall figure is unknown. See docs/sources/cursor.md.
        """
        on_demand, overall, overall_known = _ZERO, _ZERO, False
        cycle_start: int | None = None
        for page in range(1, MAX_PAGES + 1):
            payload = {"page": page, "pageSize": SPEND_PAGE_SIZE}
            body = self._dict(self.http.json("POST", SPEND, json=payload), SPEND, "teamMemberSpend")
            if body.get("subscriptionCycleStart") is not None:
                cycle_start = _count(body["subscriptionCycleStart"], SPEND, self.name)
            for member in body["teamMemberSpend"]:
                if not isinstance(member, dict):
                    raise SourceError(self.name, SPEND, "unexpected member shape")
                spend = _cents(member.get("spendCents"), SPEND, self.name)
                if member.get("overallSpendCents") is not None:
                    on_demand += spend
                    overall += _cents(member["overallSpendCents"], SPEND, self.name)
                    overall_known = True
                elif member.get("includedSpendCents") is not None:
                    on_demand += spend - _cents(member["includedSpendCents"], SPEND, self.name)
                    overall += spend
                    overall_known = True
                else:
                    on_demand += spend
                    overall += spend
            if page >= _count(body.get("totalPages"), SPEND, self.name):
                return on_demand, overall if overall_known else None, cycle_start
            if not body["teamMemberSpend"]:
                raise SourceError(self.name, SPEND, f"page {page} is empty but totalPages says more")
        raise SourceError(self.name, SPEND, f"more than {MAX_PAGES} pages")

    def vendor_totals(self) -> list[VendorTotal]:
        """Cursor's cycle-to-date spend as vendor totals over ``[cycle start, tomorrow)``: the
        on-demand spend against the billed events, the overall spend against billed plus
        included events. The cycle starts at ``subscriptionCycleStart`` (its UTC day), or the 1st
        of the current UTC month when Cursor omits it. A failed read is logged and reports nothing:
        reconciliation never fails a sync."""
        try:
            on_demand, overall, cycle_ms = self.spend()
        except SourceError as error:
            log.warning("%s: no spend to reconcile against: %s", self.name, error)
            return []
        today = self.today()
        start = _day_of_ms(cycle_ms, SPEND, self.name) if cycle_ms is not None else today.replace(day=1)
        end = today + timedelta(days=1)
        totals = [VendorTotal(start, end, Money.from_cents(on_demand), TOTAL_BILLED)]
        if overall is not None:
            totals.append(VendorTotal(start, end, Money.from_cents(overall), TOTAL_BILLED_AND_ESTIMATED))
        return totals


def _included(event: dict) -> bool:
    """Usage the plan includes (the seat pays for it): ``isChargeable: false`` where Cursor sends
    the flag, else a kind such as "Included in Business"."""
    chargeable = event.get("isChargeable")
    if chargeable is not None:
        return chargeable is False
    kind = event.get("kind")
    return isinstance(kind, str) and kind.startswith(INCLUDED_KIND)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


class _EventTotals:
    """Usage events summed per (UTC day, actor, model) as the pages come in, each event once.

    The hot loop of a backfill (about a million events a year at 5,000 people): the usual shapes
    (digit-string timestamps, int tokens, Decimal cents) take fast paths, anything else goes
    through the same checked helpers (and errors) as the rest of the module.
    """

    def __init__(self, source: str, start: date, end: date) -> None:
        self.source = source
        self.start_ms, self.end_ms = epoch_ms(start), epoch_ms(end)
        # (days since 1970-01-01, actor, model, included) -> index of its record and of its cents.
        # The records themselves are the running totals (no list per row: a window has ~40,000).
        self.index: dict[tuple[int, str, str, bool], int] = {}
        self.records: list[UsageRecord] = []
        self.cents: list[Decimal] = []
        self.days: dict[int, date] = {}
        self.actors: dict[str, str] = {}  # userEmail -> actor
        self.seen = _SeenEvents()

    def _record(self, key: tuple[int, str, str, bool]) -> int:
        number, actor, model, included = key
        day = self.days.get(number)
        if day is None:
            day = self.days[number] = date(1970, 1, 1) + timedelta(days=number)
        self.records.append(
            UsageRecord(
                day=day,
                actor=actor,
                model=model,
                cost=_PENDING,
                cost_basis=ESTIMATED if included else BILLED,
                kind=USAGE,
                in_org_total=not included,  # the seat pays for included usage
            )
        )
        self.cents.append(_ZERO)
        index = self.index[key] = len(self.records) - 1
        return index

    def add(self, events: list) -> None:
        source, index, records, cents, actors, seen = (
            self.source,
            self.index,
            self.records,
            self.cents,
            self.actors,
            self.seen,
        )
        start_ms, end_ms = self.start_ms, self.end_ms
        for event in events:
            if not isinstance(event, dict):
                raise SourceError(source, EVENTS, "unexpected event shape")
            # New events arriving while we page shift the pages by one: an event may come
            # twice. Events have no id, so the full content is the identity.
            if not seen.add(event):
                continue
            stamp = event.get("timestamp")
            millis = stamp if type(stamp) is int else _millis(stamp, source)
            if not (start_ms <= millis < end_ms):  # the same test as start <= UTC day < end
                _day_of_ms(stamp, EVENTS, source)  # out of range is skipped, unreadable still fails
                continue
            email = event.get("userEmail")
            if type(email) is str:
                actor = actors.get(email)
                if actor is None:
                    actor = actors[email] = _actor(email)
            else:
                actor = _actor(email)
            model = event.get("model") or ""
            key = (millis // MS_PER_DAY, actor, model if type(model) is str else str(model), _included(event))
            at = index.get(key)
            if at is None:
                at = self._record(key)
            record = records[at]
            tokens = event.get("tokenUsage")
            value = event.get("chargedCents")  # model cost plus Cursor's token fee
            if value is None and isinstance(tokens, dict):
                value = tokens.get("chargedCents")  # the nested spelling some clients show
                if value is None:
                    value = tokens.get("totalCents")  # older shape: model cost only
            if value is not None:
                cents[at] += value if type(value) is Decimal else _cents(value, EVENTS, source)
            if isinstance(tokens, dict):
                get = tokens.get
                value = get("inputTokens")
                if value is not None:
                    record.input_tokens += value if type(value) is int else _count(value, EVENTS, source)
                value = get("outputTokens")
                if value is not None:
                    record.output_tokens += value if type(value) is int else _count(value, EVENTS, source)
                value = get("cacheReadTokens")
                if value is not None:
                    record.cache_read_tokens += value if type(value) is int else _count(value, EVENTS, source)
                value = get("cacheWriteTokens")
                if value is not None:
                    record.cache_write_tokens += (
                        value if type(value) is int else _count(value, EVENTS, source)
                    )
            record.requests += 1

    def usage(self) -> list[UsageRecord]:
        """The window's records, each with its cents converted once (as Money.from_cents)."""
        for record, total in zip(self.records, self.cents, strict=True):
            record.cost = Money(cents_to_micros(total), str(total), USD_CENTS)
        return self.records


class _SeenEvents:
    """The events of one window seen so far, keyed by content, cheaply.

    An event's key is one flat tuple: its field names sorted, then the values in that order,
    with ``tokenUsage`` (the one nested object) read the same way and appended. The names say
    how many values follow, so two events get the same key exactly when they have the same
    fields with equal values, whatever order the fields arrive in: what :func:`_freeze` decides,
    without a pair per field. The sorted names and an ``itemgetter`` are worked out once per field
    layout, a key is a few C calls, and it is a single tuple of plain values that the garbage
    collector stops tracking (a window holds ~100,000 of them: fewer, smaller objects are less
    memory and less collector time). Values compare as Python does (``1 == 1.0``), as before. A
    value that cannot be hashed (another nested object, a list) sends the event through
    :func:`_freeze`; those keys start with a string and the fast ones with a tuple, so the two
    kinds never collide.
    """

    __slots__ = ("_keys", "_layouts")

    def __init__(self) -> None:
        self._keys: set[tuple] = set()
        # field names in arrival order -> (sorted names without tokenUsage, their getter)
        self._layouts: dict[tuple, tuple[tuple, Any]] = {}

    def _read(self, obj: dict) -> tuple:
        names = tuple(obj)
        layout = self._layouts.get(names)
        if layout is None:
            wanted = tuple(sorted(name for name in names if name != _NESTED))
            if len(wanted) > 1:
                getter = itemgetter(*wanted)
            else:  # itemgetter of one name returns the bare value, and of none is an error
                getter = lambda item, wanted=wanted: tuple(item[name] for name in wanted)  # noqa: E731
            layout = self._layouts[names] = (wanted, getter)
        return layout[0], layout[1](obj)

    def _key(self, event: dict) -> tuple | None:
        names, values = self._read(event)
        tokens = event.get(_NESTED, _ABSENT)
        if tokens is _ABSENT:
            return (names, *values)
        if type(tokens) is not dict:  # null or a scalar: after a None, where an object has its names
            return (names, *values, None, tokens)
        if _NESTED in tokens:  # the nested read leaves that name out: only the general key is exact
            return None
        token_names, token_values = self._read(tokens)
        return (names, *values, token_names, *token_values)

    def add(self, event: dict) -> bool:
        """Remember ``event``; False when an event with the same content was already seen."""
        key = self._key(event)
        try:
            if key is not None and key in self._keys:
                return False
        except TypeError:  # a nested object or list among the values
            key = None
        if key is None:
            key = ("frozen", _freeze(event))
            if key in self._keys:
                return False
        self._keys.add(key)
        return True


def from_settings(settings: Settings) -> list[CursorConnector]:
    return [
        CursorConnector(name=account.name, key=account.key, base_url=account.base_url, settings=settings)
        for account in settings.vendor_accounts(
            "cursor", key=settings.cursor_admin_key, base_url=settings.cursor_admin_base_url
        )
    ]
