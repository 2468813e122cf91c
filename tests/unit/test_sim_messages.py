"""The simulator's messages obey the wire contract; its log lines are the contract's telemetry log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from adapters.telemetry_log import encode_line, iter_log
from sims.messages import FrameEncoder
from sims.plant_sim import PlantSim
from twin.ingest import Decoded, Decoder
from twin.plant import Plant
from twin.services.sim import SimService, log_line, write_log


def test_every_message_of_a_full_plant_frame_is_valid_telemetry(phase1: Plant) -> None:
    sim = PlantSim(phase1, seed=1, start_ts=1.8e9)
    enc = FrameEncoder(phase1)
    dec = Decoder(phase1)
    for k in range(2):
        msgs = list(enc.all(sim.step(1.8e9 + k)))
        assert len(msgs) == phase1.n_racks + len(phase1.cdu_ids) + 2 + 2 + 1
        assert len({t for t, _ in msgs}) == len(msgs)
        for topic, payload in msgs:
            d = dec.decode(topic, payload)
            assert isinstance(d, Decoded), (topic, d)
            assert orjson.loads(payload)["seq"] == k
    cdu = orjson.loads(dict(msgs)[f"stargate/narvik/coolant/{phase1.cdu_ids[0]}"])
    assert cdu["fws_return_c"] < cdu["return_c"] and cdu["fws_supply_c"] < cdu["supply_c"]
    amb = orjson.loads(dict(msgs)["stargate/narvik/ambient/kvandal"])
    assert 0 <= amb["humidity_pct"] <= 100 and amb["wind_ms"] >= 0


def test_rack_every_spreads_racks_over_steps(small_plant: Plant) -> None:
    svc = SimService(small_plant, start_ts=1.8e9, rack_every=2)
    racks = [[t for t, _ in svc.messages_for_step(k, 1.8e9 + k) if "/gpu/" in t] for k in range(2)]
    assert len(racks[0]) + len(racks[1]) == small_plant.n_racks
    assert not set(racks[0]) & set(racks[1])


def test_log_lines_are_byte_identical_to_the_shared_log_encoder(small_plant: Plant) -> None:
    svc = SimService(small_plant, start_ts=1.8e9)
    for topic, payload in svc.messages_for_step(0, 1.8e9 + 0.5):
        assert log_line(1.8e9 + 0.5, topic, payload) == encode_line(1.8e9 + 0.5, topic, payload)
    assert log_line(3.0, "a/b", b"{}", qos=0, retain=True) == encode_line(3.0, "a/b", b"{}", 0, True)


def test_frames_already_handed_out_never_change(small_plant: Plant) -> None:
    sim = PlantSim(small_plant, seed=2, start_ts=1.8e9)
    first = sim.step(1.8e9)
    kept = {name: getattr(first, name).copy() for name in ("gpu_power_w", "gpu_util", "gpu_temp_c", "aux_power_w",
                                                            "cdu_return_c", "cdu_flow_lps", "feeder_import_mw")}
    for k in range(1, 5):
        sim.step(1.8e9 + k)
    for name, arr in kept.items():
        assert np.array_equal(getattr(first, name), arr), name


def test_write_log_reports_progress_and_thins_racks(small_plant: Plant, tmp_path: Path) -> None:
    seen: list[float] = []
    n = write_log(small_plant, tmp_path / "x.jsonl", start_ts=1.8e9, duration_s=60, step_s=10, rack_every=2,
                  progress=seen.append)
    lines = list(iter_log(tmp_path / "x.jsonl"))
    # per step: 2 feeders, 1 exchanger, 1 weather station; 4 CDUs and 8 racks, each every other step
    assert n == len(lines) == 6 * 4 + 6 * 4 // 2 + 6 * 8 // 2
    assert seen[-1] == 60.0
    assert [line["t"] for line in lines] == sorted(line["t"] for line in lines)  # event-time order
