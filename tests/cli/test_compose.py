"""compose.yaml hands every container the whole configuration, not a hand-picked few settings."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_every_tokenwise_container_reads_the_env_file_and_the_compose_database():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    ours = {name: service for name, service in services.items() if service.get("build") == "."}
    assert {"migrate", "scheduler", "web-1", "web-2"} <= set(ours)
    for name, service in ours.items():
        assert [entry["path"] for entry in service["env_file"]] == [".env"], name
        # Only what compose itself decides is listed; every other setting comes from .env.
        assert set(service["environment"]) == {"DATABASE_URL"}, name
        assert "@postgres:5432/" in service["environment"]["DATABASE_URL"], name


def test_the_env_file_stays_out_of_git_and_the_image():
    for ignore in (".gitignore", ".dockerignore"):
        assert ".env" in (ROOT / ignore).read_text().split(), ignore
