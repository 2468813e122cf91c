"""The base install a new user gets (``pip install .``, no extras): every command starts, the README's first
command runs end to end, and a command that needs an extra says which in one line (exit 2)."""

from __future__ import annotations

import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e

COMMANDS = ["up", "run", "sim", "replay", "record", "import", "backtest", "adapter", "health", "asyncapi", "bench"]
RUN = ["state", "sink", "forecast", "aggregate"]
BENCH = ["replay", "ingest", "sink", "dcgm", "sim", "soak", "forecast", "day"]


@pytest.fixture(scope="module")
def base_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("base-venv")
    venv.create(root / "venv", with_pip=True)
    py = root / "venv" / "bin" / "python"
    # a copy of the checkout, so that the build never writes into it (build/, *.egg-info)
    src = root / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "data", "build", "*.egg-info", "__pycache__", ".mypy_cache", ".ruff_cache"))
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(src)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    yield root / "venv" / "bin" / "twin"


def _twin(twin: Path, *args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(twin), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_the_extras_are_really_absent(base_twin: Path) -> None:
    py = base_twin.parent / "python"
    r = subprocess.run([str(py), "-c", "import importlib.util as u; print([m for m in ('prometheus_client', "
                        "'httpx', 'pymodbus', 'asyncua', 'matplotlib', 'pytest') if u.find_spec(m)])"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_every_command_and_subcommand_shows_its_help(base_twin: Path) -> None:
    assert _twin(base_twin, "--help").returncode == 0
    argvs = [[c] for c in COMMANDS] + [["run", r] for r in RUN] + [["bench", b] for b in BENCH]
    failed = {" ".join(a): r.stderr.strip().splitlines()[-1:] for a in argvs
              if (r := _twin(base_twin, *a, "--help")).returncode != 0}
    assert failed == {}


def test_a_command_that_needs_an_extra_says_which_in_one_line(base_twin: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "dcgm.toml"
    cfg.write_text("")
    r = _twin(base_twin, "adapter", "dcgm", "--config", str(cfg))
    assert r.returncode == 2
    assert r.stderr.strip() == ("twin: error: twin adapter dcgm needs the adapters extra (httpx is missing): "
                                "pip install 'stargate-twin[adapters]'")
    r = _twin(base_twin, "bench", "dcgm", "--repeat", "1")
    assert r.returncode == 2 and "needs the adapters extra" in r.stderr and "Traceback" not in r.stderr


def test_twin_up_runs_end_to_end_on_the_base_install(base_twin: Path, tmp_path: Path) -> None:
    r = _twin(base_twin, "up", "--duration", "10", "--no-view", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "final:" in r.stdout and "Traceback" not in r.stderr
    lines = "".join(p.read_text() for p in (tmp_path / "data" / "lines").glob("*.lp"))
    assert lines.count("plant_state,") >= 5  # the sink wrote the PlantStates (files: no InfluxDB here)
