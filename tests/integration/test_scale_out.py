"""Scale-out on the broker's own mechanism: two hall workers and the aggregator give the same PlantStates as one
state service over the same replayed log: on Mosquitto (MQTT 5 shared subscriptions) and on a 3-node NATS
cluster (MQTT 3.1.1, no $share: each partition held by its worker's fixed session), through its broker list."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, collect
from tests.servers import MosquittoServer, NatsCluster, env_with_venv

pytestmark = pytest.mark.integration

T0 = 1_795_300_000
TWIN = [sys.executable, "-m", "twin.cli"]
STEPS = 90


def _plant(tmp_path: Path, site: str) -> Path:
    p = tmp_path / f"{site}.toml"
    p.write_text((REPO / "tests" / "data" / "small.toml").read_text().replace('id = "tiny"', f'id = "{site}"'))
    return p


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*TWIN, *args], env=env_with_venv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass
class _Broker:
    url: str  # what the services and the replay are given (a cluster: every node)
    port: int  # where the test listens (a cluster: its first node)


@pytest.fixture(params=["mosquitto", "nats-cluster"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Broker]:
    if request.param == "mosquitto":
        m: MosquittoServer = request.getfixturevalue("mosquitto")
        yield _Broker(m.url, m.port)
        return
    cluster = NatsCluster(tmp_path / "nats").start()
    try:
        yield _Broker(cluster.url, cluster.nodes[0].port)
    finally:
        cluster.kill()


def _states_of_a_run(broker: _Broker, site: str, services: list[list[str]], health: list[str],
                     log: Path) -> list[dict]:  # type: ignore[type-arg]
    procs = [_start(a) for a in services]
    try:
        for h in health:
            asyncio.run(collect(broker.port, f"stargate/{site}/twin/health/{h}", lambda ms: ms[-1][1] == b"online",
                                30))

        async def replay_and_collect() -> list[tuple[str, bytes]]:
            want = T0 + STEPS - 1
            listener = asyncio.create_task(collect(
                broker.port, f"stargate/{site}/twin/state",
                lambda ms: bool(ms) and json.loads(ms[-1][1])["ts"] >= want, 90))
            await asyncio.sleep(0.5)
            r = await asyncio.to_thread(subprocess.run, [*TWIN, "replay", str(log), "--broker", broker.url,
                                                         "--speed", "max", "--site", site, "--keep-source",
                                                         # the shared broker has Mosquitto's stock queue
                                                         # (1,000): at max, a replay must follow the twin
                                                         "--pace-by-state"],
                                        env=env_with_venv(), capture_output=True, timeout=120)
            assert r.returncode == 0, r.stderr
            return await listener

        got = asyncio.run(replay_and_collect())
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
    states = [json.loads(p) for _, p in got if p]
    assert states and states[-1]["ts"] >= T0 + STEPS - 1, (site, [s["ts"] for s in states][-5:], states[-1])
    return states


def test_two_hall_workers_and_the_aggregator_equal_one_worker(broker: _Broker, site: str, tmp_path: Path) -> None:
    log = tmp_path / "plant.jsonl"
    r = subprocess.run([*TWIN, "sim", "--plant", str(_plant(tmp_path, "tiny")), "--out", str(log), "--duration",
                        f"{STEPS}s", "--step", "1s", "--start", str(T0), "--no-progress"],
                       env=env_with_venv(), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr

    one, two = f"{site}-one", f"{site}-two"
    p1, p2 = _plant(tmp_path, one), _plant(tmp_path, two)
    common = ["--broker", broker.url, "--no-snapshot"]
    single = _states_of_a_run(broker, one, [["run", "state", "--plant", str(p1), *common]], ["state"], log)
    scaled = _states_of_a_run(broker, two, [
        ["run", "state", "--plant", str(p2), "--halls", "h1", *common],
        ["run", "state", "--plant", str(p2), "--halls", "h2", *common],
        ["run", "aggregate", "--plant", str(p2), *common],
    ], ["state-halls-h1", "state-halls-h2", "aggregate"], log)

    by_ts = {s["ts"]: s for s in single}
    compared = 0
    for s in scaled:
        ref = by_ts.get(s["ts"])
        if ref is None:
            continue
        compared += 1
        for key, value in ref.items():
            if key == "stale":
                assert set(s[key]) == set(value), (s["ts"], key)
            elif isinstance(value, float):
                assert s[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (s["ts"], key)
            else:
                assert s[key] == value, (s["ts"], key)
    assert compared >= STEPS - 5  # every tick of the run, but for the very first windows
