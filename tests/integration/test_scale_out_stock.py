"""Hall workers and the aggregator at the full phase 1 rate (1,629 messages/s at 1 Hz) on the shared broker,
which runs with Mosquitto's stock limits (20 in flight, 1,000 queued per client): every worker takes all of its
racks' and CDUs' messages without a gap, and the aggregator's PlantState has every GPU."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.bus.mqtt import Bus
from tests.conftest import REPO, collect
from tests.servers import MosquittoServer, env_with_venv
from twin.plant import load_plant
from twin.services.sim import SimService

pytestmark = pytest.mark.integration

T0 = 1_795_300_000.0
STEPS = 15


def test_two_hall_workers_and_the_aggregator_keep_up_with_phase1_at_1hz(mosquitto: MosquittoServer, site: str,
                                                                        tmp_path: Path) -> None:
    plant_file = tmp_path / "phase1.toml"
    plant_file.write_text((REPO / "plants" / "phase1.toml").read_text().replace('id = "narvik"', f'id = "{site}"', 1))
    plant = load_plant(plant_file)
    assert plant.site.id == site
    halls = plant.hall_ids
    shares = [",".join(halls[: len(halls) // 2]), ",".join(halls[len(halls) // 2:])]
    common = ["--broker", mosquitto.url, "--plant", str(plant_file), "--data-dir", str(tmp_path / "data")]
    logs = [(tmp_path / f"p{i}.log").open("wb") for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-m", "twin.cli", "run", "state", "--halls", s, *common],
                              env=env_with_venv(), stdout=subprocess.DEVNULL, stderr=logs[i])
             for i, s in enumerate(shares)]
    procs.append(subprocess.Popen([sys.executable, "-m", "twin.cli", "run", "aggregate", *common],
                                  env=env_with_venv(), stdout=subprocess.DEVNULL, stderr=logs[2]))
    workers = ["halls-" + s.replace(",", "-") for s in shares]
    try:
        for h in [f"state-{w}" for w in workers] + ["aggregate"]:
            got = asyncio.run(collect(mosquitto.port, f"stargate/{site}/twin/health/{h}",
                                      lambda ms: ms[-1][1] == b"online", 60))
            assert got and got[-1][1] == b"online", h

        async def run() -> tuple[SimService, list[tuple[str, bytes]]]:
            sim = SimService(plant, start_ts=T0, speed=1.0)
            seen: list[SimService] = []

            def done(ms: list[tuple[str, bytes]]) -> bool:
                if not seen:
                    return False
                last = {t: json.loads(p) for t, p in ms if p.startswith(b"{")}  # not the health topics
                ws = [last.get(f"stargate/{site}/twin/worker/{w}") for w in workers]
                return all(w is not None and w["ts"] >= T0 + STEPS - 2 for w in ws)

            watch = asyncio.create_task(collect(mosquitto.port, f"stargate/{site}/twin/#", done, 120))
            await asyncio.sleep(0.5)
            async with Bus(mosquitto.url, service="sim", site=site) as pb:
                await sim.run(pb, duration_s=STEPS)
                await pb.drain(30)
            seen.append(sim)
            return sim, await watch

        sim, got = asyncio.run(run())
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        for f in logs:
            f.close()
    assert sim.published == STEPS * (1392 + 232 + 2 + 2 + 1)
    last = {t: json.loads(p) for t, p in got if p.startswith(b"{")}
    rack_msgs = 0
    for w in workers:
        ws = last[f"stargate/{site}/twin/worker/{w}"]
        assert ws["seq_gaps"] == 0 and ws["msgs_dropped"] == 0 and ws["msgs_rejected"] == 0, ws
        rack_msgs += ws["msgs_in"] - ws["msgs_duplicate"]
    # the last tick may still be open: every rack and CDU message of the ticks before it was taken
    assert rack_msgs >= (STEPS - 1) * (1392 + 232), rack_msgs
    states = [json.loads(p) for t, p in got if t == f"stargate/{site}/twin/state" and p.startswith(b"{")]
    full = [s for s in states if s["gpus_reporting"] == 100_224 and not s.get("heartbeat")]
    assert len(full) >= STEPS - 5, [s["gpus_reporting"] for s in states]
