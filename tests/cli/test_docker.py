"""The Docker image, checked without a Docker engine: the Dockerfile's structure, and its build
steps replayed on the build context (what `docker build .` would copy, minus .dockerignore)."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    return any(
        fnmatch.fnmatch(relative, p)
        or fnmatch.fnmatch(parts[0], p)
        or any(fnmatch.fnmatch(x, p.strip("*/")) for x in parts)
        for p in patterns
    )


def test_dockerfile_is_multi_stage_locked_non_root_and_healthchecked():
    steps = _instructions()
    words = [w for w, _ in steps]
    assert words.count("FROM") == 2, "multi-stage: a build stage and a slim runtime stage"
    copies = [rest for w, rest in steps if w == "COPY"]
    lock_copy = next(i for i, c in enumerate(copies) if "uv.lock" in c)
    code_copy = next(i for i, c in enumerate(copies) if c.startswith("bot"))
    assert lock_copy < code_copy, "dependencies from uv.lock are installed in a layer before the code"
    assert any("uv sync --frozen --no-dev --no-install-project" in rest for w, rest in steps if w == "RUN")
    user = [rest for w, rest in steps if w == "USER"]
    assert user and user[-1] not in ("root", "0")
    health = next(rest for w, rest in steps if w == "HEALTHCHECK")
    assert "/healthz" in health
    assert [rest for w, rest in steps if w == "CMD"][-1] == '["tokenwise", "run"]'


def test_build_context_holds_what_the_dockerfile_copies():
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip()]
    for word, rest in _instructions():
        if word != "COPY" or rest.startswith("--from"):
            continue
        *sources, _destination = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), f"{source} is copied but missing"
            assert not _ignored(source, patterns), f"{source} is copied but .dockerignore drops it"
    assert _ignored("tests/cli/test_docker.py", patterns) and _ignored(".venv/bin/python", patterns)


def test_build_steps_install_a_working_tokenwise(tmp_path):
    """Replays the build stage: locked dependencies without dev tools, then the project."""
    context = tmp_path / "app"
    context.mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, context / name)
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(context / ".venv"), "UV_LINK_MODE": "copy"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        ["uv", "sync", "--frozen", "--no-dev", "--no-install-project", "-q"], cwd=context, env=env, check=True
    )
    shutil.copytree(ROOT / "bot", context / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["uv", "sync", "--frozen", "--no-dev", "-q"], cwd=context, env=env, check=True)
    result = subprocess.run(
        [str(context / ".venv" / "bin" / "tokenwise"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "sync" in result.stdout and "run" in result.stdout
    assert not (context / ".venv" / "bin" / "pytest").exists(), "dev tools stay out of the image"


def test_compose_runs_two_web_replicas_a_scheduler_and_postgres():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    web = [s for s in services.values() if s.get("command") == ["tokenwise", "run", "--no-scheduler"]]
    assert len(web) == 2 and services["scheduler"]["command"] == ["tokenwise", "scheduler"]
    assert services["postgres"]["image"].startswith("postgres")
    assert all(s["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://") for s in web)
