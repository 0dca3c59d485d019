"""What Slack sends the app, from the payload files in tests/fixtures/slack/inbound/: a test names
the shape and passes only what it varies. Sign the bodies with ``slack_fake.signed_headers``."""

from __future__ import annotations

import copy
import json
import time
import urllib.parse
from functools import cache

from tests.support.files import fixture_path

# Where a command's reply goes when the test does not listen: nothing answers on port 9.
NO_RESPONSE_URL = "http://127.0.0.1:9/response_url/none"


@cache
def _load(name: str) -> dict:
    return json.loads(fixture_path("slack", "inbound", f"{name}.json").read_text())


def merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` in: dicts merged key by key, any other value replaced."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def inbound(name: str, **overrides) -> dict:
    """The payload file ``<name>.json`` with ``overrides`` merged in."""
    return merged(_load(name), overrides)


def command_body(
    text: str, *, user_id: str = "UANA", response_url: str = "", channel_id: str = "C1", team_id: str = "T1"
) -> str:
    """A ``/tokens <text>`` slash command, form-encoded as Slack posts it."""
    fields = inbound(
        "slash_command",
        text=text,
        user_id=user_id,
        user_name=user_id.lower(),
        response_url=response_url or NO_RESPONSE_URL,
        channel_id=channel_id,
        team_id=team_id,
    )
    return urllib.parse.urlencode(fields)


def event_body(event: dict, *, event_id: str, event_time: int | None = None, **envelope) -> str:
    """An Events API callback around ``event`` (e.g. ``inbound("app_home_opened", user=...)``),
    as the JSON Slack posts; ``envelope`` overrides the envelope's fields (team_id, ...)."""
    at = int(time.time()) if event_time is None else event_time
    return json.dumps(inbound("event_callback", event=event, event_id=event_id, event_time=at, **envelope))


def button_click(
    action_id: str,
    value: str,
    *,
    user_id: str,
    block_id: str = "b1",
    response_url: str = NO_RESPONSE_URL,
    **overrides,
) -> dict:
    """A block_actions payload: ``user_id`` clicked the button ``action_id`` (``value``)."""
    [action] = _load("block_actions")["actions"]
    clicked = {**action, "action_id": action_id, "block_id": block_id, "value": value}
    user = {"id": user_id, "username": user_id.lower(), "team_id": "T1"}
    return inbound("block_actions", user=user, response_url=response_url, actions=[clicked], **overrides)


def view_submission(values: dict, *, user_id: str, **overrides) -> dict:
    """The sources modal submitted by ``user_id`` with ``values`` as its state (block id ->
    action id -> element state)."""
    user = {"id": user_id, "username": user_id.lower(), "team_id": "T1"}
    return inbound("view_submission", user=user, **merged({"view": {"state": {"values": values}}}, overrides))


def form_body(payload: dict) -> str:
    """An interaction payload as Slack posts it: form-encoded ``payload=<json>``."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)})
