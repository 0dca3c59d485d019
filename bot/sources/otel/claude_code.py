"""Claude Code's OpenTelemetry metrics (https://code.claude.com/docs/en/monitoring-usage).

Metrics, each a monotonic sum (delta temporality by default, cumulative when the user sets
``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative``; both are handled):

- ``claude_code.token.usage`` (tokens), attribute ``type`` = input | output | cacheRead |
  cacheCreation, and ``model``;
- ``claude_code.cost.usage`` (USD), ``model``: Claude Code's own estimate computed on the client,
  stored as ``estimated`` with raw unit ``otel:claude_code`` (its source);
- ``claude_code.lines_of_code.count``, ``type`` = added | removed;
- ``claude_code.commit.count``, ``claude_code.pull_request.count``, ``claude_code.session.count``;
- ``claude_code.code_edit_tool.decision``, ``decision`` = accept | reject;
- ``claude_code.active_time.total`` (seconds, a double): ``active_seconds``, whole seconds.

The person: ``user.email`` (``email:`` actor), else ``user.account_uuid``
(``claude_code_account:<uuid>``), else ``user.id`` (``claude_code_user:<id>``, an anonymous
installation id): identities an admin links to a person. Every metric carries ``session.id``
(the CLI session), kept on the point so a session's cost can be summed. Claude Code's events (``/v1/logs``)
repeat what the metrics count (``claude_code.api_request`` carries the same tokens and cost), so
they are accepted and not folded: counting both would count every request twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from bot.domain.records import email_actor
from bot.sources.otel.base import Person, Reading, text, usd_micros, whole

PREFIX = "claude_code."
TOKEN_TYPES = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cacheRead": "cache_read_tokens",
    "cacheCreation": "cache_write_tokens",
}
LINE_TYPES = {"added": "lines_added", "removed": "lines_removed"}
DECISIONS = {"accept": "acceptances", "reject": "rejections"}
COUNTS = {
    "claude_code.commit.count": "commits",
    "claude_code.pull_request.count": "pull_requests",
    "claude_code.session.count": "sessions",
    "claude_code.active_time.total": "active_seconds",
}


class ClaudeCodeMapping:
    agent: ClassVar[str] = "claude_code"
    vendor: ClassVar[str] = "claude_code"
    priced: ClassVar[bool] = True
    shadowed_by: ClassVar[str] = "claude_code"
    session_attribute: ClassVar[str] = "session.id"

    def claims_metric(self, name: str, resource: Mapping[str, object]) -> bool:
        return name.startswith(PREFIX)

    def claims_event(self, name: str, resource: Mapping[str, object]) -> bool:
        return name.startswith(PREFIX) or text(resource, "service.name") == "claude-code"

    def person(self, attributes: Mapping[str, object]) -> Person | None:
        email = text(attributes, "user.email").lower()
        account = text(attributes, "user.account_uuid")
        account_actor = f"claude_code_account:{account}" if account else None
        if email:
            return Person(email_actor(email), email, account_actor)
        if account_actor:
            return Person(account_actor)
        installation = text(attributes, "user.id")
        return Person(f"claude_code_user:{installation}") if installation else None

    def metric_readings(
        self, name: str, attributes: Mapping[str, object], value: int | float
    ) -> list[Reading]:
        model = text(attributes, "model")
        if name == "claude_code.token.usage":
            measure = TOKEN_TYPES.get(text(attributes, "type"))
            return [Reading(measure, whole(value, name), model)] if measure else []
        if name == "claude_code.cost.usage":
            return [Reading("cost_micros", usd_micros(value, name), model)]
        if name == "claude_code.lines_of_code.count":
            measure = LINE_TYPES.get(text(attributes, "type"))
            return [Reading(measure, whole(value, name))] if measure else []
        if name == "claude_code.code_edit_tool.decision":
            measure = DECISIONS.get(text(attributes, "decision"))
            return [Reading(measure, whole(value, name))] if measure else []
        if name in COUNTS:
            return [Reading(COUNTS[name], whole(value, name))]
        return []

    def event_readings(self, name: str, attributes: Mapping[str, object]) -> list[Reading]:
        return []  # the metrics carry the same numbers (see the module docstring)
