"""What people say AI saved, end to end: `/tokens saved on` through the signed command, the job
from the scheduler's table over real pull-request rows, the DM in the fake Slack, the answer
buttons through signed block_actions (a second tap changes it, a forged tap is refused)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.db.models import Person, SavedTimeAsk
from bot.domain.clock import utcnow
from bot.jobs.saved_time import ask_saved_time, saved_time_job
from bot.jobs.scheduler import build_scheduler
from bot.services import privacy, saved_time
from bot.slack.app import make_web_client
from bot.slack.blocks import saved_time as views
from tests.support.slack_app import make_runtime, post_action, send, slack_client
from tests.support.value import insert_pr

W = "default"


pytestmark = pytest.mark.usefixtures("slack_team")


@pytest.fixture
def fake(slack_team):
    """The fake Slack with the demo org's whole team in its directory (conftest ``slack_team``)."""
    return slack_team


def _person(conn, name: str, slack_id: str) -> int:
    conn.execute(
        Person.__table__.insert().values(
            workspace_id=W, email=f"{name}@example.com", slack_user_id=slack_id, display_name=name.title()
        )
    )
    return conn.execute(select(Person.id).where(Person.email == f"{name}@example.com")).scalar_one()


def _pr(conn, pid: int, number: int, merged_at: datetime, *, ai: str = "high") -> None:
    insert_pr(
        conn,
        pid,
        number,
        merged_at - timedelta(hours=3),
        merged_at,
        actor=f"github:user{pid}",
        ai_confidence=ai,
        ai_rule="label:ai-assisted" if ai == "high" else "",
    )


def _asks(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(SavedTimeAsk.__table__).order_by(SavedTimeAsk.id)).all()


def _dms(fake) -> list:
    return [c.params for c in fake.calls_to("chat.postMessage")]


def _buttons(params: dict) -> list[dict]:
    blocks = params["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    return next(b for b in blocks if b["type"] == "actions")["elements"]


def _tap(client, fake, *, user_id: str, bucket: str, ask_id: int) -> str:
    before = len(fake.calls_to("response_url"))
    post_action(
        client,
        user_id=user_id,
        action_id=views.SNOOZE_ACTION if bucket == "snooze" else f"{views.ANSWER_ACTION}_{bucket}",
        value=str(ask_id),
        response_url=fake.server.url_for(f"/response_url/{user_id}"),
    )
    return fake.wait_for("response_url", before + 1)[before].params["text"]


def _scheduled_job(runtime):
    """The job as the scheduler runs it: its table entry, guarded."""
    job = {j.id: j for j in build_scheduler(runtime).get_jobs()}["saved_time"]
    return lambda: job.func(*job.args)


def test_opt_in_one_question_a_day_answers_and_a_forged_tap(engine, fake):
    with engine.begin() as conn:
        ana, ben = _person(conn, "ana", "UANA"), _person(conn, "ben", "UBEN")
        _pr(conn, ana, 1, utcnow() - timedelta(days=2))  # merged before she opted in: never asked
    runtime = make_runtime(engine, fake)
    with slack_client(engine, fake) as client:
        assert "Off." in send(client, "saved", user_id="UANA")["text"]
        assert "On: at most one question a day" in send(client, "saved on", user_id="UANA")["text"]
        with engine.begin() as conn:
            merged = utcnow()
            _pr(conn, ana, 2, merged)
            _pr(conn, ana, 3, merged + timedelta(seconds=1))
            _pr(conn, ana, 4, merged, ai="none")  # not AI-assisted: never asked
            _pr(conn, ben, 5, merged)  # Ben did not opt in
        run = _scheduled_job(runtime)
        assert run() == 1
        assert run() == 0  # one question a day: PR 3 waits for tomorrow
        [ask] = _asks(engine)
        assert (ask.person_id, ask.number, ask.status, ask.recipient) == (ana, 2, "sent", "UANA")
        [dm] = _dms(fake)
        assert dm["channel"] == "DUANA" and "acme/api#2" in dm["text"]
        assert [b["action_id"] for b in _buttons(dm)] == [
            *(f"saved_time_{key}" for key in saved_time.BUCKETS),
            "saved_time_snooze",
        ]
        assert {b["value"] for b in _buttons(dm)} == {str(ask.id)}

        # Ben forges a tap on Ana's question: refused, nothing recorded.
        assert "Only the person" in _tap(client, fake, user_id="UBEN", bucket="nothing", ask_id=ask.id)
        assert _asks(engine)[0].bucket is None
        assert "Noted *30 min–2 h*" in _tap(client, fake, user_id="UANA", bucket="30m_2h", ask_id=ask.id)
        assert "Changed to *Under 30 min*" in _tap(
            client, fake, user_id="UANA", bucket="under_30m", ask_id=ask.id
        )
        assert "cannot find" in _tap(client, fake, user_id="UANA", bucket="under_30m", ask_id=ask.id + 99)
        [ask] = _asks(engine)
        assert ask.bucket == "under_30m" and ask.answered_at is not None

        # The next day: the second PR; then snoozed, nothing more.
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        sent = asyncio.run(
            ask_saved_time(runtime, make_web_client(runtime), workspace_id=W, clock=lambda: tomorrow)
        )
        assert [a.number for a in _asks(engine)] == [2, 3] and len(sent) == 1
        with engine.begin() as conn:
            _pr(conn, ana, 6, utcnow())
        assert "Only the person" in _tap(client, fake, user_id="UBEN", bucket="snooze", ask_id=ask.id)
        with engine.connect() as conn:
            assert saved_time.get_pref(conn, workspace_id=W, person_id=ben) == saved_time.Pref()
        assert "No questions until" in _tap(client, fake, user_id="UANA", bucket="snooze", ask_id=ask.id)
        assert "snoozed until" in send(client, "saved", user_id="UANA")["text"]
        later = tomorrow + timedelta(days=1)
        assert (
            asyncio.run(
                ask_saved_time(runtime, make_web_client(runtime), workspace_id=W, clock=lambda: later)
            )
            == []
        )
        assert len(_dms(fake)) == 2


def test_bad_arguments_are_told_and_snoozing_needs_the_opt_in(engine, fake):
    with engine.begin() as conn:
        _person(conn, "ana", "UANA")
    with slack_client(engine, fake) as client:
        assert "nothing to snooze" in send(client, "saved snooze 3", user_id="UANA")["text"]
        send(client, "saved on", user_id="UANA")
        assert "1 to 90 days" in send(client, "saved snooze 365", user_id="UANA")["text"]
        assert "snoozed until" in send(client, "saved snooze 3", user_id="UANA")["text"]
        assert "On: at most one" in send(client, "saved on", user_id="UANA")["text"]  # ends the snooze
        assert "did not understand" in send(client, "saved maybe", user_id="UANA")["text"]
        assert "could not find your AI usage" in send(client, "saved on", user_id="UNOBODY")["text"]


def test_two_replicas_ask_once_and_a_refused_dm_is_not_retried(engine, fake):
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        saved_time.set_pref(conn, workspace_id=W, person_id=ana, now=utcnow() - timedelta(hours=1), on=True)
        _pr(conn, ana, 7, utcnow() - timedelta(minutes=5))
    runtime = make_runtime(engine, fake)
    barrier = threading.Barrier(2)
    counts = []

    def replica() -> None:
        barrier.wait()
        counts.append(saved_time_job(runtime))

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(counts) == [0, 1] and len(_dms(fake)) == 1

    # Tomorrow Slack refuses the DM for the next PR: recorded failed, never retried.
    with engine.begin() as conn:
        _pr(conn, ana, 8, utcnow())
    fake.fail_next("chat.postMessage", error="channel_not_found")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    client = make_web_client(runtime)
    assert asyncio.run(ask_saved_time(runtime, client, workspace_id=W, clock=lambda: tomorrow)) == []
    assert asyncio.run(ask_saved_time(runtime, client, workspace_id=W, clock=lambda: tomorrow)) == []
    failed = _asks(engine)[1]
    assert (failed.number, failed.status, failed.error) == (8, "failed", "channel_not_found")


def test_forgetting_a_person_deletes_their_answers_and_opt_in(engine, fake):
    with engine.begin() as conn:
        ana = _person(conn, "ana", "UANA")
        saved_time.set_pref(conn, workspace_id=W, person_id=ana, now=utcnow() - timedelta(hours=1), on=True)
        _pr(conn, ana, 9, utcnow())
    runtime = make_runtime(engine, fake)
    assert saved_time_job(runtime) == 1
    with engine.begin() as conn:
        privacy.forget_person(conn, workspace_id=W, person_id=ana, actor_user_id="UANA")
        assert saved_time.get_pref(conn, workspace_id=W, person_id=ana) == saved_time.Pref()
    assert _asks(engine) == []
