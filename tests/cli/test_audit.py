"""The dependency audit in .ci/run can fail: a known-vulnerable pin is caught even where
pip-audit's advisory service is unreachable."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)


def test_known_vulnerable_pins_are_found_offline():
    advisories = audit.offline_advisories()
    found = audit.vulnerable({"urllib3": "1.24.1", "jinja2": "2.10", "httpx": "0.28.1"}, advisories)
    assert [line.split("==")[0] for line in found] == ["jinja2", "urllib3"]


def test_the_locked_pins_are_clean(tmp_path):
    requirements = tmp_path / "requirements.txt"
    exported = subprocess.run(
        ["uv", "export", "--frozen", "--no-hashes", "--no-emit-project", "--format", "requirements-txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requirements.write_text(exported)
    pins = audit.locked_pins(requirements)
    assert pins["slack-bolt"] and pins["sqlalchemy"]
    assert audit.vulnerable(pins, audit.offline_advisories()) == []


def test_a_vulnerable_pin_fails_the_audit(tmp_path, capsys):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("urllib3==1.24.1\nhttpx==0.28.1\n")
    assert audit.main(requirements) == 1
    assert "urllib3==1.24.1" in capsys.readouterr().out
