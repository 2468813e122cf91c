"""The docs site builds without a warning (a broken link or anchor fails), the README stays short, and the
repository refers to nothing outside itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# spelt in two parts so that this file does not name them itself
OUTSIDE = ("shared" + "/design", ".." + "/shared")


def _mkdocs() -> list[str]:
    exe = Path(sys.executable).with_name("mkdocs")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("mkdocs")
    if found is None:
        pytest.fail("mkdocs is not installed: run scripts/test (it installs the `docs` extra: mkdocs-material)")
    return [found]


def test_site_builds_strict(tmp_path: Path) -> None:
    out = subprocess.run(
        [*_mkdocs(), "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert out.returncode == 0, f"mkdocs build --strict failed:\n{out.stdout}\n{out.stderr}"
    assert (tmp_path / "index.html").is_file()
    for page in ("contract", "benchmarks", "delivery", "plant-and-physics", "forecasting"):
        assert (tmp_path / page / "index.html").is_file(), page


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move the detail into docs/"


def test_no_tracked_file_refers_outside_the_repo() -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    offenders = []
    for name in filter(None, files.decode().split("\0")):
        path = ROOT / name
        if not path.is_file() or path.is_symlink():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        offenders += [f"{name}: {s}" for s in OUTSIDE if s in text]
    assert not offenders, "files refer to paths outside the repo:\n" + "\n".join(offenders)
