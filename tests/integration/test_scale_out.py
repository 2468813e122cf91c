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
LEARNING_TICKS = 3


def _plant(tmp_path: Path, site: str) -> Path:
    p = tmp_path / f"{site}.toml"
    p.write_text((REPO / "tests" / "data" / "small.toml").read_text().replace('id = "tiny"', f'id = "{site}"'))
    return p


def _start(args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """A service with its log in a file of ``logs`` (a pipe nobody reads would fill and block it)."""
    logs.mkdir(exist_ok=True)
    with open(logs / f"{len(list(logs.iterdir())):02d}-{args[1]}.log", "wb") as err:
        return subprocess.Popen([*TWIN, *args], env=env_with_venv() | env, stdout=subprocess.DEVNULL, stderr=err)


@dataclass
class _Broker:
    url: str  # what the services and the replay are given (a cluster: every node)
    port: int  # where the test listens (a cluster: its first node)
    env: dict[str, str]  # the services' settings for this engine


@pytest.fixture(params=["mosquitto", "nats-cluster"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Broker]:
    if request.param == "mosquitto":
        m: MosquittoServer = request.getfixturevalue("mosquitto")
        yield _Broker(m.url, m.port, {})
        return
    cluster = NatsCluster(tmp_path / "nats", ack_wait_s=3).start()  # as deploy/nats/nats.conf
    try:
        # five times ack_wait, as deploy/compose-cluster.yml
        yield _Broker(cluster.url, cluster.nodes[0].port, {"TWIN_MQTT_REDELIVERY_WAIT_S": "15"})
    finally:
        cluster.kill()


def _states_of_a_run(broker: _Broker, site: str, services: list[list[str]], health: list[str],
                     log: Path, speed: str = "max", kill_after_s: float | None = None) -> list[dict]:  # type: ignore[type-arg]
    """The PlantStates of a replay of ``log`` through ``services``; with ``kill_after_s``, the first service is
    SIGKILLed that long into the replay and a replacement (the same command line) started at once."""
    logs = log.parent / f"logs-{site}"
    procs = [_start(a, broker.env, logs) for a in services]
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
            chaos = asyncio.create_task(_kill_and_replace(procs, services[0], broker.env, logs, kill_after_s))
            r = await asyncio.to_thread(subprocess.run, [*TWIN, "replay", str(log), "--broker", broker.url,
                                                         "--speed", speed, "--site", site, "--keep-source",
                                                         # the shared broker has Mosquitto's stock queue
                                                         # (1,000): at max, a replay must follow the twin
                                                         "--pace-by-state"],
                                        env=env_with_venv(), capture_output=True, timeout=120)
            assert r.returncode == 0, r.stderr
            await chaos
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


async def _kill_and_replace(procs: list[subprocess.Popen[bytes]], args: list[str], env: dict[str, str],
                            logs: Path, after_s: float | None) -> None:
    if after_s is None:
        return
    await asyncio.sleep(after_s)
    procs[0].kill()  # SIGKILL: no snapshot on the way out, no DISCONNECT
    await asyncio.to_thread(procs[0].wait, 10)
    procs[0] = _start(args, env, logs)  # the same halls, data dir and client id: it takes the partition's session over


def _compare(single: list[dict], scaled: list[dict]) -> int:  # type: ignore[type-arg]
    """How many ticks the two runs share, asserting that each is the same PlantState.

    The first ticks are left out: the ordered tick clock learns its kinds from the first messages, so whether
    the first windows close before a kind's first message arrives is a race (NATS delivers a subscription's
    messages apart from the others'), in one run as in the other."""
    by_ts = {s["ts"]: s for s in single}
    compared = 0
    for s in scaled:
        ref = by_ts.get(s["ts"])
        if ref is None or s["ts"] < T0 + LEARNING_TICKS:
            continue
        compared += 1
        for key, value in ref.items():
            if key == "stale":
                assert set(s[key]) == set(value), (s["ts"], key)
            elif isinstance(value, float):
                assert s[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (s["ts"], key)
            else:
                assert s[key] == value, (s["ts"], key)
    return compared


def _log(tmp_path: Path) -> Path:
    log = tmp_path / "plant.jsonl"
    r = subprocess.run([*TWIN, "sim", "--plant", str(_plant(tmp_path, "tiny")), "--out", str(log), "--duration",
                        f"{STEPS}s", "--step", "1s", "--start", str(T0), "--no-progress"],
                       env=env_with_venv(), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return log


# On the NATS cluster the replacement's session resumes and holds its windows for NATS' late redeliveries; the
# replay (paced by the PlantStates) waits meanwhile, so the h2 worker idles and publishes heartbeats ahead of its
# telemetry: the aggregator must take h2's real states when they come (tests/unit/test_aggregator.py).
@pytest.mark.parametrize("broker", ["mosquitto", "nats-cluster"], indirect=True)
def test_a_killed_hall_worker_is_replaced_and_nothing_is_lost(broker: _Broker, site: str, tmp_path: Path) -> None:
    """SIGKILL the h1 worker 4 s into a replay at 10x; its replacement restores its snapshot and journal and
    takes the partition's session over: the PlantStates equal one worker's, tick by tick."""
    log = _log(tmp_path)
    one, two = f"{site}-one", f"{site}-two"
    p1, p2 = _plant(tmp_path, one), _plant(tmp_path, two)
    env = ["--broker", broker.url]
    single = _states_of_a_run(broker, one, [["run", "state", "--plant", str(p1), *env, "--no-snapshot"]],
                              ["state"], log, speed="10")
    h1 = ["run", "state", "--plant", str(p2), "--halls", "h1", *env, "--data-dir", str(tmp_path / "h1"),
          "--snapshot-every", "2"]
    scaled = _states_of_a_run(broker, two, [
        h1,
        ["run", "state", "--plant", str(p2), "--halls", "h2", *env, "--no-snapshot"],
        ["run", "aggregate", "--plant", str(p2), *env, "--no-snapshot"],
    ], ["state-halls-h1", "state-halls-h2", "aggregate"], log, speed="10", kill_after_s=4)
    assert (tmp_path / "h1").is_dir() and any((tmp_path / "h1").rglob("*.npz")), "the worker saved no snapshot"
    assert _compare(single, scaled) >= STEPS - LEARNING_TICKS - 5
    last = scaled[-1]
    assert last["seq_gaps"] == 0 and last["msgs_rejected"] == 0, last


def test_two_hall_workers_and_the_aggregator_equal_one_worker(broker: _Broker, site: str, tmp_path: Path) -> None:
    log = _log(tmp_path)

    one, two = f"{site}-one", f"{site}-two"
    p1, p2 = _plant(tmp_path, one), _plant(tmp_path, two)
    common = ["--broker", broker.url, "--no-snapshot"]
    single = _states_of_a_run(broker, one, [["run", "state", "--plant", str(p1), *common]], ["state"], log)
    scaled = _states_of_a_run(broker, two, [
        ["run", "state", "--plant", str(p2), "--halls", "h1", *common],
        ["run", "state", "--plant", str(p2), "--halls", "h2", *common],
        ["run", "aggregate", "--plant", str(p2), *common],
    ], ["state-halls-h1", "state-halls-h2", "aggregate"], log)

    assert _compare(single, scaled) >= STEPS - LEARNING_TICKS - 5  # every tick but the first windows'
