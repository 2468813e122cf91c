"""``twin sim`` as a user runs it: live to a real Mosquitto, and to a telemetry log (deterministic)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from adapters.logs.telemetry_log import iter_log
from tests.conftest import collect
from tests.servers import MosquittoServer, env_with_venv
from twin.live.decode import Decoded, Decoder
from twin.plant import Plant

pytestmark = pytest.mark.integration

TWIN = [sys.executable, "-m", "twin.cli"]
PER_STEP = 1392 + 232 + 2 + 2 + 1  # phase 1: racks, CDUs, feeders, exchangers, weather station


def twin(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TWIN, *args], capture_output=True, text=True, timeout=300, env=env_with_venv(),
                          cwd=cwd)


def test_log_of_a_scenario_is_the_contract_format_and_byte_identical_per_seed(tmp_path: Path,
                                                                              phase1: Plant) -> None:
    args = ["sim", "--scenario", "pump-failure", "--start", "2026-01-15T02:00:00Z", "--duration", "40s",
            "--step", "10s"]
    a, b, c = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz", tmp_path / "c.jsonl.gz"
    for out, extra in ((a, []), (b, []), (c, ["--seed", "7"])):
        r = twin(*args, *extra, "--out", str(out), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    lines = list(iter_log(a))
    assert len(lines) == 4 * PER_STEP
    dec = Decoder(phase1)
    ts = sorted({line["t"] for line in lines})
    assert ts == [1768442400.0 + 10 * k for k in range(4)]
    for line in lines[:: 97]:
        assert line["qos"] == 1 and line["retain"] is False
        assert line["payload"]["ts"] == line["t"]
        assert isinstance(dec.decode(line["topic"], orjson.dumps(line["payload"])), Decoded)
    # a plain .jsonl holds the same lines
    plain = tmp_path / "a.jsonl"
    assert twin(*args, "--out", str(plain), cwd=tmp_path).returncode == 0
    assert list(iter_log(plain)) == lines


def test_bad_scenario_input_is_one_line(tmp_path: Path) -> None:
    r = twin("sim", "--scenario", "pump-failure", "--plant", "tests/data/small.toml", "--out", "x.jsonl",
             cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "unknown CDU 'h3-cdu08'" in r.stderr
    r = twin("sim", "--scenario", "nowhere", "--out", "x.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cold-snap" in r.stderr
    r = twin("sim", "--duration", "2 weeks", "--out", "x.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and "not a duration" in r.stderr
    r = twin("sim", "--scenario", "phase1", cwd=tmp_path)  # live needs a broker
    assert r.returncode == 2 and "no broker" in r.stderr


@pytest.mark.parametrize("speed", ["1", "4"])  # 1: the asyncio Bus; faster: the lean publisher
def test_live_run_publishes_the_full_plant_every_step(own_mosquitto: MosquittoServer, phase1: Plant,
                                                      tmp_path: Path, speed: str) -> None:
    async def scenario() -> list[tuple[str, bytes]]:
        want = 3 * PER_STEP
        def enough(m: list[tuple[str, bytes]]) -> bool:
            return len(m) >= want and sum("/twin/" not in t for t, _ in m) >= want

        got = asyncio.create_task(collect(own_mosquitto.port, "stargate/narvik/#", enough, timeout=90))
        await asyncio.sleep(1.0)
        proc = await asyncio.create_subprocess_exec(
            *TWIN, "sim", "--scenario", "phase1", "--broker", own_mosquitto.url, "--duration", "3",
            "--speed", speed, cwd=tmp_path, env=env_with_venv(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        return await got

    got = asyncio.run(scenario())
    msgs = [(t, p) for t, p in got if "/twin/" not in t]  # the bus' health messages are not telemetry
    assert len(msgs) >= 3 * PER_STEP
    dec = Decoder(phase1)
    bad = [(t, dec.decode(t, p)) for t, p in msgs if not isinstance(dec.decode(t, p), Decoded)]
    assert not bad, bad[:3]
    racks = {t for t, _ in msgs if "/gpu/" in t}
    assert len(racks) == phase1.n_racks
    seqs: dict[str, list[int]] = {}
    for t, p in msgs:
        seqs.setdefault(t, []).append(orjson.loads(p)["seq"])
    assert all(s == list(range(len(s))) for s in seqs.values())  # in order, none lost, none repeated


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait_for_growth(path: Path, proc: subprocess.Popen[str]) -> None:
    for _ in range(600):
        if path.exists() and path.stat().st_size > 200_000:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the log did not grow within 60 s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_log_run_leaves_a_complete_log_and_no_workers(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "stopped.jsonl.gz"
    proc = subprocess.Popen([*TWIN, "sim", "--scenario", "phase1", "--duration", "2d", "--step", "10s",
                             "--jobs", "2", "--out", str(out)], stderr=subprocess.PIPE, text=True,
                            env=env_with_venv(), cwd=tmp_path)
    _wait_for_growth(out, proc)
    workers = [c for c in _children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
    assert workers, "expected worker processes"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped by a signal" in err and "complete to there" in err
    n = int(err.split(" holds ")[1].split(" messages")[0].replace(",", ""))
    lines = list(iter_log(out))  # raises on a truncated gzip stream or a cut line
    assert len(lines) == n > 0 and n % PER_STEP == 0  # whole steps only
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_workers_die_with_a_killed_log_run(tmp_path: Path) -> None:
    out = tmp_path / "killed.jsonl.gz"
    proc = subprocess.Popen([*TWIN, "sim", "--scenario", "phase1", "--duration", "2d", "--step", "10s",
                             "--jobs", "2", "--out", str(out)], stderr=subprocess.DEVNULL, text=True,
                            env=env_with_venv(), cwd=tmp_path)
    _wait_for_growth(out, proc)
    workers = _children(proc.pid)
    assert workers
    proc.kill()
    proc.wait(timeout=10)
    for _ in range(100):
        if not any(Path(f"/proc/{pid}").exists() for pid in workers):
            break
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "worker processes outlived the run"
