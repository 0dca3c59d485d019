"""Coding agents' OpenTelemetry: one mapping module per agent behind ``AgentMapping``
(``bot.sources.otel.base``) and the OTLP request walker (``bot.sources.otel.otlp``)."""

from __future__ import annotations

from bot.sources.otel.base import AgentMapping
from bot.sources.otel.claude_code import ClaudeCodeMapping
from bot.sources.otel.codex import CodexMapping

#: Every supported agent, by name; its rows are stored as source ``otel_<agent>``.
AGENTS: dict[str, AgentMapping] = {m.agent: m for m in (ClaudeCodeMapping(), CodexMapping())}


def source_of(agent: str) -> str:
    return f"otel_{agent}"
