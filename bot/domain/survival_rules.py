"""Did a merged pull request last? The pure rules the survival measure is made of (docs/value.md).

- ``revert_refs``: what a PR or commit says it reverts. GitHub's "Revert" button opens a PR whose
  body reads "Reverts owner/repo#123"; ``git revert`` writes "This reverts commit <sha>." into the
  message (which a squash merge keeps in the squash commit). A ref is ``#123`` (this repository),
  ``owner/repo#123`` (another one) or ``sha:<full or abbreviated sha, lower-case>``.
- ``is_fix``: is a PR a fix? Its title starts with a conventional-commit fix type (``fix:``,
  ``fix(api):``, ``bugfix:``, ``hotfix!:``) or the word Fix/Fixes/Fixed/Hotfix/Bugfix, or it carries
  a label in ``FIX_LABELS``. A revert is not a fix here: it is counted as a revert.
- ``names_commit``: does a ``sha:`` ref name a given commit (at least 7 hex digits, a prefix)?
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Labels that mark a fix (compared lower-case, spaces/underscores as hyphens).
FIX_LABELS: frozenset[str] = frozenset(
    {"bug", "fix", "bugfix", "hotfix", "regression", "type:-bug", "kind/bug"}
)
REFS_LIMIT = 400  # pull_request.reverts length
MIN_SHA = 7  # git's shortest default abbreviation

_REVERTS_PR = re.compile(
    r"^[ \t>]*reverts?[ \t]+(?P<repo>[\w.-]+/[\w.-]+)?#(?P<number>\d+)\b", re.IGNORECASE | re.MULTILINE
)
_REVERTS_SHA = re.compile(r"this reverts commit (?P<sha>[0-9a-f]{7,40})\b", re.IGNORECASE)
_FIX_TITLE = re.compile(
    r"^\s*(?:(?:fix|bugfix|hotfix)(?:\([^)]*\))?!?:|(?:fix|fixes|fixed|hotfix|bugfix)\b)", re.IGNORECASE
)
_REVERT_TITLE = re.compile(r"^\s*revert\b", re.IGNORECASE)


def revert_refs(repo: str, texts: Iterable[str]) -> tuple[str, ...]:
    """Every PR and commit the texts (a PR body, commit messages) say they revert, in order, once."""
    found: dict[str, None] = {}
    for text in texts:
        for match in _REVERTS_PR.finditer(text or ""):
            other = match.group("repo")
            prefix = "" if not other or other.lower() == repo.lower() else other.lower()
            found.setdefault(f"{prefix}#{int(match.group('number'))}")
        for match in _REVERTS_SHA.finditer(text or ""):
            found.setdefault(f"sha:{match.group('sha').lower()}")
    return tuple(found)


def joined_refs(refs: Iterable[str]) -> str:
    """The refs as stored (space-separated, whole refs only, within ``REFS_LIMIT``)."""
    kept: list[str] = []
    for ref in refs:
        if len(" ".join([*kept, ref])) > REFS_LIMIT:
            break
        kept.append(ref)
    return " ".join(kept)


def names_commit(ref: str, sha: str | None) -> bool:
    if not sha or not ref.startswith("sha:"):
        return False
    named = ref[4:]
    return len(named) >= MIN_SHA and sha.lower().startswith(named)


def is_fix(title: str, labels: Iterable[str] = ()) -> bool:
    if _REVERT_TITLE.match(title or ""):
        return False
    if _FIX_TITLE.match(title or ""):
        return True
    return any(re.sub(r"[\s_]+", "-", label.strip().lower()) in FIX_LABELS for label in labels)
