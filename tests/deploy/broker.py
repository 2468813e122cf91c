"""The repo's broker setups run for real: Mosquitto (deploy/mosquitto/: init.sh writes the password file, and
Mosquitto runs the repo's mosquitto.conf and acl with only the container paths and the port changed), and the
three-node NATS cluster (deploy/nats/nats.conf with only its container ports, hosts and store changed)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import aiomqtt

from tests.servers import MosquittoServer, NatsCluster, NatsServer, free_port

REPO = Path(__file__).resolve().parents[2]
MOSQ_DIR = REPO / "deploy" / "mosquitto"
NATS_CONF = REPO / "deploy" / "nats" / "nats.conf"
#: the accounts deploy/nats/nats.conf has (compose-cluster.yml requires each password)
NATS_ACCOUNTS = ("state", "forecast", "sink", "sim", "replay", "viewer")

#: account -> password, as scripts/secrets would put them in the secret files (every optional account included);
#: init.sh reads MQTT_PASSWORD_<ACCOUNT>_FILE, or else MQTT_PASSWORD_<ACCOUNT> (what these tests pass).
PASSWORDS = {
    "state": "pw-state", "forecast": "pw-forecast", "sink": "pw-sink", "viewer": "pw-viewer", "sim": "pw-sim",
    "replay": "pw-replay", "adapter-dcgm-h1-h4": "pw-dcgm-a", "adapter-dcgm-h5-h8": "pw-dcgm-b",
    "adapter-cdu-h1": "pw-modbus",
    "adapter-meters": "pw-opcua", "grafana": "pw-grafana",
}
ENV_NAMES = {
    "state": "MQTT_PASSWORD_STATE", "forecast": "MQTT_PASSWORD_FORECAST", "sink": "MQTT_PASSWORD_SINK",
    "viewer": "MQTT_PASSWORD_VIEWER", "sim": "MQTT_PASSWORD_SIM", "replay": "MQTT_PASSWORD_REPLAY",
    "adapter-dcgm-h1-h4": "MQTT_PASSWORD_ADAPTER_DCGM_H1_H4", "adapter-dcgm-h5-h8": "MQTT_PASSWORD_ADAPTER_DCGM_H5_H8",
    "adapter-cdu-h1": "MQTT_PASSWORD_ADAPTER_MODBUS",
    "adapter-meters": "MQTT_PASSWORD_ADAPTER_OPCUA", "grafana": "MQTT_PASSWORD_GRAFANA",
}


def run_init(auth_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """deploy/mosquitto/init.sh with only ``env`` (plus PATH) and the auth directory moved."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MQTT_AUTH_DIR": str(auth_dir),
            "MQTT_ACL_SRC": str(MOSQ_DIR / "acl"), **env}
    return subprocess.run(["sh", str(MOSQ_DIR / "init.sh")], env=full, capture_output=True, text=True,
                          timeout=60, check=False)


def password_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {ENV_NAMES[u]: pw for u, pw in PASSWORDS.items()}
    env.update(extra or {})
    return env


def repo_config(auth_dir: Path, data_dir: Path) -> str:
    """The repo's mosquitto.conf with the container paths replaced; its listener comes from MosquittoServer.

    The ACL it loads is the copy init.sh made of deploy/mosquitto/acl in the auth directory."""
    text = (MOSQ_DIR / "mosquitto.conf").read_text()
    swaps = {"/mosquitto/auth": str(auth_dir), "/mosquitto/data/": f"{data_dir}/", "\nlistener 1883\n": "\n"}
    for old, new in swaps.items():
        if old not in text:
            raise AssertionError(f"deploy/mosquitto/mosquitto.conf no longer has {old.strip()!r}")
        text = text.replace(old, new)
    return text


def start_repo_broker(workdir: Path, env: dict[str, str]) -> MosquittoServer:
    auth, data = workdir / "auth", workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    r = run_init(auth, env)
    assert r.returncode == 0, r.stderr
    return MosquittoServer(workdir / "broker", allow_anonymous=False,
                           extra_config=repo_config(auth, data)).start()


class RepoNatsServer(NatsServer):
    """A node running deploy/nats/nats.conf: the container's ports, route hosts and store swapped for its own."""

    def config_text(self) -> str:
        text = NATS_CONF.read_text()
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
        swaps = {"0.0.0.0:4222": f"127.0.0.1:{self.client_port}", "0.0.0.0:8222": f"127.0.0.1:{free_port()}",
                 "0.0.0.0:6222": f"127.0.0.1:{self.route_port}", "0.0.0.0:1883": f"127.0.0.1:{self.port}",
                 "store_dir: /data": f'store_dir: "{self.workdir / "js"}"',
                 "nats-route://nats-1:6222, nats-route://nats-2:6222, nats-route://nats-3:6222": routes}
        for old, new in swaps.items():
            if old not in text:
                raise AssertionError(f"deploy/nats/nats.conf no longer has {old!r}")
            text = text.replace(old, new)
        return text


def start_repo_nats_cluster(workdir: Path, passwords: dict[str, str] | None = None) -> NatsCluster:
    """The repo's NATS cluster config on three nodes, each with its name and the accounts' passwords in its
    environment (as compose-cluster.yml gives them)."""
    pw = passwords or PASSWORDS
    cluster = NatsCluster(workdir, node=RepoNatsServer)
    for i, node in enumerate(cluster.nodes):
        node.env = {"NATS_NAME": f"nats-{i + 1}"} | {ENV_NAMES[u]: pw[u] for u in NATS_ACCOUNTS}
    cluster.login, cluster.ready_topic = ("viewer", pw["viewer"]), "stargate/ready"
    return cluster.start()


async def reaches_viewer(viewer: aiomqtt.Client, publisher: aiomqtt.Client, topic: str, marker: str,
                         timeout: float = 30.0) -> bool:
    """Does ``publisher``'s message on ``topic`` reach ``viewer`` (subscribed to ``stargate/#``)? ``marker`` is a
    topic the publisher may publish, sent after the probe on the same connection: the broker handles one
    client's packets in order, so once the marker has arrived a probe that got through has too."""
    got: list[str] = []
    async with viewer:
        await viewer.subscribe("stargate/#", qos=1)
        async with publisher as c:
            await c.publish(topic, b'{"probe": 1}', qos=1)
            await c.publish(marker, b'{"marker": 1}', qos=1)

        async def gather() -> None:
            async for m in viewer.messages:
                got.append(m.topic.value)
                if m.topic.value == marker:
                    return

        await asyncio.wait_for(gather(), timeout)
    return topic in got
