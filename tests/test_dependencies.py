"""What is installed satisfies pyproject.toml, whose floors sit above known advisories."""

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PROJECT = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
REQUIRED = [Requirement(line) for line in PROJECT["dependencies"]]
OPTIONAL = {
    extra: [Requirement(line) for line in lines]
    for extra, lines in PROJECT["optional-dependencies"].items()
}

# The first release with the fix for each advisory a floor must stay above. Lowering a
# floor in pyproject.toml below one of these fails here.
ADVISORY_FIXES = {
    "django": "5.2.19",  # the latest 5.2 security release when the floor was last raised
    "nh3": "0.3.7",
    "uvicorn": "0.46",
    "daphne": "4.2.2",
    "h11": "0.16",  # CVE-2025-43859
    "sqlparse": "0.5",  # CVE-2024-4340
    "twisted": "24.7",  # CVE-2024-41671, CVE-2024-41810
    "markdown-it-py": "2.2",  # CVE-2023-26302, CVE-2023-26303
    "redis": "4.5.4",  # CVE-2023-28858, CVE-2023-28859
}


def stated() -> dict[str, Requirement]:
    everything = REQUIRED + [req for reqs in OPTIONAL.values() for req in reqs]
    return {canonicalize_name(req.name): req for req in everything}


def floor(req: Requirement) -> Version | None:
    floors = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    return max(floors, default=None)


def installed(req: Requirement) -> str | None:
    try:
        return metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize("req", REQUIRED, ids=str)
def test_each_dependency_is_installed_within_its_range(req):
    version = installed(req)
    assert version is not None, f"{req.name} is not installed"
    assert req.specifier.contains(version, prereleases=True), f"{req.name} {version} vs {req}"


@pytest.mark.parametrize("req", [req for reqs in OPTIONAL.values() for req in reqs], ids=str)
def test_each_installed_extra_is_within_its_range(req):
    version = installed(req)
    if version is None:
        pytest.skip(f"{req.name} is not installed (an extra this environment did not ask for)")
    assert req.specifier.contains(version, prereleases=True), f"{req.name} {version} vs {req}"


def test_every_dependency_states_a_minimum_version():
    assert [str(req) for req in stated().values() if floor(req) is None] == []


@pytest.mark.parametrize(("name", "fixed"), ADVISORY_FIXES.items())
def test_floors_stay_above_known_advisories(name, fixed):
    req = stated().get(name)
    assert req is not None, f"pyproject.toml no longer states {name}"
    assert floor(req) >= Version(fixed), f"{req} allows versions before the fix in {fixed}"
