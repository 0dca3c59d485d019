"""Fail when a locked dependency has a known vulnerability.

pip-audit asks its advisory service (PyPI's JSON API or OSV). Where that service cannot be
reached, every package comes back "could not be audited" and pip-audit passes, which would make
this a check that cannot fail; so the pins are then also checked offline against the advisory
database shipped in the `safety-db` package (older, but a floor that does fail on known-bad pins).

Usage: python .ci/audit.py REQUIREMENTS.txt   (exit 1 when a pin is vulnerable)
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name


def locked_pins(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].split(";")[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        exact = [s.version for s in requirement.specifier if s.operator == "=="]
        if exact:
            pins[canonicalize_name(requirement.name)] = exact[0]
    return pins


def offline_advisories() -> dict[str, list[str]]:
    spec = importlib.util.find_spec("safety_db")  # its __init__ is broken: read the data file only
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("audit: the safety-db package is not installed (uv sync installs it)")
    data = json.loads((Path(spec.submodule_search_locations[0]) / "insecure.json").read_text())
    return {canonicalize_name(name): ranges for name, ranges in data.items() if not name.startswith("$")}


def vulnerable(pins: dict[str, str], advisories: dict[str, list[str]]) -> list[str]:
    found = []
    for name, version in sorted(pins.items()):
        for text in advisories.get(name, []):
            try:
                ranges = SpecifierSet(text)
            except InvalidSpecifier:
                continue
            if ranges.contains(version, prereleases=True):
                found.append(f"{name}=={version} is in a known-vulnerable range ({text})")
                break
    return found


def main(requirements: Path) -> int:
    online = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "--progress-spinner",
            "off",
            "--disable-pip",
            "--no-deps",
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
    )
    output = online.stdout + online.stderr
    unreachable = "could not be audited" in output and "Found" not in online.stdout
    if online.returncode != 0 and not unreachable:
        print(output.strip()[-3000:])
        return 1
    problems = vulnerable(locked_pins(requirements), offline_advisories())
    source = "offline advisory database (pip-audit's service unreachable)" if unreachable else "offline floor"
    if problems:
        print(f"audit: {len(problems)} vulnerable pin(s) per the {source}:")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    print(
        f"audit: {len(locked_pins(requirements))} pins checked; pip-audit "
        f"{'unreachable' if unreachable else 'clean'}; offline database clean"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
