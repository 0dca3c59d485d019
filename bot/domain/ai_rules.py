"""Is a pull request AI-assisted, and how sure are we? Pure rules, no I/O.

THE RULE TABLE (``RULES`` below; the first rule that fires wins, in this order):

  rule               confidence  fires when
  -----------------  ----------  ---------------------------------------------------------------
  co_author_trailer  high        a ``Co-authored-by:`` trailer (commit message or PR body) names
                                 an AI tool: the address is the tool's (noreply@anthropic.com,
                                 cursoragent@cursor.com, ...), or the name is exactly the tool's
                                 ("Claude", "Copilot", "Cursor Agent") with no address or a
                                 no-reply one. "Claude Martin <cm@corp.com>" is a colleague.
  assisted_by        high        an ``Assisted-by:`` trailer (the Linux kernel's form
                                 "Assisted-by: <agent>:<model>", e.g. "Assisted-by: Claude
                                 Code:claude-opus-4") whose value is not a person: a value with a
                                 personal address ("Assisted-by: Ana <ana@corp.com>") is a human
                                 helper and does not fire
  made_with          high        a ``Made-with: <tool>`` trailer (Cursor's) naming a tool of
                                 ``GENERATED_TOOLS``; "Made-with: love" does not fire
  agent_checkpoint   high        an agent checkpoint trailer (``CHECKPOINT_TRAILERS``, e.g.
                                 Entire's "Entire-Checkpoint: a3b2c4d5e6f7", written only when
                                 an agent session is attached to the commit) with a hex id
  generated_with     high        a line "Generated with/by/using <tool>" (e.g. "🤖 Generated with
                                 [Claude Code](...)") in the PR body or a commit message
  label              high        a PR label in ``AI_LABELS`` (ai-assisted, ai-generated, ...;
                                 case, spaces and underscores do not matter)
  agent_author       high        the PR was opened by a coding agent account (``AGENT_LOGINS``:
                                 Copilot, devin-ai-integration[bot], ...); never a bot here
  ai_usage           low         none of the above, but the credited author has AI-tool usage or
                                 activity from another vendor (seats do not count) on a UTC day
                                 from the PR's first commit (or its opening) to its merge.
                                 Decided at query time (vendor data lands later than GitHub's),
                                 never stored.

``pull_request.ai_rule`` records ``<rule>:<what matched>``, e.g. ``co_author_trailer:claude``,
``label:ai-assisted``, ``agent_author:copilot``, ``assisted_by:claude``.

Every rule reads the PR body and the message of EVERY commit of the PR (the connector lists them
all, past the 250 the PR commits endpoint stops at), never the merge commit alone: a squash merge
keeps only what GitHub puts in the squash message, which may drop the trailers. To change what
counts, edit the tables below (or pass another ``rules`` tuple to ``detect``); the unit tests in
tests/domain/test_ai_detection.py and tests/domain/test_trailer_rules.py show each rule firing and not.

Session trailers (``session_ids``, not a detection rule): a trailer in ``SESSION_TRAILERS`` names
the agent session a commit or PR came out of, so that session's measured cost can be tied to the PR
(bot/services/value/cost_per_pr.py, docs/value.md "Cost per pull request").

Bots (``is_excluded``): accounts of type Bot, logins ending in ``[bot]`` and ``BOT_LOGINS``
(dependabot, renovate, …) are left out of every count, except the coding agents above.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

HIGH = "high"
LOW = "low"
NONE = "none"

#: The delivery sources themselves: their rows are the work, not AI-tool use.
DELIVERY_VENDORS = frozenset({"github_delivery"})

RULE_LIMIT = 64  # pull_request.ai_rule length


@dataclass(frozen=True, slots=True)
class CoAuthor:
    tool: str
    name: str  # full-match regex on the trailer's name, case-insensitive
    email: str | None = None  # regex searched in the trailer's address, case-insensitive


#: AI tools as they sign ``Co-authored-by:`` trailers.
AI_CO_AUTHORS: tuple[CoAuthor, ...] = (
    CoAuthor("claude", r"claude(\s+code)?(\s+(opus|sonnet|haiku)(\s+[\w.]+)?)?", r"^noreply@anthropic\.com$"),
    CoAuthor(
        "copilot",
        r"(github\s+)?copilot|copilot-swe-agent\[bot\]|copilot\[bot\]",
        r"(^|\+)copilot(-swe-agent\[bot\])?@users\.noreply\.github\.com$",
    ),
    CoAuthor("cursor", r"cursor(\s+agent)?", r"^cursoragent@cursor\.com$"),
    CoAuthor(
        "codex", r"(openai\s+)?codex|chatgpt(\s+codex(\s+connector)?)?|chatgpt-codex-connector\[bot\]", None
    ),
    CoAuthor(
        "devin",
        r"devin(\s+ai)?|devin-ai-integration\[bot\]",
        r"devin-ai-integration\[bot\]@users\.noreply\.github\.com$",
    ),
    CoAuthor("aider", r"aider(\s*\(.*\))?", r"^noreply@aider\.chat$"),
    CoAuthor("gemini", r"gemini(\s+(code\s+assist|cli))?|gemini-code-assist\[bot\]", None),
    CoAuthor("jules", r"jules|google-labs-jules\[bot\]", None),
    CoAuthor("windsurf", r"windsurf|cascade|codeium", None),
    CoAuthor("amazon q", r"amazon\s+q(\s+developer)?|amazon-q-developer\[bot\]", None),
)

#: Tools named after "Generated with/by/using" (longest first so "claude code" beats "claude").
GENERATED_TOOLS: tuple[str, ...] = (
    "claude code",
    "claude",
    "github copilot",
    "copilot",
    "cursor",
    "codex",
    "chatgpt",
    "devin",
    "aider",
    "gemini",
    "jules",
    "windsurf",
    "amazon q",
)

#: Agent checkpoint trailers (lower-case key -> tool): written by a tool that attaches an agent
#: session to the commit (https://docs.entire.io/cli/checkpoints).
CHECKPOINT_TRAILERS: dict[str, str] = {"entire-checkpoint": "entire"}

#: Trailers naming the agent session a commit came out of (lower-case keys). ``Claude-Session`` is
#: what Claude Code writes (a ``https://claude.ai/code/session_<id>`` link), ``Entire-Session``
#: Entire's (the agent's session id, https://pkg.go.dev/github.com/entireio/cli/cmd/entire/cli/trailers);
#: ``Claude-Session-Id``, ``Codex-Conversation-Id`` and ``Session-Id`` are for teams that write the
#: id the agent's telemetry carries (``session.id``, ``conversation.id``) themselves, e.g. in a hook.
SESSION_TRAILERS = (
    "claude-session",
    "claude-session-id",
    "entire-session",
    "codex-conversation-id",
    "session-id",
)
SESSION_LIMIT = 1000  # pull_request.session_ids length

#: PR labels that mark AI-assisted work (compared lower-case, spaces/underscores as hyphens).
AI_LABELS: frozenset[str] = frozenset(
    {
        "ai",
        "ai-assisted",
        "ai-generated",
        "ai-authored",
        "ai-pr",
        "llm-assisted",
        "copilot",
        "claude",
        "claude-code",
        "codex",
        "cursor",
        "devin",
    }
)

#: Coding agent accounts (lower-case login -> tool). They open PRs for a person; never bots here.
AGENT_LOGINS: dict[str, str] = {
    "copilot": "copilot",
    "copilot-swe-agent[bot]": "copilot",
    "devin-ai-integration[bot]": "devin",
    "claude[bot]": "claude",
    "chatgpt-codex-connector[bot]": "codex",
    "google-labs-jules[bot]": "jules",
    "amazon-q-developer[bot]": "amazon q",
}

#: Bot accounts without the ``[bot]`` suffix (self-hosted or legacy installs).
BOT_LOGINS: frozenset[str] = frozenset(
    {
        "dependabot",
        "dependabot-preview",
        "renovate",
        "renovate-bot",
        "github-actions",
        "snyk-bot",
        "greenkeeper",
        "pre-commit-ci",
        "mergify",
        "imgbot",
        "codecov",
    }
)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    confidence: str
    evidence: str  # what the rule looks at (documentation)


RULES: tuple[Rule, ...] = (
    Rule("co_author_trailer", HIGH, "Co-authored-by trailers in commit messages and the PR body"),
    Rule("assisted_by", HIGH, "Assisted-by trailers (agent:model) in commit messages and the PR body"),
    Rule("made_with", HIGH, "Made-with: <tool> trailers in commit messages and the PR body"),
    Rule("agent_checkpoint", HIGH, "agent checkpoint trailers (Entire-Checkpoint: <id>)"),
    Rule("generated_with", HIGH, "a 'Generated with <tool>' line in the PR body or a commit message"),
    Rule("label", HIGH, "PR labels"),
    Rule("agent_author", HIGH, "the account that opened the PR"),
    Rule("ai_usage", LOW, "the author's AI-tool usage from other vendors while the PR was worked on"),
)


@dataclass(frozen=True, slots=True)
class PullRequestFacts:
    """What a code host tells us about one pull request (all optional but the author)."""

    author_login: str
    author_type: str = "User"
    labels: tuple[str, ...] = ()
    body: str = ""
    commit_messages: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Detection:
    confidence: str  # high | low | none
    rule: str = ""  # "<rule>:<what matched>", "" when none fired

    @property
    def is_ai(self) -> bool:
        return self.confidence in (HIGH, LOW)


NOT_DETECTED = Detection(NONE, "")

_TRAILER = re.compile(
    r"^[ \t>]*co-authored-by:[ \t]*(?P<name>[^<\n]*?)[ \t]*(?:<(?P<email>[^>\n]*)>)?[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_TOOL_NAMES = "|".join(tool.replace(" ", r"\s+") for tool in GENERATED_TOOLS)
_GENERATED = re.compile(
    r"^[^\w\n]*generated\s+(?:with|by|using)\s+\[?(?P<tool>" + _TOOL_NAMES + r")\b",
    re.IGNORECASE | re.MULTILINE,
)
_ASSISTED_BY = re.compile(
    r"^[ \t>]*assisted-by:[ \t]*(?P<value>\S[^\n]*?)[ \t]*$", re.IGNORECASE | re.MULTILINE
)
_MADE_WITH = re.compile(
    r"^[ \t>]*made-with:[ \t]*\[?(?P<tool>" + _TOOL_NAMES + r")\b", re.IGNORECASE | re.MULTILINE
)
_CHECKPOINT = re.compile(
    r"^[ \t>]*(?P<key>" + "|".join(map(re.escape, CHECKPOINT_TRAILERS)) + r"):[ \t]*[0-9a-f]{6,64}[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_SESSION = re.compile(
    r"^[ \t>]*(?:" + "|".join(map(re.escape, SESSION_TRAILERS)) + r"):[ \t]*(?P<value>\S+)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_SESSION_ID = re.compile(r"[a-z0-9][a-z0-9_.:-]{7,127}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ADDRESS = re.compile(r"<(?P<email>[^>\n]*@[^>\n]*)>")  # "<internal>" is no address


def _rule_id(rule: str, matched: str) -> str:
    return f"{rule}:{' '.join(matched.lower().split())}"[:RULE_LIMIT]


def co_author_tool(name: str, email: str | None, table: Iterable[CoAuthor] = AI_CO_AUTHORS) -> str | None:
    """The AI tool a ``Co-authored-by:`` trailer names, or None when it is (probably) a person."""
    name = " ".join(name.split())
    address = (email or "").strip().lower()
    for entry in table:
        if entry.email and address and re.search(entry.email, address, re.IGNORECASE):
            return entry.tool
        # A bare tool name is a tool only without a personal address: "Claude <claude@corp.com>"
        # is a colleague called Claude.
        if re.fullmatch(entry.name, name, re.IGNORECASE) and (not address or "noreply" in address):
            return entry.tool
    return None


def _trailer_match(texts: Iterable[str]) -> str | None:
    for text in texts:
        for match in _TRAILER.finditer(text or ""):
            tool = co_author_tool(match.group("name"), match.group("email"))
            if tool:
                return tool
    return None


def assisted_by_tool(value: str) -> str | None:
    """What an ``Assisted-by:`` value names: the agent (before ``:model``), lower-case, the known
    tool when it is one; None for a person (a value with an address that is not a no-reply one)."""
    address = _ADDRESS.search(value)
    if address and "noreply" not in address.group("email").lower():
        return None
    agent = _ADDRESS.sub("", value).split(":", 1)[0].strip(" \t<>")
    if not agent:
        return None
    return co_author_tool(agent, None) or " ".join(agent.lower().split())


def _assisted_match(texts: Iterable[str]) -> str | None:
    for text in texts:
        for match in _ASSISTED_BY.finditer(text or ""):
            tool = assisted_by_tool(match.group("value"))
            if tool:
                return tool
    return None


def _first_group(pattern: re.Pattern, group: str, texts: Iterable[str]) -> str | None:
    for text in texts:
        match = pattern.search(text or "")
        if match:
            return match.group(group)
    return None


def session_id(value: str) -> str | None:
    """The session a trailer's value names, lower-case: the last path segment of a link, the UUID
    in it when there is one (Entire prefixes the agent's id with a date), else the whole id (8 to
    128 characters of letters, digits and ``_.:-``); None for anything else ("Session-Id: n/a")."""
    value = value.strip().strip("<>").rstrip("/").lower()
    if "://" in value:
        value = value.rsplit("/", 1)[-1]
    uuid = _UUID.search(value)
    if uuid:
        return uuid.group(0)
    return value if _SESSION_ID.fullmatch(value) else None


def session_ids(texts: Iterable[str]) -> tuple[str, ...]:
    """Every session the session trailers of ``texts`` (PR body, commit messages) name, once each,
    in order of appearance, as many as fit in ``SESSION_LIMIT`` characters space-separated."""
    found: dict[str, None] = {}
    length = -1
    for text in texts:
        for match in _SESSION.finditer(text or ""):
            name = session_id(match.group("value"))
            if name and name not in found and length + 1 + len(name) <= SESSION_LIMIT:
                found[name] = None
                length += 1 + len(name)
    return tuple(found)


def normalise_label(label: str) -> str:
    return re.sub(r"[\s_]+", "-", label.strip().lower())


def agent_tool(login: str) -> str | None:
    """The coding agent behind an account, or None."""
    return AGENT_LOGINS.get(login.strip().lower())


def is_excluded(login: str, account_type: str | None = None) -> bool:
    """Bots are left out of every count; coding agents are not bots here."""
    lowered = login.strip().lower()
    if not lowered:
        return True  # nobody to credit
    if agent_tool(lowered):
        return False
    return (account_type or "").strip().lower() == "bot" or lowered.endswith("[bot]") or lowered in BOT_LOGINS


def detect(facts: PullRequestFacts, rules: tuple[Rule, ...] = RULES) -> Detection:
    """The first high-confidence rule that fires, else "none" (low is decided by ``with_usage``)."""
    texts = (*facts.commit_messages, facts.body)
    for rule in rules:
        if rule.confidence != HIGH:
            continue
        matched: str | None = None
        if rule.name == "co_author_trailer":
            matched = _trailer_match(texts)
        elif rule.name == "assisted_by":
            matched = _assisted_match(texts)
        elif rule.name == "made_with":
            matched = _first_group(_MADE_WITH, "tool", texts)
        elif rule.name == "agent_checkpoint":
            key = _first_group(_CHECKPOINT, "key", texts)
            matched = CHECKPOINT_TRAILERS[key.lower()] if key else None
        elif rule.name == "generated_with":
            matched = _first_group(_GENERATED, "tool", (facts.body, *facts.commit_messages))
        elif rule.name == "label":
            matched = next((n for n in map(normalise_label, facts.labels) if n in AI_LABELS), None)
        elif rule.name == "agent_author":
            matched = agent_tool(facts.author_login)
        if matched:
            return Detection(rule.confidence, _rule_id(rule.name, matched))
    return NOT_DETECTED


def used_ai_during(first_day: date, last_day: date, ai_days: Iterable[date]) -> bool:
    """Did the author use an AI tool on any UTC day from ``first_day`` to ``last_day`` inclusive?"""
    return any(first_day <= day <= last_day for day in ai_days)


def with_usage(
    detection: Detection, first_day: date, last_day: date, ai_days: Iterable[date], rules=RULES
) -> Detection:
    """Upgrade "none" to "low" when the ``ai_usage`` rule is in the table and fires."""
    if detection.confidence != NONE or not any(r.name == "ai_usage" for r in rules):
        return detection
    if used_ai_during(first_day, last_day, ai_days):
        return Detection(LOW, "ai_usage")
    return detection
