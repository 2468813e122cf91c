"""``twin sim`` as a user runs it: live to a real Mosquitto, and to a telemetry log (deterministic)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from adapters.telemetry_log import iter_log
from tests.conftest import collect
from tests.servers import MosquittoServer, env_with_venv
from twin.ingest import Decoded, Decoder
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
