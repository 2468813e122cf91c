"""The repo's NATS cluster setup (deploy/nats/nats.conf, as deploy/compose-cluster.yml runs it) on three real
nats-server nodes: logins, each account's topics, and the scale-out services doing their jobs under them.

A denial is observed as in test_mosquitto_acl, without timing: a ``viewer`` session on ``stargate/#`` sees
whatever gets through; the account under test publishes the probe and then a marker it may publish on the
same connection, and the gateway handles one client's packets in order.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.conftest import collect
from tests.deploy.broker import PASSWORDS, reaches_viewer, start_repo_nats_cluster
from tests.servers import NatsCluster, env_with_venv

pytestmark = pytest.mark.integration

SITE = "narvik"
TELEMETRY = f"stargate/{SITE}/gpu/h1/h1-r001"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    c = start_repo_nats_cluster(tmp_path_factory.mktemp("repo-nats"))
    yield c
    c.kill()


def _client(port: int, user: str | None, password: str | None = None, ident: str = "") -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=user, identifier=ident or None,
                          password=password if password is not None else PASSWORDS.get(user or ""),
                          protocol=aiomqtt.ProtocolVersion.V311, timeout=15)


async def _login(port: int, user: str | None, password: str | None = None) -> str | None:
    try:
        async with _client(port, user, password):
            return None
    except aiomqtt.MqttError as e:
        return str(e)


async def _passes(port: int, user: str, topic: str, marker: str) -> bool:
    """Does ``user``'s message on ``topic`` reach a viewer? ``marker`` is a topic ``user`` may publish."""
    return await reaches_viewer(_client(port, "viewer", ident=f"probe-viewer-{user}"), _client(port, user), topic,
                                marker)


def test_anonymous_and_wrong_passwords_are_refused(cluster: NatsCluster) -> None:
    port = cluster.nodes[0].port
    assert asyncio.run(_login(port, None)) is not None
    assert asyncio.run(_login(port, "state", "wrong")) is not None
    assert asyncio.run(_login(port, "state")) is None
    assert asyncio.run(_login(port, "nobody", "x")) is not None


@pytest.mark.parametrize(("user", "topic", "marker", "allowed"), [
    ("sim", TELEMETRY, f"stargate/{SITE}/hydro/f1", True),
    ("sim", f"stargate/{SITE}/twin/state", TELEMETRY, False),  # a publisher cannot forge the twin's outputs
    ("replay", f"stargate/{SITE}/twin/alarm/x", TELEMETRY, False),
    ("sink", TELEMETRY, f"stargate/{SITE}/twin/sink", False),  # the sink writes no telemetry
    ("forecast", f"stargate/{SITE}/twin/state", f"stargate/{SITE}/twin/forecast/facility_mw", False),
    ("state", f"stargate/{SITE}/twin/worker/halls-h1", f"stargate/{SITE}/twin/state", True),  # hall workers
    ("state", TELEMETRY, f"stargate/{SITE}/twin/state", False),
])
def test_each_account_publishes_only_its_own_topics(cluster: NatsCluster, user: str, topic: str, marker: str,
                                                    allowed: bool) -> None:
    assert asyncio.run(_passes(cluster.nodes[1].port, user, topic, marker)) is allowed


def test_the_viewer_writes_nothing(cluster: NatsCluster) -> None:
    async def main() -> list[str]:
        got: list[str] = []
        async with _client(cluster.nodes[0].port, "viewer", ident="viewer-a") as a:
            await a.subscribe("stargate/#", qos=1)
            async with _client(cluster.nodes[0].port, "viewer", ident="viewer-b") as b:
                await b.publish(TELEMETRY, b"{}", qos=1)
            async with _client(cluster.nodes[0].port, "sim") as s:
                await s.publish(f"stargate/{SITE}/hydro/f1", b"{}", qos=1)
            async for m in a.messages:
                got.append(m.topic.value)
                if m.topic.value.endswith("hydro/f1"):
                    return got
        return got

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [f"stargate/{SITE}/hydro/f1"]


def test_hall_workers_and_the_aggregator_work_under_the_accounts(cluster: NatsCluster, tmp_path: Path) -> None:
    """The full phase 1 plant from the simulator (account sim) through two hall workers and the aggregator
    (account state) on the three nodes: a whole PlantState, and every service's health online."""
    twin = [sys.executable, "-m", "twin.cli"]
    env = env_with_venv() | {"TWIN_BROKER": cluster.url, "TWIN_MQTT_REDELIVERY_WAIT_S": "15"}

    def start(user: str, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*twin, *args], env=env | {"TWIN_MQTT_USERNAME": user,
                                                           "TWIN_MQTT_PASSWORD": PASSWORDS[user]},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)

    services = {"state-halls-h1-h2-h3-h4": start("state", "run", "state", "--halls", "h1,h2,h3,h4", "--no-snapshot"),
                "state-halls-h5-h6-h7-h8": start("state", "run", "state", "--halls", "h5,h6,h7,h8", "--no-snapshot"),
                "aggregate": start("state", "run", "aggregate", "--no-snapshot")}
    port = cluster.nodes[2].port
    try:
        for name in services:
            asyncio.run(collect(port, f"stargate/{SITE}/twin/health/{name}", lambda ms: ms[-1][1] == b"online",
                                60, username="viewer", password=PASSWORDS["viewer"]))
        services["sim"] = start("sim", "sim", "--speed", "1", "--duration", "60")
        got = asyncio.run(collect(port, f"stargate/{SITE}/twin/state",
                                  lambda ms: bool(ms) and json.loads(ms[-1][1])["gpus_reporting"] == 100_224, 90,
                                  username="viewer", password=PASSWORDS["viewer"]))
        assert got and json.loads(got[-1][1])["gpus_reporting"] == 100_224, got[-1:] or [
            (n, p.poll(), p.stderr.read(3000) if p.poll() is not None and p.stderr else b"")
            for n, p in services.items()]
        for name in services:  # the containers' healthcheck, under each service's own account
            user = "sim" if name == "sim" else "state"
            h = subprocess.run([sys.executable, "-m", "twin.commands.health"], capture_output=True, text=True,
                               timeout=60, cwd=tmp_path, env=env | {"TWIN_HEALTH_SERVICE": name,
                                                                    "TWIN_MQTT_USERNAME": user,
                                                                    "TWIN_MQTT_PASSWORD": PASSWORDS[user]})
            assert h.returncode == 0, (name, h.stdout, h.stderr)
    finally:
        for p in services.values():
            p.terminate()
        for p in services.values():
            p.wait(15)
    for name, p in services.items():
        err = p.stderr.read().decode() if p.stderr else ""
        assert "denied" not in err.lower() and "not authorized" not in err.lower(), (name, err[-2000:])
