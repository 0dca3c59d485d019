"""Model names across vendors: one name per model, whoever reports it.

Cursor says ``claude-4-sonnet``, Anthropic ``claude-sonnet-4-20250514``, OpenRouter
``anthropic/claude-sonnet-4``: ``canonical_model`` gives all three "Claude Sonnet 4", so a model is
listed once in "Top models" whichever vendors it came through. ``model_family`` is coarser (the
recap's lines: "Claude Sonnet", "GPT-4.1 mini"). Stored rows keep the vendor's raw name.
"""

from __future__ import annotations

import functools
import re

_GPT = re.compile(r"^gpt-(\d+(?:\.\d+)?o?)(?:-(mini|nano|pro))?")
_GPT_VARIANT = re.compile(r"-(codex|chat|turbo)\b")
_O_SERIES = re.compile(r"^(o\d)(?:-(mini|pro))?(?:-|$)")
_DATE_SUFFIX = re.compile(r"(-\d{8}|-\d{4}-\d{2}-\d{2}|@\d{8}|-latest)$")
_CLAUDE_TIERS = ("opus", "sonnet", "haiku")
_VERSION_PART = re.compile(r"\d+(?:\.\d+)?")
_GEMINI = re.compile(r"^gemini-(\d+(?:\.\d+)?)")


def _base(model: str) -> str:
    """The model id without a provider prefix (OpenRouter's ``anthropic/...``) or date suffix."""
    base = model.strip().rsplit("/", 1)[-1]
    return _DATE_SUFFIX.sub("", base)


@functools.lru_cache(maxsize=4096)  # reports ask for the same few dozen models many times
def canonical_model(model: str) -> str:
    """One readable name per model: tier and version kept, dates and vendor spellings folded
    (``claude-3-5-sonnet-20241022`` and ``claude-3.5-sonnet`` -> "Claude Sonnet 3.5")."""
    base = _base(model)
    name = base.lower()
    if not name:
        return "unspecified model"
    if "claude" in name:
        for tier in _CLAUDE_TIERS:
            if tier in name:
                rest = name.replace("claude", " ").replace(tier, " ")
                # "3-5" and "4-1" are versions written with dashes; "-thinking" etc. are modes
                numbers = re.findall(r"\d+", rest.replace(".", "-"))
                version = ".".join(numbers[:2])
                return f"Claude {tier.capitalize()}" + (f" {version}" if version else "")
    if match := _GPT.match(name):
        text = f"GPT-{match.group(1)}" + (f" {match.group(2)}" if match.group(2) else "")
        if variant := _GPT_VARIANT.search(name[match.end() :]):
            text += f" {variant.group(1)}"
        return text
    if match := _O_SERIES.match(name):
        return match.group(1) + (f"-{match.group(2)}" if match.group(2) else "")
    if match := _GEMINI.match(name):
        tier = next((t for t in ("pro", "flash-lite", "flash") if t in name), "")
        return f"Gemini {match.group(1)}" + (f" {tier.replace('-', ' ').title()}" if tier else "")
    return base[:60]


@functools.lru_cache(maxsize=4096)  # a recap asks for the same few dozen models ~30,000 times
def model_family(model: str) -> str:
    """A readable family for a model id: versions and dates folded, sizes kept
    (``claude-3-5-sonnet-20241022`` -> "Claude Sonnet", ``gpt-4.1-mini`` -> "GPT-4.1 mini")."""
    base = _base(model)
    name = base.lower()
    if not name:
        return "unspecified model"
    for tier in _CLAUDE_TIERS:
        if "claude" in name and tier in name:
            return f"Claude {tier.capitalize()}"
    if match := _GPT.match(name):
        return f"GPT-{match.group(1)}" + (f" {match.group(2)}" if match.group(2) else "")
    if match := _O_SERIES.match(name):
        return match.group(1) + (f"-{match.group(2)}" if match.group(2) else "")
    if name.startswith("gemini"):
        for tier in ("pro", "flash"):
            if tier in name:
                return f"Gemini {tier.capitalize()}"
        return "Gemini"
    return base[:60]
