"""Fault tolerance of the shared HTTP layer and the sync engine, through the real OpenAI connector
and ``run_source`` against a loopback fake of OpenAI's admin API (pytest-httpserver).

Every fault must give: a "failed" run whose error (SyncRun.error, SyncState.last_error) names the
endpoint, nothing partial stored for the window (usage and costs are fetched apart: the other
endpoint's complete rows are stored, none of the failing one's, and the watermark stays), and a
next clean run whose rows equal a clean run's. Retries are kept fast: http_max_retries=3
(4 attempts), http_max_backoff_seconds=0.01.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from werkzeug import Request, Response

from bot.db.models import Person, SyncRun, SyncState, UsageDaily
from bot.domain.money import to_decimal, usd_to_micros
from bot.domain.records import COST, Batch
from bot.domain.records import USAGE as USAGE_KIND
from bot.services.sync import run_source
from bot.sources import openai as openai_source
from bot.sources.base import SourceError
from tests.support.db import USAGE_FIGURES, usage_rows
from tests.support.openai_admin import (
    COSTS,
    FIXTURES,
    KEY,
    USAGE,
    USERS,
    FakeOpenAI,
    Fault,
    json_response,
    make_settings,
)

TODAY = date(2026, 3, 4)
RUN = {"backfill_days": 3, "today": TODAY}  # window [2026-03-01, 2026-03-05), like a scheduled run
CLEAN_TOTAL_MICROS = 3_614_455  # tests/sources/test_openai.py checks the rows one by one
CLEAN_ROWS = 16


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_bytes())


def make_connector(base_url: str, **overrides) -> openai_source.OpenAIConnector:
    (connector,) = openai_source.from_settings(make_settings(base_url, **overrides))
    return connector


def run(engine, connector, workspace_id: str = "W", **kwargs):
    try:
        return run_source(engine, connector, workspace_id=workspace_id, **{**RUN, **kwargs})
    finally:
        connector.close()


def snapshot(engine, workspace_id: str = "W") -> list[tuple]:
    rows = usage_rows(engine, workspace_id, *USAGE_FIGURES, Person.email, UsageDaily.kind)
    return sorted(rows, key=lambda r: (r[0], r[1], r[2], r[11]))


def rows_of_the_other_endpoint(engine, fake: FakeOpenAI, failing_endpoint: str) -> list[tuple]:
    """What a run whose ``failing_endpoint`` failed stores: the other endpoint's clean rows."""
    failing_kind = {U: USAGE_KIND, C: COST}.get(failing_endpoint)
    if failing_kind is None:  # users or projects: the run never got to the data
        return []
    return [r for r in clean_reference(engine, fake) if r[11] != failing_kind]


def clean_reference(engine, fake: FakeOpenAI) -> list[tuple]:
    """What an uninterrupted run stores (workspace REF of the same database)."""
    saved, fake.faults = fake.faults, {}
    try:
        outcome = run(engine, make_connector(fake.base_url()), workspace_id="REF")
    finally:
        fake.faults = saved
    assert outcome.status == "ok", outcome.error
    rows = snapshot(engine, "REF")
    assert len(rows) == CLEAN_ROWS and sum(r[8] for r in rows) == CLEAN_TOTAL_MICROS
    return rows


def sync_state(engine, workspace_id: str = "W"):
    with engine.connect() as conn:
        return conn.execute(
            select(SyncState.last_error, SyncState.consecutive_failures, SyncState.watermark).where(
                SyncState.workspace_id == workspace_id
            )
        ).one()


def run_errors(engine, workspace_id: str = "W") -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(SyncRun.status, SyncRun.error)
            .where(SyncRun.workspace_id == workspace_id)
            .order_by(SyncRun.id)
        ).all()
    return [tuple(r) for r in rows]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the fake server did not drain its requests"
        time.sleep(0.02)


@pytest.fixture
def fake(httpserver) -> FakeOpenAI:
    return FakeOpenAI(httpserver)


# -- fault makers -------------------------------------------------------------------------------


def status(code: int, retry_after: str | None = None) -> Callable[[Request], Response]:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return lambda _: json_response({"error": {"message": f"status {code}", "type": "server"}}, code, headers)


def reset_connection(_request: Request) -> Response:
    """Drop the connection before any byte of the response (RST, as a crashed proxy does)."""
    sock = _request.environ["werkzeug.socket"]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.shutdown(socket.SHUT_RDWR)
    return Response(b"")


def truncated_body(name: str) -> Callable[[Request], Response]:
    """Send the headers and half the page, then drop the connection mid-body."""

    def make(request: Request) -> Response:
        raw = (FIXTURES / name).read_bytes()
        sock = request.environ["werkzeug.socket"]

        def chunks() -> Iterator[bytes]:
            yield raw[: len(raw) // 2]
            sock.shutdown(socket.SHUT_RDWR)

        return Response(chunks(), headers={"Content-Length": str(len(raw))}, content_type="application/json")

    return make


def body(payload: dict) -> Callable[[Request], Response]:
    return lambda _: json_response(payload)


def raw(data: bytes) -> Callable[[Request], Response]:
    return lambda _: Response(data, 200, content_type="application/json")


def shifted_page(_request: Request) -> Response:
    """Page 2 after new data arrived: the tail of page 1 slides onto it."""
    page = fixture("usage_completions_page2.json")
    page["data"].insert(0, fixture("usage_completions_page1.json")["data"][1])
    return json_response(page)


def out_of_window(_request: Request) -> Response:
    page = fixture("usage_completions_page2.json")
    page["data"][0]["start_time"] = _epoch(date(2026, 2, 1))
    page["data"][0]["end_time"] = _epoch(date(2026, 2, 2))
    return json_response(page)


U = "organization/usage/completions"
C = "organization/costs"
TRIED = r"http://[\w.]+:\d+/v1/"  # a transport error names the URL it tried (the fake's, any port)
EMPTY_MORE = {"object": "page", "data": [], "has_more": True, "next_page": None}
SAME_CURSOR = {**fixture("usage_completions_page2.json"), "next_page": "page_AAAA"}
CYCLE = {"object": "page", "data": [], "has_more": True, "next_page": "page_AAAA"}

# id, (path, cursor), fault, expected error after "openai: <endpoint>: ", requests to that page
SCENARIOS = [
    ("429-retry-after", (USAGE, None), status(429, "0"), U, r"HTTP 429 after 4 attempts", 4),
    ("429-no-retry-after", (USAGE, None), status(429), U, r"HTTP 429 after 4 attempts", 4),
    ("429-mid-pagination", (COSTS, "page_COST2"), status(429, "0"), C, r"HTTP 429 after 4 attempts", 4),
    ("500", (COSTS, "page_COST2"), status(500), C, r"HTTP 500 after 4 attempts", 4),
    ("502", (USAGE, "page_AAAA"), status(502), U, r"HTTP 502 after 4 attempts", 4),
    ("503", (COSTS, None), status(503, "0"), C, r"HTTP 503 after 4 attempts", 4),
    (
        "reset-mid-pagination",
        (USAGE, "page_AAAA"),
        reset_connection,
        U,
        rf"connection error \(\w+\) after 4 attempts to {TRIED}{re.escape(U)}",
        4,
    ),
    (
        "truncated-body",
        (COSTS, None),
        truncated_body("costs_page1.json"),
        C,
        rf"connection error \(RemoteProtocolError\) after 4 attempts to {TRIED}{re.escape(C)}",
        4,
    ),
    (
        "invalid-json",
        (USAGE, "page_AAAA"),
        raw(b'{"object": "page", "data": [{"obj'),
        U,
        r"response is not valid JSON",
        1,
    ),
    ("html-error-page", (COSTS, None), raw(b"<html>Bad gateway</html>"), C, r"response is not valid JSON", 1),
    (
        "empty-page-has-more-no-cursor",
        (USAGE, "page_AAAA"),
        body(EMPTY_MORE),
        U,
        r"has_more is true but the next page cursor is missing or repeats",
        1,
    ),
    (
        "cursor-repeats",
        (USAGE, "page_AAAA"),
        body(SAME_CURSOR),
        U,
        r"has_more is true but the next page cursor is missing or repeats",
        1,
    ),
    (
        "cursor-cycles",
        (USAGE, "page_BBBB"),
        body(CYCLE),
        U,
        r"has_more is true but the next page cursor is missing or repeats",
        1,
    ),
    (
        "pages-changed-between-requests",
        (USAGE, "page_AAAA"),
        shifted_page,
        U,
        r"a result appeared twice \(pages changed while paging\)",
        1,
    ),
    (
        "stale-cursor-rejected",
        (COSTS, "page_COST2"),
        status(400),
        C,
        r"HTTP 400: status 400",
        1,
    ),
    (
        "undecodable-gzip-body",
        (COSTS, "page_COST2"),
        lambda _: Response(b"\x1f\x8b not gzip", headers={"Content-Encoding": "gzip"}),
        C,
        r"broken response \(DecodingError\)",
        1,
    ),
    ("bucket-outside-window", (USAGE, "page_AAAA"), out_of_window, U, r"bucket 2026-02-01 outside window", 1),
]


@pytest.mark.parametrize(
    ("where", "make", "endpoint", "message", "attempts"),
    [s[1:] for s in SCENARIOS],
    ids=[s[0] for s in SCENARIOS],
)
def test_fault_fails_the_run_stores_nothing_and_the_next_run_catches_up(
    engine, fake, where, make, endpoint, message, attempts
):
    fault = Fault(make)
    fake.faults[where] = fault
    began = time.monotonic()
    outcome = run(engine, make_connector(fake.base_url()))
    assert time.monotonic() - began < 10

    assert outcome.status == "failed"
    assert re.fullmatch(rf"openai: {re.escape(endpoint)}: {message}", outcome.error), outcome.error
    assert fault.calls == attempts
    wait_until(lambda: fake.hits(*where) == attempts)  # the fake logs a request after its handler returns
    assert run_errors(engine) == [("failed", outcome.error)]
    assert tuple(sync_state(engine)) == (outcome.error, 1, None)
    # Nothing of the failing endpoint, not even the pages that did arrive; the other one whole.
    assert snapshot(engine) == rows_of_the_other_endpoint(engine, fake, endpoint)

    fake.faults.clear()
    again = run(engine, make_connector(fake.base_url()))
    assert again.status == "ok", again.error
    assert snapshot(engine) == clean_reference(engine, fake)
    assert tuple(sync_state(engine)) == (None, 0, TODAY)


def test_retries_then_success_keep_totals(engine, fake):
    fake.faults[(USAGE, None)] = Fault(status(429), times=2)
    fake.faults[(COSTS, "page_COST2")] = Fault(status(503, "0"), times=3)
    fake.faults[(USERS, "user-bob")] = Fault(reset_connection, times=1)
    outcome = run(engine, make_connector(fake.base_url()))
    assert outcome.status == "ok", outcome.error
    assert (fake.hits(USAGE, None), fake.hits(COSTS, "page_COST2"), fake.hits(USERS, "user-bob")) == (3, 4, 2)
    assert snapshot(engine) == clean_reference(engine, fake)


def test_slow_response_times_out_and_fails(engine, fake):
    release = threading.Event()

    def slow(_request: Request) -> None:
        release.wait(5)  # then the fake serves the page, to a client that has given up
        return None

    fake.faults[(USAGE, "page_AAAA")] = slow
    began = time.monotonic()
    try:
        outcome = run(engine, make_connector(fake.base_url(), http_timeout_seconds=0.2))
    finally:
        release.set()
    assert time.monotonic() - began < 4
    wait_until(lambda: fake.hits(USAGE, "page_AAAA") == 4)  # the single-threaded fake drains the retries
    assert outcome.status == "failed"
    assert outcome.error == f"openai: {U}: timeout after 4 attempts to {fake.base_url()}/{U}"
    assert tuple(sync_state(engine)) == (outcome.error, 1, None)
    # The single-threaded fake is still stuck in the slow handler, so the costs time out too.
    assert snapshot(engine) == []

    fake.faults.clear()
    assert run(engine, make_connector(fake.base_url(), http_timeout_seconds=0.2)).status == "ok"
    assert snapshot(engine) == clean_reference(engine, fake)


class _ClosingServer:
    """A raw TCP server that accepts, reads the request and resets the connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            with conn:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


def test_server_that_accepts_and_closes_fails_naming_the_endpoint(engine):
    server = _ClosingServer()
    try:
        outcome = run(engine, make_connector(f"http://127.0.0.1:{server.port}/v1"))
    finally:
        server.close()
    assert outcome.status == "failed"
    assert re.fullmatch(
        rf"openai: organization/users: connection error \(\w+\) after 4 attempts to "
        rf"http://127.0.0.1:{server.port}/v1/organization/users",
        outcome.error,
    ), outcome.error
    assert server.accepted == 4
    assert snapshot(engine) == []


def test_nothing_listening_fails_naming_the_endpoint(engine):
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    outcome = run(engine, make_connector(f"http://127.0.0.1:{port}/v1"))
    assert outcome.status == "failed"
    assert outcome.error == (
        "openai: organization/users: connection error (ConnectError) after 4 attempts "
        f"to http://127.0.0.1:{port}/v1/organization/users"
    )


def test_user_list_cursor_cycle_is_an_error_not_a_hang(engine, fake):
    page2 = {**fixture("users_page2.json"), "has_more": True, "last_id": "user-zed"}
    back = {"object": "list", "data": [], "first_id": None, "last_id": "user-bob", "has_more": True}
    fake.faults[(USERS, "user-bob")] = body(page2)
    fake.faults[(USERS, "user-zed")] = body(back)
    outcome = run(engine, make_connector(fake.base_url()))
    assert outcome.status == "failed"
    assert outcome.error == (
        "openai: organization/users: has_more is true but the list cursor does not advance"
    )
    assert fake.hits(USERS, "user-bob") == 1 and fake.hits(USERS, "user-zed") == 1


def test_failure_after_a_revision_keeps_the_previous_window_whole(engine, fake):
    assert run(engine, make_connector(fake.base_url())).status == "ok"
    before = snapshot(engine)
    assert len(before) == CLEAN_ROWS

    def revised(_request: Request) -> Response:
        page = fixture("costs_page1.json")
        for bucket in page["data"]:
            for result in bucket["results"]:
                result["amount"]["value"] *= 10
        return json_response(page)

    fake.faults[(COSTS, None)] = revised  # costs page 1 arrives revised ...
    fake.faults[(COSTS, "page_COST2")] = status(503, "0")  # ... and the costs die on page 2
    failed = run(engine, make_connector(fake.base_url()))
    assert failed.status == "failed" and failed.error == f"openai: {C}: HTTP 503 after 4 attempts"
    assert snapshot(engine) == before  # neither the revised page nor a deletion leaked in
    assert tuple(sync_state(engine)) == (failed.error, 1, TODAY)

    del fake.faults[(COSTS, "page_COST2")]
    assert run(engine, make_connector(fake.base_url())).status == "ok"
    after = snapshot(engine)
    page1, page2 = fixture("costs_page1.json"), fixture("costs_page2.json")
    expected = sum(
        usd_to_micros(to_decimal(repr(result["amount"]["value"] * factor)))  # as the fake sent it
        for page, factor in ((page1, 10), (page2, 1))
        for bucket in page["data"]
        for result in bucket["results"]
    )
    assert sum(r[8] for r in after) == expected
    assert [r[:8] for r in after if r[11] == USAGE_KIND] == [r[:8] for r in before if r[11] == USAGE_KIND]


# -- crash mid-sync ----------------------------------------------------------------------------


class Killed(BaseException):
    """Like SIGKILL for our purposes: nothing in the engine may handle it."""


class CrashAfterFirstBatch:
    """Wraps a real connector; dies after its first batch was handed to the engine."""

    vendor = "openai"

    def __init__(self, inner, error: BaseException) -> None:
        self.inner = inner
        self.error = error

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        batches = self.inner.fetch(window_start, window_end)
        yield next(batches)
        raise self.error


@pytest.mark.parametrize("error", [RuntimeError("worker lost"), Killed()], ids=["exception", "killed"])
def test_crash_between_batches_then_rerun_equals_an_uninterrupted_run(engine, fake, error):
    inner = make_connector(fake.base_url())
    inner.max_window_days = 1  # one batch per day, so there is a "between batches"
    crashing = CrashAfterFirstBatch(inner, error)
    if isinstance(error, Killed):
        with pytest.raises(Killed):
            run(engine, crashing)
        assert run_errors(engine) == [("running", None)]  # a killed process finishes nothing
    else:
        outcome = run(engine, crashing)
        assert (outcome.status, outcome.error) == ("failed", "openai: unexpected RuntimeError")
    reference = clean_reference(engine, fake)
    first_day = [r for r in reference if r[0] == date(2026, 3, 1)]
    assert snapshot(engine) == first_day  # the first batch was complete and committed

    rerun = make_connector(fake.base_url())
    rerun.max_window_days = 1
    assert run(engine, rerun).status == "ok"  # from the watermark minus the trailing days
    assert snapshot(engine) == reference
    with engine.connect() as conn:
        people = conn.execute(
            select(func.count()).select_from(Person).where(Person.workspace_id == "W")
        ).scalar()
    assert people == 5  # Alice, Bob, Carol, Dave and Erin (an archived project's key owner)


# -- secrets ---------------------------------------------------------------------------------


def test_admin_key_never_appears_in_errors_runs_or_logs(engine, fake, caplog):
    caplog.set_level(logging.DEBUG)

    def echo_key(request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        return json_response({"error": {"message": f"Incorrect API key provided: {header}"}}, 401)

    faults = [
        ((USERS, None), echo_key),
        ((USERS, None), status(429)),
        ((USAGE, "page_AAAA"), reset_connection),
        ((COSTS, None), truncated_body("costs_page1.json")),
        ((USAGE, None), raw(b"not json " + KEY.encode())),
        ((USAGE, "page_AAAA"), body(EMPTY_MORE)),
        ((COSTS, "page_COST2"), lambda _: json_response({"error": KEY}, 403)),
        ((COSTS, "page_COST2"), lambda _: Response(f"denied for {KEY}", 403)),
    ]
    errors: list[str] = []
    for where, make in faults:
        fake.faults = {where: make}
        outcome = run(engine, make_connector(fake.base_url()))
        assert outcome.status == "failed"
        errors.append(outcome.error)
        connector = make_connector(fake.base_url())
        try:
            with pytest.raises(SourceError) as raised:
                list(connector.fetch(date(2026, 3, 1), date(2026, 3, 4)))
        finally:
            connector.close()
        errors.extend([str(raised.value), repr(raised.value), raised.value.endpoint])
    assert any("HTTP 401" in e and "Incorrect API key provided" in e for e in errors)
    assert any(e.endswith("HTTP 403: denied for [redacted]") for e in errors)
    with engine.connect() as conn:
        stored = list(conn.execute(select(SyncRun.error)).scalars())
        stored += list(conn.execute(select(SyncState.last_error)).scalars())
    assert len(stored) == len(faults) + 1
    texts = errors + [s or "" for s in stored] + [caplog.text] + [r.getMessage() for r in caplog.records]
    leaks = [text for text in texts if KEY in text or KEY.removeprefix("sk-admin-") in text]
    assert leaks == []
    assert "retrying after" in caplog.text  # the retry logs were captured (and are key-free)
