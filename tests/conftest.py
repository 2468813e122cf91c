"""Shared fixtures: real Mosquitto and VictoriaMetrics processes, the default plants, MQTT helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.servers import MosquittoServer, VictoriaMetricsServer
from twin.plant import Plant, load_plant

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def phase1() -> Plant:
    return load_plant("phase1")


@pytest.fixture(scope="session")
def small_plant() -> Plant:
    return load_plant(REPO / "tests" / "data" / "small.toml")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """One broker for the session, at Mosquitto's stock limits (20 in flight, 1,000 queued per client), as a
    new user runs it: tests isolate themselves by site id (a unique topic root)."""
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto"), stock=True).start()
    yield server
    server.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A broker for this test alone, with persistence, to kill and restart."""
    server = MosquittoServer(tmp_path / "mosquitto", persistence=True).start()
    yield server
    server.kill()


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetricsServer]:
    server = VictoriaMetricsServer(tmp_path / "vm").start()
    yield server
    server.kill()


_site_counter = iter(range(1_000_000))


@pytest.fixture
def site() -> str:
    """A site id unique to this test, so tests sharing a broker never see each other's traffic."""
    return f"t{int(time.time() * 1000) % 10_000_000}-{next(_site_counter)}"


def mosquitto_pub(url_port: int, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(url_port), "-t", topic, "-q", str(qos), "-s"]
    if retain:
        args.append("-r")
    data = payload if isinstance(payload, bytes) else payload.encode()
    subprocess.run(args, input=data, check=True, timeout=10)


async def collect(port: int, topic_filter: str, predicate, timeout: float = 30.0, *,  # type: ignore[no-untyped-def]
                  username: str | None = None, password: str | None = None) -> list[tuple[str, bytes]]:
    """Subscribe and gather (topic, payload) until ``predicate(messages)`` holds or the timeout passes."""
    got: list[tuple[str, bytes]] = []
    async with aiomqtt.Client("127.0.0.1", port, username=username, password=password) as client:
        await client.subscribe(topic_filter, qos=1)

        async def loop() -> None:
            async for m in client.messages:
                got.append((m.topic.value, bytes(m.payload)))  # type: ignore[arg-type]
                if predicate(got):
                    return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(loop(), timeout)
    return got


def as_json(payload: bytes) -> dict[str, object]:
    return json.loads(payload)  # type: ignore[no-any-return]


def missing_streams(state: object, sim: object) -> list[str]:
    """Streams of the simulator that did not arrive at the state service up to their last seq, and gaps."""
    enc, streams = sim.encoder, state.model.seq._streams  # type: ignore[attr-defined]
    expected = {("gpu", i): int(n) for i, n in enumerate(enc.rack_seq)}
    expected |= {("coolant", i): int(n) for i, n in enumerate(enc.cdu_seq)}
    out = [f"{d}[{i}]: last seq {g and g[0]}, published {n}" for (d, i), n in expected.items()
           if n and ((g := streams.get((d, i, "sim"))) is None or g[0] != n - 1)]
    if state.model.counters.seq_gaps:  # type: ignore[attr-defined]
        out.append(f"{state.model.counters.seq_gaps} seq gaps")  # type: ignore[attr-defined]
    return out
