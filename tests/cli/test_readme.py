"""The README tells a newcomer the truth: every /tokens subcommand, every CLI command, every
setting and every source it names exists, and everything that exists is named.

Each check is a function of the README's text, so the same check is shown to catch a README that
is wrong (the ``..._catch_...`` test) as well as to pass on the real one."""

from __future__ import annotations

import re
from pathlib import Path

import typer
import yaml
from pydantic import AliasChoices

from bot.cli import app
from bot.services.commands import SUBCOMMANDS
from bot.settings import Settings
from bot.sources.registry import known_sources

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = "\n".join(path.read_text() for path in sorted((ROOT / "docs").rglob("*.md")))
#: Sources that are not connectors in the registry: the OTLP intake, one per agent.
INTAKE_SOURCES = {"otel_claude_code", "otel_codex"}
ENV_NAME = re.compile(
    r"\b(?:TOKENWISE|SLACK|OPENAI|ANTHROPIC|CURSOR|GITHUB|OPENROUTER|WINDSURF|CODEX|COPILOT)_[A-Z0-9_]*[A-Z0-9]\b"
    r"|\bDATABASE_URL\b|\bPORT\b"
)
WILDCARD = re.compile(r"`([A-Z][A-Z0-9_]*_)\*`")
#: Names shaped like settings that are not ours: the test suite's, and the developer's shell
#: variable that the Codex CLI's config reads the ingest token from (docs/sources/otel.md).
NOT_SETTINGS = {"TEST_DATABASE_URL", "TOKENWISE_OTEL_TOKEN"}


def setting_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names |= set(alias.choices) if isinstance(alias, AliasChoices) else {alias} if alias else set()
    return names


def cli_commands() -> set[str]:
    """Every leaf command of the CLI, as typed: ``sync``, ``otel token create``, ..."""
    found = set()

    def walk(command, path: tuple[str, ...]) -> None:
        if getattr(command, "commands", None):  # a group (typer's own click: no click.Group)
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found.add(" ".join(path))

    walk(typer.main.get_command(app), ())
    return found


def missing_subcommands(text: str) -> set[str]:
    return {name for name in SUBCOMMANDS if f"/tokens {name}" not in text}


def missing_cli_commands(text: str) -> set[str]:
    def named(command: str) -> bool:
        *group, last = command.split()
        # `tokenwise otel token create|rotate` names both leaves of a group.
        return f"tokenwise {command}" in text or re.search(
            rf"tokenwise {' '.join(group)} [\w|]*\b{last}\b", text.replace("\\|", "|")
        )

    return {command for command in cli_commands() if not named(command)}


def unknown_settings(text: str) -> set[str]:
    """Names the text gives as settings that bot/settings.py does not read."""
    return set(ENV_NAME.findall(text)) - setting_names() - NOT_SETTINGS


def unnamed_settings(text: str) -> set[str]:
    """Settings the README does not name, literally or as ``PREFIX_*`` whose every member a docs
    page names."""
    named = set(ENV_NAME.findall(text))
    prefixes = WILDCARD.findall(text)
    documented = set(ENV_NAME.findall(DOCS))
    return {
        name
        for name in setting_names() - named
        if not any(name.startswith(prefix) and name in documented for prefix in prefixes)
    }


def source_rows(text: str) -> dict[str, str]:
    """Source name -> its row in the README's Sources table."""
    table = text.split("| source | keys |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        for name in re.findall(r"`(\w+)`", line.split("|")[1]):
            rows[name] = line
    return rows


def missing_sources(text: str) -> set[str]:
    return {*known_sources(), *INTAKE_SOURCES} - set(source_rows(text))


def broken_links(text: str) -> set[str]:
    targets = re.findall(r"\]\(([^)#:]+)\)", text) + re.findall(
        r"`((?:docs|tests|bot)/[\w./-]+\.(?:md|py))`", text
    )
    return {target for target in targets if not (ROOT / target).exists()}


def uncited_tests(text: str) -> set[str]:
    """``test_…`` names (test functions or test modules) the text cites that tests/ does not have."""
    modules = {path.stem for path in (ROOT / "tests").rglob("test_*.py")}
    code = "\n".join(path.read_text() for path in (ROOT / "tests").rglob("*.py"))
    return {
        name
        for name in set(re.findall(r"\b(test_\w+)", text))
        if f"def {name.rstrip('_')}" not in code and not any(m.startswith(name.rstrip("_")) for m in modules)
    }


def test_every_test_the_docs_cite_exists():
    """docs/reliability.md and the others name the test behind each claim: it must still be there."""
    assert uncited_tests(README + DOCS) == set()
    assert uncited_tests("`test_a_fault_nobody_tests`") == {"test_a_fault_nobody_tests"}


def test_every_subcommand_is_in_the_command_list():
    assert missing_subcommands(README) == set()


def test_every_cli_command_is_named():
    assert {"sync", "run", "scheduler", "otel token create"} <= cli_commands()
    assert missing_cli_commands(README) == set()


def test_every_setting_named_exists_and_every_setting_is_named():
    assert unknown_settings(README) == set()
    assert unknown_settings(DOCS) == set()
    assert unnamed_settings(README) == set()


def test_every_source_has_a_row_with_its_docs_page_and_key():
    rows = source_rows(README)
    assert missing_sources(README) == set()
    for name in {*known_sources(), *INTAKE_SOURCES} - {"demo"}:
        page = "otel" if name in INTAKE_SOURCES else name
        assert f"(docs/sources/{page}.md)" in rows[name], name
        assert (ROOT / "docs" / "sources" / f"{page}.md").exists(), name
    assert "CODEX_ANALYTICS_KEY" in rows["codex"] and "CODEX_WORKSPACE_ID" in rows["codex"]
    assert "TOKENWISE_DEMO=1" in rows["demo"]


def test_every_path_the_readme_points_to_exists():
    assert broken_links(README) == set()


def test_the_scopes_the_readme_lists_are_the_manifests():
    listed = README.split("exactly the bot scopes the code uses", 1)[1].split(". When", 1)[0]
    for name in ("manifest.yml", "manifest.dev.yml"):
        manifest = yaml.safe_load((ROOT / name).read_text())
        assert set(re.findall(r"`([a-z.]+:[a-z.]+|commands)`", listed)) == set(
            manifest["oauth_config"]["scopes"]["bot"]
        ), name


def test_the_quick_start_is_two_commands():
    quick = README.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    assert quick.splitlines() == ["uv run tokenwise demo", "uv run pytest"]


def test_the_checks_catch_a_readme_that_is_wrong():
    wrong = (
        README.replace("/tokens seats", "/tokens chairs")
        .replace("tokenwise scheduler", "tokenwise jobs")
        .replace("`TOKENWISE_BACKFILL_DAYS`", "`TOKENWISE_BACKFILL`")
        .replace("| `windsurf` |", "| `surf` |")
        .replace("(docs/sources/codex.md)", "(docs/sources/codex-cli.md)")
    )
    assert missing_subcommands(wrong) == {"seats"}
    assert missing_cli_commands(wrong) == {"scheduler"}
    assert unknown_settings(wrong) == {"TOKENWISE_BACKFILL"}
    assert unnamed_settings(wrong) == {"TOKENWISE_BACKFILL_DAYS"}
    assert missing_sources(wrong) == {"windsurf"}
    assert broken_links(wrong) == {"docs/sources/codex-cli.md"}
