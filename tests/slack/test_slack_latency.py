"""Bolt runs with ``process_before_response=True``: Slack gets its response when a listener
returns, so every listener acks and returns fast and its slow tail (Slack calls, database
writes, a late answer) follows in the background. Checked through the signed HTTP app and
Socket Mode's dispatch, with a fake Slack that is made slow on purpose."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse

from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_sdk.socket_mode.request import SocketModeRequest
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.db.models import Person
from bot.services.runtime import Runtime
from bot.settings import Settings
from bot.slack import background, commands
from bot.slack.app import build_app
from bot.slack.blocks.privacy import FORGET_CONFIRM
from bot.web import build_web_app
from tests.support.inbound import button_click, command_body, form_body, inbound
from tests.support.slack_app import (
    all_text,
    cancel_forget,
    make_runtime,
    person_id,
    post_action,
    post_event,
    send,
    slack_client,
)
from tests.support.slack_fake import BOT_TOKEN, signed_headers

SLOW = 1.5  # seconds the fake Slack takes for the slowed method; every response must beat it


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def test_a_slow_answer_acks_within_the_budget_then_follows_on_the_response_url(
    client, fake_slack, monkeypatch
):
    monkeypatch.setattr(commands, "ACK_BUDGET_SECONDS", 0.3)
    fake_slack.slow("users.info", SLOW)  # the answer needs the caller's Slack profile first
    url = fake_slack.server.url_for("/response_url/slow")
    reply, took = timed(lambda: send(client, "me 30d", response_url=url))
    assert "Working on it" in reply["text"] and reply["response_type"] == "ephemeral"
    assert took < SLOW and fake_slack.calls_to("response_url") == []
    late = fake_slack.wait_for("response_url")[0].params
    assert "Your AI spend" in late["text"]
    assert late["response_type"] == "ephemeral" and late["replace_original"] is True


def test_an_answer_ready_within_the_budget_is_the_ack_itself(client, fake_slack):
    reply = send(client, "me 30d", response_url=fake_slack.server.url_for("/response_url/fast"))
    assert "Your AI spend" in all_text(reply)
    time.sleep(0.2)
    assert fake_slack.calls_to("response_url") == []  # nothing follows: the ack was the answer


def test_a_button_click_responds_before_its_effect_and_the_effect_happens(client, fake_slack, seeded):
    send(client, "me", user_id="UBEN")
    prompt = send(client, "forget me", user_id="UBEN")
    buttons = [e for b in prompt["blocks"] for e in b.get("elements", []) if "action_id" in e]
    [value] = [e["value"] for e in buttons if e["action_id"] == FORGET_CONFIRM]
    fake_slack.slow("response_url", SLOW)
    _, took = timed(
        lambda: post_action(
            client,
            user_id="UBEN",
            action_id=FORGET_CONFIRM,
            value=value,
            response_url=fake_slack.server.url_for("/response_url/ben"),
        )
    )
    assert took < SLOW
    done = fake_slack.wait_for("response_url", timeout=SLOW + 5)[0].params
    assert "you are forgotten" in done["text"]
    with seeded.connect() as conn:
        assert conn.execute(select(Person.forgotten_at).where(Person.id == int(value))).scalar() is not None


def test_app_home_event_is_answered_before_the_view_is_published(client, fake_slack):
    fake_slack.slow("views.publish", SLOW)
    event = inbound("app_home_opened", user="UANA")
    _, took = timed(lambda: post_event(client, event, event_id="EvSlow"))
    assert took < SLOW
    [published] = fake_slack.wait_for("views.publish", timeout=SLOW + 5)
    assert published.params["user_id"] == "UANA"


def test_shutdown_lets_acked_work_finish(seeded, fake_slack):
    fake_slack.slow("response_url", 1.0)
    with slack_client(seeded, fake_slack) as client:
        cancel_forget(client, fake_slack)
    # The lifespan's shutdown waited for the cancellation to reach Slack.
    [note] = fake_slack.calls_to("response_url")
    assert "nothing was forgotten" in note.params["text"]


def test_a_listener_that_raises_is_logged_and_never_a_500(seeded, fake_slack, caplog):
    runtime = make_runtime(seeded, fake_slack)
    bolt = build_app(runtime)

    @bolt.action("raises_after_ack")
    async def raises_after_ack(ack):
        await ack(text="acknowledged")
        raise RuntimeError("after the ack")

    @bolt.action("raises_before_ack")
    async def raises_before_ack(ack):
        raise RuntimeError("before the ack")

    caplog.set_level(logging.ERROR, logger="bot.slack.bolt")
    with TestClient(build_web_app(runtime, bolt)) as client:
        responses = {}
        for action_id in ("raises_after_ack", "raises_before_ack"):
            body = form_body(button_click(action_id, "1", user_id="UANA"))
            responses[action_id] = client.post("/slack/events", content=body, headers=signed_headers(body))
    after, before = responses["raises_after_ack"], responses["raises_before_ack"]
    assert after.status_code == 200 and after.text == "acknowledged"  # what the listener acked
    assert before.status_code == 200 and before.text == ""
    assert caplog.text.count("unhandled Slack listener error: RuntimeError") == 2


async def test_socket_mode_acks_in_the_envelope_and_answers_late(seeded, fake_slack, monkeypatch):
    settings = Settings(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN="xapp-1", SLACK_API_URL=fake_slack.api_url)
    app = build_app(Runtime(settings=settings, engine=seeded), socket_mode=True)

    def envelope(text: str, number: int) -> SocketModeRequest:
        body = command_body(text, response_url=fake_slack.server.url_for(f"/response_url/{number}"))
        payload = dict(urllib.parse.parse_qsl(body))
        return SocketModeRequest(type="slash_commands", envelope_id=f"e{number}", payload=payload)

    fast = await run_async_bolt_app(app, envelope("me 30d", 1))
    assert fast.status == 200 and "Your AI spend" in json.loads(fast.body)["text"]
    monkeypatch.setattr(commands, "ACK_BUDGET_SECONDS", 0.0)
    slow = await run_async_bolt_app(app, envelope("me 30d", 2))
    assert slow.status == 200 and "Working on it" in json.loads(slow.body)["text"]
    await background.drain_background(10)
    [late] = fake_slack.calls_to("response_url")
    assert "Your AI spend" in late.params["text"]
    with seeded.connect() as conn:
        assert person_id(conn, "ana@example.com")  # matched on the first command
