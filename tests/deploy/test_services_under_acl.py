"""The real sink and forecaster, logged in with their accounts of the repo's broker setup (ACL, generated
password file): the sink subscribes to what compose has it do (twin outputs and, with the mirror on,
telemetry) and writes them; the forecaster connects, subscribes and announces itself online. The accounts
in deploy/mosquitto/acl let the twin's own services work, not only probes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.bus.mqtt import Bus
from tests.conftest import collect
from tests.contract.test_models import VALID
from tests.deploy.broker import PASSWORDS, password_env, start_repo_broker
from tests.servers import MosquittoServer, env_with_venv
from twin.commands.health import read_retained
from twin.contract import HeatTelemetry, PlantState

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SMALL = Path(__file__).resolve().parents[1] / "data" / "small.toml"
SITE = "tiny"  # the site of tests/data/small.toml


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    server = start_repo_broker(tmp_path_factory.mktemp("services-mosquitto"), password_env())
    yield server
    server.stop()


async def _publish(url: str, t0: float) -> None:
    async with Bus(url, service="state", site=SITE, username="state", password=SecretStr(PASSWORDS["state"])) as st, \
            Bus(url, service="sim", site=SITE, username="sim", password=SecretStr(PASSWORDS["sim"])) as sim:
        for i in range(3):
            s = PlantState.model_validate({**VALID[PlantState], "ts": t0 + i, "stale": []})
            await st.publish(f"stargate/{SITE}/twin/state", s.model_dump_json())
            h = HeatTelemetry.model_validate({**VALID[HeatTelemetry], "ts": t0 + i, "seq": i})
            await sim.publish(f"stargate/{SITE}/heat/dh-narvik", h.model_dump_json())


def _online(broker: MosquittoServer, service: str = "sink") -> bool:
    """A service's retained health, read by the viewer account (the Bus says online once subscribed)."""
    got = asyncio.run(read_retained(broker.url, f"stargate/{SITE}/twin/health/{service}", username="viewer",
                                    password=PASSWORDS["viewer"], ca_file=None, cert_file=None, key_file=None,
                                    timeout=1))
    return got == b"online"


def _lines(data: Path) -> list[str]:
    return [ln for f in sorted((data / "lines").glob("*.lp*")) for ln in f.read_text().splitlines()]


def test_the_sink_account_lets_the_real_sink_work(broker: MosquittoServer, tmp_path: Path) -> None:
    env = env_with_venv()
    env.update(TWIN_BROKER=broker.url, TWIN_MQTT_USERNAME="sink", TWIN_MQTT_PASSWORD=PASSWORDS["sink"],
               TWIN_SINK_MIRROR_S="1", TWIN_SINK_FLUSH_S="0.2")
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "run", "sink", "--plant", str(SMALL),
                             "--data-dir", str(data), "--duration", "120", "--log-level", "INFO"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t0 = float(int(time.time()) - 600)
        deadline = time.monotonic() + 60
        seen: list[str] = []
        published = False
        while time.monotonic() < deadline and proc.poll() is None:
            if not published and _online(broker):  # the sink has connected and subscribed
                asyncio.run(_publish(broker.url, t0))
                published = True
            seen = _lines(data) if (data / "lines").exists() else []
            if any(s.startswith("plant_state,") for s in seen) and any(s.startswith("raw_heat,") for s in seen):
                break
            time.sleep(0.5)
        assert any(s.startswith("plant_state,site=tiny ") for s in seen), (seen, proc.poll())
        assert any(s.startswith("raw_heat,asset=dh-narvik,site=tiny ") for s in seen), seen
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_forecast_account_lets_the_real_forecaster_come_online(broker: MosquittoServer, tmp_path: Path) -> None:
    env = env_with_venv()
    env.update(TWIN_BROKER=broker.url, TWIN_MQTT_USERNAME="forecast", TWIN_MQTT_PASSWORD=PASSWORDS["forecast"],
               TWIN_DATA_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "run", "forecast", "--plant", str(SMALL),
                             "--duration", "120"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        online = False
        while not online and time.monotonic() < deadline and proc.poll() is None:
            online = _online(broker, "forecast")
            time.sleep(0.5)
        assert online, proc.poll()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_state_account_lets_hall_workers_and_the_aggregator_work(broker: MosquittoServer, tmp_path: Path) -> None:
    """Scale-out under the repo's ACL (as on the NATS cluster, tests/deploy/test_nats_cluster_acl.py): two hall
    workers and the aggregator under the state account publish their worker states, hall states and health; the
    simulator under its own: a whole PlantState, and every service's health online."""
    twin = [sys.executable, "-m", "twin.cli"]
    env = env_with_venv() | {"TWIN_BROKER": broker.url}

    def start(user: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*twin, *args, "--plant", str(SMALL)],
                                env=env | {"TWIN_MQTT_USERNAME": user, "TWIN_MQTT_PASSWORD": PASSWORDS[user]},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)

    services = {"state-halls-h1": start("state", "run", "state", "--halls", "h1", "--no-snapshot"),
                "state-halls-h2": start("state", "run", "state", "--halls", "h2", "--no-snapshot"),
                "aggregate": start("state", "run", "aggregate", "--no-snapshot")}
    try:
        deadline = time.monotonic() + 60
        while not all(_online(broker, name) for name in services) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert all(_online(broker, name) for name in services), [(n, p.poll()) for n, p in services.items()]
        services["sim"] = start("sim", "sim", "--speed", "1", "--duration", "60")
        got = asyncio.run(collect(broker.port, f"stargate/{SITE}/twin/state",
                                  lambda ms: bool(ms) and json.loads(ms[-1][1])["gpus_reporting"] == 32, 60,
                                  username="viewer", password=PASSWORDS["viewer"]))
        assert got and json.loads(got[-1][1])["gpus_reporting"] == 32, got[-1:]
    finally:
        for p in services.values():
            p.terminate()
        for p in services.values():
            p.wait(15)
