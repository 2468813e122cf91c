"""A broker that cannot be reached: one-shot commands stop with one line (exit 2); services keep trying, say
so plainly, honour --duration and stop cleanly on SIGINT/SIGTERM while still connecting."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.servers import env_with_venv, free_port

TWIN = [sys.executable, "-m", "twin.cli"]
HINT = "is it running? --broker or TWIN_BROKER"
DEPLOY = REPO / "deploy" / "adapters"


def _refused() -> str:
    return f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize(("argv", "code", "prefix"), [
    (["up", "--no-view", "--duration", "30"], 2, "twin: error: "),
    (["replay", "one.jsonl"], 2, "twin: error: "),
    (["health", "state"], 1, "twin health: state: "),  # 1: what a container healthcheck reads as unhealthy
], ids=["up", "replay", "health"])
def test_a_one_shot_command_stops_with_one_line(argv: list[str], code: int, prefix: str, tmp_path: Path) -> None:
    url = _refused()
    (tmp_path / "one.jsonl").write_text('{"t": 1795300466.0, "topic": "stargate/narvik/ambient/wx1", "qos": 1, '
                                        '"retain": false, "payload": {"ts": 1795300466.0}}\n')
    r = subprocess.run([*TWIN, *argv, "--broker", url], env=env_with_venv(), cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    line = _one_line(r.stderr)
    assert r.returncode == code, r.stderr
    assert line.startswith(prefix + f"cannot reach the broker at {url}"), line
    assert f"connection refused; {HINT}" in line, line


def test_a_name_that_does_not_resolve_is_said_so(tmp_path: Path) -> None:
    r = subprocess.run([*TWIN, "up", "--no-view", "--duration", "30", "--broker", "mqtt://nohost.invalid:1883"],
                       env=env_with_venv(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    line = _one_line(r.stderr)
    assert r.returncode == 2 and "cannot reach the broker at mqtt://nohost.invalid:1883: no such host" in line, line


SERVICES = {
    "run-state": ["run", "state"],
    "run-sink": ["run", "sink"],
    "run-forecast": ["run", "forecast"],
    "run-aggregate": ["run", "aggregate"],
    "sim": ["sim"],
    "record": ["record", "--out", "rec.jsonl"],
    "adapter": ["adapter", "modbus", "--config", str(DEPLOY / "modbus.toml")],
}


@pytest.mark.parametrize("name", ["run-state", "record", "adapter"])
def test_a_service_keeps_trying_then_honours_its_duration(name: str, tmp_path: Path) -> None:
    url = _refused()
    r = subprocess.run([*TWIN, *SERVICES[name], "--broker", url, "--duration", "4"],
                       env=env_with_venv() | {"TWIN_DATA_DIR": str(tmp_path)}, cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "not connected yet" in r.stderr and f"connection refused; {HINT}" in r.stderr, r.stderr
    assert " lost " not in r.stderr and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"twin: error: cannot reach the broker at {url} within 4 s: connection refused"), last
    assert not (tmp_path / "rec.jsonl").exists()


def _stderr_until(proc: subprocess.Popen[bytes], text: str, timeout: float = 120.0) -> bytes:
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, seen
        if select.select([proc.stderr.fileno()], [], [], 1.0)[0]:
            seen += os.read(proc.stderr.fileno(), 65536)
    return seen


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("name", list(SERVICES))
def test_a_signal_while_connecting_stops_a_service_cleanly(name: str, sig: int, tmp_path: Path) -> None:
    """Exit 0 is the clean path: the bus gave up waiting on the signal. A service that only ended because the
    runner cancelled it after its 10 s grace would exit 130."""
    argv = [*TWIN, *SERVICES[name], "--broker", _refused()]
    proc = subprocess.Popen(argv, env=env_with_venv() | {"TWIN_DATA_DIR": str(tmp_path)}, cwd=tmp_path,
                            stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    try:
        seen = _stderr_until(proc, "not connected yet")
        proc.send_signal(sig)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = (seen + rest).decode()
    assert proc.returncode == 0, err
    assert "stopped before the broker" in err and "Traceback" not in err, err
