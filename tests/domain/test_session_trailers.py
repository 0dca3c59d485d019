"""Session trailers: which lines name an agent session, and the id read from each."""

from __future__ import annotations

from bot.domain.ai_rules import SESSION_LIMIT, session_id, session_ids

UUID = "6f1c2a8e-4b3d-4e5f-9a0b-1c2d3e4f5a6b"


def test_each_accepted_trailer_names_its_session():
    body = (
        "Adds export.\n\n"
        "Claude-Session: https://claude.ai/code/session_01SBzqph11q7ZSHA5QEGgtu5\n"
        f"> Entire-Session: 2026-11-02-{UUID.upper()}\n"
        "Codex-Conversation-Id: conv_12345678\n"
    )
    commit = "Fix\n\nClaude-Session-Id: 11111111-2222-4333-8444-555566667777\nSession-Id: run.2026:42abc\n"
    assert session_ids([body, commit]) == (
        "session_01sbzqph11q7zsha5qeggtu5",
        UUID,  # the agent's id inside Entire's date-prefixed one
        "conv_12345678",
        "11111111-2222-4333-8444-555566667777",
        "run.2026:42abc",
    )


def test_lines_that_name_no_session_name_none():
    texts = [
        "Session-Id: n/a\n",  # too short to be an id
        "We discussed the Claude-Session: link in review.\n",  # not a trailer line
        "Entire-Checkpoint: a3b2c4d5e6f7\n",  # a checkpoint, not a session
        "X-Session-Id: 11111111-2222-4333-8444-555566667777\n",  # not an accepted key
        "Session-Id: <script>alert(1)</script>\n",
    ]
    assert session_ids(texts) == ()
    assert session_id("  ") is None


def test_ids_are_kept_once_and_within_the_column():
    once = session_ids([f"Session-Id: {UUID}\n", f"session-id: {UUID}\n"])
    assert once == (UUID,)
    many = "\n".join(f"Session-Id: {i:08d}-aaaa-4bbb-8ccc-{i:012d}" for i in range(40))
    kept = session_ids([many])
    assert 0 < len(kept) < 40 and len(" ".join(kept)) <= SESSION_LIMIT
