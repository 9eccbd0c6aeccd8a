"""requirements.lock is what every install uses, and it still satisfies pyproject.toml."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)")


def pins() -> dict[str, str]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return {canonicalize_name(m.group(1)): m.group(2) for m in map(PIN.match, lines) if m}


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["test"],
        *project["dependency-groups"]["build"],
    ]
    return [Requirement(name) for name in names]


def test_lock_pins_every_declared_dependency_within_its_range():
    """Each runtime, test and build requirement of pyproject.toml has a pin in the lock that its
    range allows (a range changed without `scripts/lock` fails here)."""
    locked = pins()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run scripts/lock"
        assert requirement.specifier.contains(locked[name]), f"{name}=={locked[name]} is outside {requirement}"


def test_lock_pins_the_extras_of_declared_dependencies():
    """redis[hiredis]: the extra's own package is pinned too."""
    assert "hiredis" in pins()


def test_every_install_in_the_scripts_and_dockerfile_is_pinned_by_the_lock():
    """scripts/lib.sh and the Dockerfile install packages only with the lock as constraints (the
    wrapper that passes its arguments on and the pinned uv aside)."""
    for path in (ROOT / "scripts" / "lib.sh", ROOT / "Dockerfile"):
        lines = path.read_text().splitlines()
        installs = [line for line in lines if re.search(r"pip(_install| install) ", line) and not line.startswith("#")]
        package_installs = [line for line in installs if '"$@"' not in line and "uv==" not in line]
        assert package_installs, path
        for line in package_installs:
            assert re.search(r"-c (\"\$LOCK\"|requirements\.lock)", line), f"{path.name}: {line.strip()}"
