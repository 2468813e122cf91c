"""``twin`` as a user runs it: a subprocess, its exit code, what it leaves behind."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import MosquittoServer, env_with_venv

pytestmark = pytest.mark.e2e

TWIN = [sys.executable, "-m", "twin.cli"]


def _lines(data_dir: Path, measurement: str) -> list[str]:
    return [ln for f in sorted((data_dir / "lines").glob("*.lp"))
            for ln in f.read_text().splitlines() if ln.startswith(measurement + ",")]


def _plant_alarms(data_dir: Path) -> list[str]:
    """Alarms about the plant; not the pipeline's own (telemetry_gaps, overload: asset service/...), which a
    loaded machine on a stock-limits broker can rightly raise when the broker drops messages."""
    return [ln for ln in _lines(data_dir, "alarm") if ",asset=service/" not in ln]


def test_twin_up_on_the_embedded_default_ends_by_itself(tmp_path: Path) -> None:
    r = subprocess.run([*TWIN, "up", "--duration", "20", "--data-dir", str(tmp_path)], env=env_with_venv(),
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Embedded broker" in r.stdout and "every 5 s" in r.stdout
    states = _lines(tmp_path, "plant_state")
    assert len(states) >= 10
    assert len(_lines(tmp_path, "hall_state")) == 8 * len(states)
    last = states[-1]
    assert "gpus_total=100224i" in last
    gpus = int(re.search(r"gpus_reporting=(\d+)i", last).group(1))  # type: ignore[union-attr]
    assert gpus == 100224  # every rack reported within the 5 s spread
    assert "msgs_rejected=0i" in last
    assert "Traceback" not in r.stderr
    # normal operation: no plant alarm (there were bursts of energy_residual at job steps and at the stop)
    assert _plant_alarms(tmp_path) == []


def test_twin_up_against_mosquitto_runs_the_full_plant_at_1hz(mosquitto: MosquittoServer, tmp_path: Path) -> None:
    r = subprocess.run([*TWIN, "up", "--broker", mosquitto.url, "--duration", "15", "--data-dir", str(tmp_path)],
                       env=env_with_venv(), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    states = _lines(tmp_path, "plant_state")
    assert len(states) >= 8
    # every asset reports every second: from the second state on, all GPUs are in
    full = [s for s in states[1:] if "gpus_reporting=100224i" in s]
    assert len(full) >= len(states) - 3, states
    msgs = [int(re.search(r"msgs_in=(\d+)i", s).group(1)) for s in states]  # type: ignore[union-attr]
    per_tick = [b - a for a, b in itertools.pairwise(msgs)]
    whole_plant = 1392 + 232 + 2 + 2 + 1  # every asset once per second
    assert per_tick.count(whole_plant) >= len(per_tick) - 3, per_tick


def test_twin_up_a_second_time_on_the_same_data_dir_takes_the_new_run_at_once(mosquitto: MosquittoServer,
                                                                            tmp_path: Path) -> None:
    """The snapshot of the first run is restored; the new simulator numbers its streams from 0 again, at newer
    event times: a restarted publisher, not 8 s of duplicates (it was: GPUs 0 of 100,224, frozen power)."""
    argv = [*TWIN, "up", "--broker", mosquitto.url, "--duration", "8", "--data-dir", str(tmp_path)]
    for run in (1, 2):
        r = subprocess.run(argv, env=env_with_venv(), capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert r.returncode == 0, (run, r.stdout + r.stderr)
        if run == 1:
            first = len(_lines(tmp_path, "plant_state"))
    second = _lines(tmp_path, "plant_state")[first:]
    assert len(second) >= 4, second
    assert "gpus_reporting=100224i" in second[-2]
    dups = [int(re.search(r"msgs_duplicate=(\d+)i", s).group(1)) for s in second]  # type: ignore[union-attr]
    assert dups[-1] == dups[0], dups  # the second run's telemetry is all new
    assert _plant_alarms(tmp_path) == []  # nor after the warm restart (there were hundreds)


@pytest.mark.parametrize(("args", "expect"), [
    (["up", "--duration", "-3"], "--duration: '-3' is not a duration like 90s, 10m, 1h30m or 14d"),
    (["up", "--nope"], "unrecognized arguments: --nope"),
    (["run", "state"], "no broker: pass --broker"),
    (["run", "state", "--broker", "http://x"], "broker URL must look like mqtt://host:port"),
    (["up", "--plant", "phase9"], "plant file"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_stop_with_one_line(args: list[str], expect: str) -> None:
    r = subprocess.run([*TWIN, *args], env=env_with_venv(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], r.stderr


def test_asyncapi_prints_the_document() -> None:
    r = subprocess.run([*TWIN, "asyncapi"], env=env_with_venv(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("asyncapi: 3.0.0")


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = env_with_venv() | {"TWIN_TICK_S": "-1"}
    r = subprocess.run([*TWIN, "run", "state", "--broker", "mqtt://127.0.0.1:1"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "TWIN_TICK_S" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_json_of_plant_state_lines_parse_back(tmp_path: Path) -> None:
    """The data-dir files are plain line protocol: measurement,tags fields timestamp."""
    r = subprocess.run([*TWIN, "up", "--duration", "6", "--data-dir", str(tmp_path)], env=env_with_venv(),
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for ln in _lines(tmp_path, "plant_state"):
        head, fields, ts = ln.split(" ")
        assert head == "plant_state,site=narvik" and int(ts) > 1.7e18
        kv = dict(f.split("=", 1) for f in fields.split(","))
        assert json.loads(kv["contract_mw"]) == 230.0
