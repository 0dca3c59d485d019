"""The connectors read each page with Python's cyclic collector paused (bot.sources.http.
collector_paused): it must always come back on, whatever happens to the page."""

from __future__ import annotations

import gc

import pytest

from bot.sources.base import SourceError
from bot.sources.http import collector_paused
from tests.support.cursor_admin import EVENT, SINCE, UNTIL, cursor_connector, serve_cursor, serve_event_pages
from tests.support.openai_admin import COSTS, FakeOpenAI, connector_for, json_response, run


@pytest.fixture(autouse=True)
def _collector_on():
    assert gc.isenabled()
    yield
    gc.enable()  # never leave a failed test's state to the rest of the suite


def test_paused_inside_and_back_on_after_the_block_even_when_it_raises():
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("a page that cannot be read")
    assert gc.isenabled()


def test_a_nested_block_does_not_resume_the_outer_one():
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_someone_else_turned_off_stays_off():
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_cursor_pages_leave_the_collector_on_after_success_and_failure(httpserver):
    serve_cursor(httpserver)
    list(cursor_connector(httpserver).fetch(SINCE, UNTIL))
    assert gc.isenabled()
    httpserver.clear()
    serve_event_pages(httpserver, [[EVENT, {**EVENT, "timestamp": "not a time"}]])
    with pytest.raises(SourceError):
        list(cursor_connector(httpserver).fetch(SINCE, UNTIL))
    assert gc.isenabled()


def test_openai_pages_leave_the_collector_on_after_success_and_failure(engine, httpserver):
    fake = FakeOpenAI(httpserver)
    connector = connector_for(fake)
    try:
        assert run(engine, connector).status == "ok"
        assert gc.isenabled()
        fake.faults[(COSTS, None)] = lambda _: json_response(
            {"object": "page", "data": [{"start_time": 1772323200, "results": [{"amount": [0.06]}]}]}
        )
        outcome = run(engine, connector)
    finally:
        connector.close()
    assert outcome.status == "failed" and outcome.error.startswith("openai: organization/costs: ")
    assert gc.isenabled()
