"""One name per model across vendors (``canonical_model``) and the recap's coarser families."""

import pytest

from bot.domain.models import canonical_model, model_family


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("claude-4-sonnet", "Claude Sonnet 4"),  # Cursor
        ("claude-sonnet-4-20250514", "Claude Sonnet 4"),  # Anthropic
        ("anthropic/claude-sonnet-4", "Claude Sonnet 4"),  # OpenRouter
        ("claude-3-5-sonnet-20241022", "Claude Sonnet 3.5"),
        ("claude-3.5-sonnet", "Claude Sonnet 3.5"),
        ("claude-opus-4-1-20250805", "Claude Opus 4.1"),
        ("claude-4.5-sonnet-thinking", "Claude Sonnet 4.5"),
        ("claude-haiku-4-5@20251001", "Claude Haiku 4.5"),  # Vertex spelling
        ("gpt-5", "GPT-5"),
        ("gpt-5-mini-2025-08-07", "GPT-5 mini"),
        ("openai/gpt-4.1-mini", "GPT-4.1 mini"),
        ("gpt-4o-2024-08-06", "GPT-4o"),
        ("gpt-5-codex", "GPT-5 codex"),
        ("o4-mini", "o4-mini"),
        ("gemini-2.5-pro", "Gemini 2.5 Pro"),
        ("grok-code-fast-1", "grok-code-fast-1"),  # unknown: the vendor's name, not a guess
        ("", "unspecified model"),
    ],
)
def test_canonical_model(raw, name):
    assert canonical_model(raw) == name


def test_versions_are_kept_apart_but_families_fold_them():
    assert canonical_model("claude-sonnet-4-5") != canonical_model("claude-sonnet-4")
    assert model_family("claude-sonnet-4-5") == model_family("claude-3-5-sonnet-20241022") == "Claude Sonnet"
