"""The twin on a real clustered engine: three NATS servers (JetStream, MQTT gateways, sessions replicated three
times), each its own process with its own config, ports and store. The node the state worker is connected to
is killed (SIGKILL) under the full phase 1 plant at 1 Hz: the worker moves to another node of its broker list
and resumes its persistent session there; checked by seq per stream, nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bus.mqtt import Bus
from tests.conftest import missing_streams
from tests.servers import NatsCluster
from twin.plant import Plant
from twin.services.sim import SimService
from twin.services.state import StateService

pytestmark = pytest.mark.integration

T0 = 1_795_300_000.0
ACK_WAIT_S = 3.0  # the gateway resends an unacknowledged delivery after this (NATS' default: 30 s)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    c = NatsCluster(tmp_path / "nats", ack_wait_s=ACK_WAIT_S).start()
    yield c
    c.kill()



def test_the_state_worker_moves_to_another_node_when_its_node_is_killed(cluster: NatsCluster, phase1: Plant,
                                                                        tmp_path: Path) -> None:
    n1, n2, n3 = cluster.nodes
    ticks: list[float] = []

    async def main() -> tuple[StateService, SimService, list[int]]:
        state = StateService(phase1, snapshot_path=tmp_path / "state" / "narvik.npz", snapshot_every_s=5)
        state.listeners.append(lambda s, _h: None if s.heartbeat else ticks.append(s.ts))
        sim = SimService(phase1, start_ts=T0, speed=1.0)
        ports: list[int] = []
        # the worker's list starts at node 3, the simulator publishes on node 1
        async with Bus(f"{n3.url},{n2.url},{n1.url}", service="state", site="narvik",
                       subscriptions=state.subscriptions, client_id="cluster-state", session_expiry_s=600,
                       manual_ack=True, protocol="3.1.1",
                       redelivery_wait_s=5 * ACK_WAIT_S) as sb, \
                Bus(n1.url, service="sim", site="narvik", protocol="3.1.1") as pb:
            ports.append(sb.address.port)
            consumer = asyncio.create_task(state.run(sb))
            producer = asyncio.create_task(sim.run(pb, duration_s=16))
            await asyncio.sleep(6)
            cluster.node_of(sb.address.port).kill()  # SIGKILL the worker's node
            await asyncio.wait_for(producer, 120)
            await pb.drain(30)
            deadline = time.monotonic() + 90
            while missing_streams(state, sim) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            ports.append(sb.address.port)
            consumer.cancel()
            assert sb.connects >= 2 and sb.resumed_at is not None  # the session resumed: the hold engaged
        return state, sim, ports

    state, sim, ports = asyncio.run(main())
    # on another node of its list (the next, or the one after while the cluster elects new leaders)
    assert ports[0] == n3.port and ports[1] in (n2.port, n1.port), ports
    c = state.model.counters
    assert missing_streams(state, sim)[:3] == [], (c, sim.published)
    assert sim.published == c.msgs_in - c.msgs_duplicate  # nothing lost, each applied once
    assert c.seq_gaps == 0 and c.msgs_rejected == 0 and state.model.seq.restarts == 0
    # NATS resends the unacknowledged messages of a session that moved only after newer ones, after its
    # ack_wait (up to max_ack_pending, 1,024, of them: 973 seen without a hold); the worker holds its windows
    # open for them after the resume, so none comes after a newer message of its stream
    assert c.msgs_late == 0, c
    assert set(range(int(T0), int(T0) + 15)) <= {int(t) for t in ticks}  # no hole in the PlantState series


def test_a_hall_worker_that_outgrows_a_stock_nats_session_stops_with_one_line(tmp_path: Path) -> None:
    """A stock NATS (max_ack_pending 1,024) refuses a four-hall phase 1 worker's subscriptions beyond 65,535
    unacknowledged messages per session (4 x 2 + 116 filters): the worker must not run half deaf."""
    import subprocess
    import sys

    from tests.servers import NatsServer, env_with_venv

    nats = NatsServer(tmp_path / "nats").start()
    cmd = [sys.executable, "-m", "twin.cli", "run", "state", "--halls", "h1,h2,h3,h4", "--broker", nats.url,
           "--no-snapshot"]
    try:
        r = subprocess.run([*cmd, "--duration", "60"], env=env_with_venv(), capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
        # started again, the worker resumes the session the first run left (with the subscriptions NATS took)
        # and subscribes again without waiting (its backlog comes first): the refusals are read aside and said
        again = subprocess.run([*cmd, "--duration", "10"], env=env_with_venv(), capture_output=True, text=True,
                               timeout=120, cwd=tmp_path)
    finally:
        nats.kill()
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("twin: error:")]
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-3000:]
    assert "refused" in lines[0] and "max_ack_pending" in lines[0] and "Traceback" not in r.stderr
    assert "subscriptions (stargate/narvik/coolant/" in lines[0], lines[0]  # the first refused, by name
    assert "its session resumed" in again.stderr, again.stderr[-3000:]
    said = [ln for ln in again.stderr.splitlines() if " ERROR " in ln and "refused" in ln]
    assert len(said) == 1 and "max_ack_pending" in said[0] and "Traceback" not in again.stderr, again.stderr[-3000:]
