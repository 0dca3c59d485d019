"""The trailer rules added to the AI-assisted table (Assisted-by, Made-with, agent checkpoints)
and the survival rules (revert refs, fix PRs): each triggered and not."""

import pytest

from bot.domain.ai_rules import HIGH, NOT_DETECTED, Detection, PullRequestFacts, assisted_by_tool, detect
from bot.domain.survival_rules import REFS_LIMIT, is_fix, joined_refs, names_commit, revert_refs


def _commits(*messages: str, body: str = "") -> Detection:
    return detect(PullRequestFacts(author_login="ana", body=body, commit_messages=messages))


@pytest.mark.parametrize(
    ("trailer", "rule"),
    [
        ("Assisted-by: Claude Code:claude-opus-4-5", "assisted_by:claude"),
        ("Assisted-by: GitHub Copilot:claude-sonnet-4.6", "assisted_by:copilot"),
        ("assisted-by: Codex:gpt-5-codex", "assisted_by:codex"),
        ("Assisted-by: <internal>:claude-sonnet-4.6", "assisted_by:internal"),  # no agent name: still AI
        ("Assisted-by: Kiro:claude-sonnet-4", "assisted_by:kiro"),  # a tool we do not know yet
        ("Assisted-by: Copilot <123+Copilot@users.noreply.github.com>", "assisted_by:copilot"),
        ("Made-with: Cursor", "made_with:cursor"),
        ("Made-with: [Claude Code](https://claude.ai/code)", "made_with:claude code"),
        ("Entire-Checkpoint: a3b2c4d5e6f7", "agent_checkpoint:entire"),
    ],
)
def test_trailer_rules_fire_in_any_commit_or_the_body(trailer, rule):
    assert _commits("First step", f"Second step\n\n{trailer}\n") == Detection(HIGH, rule)  # a later commit
    assert _commits("Only step", body=f"Summary.\n\n{trailer}") == Detection(HIGH, rule)


@pytest.mark.parametrize(
    "text",
    [
        "Assisted-by: Ana Smith <ana.smith@lab.test>",  # a human helper with their own address
        "Assisted-by:",
        "Made-with: love",
        "Made-with: Cursory glances",
        "Entire-Checkpoint: not-an-id",
        "We made-with: cursor in the middle of a sentence",
        "Squash of #12: Add parser",  # what a squash merge commit alone carries
    ],
)
def test_trailer_rules_do_not_fire(text):
    assert _commits(text) == NOT_DETECTED
    assert _commits("x", body=text) == NOT_DETECTED


def test_assisted_by_value():
    assert assisted_by_tool("Claude:claude-3-opus") == "claude"
    assert assisted_by_tool("Gemini CLI:gemini-2.5-pro") == "gemini"
    assert assisted_by_tool("Bob <bob@corp.test>") is None
    assert assisted_by_tool(":model-only") is None


def test_co_author_still_wins_over_the_new_trailers():
    message = "Step\n\nAssisted-by: Codex:gpt-5\nCo-authored-by: Claude <noreply@anthropic.com>"
    assert _commits(message).rule == "co_author_trailer:claude"


def test_revert_refs_from_the_revert_button_and_git_revert():
    body = "Reverts lab/app#12\n\nAlso reverts other/lib#3."
    message = 'Revert "Parser"\n\nThis reverts commit 0123456789ABCDEF0123456789abcdef01234567.'
    assert revert_refs("lab/app", (body, message)) == (
        "#12",
        "sha:0123456789abcdef0123456789abcdef01234567",
    )
    assert revert_refs("lab/app", ("Reverts other/lib#3",)) == ("other/lib#3",)
    assert revert_refs("lab/app", ("Refs #12", "Fixes #4", "This reverts the cache idea", "")) == ()


def test_joined_refs_keeps_whole_refs_within_the_column():
    refs = [f"sha:{i:040d}" for i in range(20)]
    joined = joined_refs(refs)
    assert len(joined) <= REFS_LIMIT and all(len(ref) == 44 for ref in joined.split())
    assert joined_refs(["#1", "#2"]) == "#1 #2"


def test_names_commit_needs_a_prefix_of_seven():
    sha = "abcdef0123456789abcdef0123456789abcdef01"
    assert names_commit("sha:abcdef0", sha) and names_commit(f"sha:{sha}", sha)
    assert not names_commit("sha:abcdef", sha)  # too short to name one commit
    assert not names_commit("sha:abcdef1", sha) and not names_commit("#12", sha)
    assert not names_commit("sha:abcdef0", "")


@pytest.mark.parametrize(
    ("title", "labels"),
    [
        ("fix: crash on empty input", ()),
        ("fix(parser)!: crash", ()),
        ("bugfix: off by one", ()),
        ("Hotfix: prod outage", ()),
        ("Fix the login redirect", ()),
        ("Fixes flaky cache test", ()),
        ("Tidy the cache", ("bug",)),
        ("Tidy the cache", ("Regression",)),
    ],
)
def test_is_fix(title, labels):
    assert is_fix(title, labels)


@pytest.mark.parametrize(
    ("title", "labels"),
    [
        ("feat: parser", ()),
        ("Fixture data for tests", ()),
        ("Prefix the routes", ()),
        ('Revert "fix: crash"', ()),  # a revert counts as a revert, not as a fix
        ("Add the API", ("enhancement", "bugs-bunny")),
        ("", ()),
    ],
)
def test_is_not_fix(title, labels):
    assert not is_fix(title, labels)
