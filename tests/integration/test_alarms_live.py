"""Alarms through a real Mosquitto: a simulated pump failure raises them for the right CDU and racks, and
they clear after it ends; a drifting return sensor raises its CDU's energy residual alone; a restart from a
snapshot resumes with the same totals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from adapters.bus.mqtt import Bus
from sims.scenario import parse_scenario
from tests.conftest import REPO
from tests.servers import MosquittoServer
from twin.contract import PlantState
from twin.plant import Plant, load_plant
from twin.services.sim import SimService
from twin.services.state import StateService

pytestmark = pytest.mark.integration

T0 = 1_795_300_000.0


def mini_plant(tmp_path: Path, site: str) -> Plant:
    p = tmp_path / "mini.toml"
    p.write_text((REPO / "tests" / "data" / "mini.toml").read_text().replace('id = "mini"', f'id = "{site}"'))
    return load_plant(p)


async def _run(mosquitto: MosquittoServer, site: str, plant: Plant, state: StateService, sim: SimService,
               sim_seconds: float) -> list[tuple[str, bytes, bool]]:
    """Run sim -> broker -> state for ``sim_seconds`` of event time; return every alarm message seen."""
    seen: list[tuple[str, bytes, bool]] = []
    async with Bus(mosquitto.url, service="state", site=site, subscriptions=state.subscriptions) as sb, \
            Bus(mosquitto.url, service="sim", site=site) as pb, \
            Bus(mosquitto.url, service="watch", site=site, subscriptions=[f"stargate/{site}/twin/alarm/#"],
                health=False) as wb:
        run_state = asyncio.create_task(state.run(sb))
        await sim.run(pb, duration_s=sim_seconds)
        await pb.drain(10)
        for _ in range(100):  # let the state service catch up with everything published
            if state.model.counters.msgs_in >= sim.published:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)  # the idle flush emits the last window
        run_state.cancel()
        await sb.drain(10)
        await asyncio.sleep(0.5)
        while not wb.queue.empty():
            m = wb.queue.get_nowait()
            seen.append((m.topic.value, bytes(m.payload), bool(m.retain)))  # type: ignore[arg-type]
    return seen


def _scenario_run(mosquitto: MosquittoServer, site: str, tmp_path: Path, sim_seconds: float,
                  event: dict[str, object]) -> tuple[Plant, StateService, list[tuple[str, bytes, bool]]]:
    """The mini plant with one scenario event, simulated at 400x in 5 s steps through the broker."""
    plant = mini_plant(tmp_path, site)
    scenario = parse_scenario({"name": str(event["kind"]), "plant": "mini", "start": T0, "events": [event]})
    state = StateService(plant)
    sim = SimService(plant, start_ts=T0, step_s=5.0, speed=400.0, scenario=scenario)
    return plant, state, asyncio.run(_run(mosquitto, site, plant, state, sim, sim_seconds))


def test_pump_failure_raises_and_clears_the_right_alarms(mosquitto: MosquittoServer, site: str,
                                                         tmp_path: Path) -> None:
    _, state, seen = _scenario_run(mosquitto, site, tmp_path, 1800.0, {
        "at": "2m", "kind": "pump_failure", "cdu": "h1-cdu02", "flow_fraction": 0.1, "duration": "10m"})

    raised = {json.loads(p)["alarm_id"] for _, p, _ in seen if p and json.loads(p)["active"]}
    cleared = {json.loads(p)["alarm_id"] for _, p, _ in seen if p and not json.loads(p)["active"]}
    emptied = {t.rsplit("/", 1)[-1] for t, p, _ in seen if not p}
    assert {"flow_low-h1-cdu02", "coolant_return_high-h1-cdu02"} <= raised
    # the loop's energy balance still holds (the heat the pumps no longer carry is stored in the loop, as its
    # rising return): the residual, which looks for heat that does not add up, stays quiet
    assert not any(a.startswith("energy_residual-") for a in raised)
    hot = {a for a in raised if a.startswith("gpu_temp_high-")}
    assert hot and hot <= {f"gpu_temp_high-h1-r{n:03d}" for n in range(7, 13)}  # only the failed CDU's racks
    assert not any("cdu01" in a or any(f"r{n:03d}" in a for n in range(1, 7)) for a in raised)
    # every alarm raised was cleared after the pumps came back, and its retained message removed
    assert raised <= cleared and raised <= emptied
    assert state.alarms.active_count() == 0
    first = json.loads(next(p for _, p, _ in seen if p and json.loads(p)["alarm_id"] == "flow_low-h1-cdu02"))
    assert first["asset"] == "coolant/h1-cdu02" and first["value"] < first["threshold"] == 0.5
    assert T0 + 120 <= first["ts"] <= T0 + 140


def test_a_drifting_return_sensor_raises_the_energy_residual_of_its_cdu_alone(mosquitto: MosquittoServer,
                                                                              site: str, tmp_path: Path) -> None:
    plant, _, seen = _scenario_run(mosquitto, site, tmp_path, 1200.0, {
        "at": "3m", "kind": "sensor_drift", "cdu": "h1-cdu02", "offset_k": 4.0, "duration": "8m"})

    alarms = [json.loads(p) for _, p, _ in seen if p]
    raised = {a["alarm_id"] for a in alarms if a["active"]}
    cleared = {a["alarm_id"] for a in alarms if not a["active"]}
    # a return 4 K high on a 10 K design rise: the meter shows ~40 % more heat than the racks make
    assert raised == {"energy_residual-h1-cdu02"}, raised
    first = next(a for a in alarms if a["active"])
    assert first["value"] > 0.3 and first["threshold"] == plant.alarms.residual_high_fraction
    # on-delay: raised a debounce after the drift began, not before
    on_at = T0 + 180 + plant.alarms.residual_debounce_s
    assert on_at <= first["ts"] <= on_at + 30
    assert cleared == raised  # the sensor reads true again after 8 minutes


def test_restart_from_a_snapshot_resumes_with_the_same_totals(own_mosquitto: MosquittoServer, site: str,
                                                              tmp_path: Path) -> None:
    # a broker of its own: what this test is about is the snapshot, not the shared broker's stock queue
    mosquitto = own_mosquitto
    plant = mini_plant(tmp_path, site)
    snap = tmp_path / "state.npz"
    # an uninterrupted run of 10 minutes of event time
    whole = StateService(plant)
    # the last state that is not a heartbeat: after the run, heartbeats follow at wall-clock pace, so the
    # latest state of each run depends on how long the machine took (the flake of CI, 2026-12-03)
    final: dict[str, PlantState] = {}
    whole.listeners.append(lambda st, _h: None if st.heartbeat else final.__setitem__("whole", st))
    asyncio.run(_run(mosquitto, site, plant, whole, SimService(plant, start_ts=T0, step_s=5.0, speed=400.0), 600))
    # the same telemetry in two halves, with a restart from the snapshot in between
    first = StateService(plant, snapshot_path=snap)
    assert first.restored is not None  # nothing to restore yet
    sim = SimService(plant, start_ts=T0, step_s=5.0, speed=400.0)
    asyncio.run(_run(mosquitto, site, plant, first, sim, 300))
    assert snap.exists()
    second = StateService(plant, snapshot_path=snap)
    second.listeners.append(lambda st, _h: None if st.heartbeat else final.__setitem__("second", st))
    assert second.restored is None
    sim.start_ts += 300  # the simulator goes on where it stopped (its state and seq counters kept)
    asyncio.run(_run(mosquitto, site, plant, second, sim, 300))

    a, b = final.get("whole"), final.get("second")
    assert a is not None and b is not None and a.ts == b.ts
    for key in ("msgs_in", "msgs_rejected", "msgs_duplicate", "seq_gaps", "it_mw", "facility_mw", "erf",
                "heat_reused_mw", "gpus_reporting"):
        assert getattr(b, key) == pytest.approx(getattr(a, key)), key
    assert b.erf is not None and b.erf > 0
