"""requirements.txt (the lock a Procfile buildpack installs, and CI installs first) keeps up with pyproject.toml.

Every dependency pyproject.toml declares, with the extras it asks for, must be pinned
in the lock at a version its range accepts, and so must each pinned package's own
dependencies: a dependency added to pyproject.toml and not to the lock fails here,
not on the platform. ``.python-version`` (what buildpacks install) is the CI's Python.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def read_lock(path: Path) -> dict[str, Version]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: {line!r} is not an exact pin (name==version)"
        pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def declared(pyproject: Path) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"]]


def requirements_of(name: str, extras: set[str]) -> list[Requirement]:
    """What the installed distribution ``name`` needs here, with ``extras``."""
    needed = []
    for text in metadata.distribution(name).requires or []:
        requirement = Requirement(text)
        environments = [{"extra": extra} for extra in extras or {""}]
        if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
            requirement.marker = None  # decided here, for this environment and these extras
            needed.append(requirement)
    return needed


def lock_problems(pyproject: Path, lock: Path) -> list[str]:
    """Why the lock does not install what pyproject.toml declares; [] when it does."""
    pins = read_lock(lock)
    problems = []
    wanted = [(requirement, "pyproject.toml") for requirement in declared(pyproject)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while wanted:
        requirement, needed_by = wanted.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} (needed by {needed_by}) is not in {lock.name}")
            continue
        if not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{lock.name} pins {name}=={pins[name]}, outside {requirement} (needed by {needed_by})")
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            wanted += [(sub, name) for sub in requirements_of(name, set(requirement.extras))]
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is pinned but not installed: install {lock.name} to check what it needs")
    return sorted(problems)


def test_the_lock_pins_every_dependency_and_theirs() -> None:
    assert lock_problems(REPO / "pyproject.toml", REPO / "requirements.txt") == []


def test_the_lock_test_fails_when_pyproject_gains_a_dependency(tmp_path: Path) -> None:
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    grown = tmp_path / "pyproject.toml"
    grown.write_text(pyproject.replace("dependencies = [\n", 'dependencies = [\n    "cssselect-not-locked>=1.2",\n', 1))
    assert lock_problems(grown, REPO / "requirements.txt") == [
        "cssselect-not-locked>=1.2 (needed by pyproject.toml) is not in requirements.txt"
    ]


def test_the_lock_test_fails_when_a_pin_leaves_the_declared_range(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    text = (REPO / "requirements.txt").read_text(encoding="utf-8")
    lock.write_text(re.sub(r"(?m)^click==\S+", "click==7.0", text), encoding="utf-8")
    assert lock_problems(REPO / "pyproject.toml", lock) == [
        "requirements.txt pins click==7.0, outside click<9,>=8.1 (needed by pyproject.toml)"
    ]


def test_the_lock_test_follows_extras_and_transitive_dependencies(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    text = (REPO / "requirements.txt").read_text(encoding="utf-8")
    lock.write_text(re.sub(r"(?m)^(h2|mako)==.*$", "", text), encoding="utf-8")
    problems = lock_problems(REPO / "pyproject.toml", lock)
    assert len(problems) == 2, problems
    assert any(problem.startswith("h2") and "needed by httpx" in problem for problem in problems)
    assert any(problem.lower().startswith("mako") and "needed by alembic" in problem for problem in problems)


def test_the_lock_has_nothing_but_exact_pins_and_not_pressbot_itself() -> None:
    # read_lock refuses any line but name==version (an `-e .` or `.` line included).
    assert "pressbot" not in read_lock(REPO / "requirements.txt")


def test_ci_tests_the_locked_versions() -> None:
    installed = {name: Version(metadata.version(name)) for name in read_lock(REPO / "requirements.txt")}
    if sys.prefix == sys.base_prefix:
        pytest.skip("not in a virtual environment: what is installed is not the project's choice")
    assert installed == read_lock(REPO / "requirements.txt")


def test_python_version_is_the_one_ci_runs_and_pyproject_allows() -> None:
    from packaging.specifiers import SpecifierSet

    wanted = (REPO / ".python-version").read_text(encoding="utf-8").strip()
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert re.fullmatch(r"3\.\d+", wanted)
    assert SpecifierSet(project["requires-python"]).contains(f"{wanted}.0")
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == wanted
