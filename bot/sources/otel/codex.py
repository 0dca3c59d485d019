"""The OpenAI Codex CLI's OpenTelemetry events (the ``[otel]`` table of ``~/.codex/config.toml``,
documented in the Codex repository's docs/config.md, "otel").

Codex exports log events, not metrics. Every event carries ``event.name``, ``conversation.id``,
``model``, ``auth_mode`` and, when known, ``user.account_id`` (and ``user.email`` in recent
versions). Folded here:

- ``codex.sse_event`` with token counts (the completion of a response): ``input_token_count``
  (which includes ``cached_token_count``, as OpenAI counts input), ``cached_token_count``,
  ``output_token_count`` (reasoning tokens are part of it);
- ``codex.tool_decision``: ``decision`` approved | approved_for_session -> an acceptance,
  denied | abort -> a rejection.

Codex sends no cost, so its tokens are stored ``unpriced`` (counted and shown, never a silent $0).
The person: ``user.email``, else ``user.account_id`` (``codex_account:<id>``, to link). The
session: ``conversation.id`` (kept on the point; with no cost, a Codex session gives tokens only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from bot.domain.records import email_actor
from bot.sources.otel.base import Person, Reading, text, whole

PREFIX = "codex."
ACCEPTED = {"approved", "approved_for_session"}
REJECTED = {"denied", "abort"}


class CodexMapping:
    agent: ClassVar[str] = "codex"
    vendor: ClassVar[str] = "codex"
    priced: ClassVar[bool] = False
    shadowed_by: ClassVar[str] = "codex"
    session_attribute: ClassVar[str] = "conversation.id"

    def claims_metric(self, name: str, resource: Mapping[str, object]) -> bool:
        return name.startswith(PREFIX)

    def claims_event(self, name: str, resource: Mapping[str, object]) -> bool:
        return name.startswith(PREFIX)

    def person(self, attributes: Mapping[str, object]) -> Person | None:
        email = text(attributes, "user.email").lower()
        account = text(attributes, "user.account_id")
        account_actor = f"codex_account:{account}" if account else None
        if email:
            return Person(email_actor(email), email, account_actor)
        return Person(account_actor) if account_actor else None

    def metric_readings(
        self, name: str, attributes: Mapping[str, object], value: int | float
    ) -> list[Reading]:
        return []  # Codex documents events only

    def event_readings(self, name: str, attributes: Mapping[str, object]) -> list[Reading]:
        model = text(attributes, "model")
        if name == "codex.sse_event" and "input_token_count" in attributes:
            given = whole(attributes.get("input_token_count"), "input_token_count")
            cached = whole(attributes.get("cached_token_count"), "cached_token_count")
            output = whole(attributes.get("output_token_count"), "output_token_count")
            return [
                Reading("input_tokens", max(given - cached, 0), model),
                Reading("cache_read_tokens", cached, model),
                Reading("output_tokens", output, model),
                Reading("requests", 1, model),
            ]
        if name == "codex.tool_decision":
            decision = text(attributes, "decision")
            if decision in ACCEPTED:
                return [Reading("acceptances", 1)]
            if decision in REJECTED:
                return [Reading("rejections", 1)]
        return []
