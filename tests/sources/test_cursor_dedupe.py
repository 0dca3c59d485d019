"""Cursor usage events have no id: an event that comes back on a later page (new events shift the
pages while the connector reads them) is dropped by its content, and events that differ in any
field are all counted. Served by a real loopback server, read through the real connector."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bot.sources.base import SourceError
from tests.support.cursor_admin import (
    DAY_MS,
    EVENT,
    SINCE,
    UNTIL,
    cursor_connector,
    serve_event_pages,
)


def _reordered(event: dict) -> dict:
    """The same event with its fields (and tokenUsage's) in reverse order."""
    flipped = {}
    for name in reversed(list(event)):
        value = event[name]
        flipped[name] = {k: value[k] for k in reversed(list(value))} if isinstance(value, dict) else value
    return flipped


def _changed(**fields) -> dict:
    event = json.loads(json.dumps(EVENT))
    for name, value in fields.items():
        if name.startswith("tokens_"):
            event["tokenUsage"][name.removeprefix("tokens_")] = value
        else:
            event[name] = value
    return event


def _without(name: str) -> dict:
    event = json.loads(json.dumps(EVENT))
    if name.startswith("tokens_"):
        del event["tokenUsage"][name.removeprefix("tokens_")]
    else:
        del event[name]
    return event


def _usage(httpserver, pages: list[list[dict]]):
    serve_event_pages(httpserver, pages)
    (batch,) = list(cursor_connector(httpserver).fetch(SINCE, UNTIL))
    return batch.usage


def _counted(usage) -> tuple[int, int, int]:
    """(events counted, input tokens, micro-USD) over every stored record."""
    return (
        sum(r.requests for r in usage),
        sum(r.input_tokens for r in usage),
        sum(r.cost.micros for r in usage),
    )


def test_an_exact_duplicate_on_the_next_page_is_counted_once(httpserver):
    usage = _usage(httpserver, [[EVENT], [json.loads(json.dumps(EVENT))]])
    (record,) = usage
    assert (record.day, record.actor, record.model) == (
        date(2026, 3, 1),
        "email:alice@example.com",
        "claude-4-opus",
    )
    assert (record.requests, record.input_tokens, record.cache_read_tokens) == (1, 100, 40)
    assert (record.cost.micros, record.cost.raw_amount) == (12345, "1.2345")


def test_the_same_event_with_its_fields_in_another_order_is_a_duplicate(httpserver):
    usage = _usage(httpserver, [[EVENT], [_reordered(EVENT)], [EVENT]])
    assert _counted(usage) == (1, 100, 12345)


VARIANTS = {
    "timestamp one ms later": _changed(timestamp=str(DAY_MS + 3_600_001)),
    "another model": _changed(model="gpt-5"),
    "another kind": _changed(kind="Included in Business"),
    "max mode": _changed(maxMode=True),
    "request cost": _changed(requestsCosts=2),
    "token based flag": _changed(isTokenBasedCall=False),
    "free bugbot flag": _changed(isFreeBugbot=True),
    "email case": _changed(userEmail="Alice@Example.com"),  # same person, still another event
    "input tokens": _changed(tokens_inputTokens=101),
    "output tokens": _changed(tokens_outputTokens=201),
    "cache read tokens": _changed(tokens_cacheReadTokens=41),
    "cache write tokens": _changed(tokens_cacheWriteTokens=31),
    "cents": _changed(tokens_totalCents=1.2346),
    "no cache write field": _without("tokens_cacheWriteTokens"),
    "no max mode field": _without("maxMode"),
    "no token usage": _without("tokenUsage"),
    "null token usage": _changed(tokenUsage=None),
    "empty token usage": _changed(tokenUsage={}),
    "an extra field": _changed(clientVersion="1.2.3"),
    "an extra nested object": _changed(extra={"a": [1, {"b": 2}]}),
}


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_events_that_differ_in_one_field_are_both_counted(httpserver, variant):
    # Each is served twice, on two pages and in two field orders: each counts exactly once.
    usage = _usage(httpserver, [[EVENT, variant], [_reordered(variant), _reordered(EVENT)]])
    tokens = variant.get("tokenUsage") or {}
    expected_input = 100 + tokens.get("inputTokens", 0)
    assert _counted(usage)[:2] == (2, expected_input)


def test_nested_values_beyond_token_usage_still_compare_by_content(httpserver):
    nested = _changed(extra={"a": [1, {"b": 2, "c": None}], "d": {"e": "f"}})
    same = _reordered(nested)
    same["extra"] = {"d": {"e": "f"}, "a": [1, {"c": None, "b": 2}]}  # inner objects reordered too
    different = _changed(extra={"a": [1, {"b": 3, "c": None}], "d": {"e": "f"}})
    list_order = _changed(extra={"a": [{"b": 2, "c": None}, 1], "d": {"e": "f"}})  # a list's order counts
    usage = _usage(httpserver, [[nested, different], [same, list_order], [different]])
    assert _counted(usage)[0] == 3


def test_timestamps_bucket_into_utc_days_and_the_window_bounds_are_exact(httpserver):
    window_end_ms = DAY_MS + 3 * 86_400_000  # UNTIL, 2026-03-04T00:00Z
    events = [
        _changed(timestamp=str(DAY_MS - 1)),  # 2026-02-28T23:59:59.999Z: before the window
        _changed(timestamp=str(DAY_MS)),  # the first millisecond of the window
        _changed(timestamp=str(DAY_MS + 86_400_000 - 1)),  # still 2026-03-01
        _changed(timestamp=DAY_MS + 86_400_000),  # a number, not a string: 2026-03-02
        _changed(timestamp=f"{window_end_ms - 1}.0"),  # a decimal string: 2026-03-03
        _changed(timestamp=str(window_end_ms)),  # the window's end is exclusive
    ]
    usage = _usage(httpserver, [events])
    assert sorted((r.day, r.requests) for r in usage) == [
        (date(2026, 3, 1), 2),
        (date(2026, 3, 2), 1),
        (date(2026, 3, 3), 1),
    ]


@pytest.mark.parametrize("stamp", ["soon", None, True, "1e40"])
def test_an_unreadable_timestamp_fails_naming_the_endpoint(httpserver, stamp):
    serve_event_pages(httpserver, [[EVENT, _changed(timestamp=stamp)]])
    with pytest.raises(SourceError, match=r"^cursor: teams/filtered-usage-events: unreadable epoch-ms"):
        list(cursor_connector(httpserver).fetch(SINCE, UNTIL))


SECRET = "sk-ant-admin01-" + "Q" * 40  # a key pasted where a number belongs


@pytest.mark.parametrize("field", ["timestamp", "chargedCents", "tokens_inputTokens"])
def test_an_unreadable_value_is_named_by_kind_never_echoed(httpserver, field):
    serve_event_pages(httpserver, [[_changed(**{field: SECRET})]])
    with pytest.raises(SourceError, match=r"^cursor: teams/filtered-usage-events: unreadable ") as raised:
        list(cursor_connector(httpserver).fetch(SINCE, UNTIL))
    assert str(raised.value).endswith("a text of 55 characters") and "sk-ant" not in str(raised.value)
