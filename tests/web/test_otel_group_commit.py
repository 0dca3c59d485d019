"""The OTLP intake's group commit through the real web app on loopback (SQLite and PostgreSQL):
requests that arrive while a group is being written are stored together in the next transaction,
each answered only after that commit; a request that fails in a group gets the answer it would
have got alone and the others are stored; a request sent twice counts once."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select, text

from bot.db.locks import lock_key
from bot.db.models import OtelPoint, UsageDaily
from bot.observability import REGISTRY
from bot.services import otel
from bot.sources.otel import otlp
from tests.support.otel import DELTA, ClaudeCode, claude_person, serve

SOURCE = "otel_claude_code"


@pytest.fixture
def served(engine, fake_slack):
    with serve(engine, fake_slack) as app:
        yield app


def _export(email: str, tokens: int) -> bytes:
    agent = ClaudeCode(DELTA)
    agent.use(claude_person(email, session=email.split("@")[0]), input=tokens, usd=0.5)
    return agent.protobuf()


def _stored(engine, email: str) -> tuple[int, int]:
    """(raw points, input tokens in usage_daily) of one person, read on a connection of its own."""
    actor = f"email:{email}"
    with engine.connect() as conn:
        points = conn.execute(
            select(func.count()).select_from(OtelPoint).where(OtelPoint.actor == actor)
        ).scalar_one()
        tokens = conn.execute(
            select(func.coalesce(func.sum(UsageDaily.input_tokens), 0)).where(UsageDaily.actor == actor)
        ).scalar_one()
    return points, int(tokens)


def _sender(served, engine, token: str) -> Callable[[str, bytes], tuple[int, tuple[int, int]]]:
    def send(email: str, body: bytes) -> tuple[int, tuple[int, int]]:
        """The answer's status and what the database holds of the person the moment it arrives."""
        answer = httpx.post(
            f"{served.url}/v1/metrics",
            content=body,
            headers={"content-type": otlp.PROTOBUF, "x-tokenwise-token": token},
            timeout=60,
        )
        return answer.status_code, _stored(engine, email)

    return send


def _gauge(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def _groups() -> tuple[float, float]:
    """(transactions committed, requests in them) so far in this process."""
    count = REGISTRY.get_sample_value("tokenwise_otlp_group_requests_count") or 0.0
    return count, REGISTRY.get_sample_value("tokenwise_otlp_group_requests_sum") or 0.0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def _intake_held(engine) -> Iterator[None]:
    """Hold what the intake's transaction must take: the agent source's advisory lock on
    PostgreSQL, the database's write lock on SQLite. Its group waits until the block ends."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn, conn.begin():
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(f"otel:default:{SOURCE}")}
            )
            yield
        return
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("BEGIN IMMEDIATE")
        yield
        raw.driver_connection.rollback()
    finally:
        raw.close()


def _first_group_then(engine, send, first: tuple[str, bytes], rest: list[tuple[str, bytes]]) -> list[Future]:
    """``first`` sent and held in its transaction while ``rest`` arrive (and wait, unanswered);
    then released: the futures of every answer, in order."""
    pool = ThreadPoolExecutor(len(rest) + 1)
    with _intake_held(engine):
        futures = [pool.submit(send, *first)]
        _until(lambda: _gauge("tokenwise_otlp_writing_requests") == 1, "the first request's group")
        futures += [pool.submit(send, *request) for request in rest]
        _until(lambda: _gauge("tokenwise_otlp_waiting_requests") == len(rest), "the others to wait")
        time.sleep(0.2)  # an answer sent before its commit would have arrived by now
        assert not any(future.done() for future in futures)
        for email, _ in (first, *rest):
            assert _stored(engine, email) == (0, 0)
    pool.shutdown(wait=True)
    return futures


def test_requests_arriving_together_share_one_transaction_and_are_answered_after_its_commit(engine, served):
    token = otel.create_token(engine, workspace_id="default")
    send = _sender(served, engine, token)
    ana, ben, cy = (
        _export("ana@example.com", 100),
        _export("ben@example.com", 20),
        _export("cy@example.com", 3),
    )
    before = _groups()

    futures = _first_group_then(
        engine,
        send,
        ("ana@example.com", ana),
        [("ben@example.com", ben), ("ben@example.com", ben), ("cy@example.com", cy)],  # Ben's retried
    )

    # Each answer came after its commit: the person's points were there when it arrived.
    assert [future.result() for future in futures] == [
        (200, (2, 100)),
        (200, (2, 20)),
        (200, (2, 20)),
        (200, (2, 3)),
    ]
    count, requests = _groups()
    assert (count - before[0], requests - before[1]) == (2, 4)  # Ana alone, then the three together
    # Sent once more, alone: still counted once.
    assert send("ben@example.com", ben) == (200, (2, 20))


@contextlib.contextmanager
def _refusing(engine, actor: str) -> Iterator[None]:
    """A trigger that makes the database refuse ``actor``'s points (a request that cannot be
    stored, whatever group it is in)."""
    sqlite = engine.dialect.name == "sqlite"
    create = (
        [
            f"CREATE TRIGGER refuse_points BEFORE INSERT ON otel_point WHEN NEW.actor = '{actor}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ]
        if sqlite
        else [
            "CREATE FUNCTION refuse_points() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.actor = '{actor}' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
            "RETURN NEW; END $$",
            "CREATE TRIGGER refuse_points BEFORE INSERT ON otel_point "
            "FOR EACH ROW EXECUTE FUNCTION refuse_points()",
        ]
    )
    drop = (
        ["DROP TRIGGER refuse_points"]
        if sqlite
        else ["DROP TRIGGER refuse_points ON otel_point", "DROP FUNCTION refuse_points()"]
    )
    with engine.begin() as conn:
        for statement in create:
            conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        with engine.begin() as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)


def test_a_request_that_fails_in_a_group_gets_its_own_answer_and_the_others_are_stored(engine, served):
    token = otel.create_token(engine, workspace_id="default")
    send = _sender(served, engine, token)
    ana, bad, ben = (
        _export("ana@example.com", 7),
        _export("bad@example.com", 5),
        _export("ben@example.com", 9),
    )

    with _refusing(engine, "email:bad@example.com"):
        futures = _first_group_then(
            engine, send, ("ana@example.com", ana), [("bad@example.com", bad), ("ben@example.com", ben)]
        )
        # The group of the bad request and Ben's rolled back; each was then stored alone.
        assert [future.result() for future in futures] == [
            (200, (2, 7)),
            (503, (0, 0)),  # a database error: the exporter retries later
            (200, (2, 9)),
        ]
        assert send("bad@example.com", bad) == (503, (0, 0))  # the same answer as alone
    assert send("bad@example.com", bad) == (200, (2, 5))  # accepted once the database takes it
