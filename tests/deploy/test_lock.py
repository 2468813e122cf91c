"""deploy/requirements.lock, which the Dockerfile installs from with --require-hashes, is current: scripts/lock
run again (uv keeps the pins already in the file, as pip-compile does) gives the same file, and every requirement
pyproject.toml makes of the image's packages is met by its pin."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "deploy" / "requirements.lock"


def _pins(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and line[0] not in " #":
            req = Requirement(line.rstrip(" \\"))
            out.setdefault(canonicalize_name(req.name), []).append(str(req.specifier))
    return out


def test_every_locked_package_is_pinned_with_hashes() -> None:
    text = LOCK.read_text()
    entries = [ln for ln in text.splitlines() if ln and ln[0] not in " #"]
    assert len(entries) >= 40
    assert all("==" in e for e in entries), [e for e in entries if "==" not in e]
    assert text.count("--hash=sha256:") >= len(entries)


def test_pyproject_requirements_are_met_by_the_lock() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["adapters"]]
    pins = _pins(LOCK.read_text())
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in deploy/requirements.lock: run scripts/lock"
        for spec in pins[name]:
            assert req.specifier.contains(spec.removeprefix("=="), prereleases=True), (
                f"{req} is not met by the lock's {req.name}{spec}: run scripts/lock")


def _relock(work: Path, pyproject: str) -> str:
    """scripts/lock run in a copy of the repo's lock inputs, ``pyproject`` as pyproject.toml; the lock it writes."""
    uv = Path(sys.executable).parent / "uv"
    found = uv if uv.exists() else shutil.which("uv")
    assert found, "uv not found: run scripts/venv dev (the README's test command does)"
    for sub in ("deploy", "scripts", ".venv/bin"):
        (work / sub).mkdir(parents=True)
    (work / "pyproject.toml").write_text(pyproject)
    shutil.copy2(REPO / "README.md", work / "README.md")
    shutil.copy2(LOCK, work / "deploy" / "requirements.lock")
    shutil.copy2(REPO / "scripts" / "lock", work / "scripts" / "lock")
    (work / ".venv" / "bin" / "uv").symlink_to(Path(found))
    r = subprocess.run(["bash", "scripts/lock"], cwd=work, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    return (work / "deploy" / "requirements.lock").read_text()


def test_scripts_lock_run_again_changes_nothing(tmp_path: Path) -> None:
    """The lock regenerated from pyproject.toml with its own pins kept (uv asks PyPI for the metadata)."""
    again = _relock(tmp_path, (REPO / "pyproject.toml").read_text())
    assert again == LOCK.read_text(), (
        "deploy/requirements.lock is not what scripts/lock makes of pyproject.toml: run scripts/lock and commit it")


def test_a_new_dependency_makes_the_lock_stale(tmp_path: Path) -> None:
    text = (REPO / "pyproject.toml").read_text()
    changed = text.replace('dependencies = [\n', 'dependencies = [\n    "tomli-w>=1",\n', 1)
    assert changed != text
    assert _relock(tmp_path, changed) != LOCK.read_text()
