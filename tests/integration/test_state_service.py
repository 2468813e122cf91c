"""The state service against a real Mosquitto: telemetry in, PlantState and dead letters out."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.bus.mqtt import Bus
from tests.conftest import REPO, collect, mosquitto_pub
from tests.servers import MosquittoServer, env_with_venv
from twin.plant import load_plant
from twin.services.sim import SimService
from twin.services.state import StateService

pytestmark = pytest.mark.integration

T0 = 1_795_300_000.0


def plant_file(tmp_path: Path, site: str) -> Path:
    p = tmp_path / "plant.toml"
    p.write_text((REPO / "tests" / "data" / "small.toml").read_text().replace('id = "tiny"', f'id = "{site}"'))
    return p


def rack_payload(ts: float, seq: int, power: list[float], aux: float) -> str:
    n = len(power)
    return json.dumps({"ts": ts, "seq": seq, "source": "sim", "gpu_power_w": power, "gpu_util": [0.5] * n,
                       "gpu_temp_c": [55.0] * n, "aux_power_w": aux})


async def _latest_state(port: int, site: str, predicate, timeout: float = 20.0) -> dict:  # type: ignore[no-untyped-def]
    got = await collect(port, f"stargate/{site}/twin/state",
                        lambda ms: predicate(json.loads(ms[-1][1])) if ms and ms[-1][1] else False, timeout)
    assert got, "no PlantState arrived"
    return json.loads(got[-1][1])  # type: ignore[no-any-return]


def test_simulator_telemetry_in_plant_state_out(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    plant = load_plant(plant_file(tmp_path, site))

    async def main() -> dict:  # type: ignore[type-arg]
        state = StateService(plant)
        sim = SimService(plant, start_ts=T0, speed=20.0)
        async with Bus(mosquitto.url, service="state", site=site, subscriptions=state.subscriptions) as sb, \
                Bus(mosquitto.url, service="sim", site=site) as pb:
            assert sb.protocol_in_use == "5"
            tasks = [asyncio.create_task(state.run(sb)), asyncio.create_task(sim.run(pb, duration_s=20))]
            try:
                return await _latest_state(mosquitto.port, site, lambda s: s["ts"] >= T0 + 10)
            finally:
                for t in tasks:
                    t.cancel()

    s = asyncio.run(main())
    assert s["gpus_reporting"] == s["gpus_total"] == 32
    assert s["it_mw"] > 0 and s["facility_mw"] > s["it_mw"]
    assert s["pue"] == pytest.approx(s["facility_mw"] / s["it_mw"])
    assert s["headroom_mw"] == pytest.approx(min(s["hydro_available_mw"], s["contract_mw"]) - s["facility_mw"])
    assert s["msgs_rejected"] == 0 and s["msgs_duplicate"] == 0 and s["seq_gaps"] == 0


def _start_state_process(broker: MosquittoServer, plant: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "twin.cli", "run", "state", "--broker", broker.url,
                             "--plant", str(plant), "--log-level", "INFO", "--data-dir", str(plant.parent)],
                            env=env_with_venv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_rack_message_from_mosquitto_pub_changes_it_mw_by_its_power(
        mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    proc = _start_state_process(mosquitto, plant_file(tmp_path, site))
    try:
        asyncio.run(collect(mosquitto.port, f"stargate/{site}/twin/health/state",
                            lambda ms: ms[-1][1] == b"online", 30))
        mosquitto_pub(mosquitto.port, f"stargate/{site}/gpu/h1/h1-r001",
                      rack_payload(T0, 0, [1000.0, 1100.0, 1200.0, 1300.0], 5000.0))
        s1 = asyncio.run(_latest_state(mosquitto.port, site, lambda s: s["gpus_reporting"] == 4))
        assert s1["it_mw"] == pytest.approx(9600 / 1e6, abs=1e-12)
        mosquitto_pub(mosquitto.port, f"stargate/{site}/gpu/h2/h2-c",
                      rack_payload(T0, 0, [812.5, 812.5, 812.5, 812.5], 1250.0))
        s2 = asyncio.run(_latest_state(mosquitto.port, site, lambda s: s["gpus_reporting"] == 8))
        assert s2["it_mw"] - s1["it_mw"] == pytest.approx(4500 / 1e6, abs=1e-12)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_malformed_message_goes_to_dead_letter_and_service_keeps_running(
        mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    proc = _start_state_process(mosquitto, plant_file(tmp_path, site))
    try:
        asyncio.run(collect(mosquitto.port, f"stargate/{site}/twin/health/state",
                            lambda ms: ms[-1][1] == b"online", 30))

        async def publish_bad_and_listen() -> list[tuple[str, bytes]]:
            listener = asyncio.create_task(collect(mosquitto.port, f"stargate/{site}/twin/deadletter",
                                                   lambda ms: len(ms) >= 3, 20))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(mosquitto_pub, mosquitto.port, f"stargate/{site}/gpu/h1/h1-r001", "{oops")
            await asyncio.to_thread(mosquitto_pub, mosquitto.port, f"stargate/{site}/gpu/h1/h1-r001",
                                    rack_payload(T0, 0, [1.0, 2.0], 0.0))
            await asyncio.to_thread(mosquitto_pub, mosquitto.port, f"stargate/{site}/coolant/h1-cdu01",
                                    '{"ts": 1795300000, "seq": 0, "source": "sim", "supply_c": "NaN"}')
            return await listener

        letters = [json.loads(p) for _, p in asyncio.run(publish_bad_and_listen())]
        assert len(letters) == 3
        assert "JSON is malformed" in letters[0]["reason"] and letters[0]["payload"] == "{oops"
        assert "has 4 GPUs in the plant config, the message lists 2" in letters[1]["reason"]
        assert "supply_c" in letters[2]["reason"] and letters[2]["topic"].endswith("coolant/h1-cdu01")
        # still running: a valid message is applied afterwards
        mosquitto_pub(mosquitto.port, f"stargate/{site}/gpu/h1/h1-r002", rack_payload(T0, 0, [10.0] * 4, 60.0))
        s = asyncio.run(_latest_state(mosquitto.port, site, lambda s: s["gpus_reporting"] == 4))
        assert s["it_mw"] == pytest.approx(100 / 1e6) and s["msgs_rejected"] == 3
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
