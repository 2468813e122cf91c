"""The simulator's messages obey the wire contract; its log lines are the contract's telemetry log."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson
import pytest

from adapters.logs.telemetry_log import encode_line, iter_log
from sims.messages import FrameEncoder, log_line
from sims.plant_sim import PlantSim
from twin.live.decode import Decoded, Decoder
from twin.plant import Plant
from twin.services import sim_log
from twin.services.sim import SimService
from twin.services.sim_log import write_log


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


def test_rack_lines_are_the_log_lines_of_the_rack_messages(small_plant: Plant) -> None:
    frame = PlantSim(small_plant, seed=3, start_ts=1.8e9).step(1.8e9 + 0.25)
    one, two = FrameEncoder(small_plant), FrameEncoder(small_plant)
    messages = list(one.racks(frame))
    assert two.rack_lines(frame) == [log_line(frame.ts, topic, payload) for topic, payload in messages]
    assert len(messages) == small_plant.n_racks


@pytest.mark.parametrize("every", [1, 3])
def test_seek_gives_the_seq_of_a_sequential_run(small_plant: Plant, every: int) -> None:
    """Steps encoded out of order (as the log writer's worker processes do) equal a run in order."""
    sim = PlantSim(small_plant, seed=4, start_ts=1.8e9)
    frames = [sim.step(1.8e9 + 10 * k) for k in range(7)]
    in_order = FrameEncoder(small_plant)
    expected = [in_order.step_lines(f, k, every) for k, f in enumerate(frames)]
    jumping = FrameEncoder(small_plant)
    for k in (5, 0, 6, 2, 1, 4, 3):
        jumping.seek(k, every)
        assert jumping.step_lines(frames[k], k, every) == expected[k], k
    seqs = [orjson.loads(line)["payload"]["seq"] for line in expected[6] if b"/gpu/" in line]
    assert seqs == [6 // every] * len(seqs)


@pytest.mark.parametrize("name", ["x.jsonl", "x.jsonl.gz"])
def test_write_log_is_byte_identical_whatever_the_workers(small_plant: Plant, tmp_path: Path, name: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_log, "CHUNK_MESSAGES", 40)  # several chunks (gzip members) for a small plant
    kw = dict(start_ts=1.8e9, duration_s=300, step_s=10, seed=5, rack_every=2)
    n1 = write_log(small_plant, tmp_path / f"1-{name}", jobs=1, **kw)
    n2 = write_log(small_plant, tmp_path / f"2-{name}", jobs=2, **kw)
    one, two = (tmp_path / f"1-{name}").read_bytes(), (tmp_path / f"2-{name}").read_bytes()
    assert n1 == n2 and one == two
    text = gzip.decompress(one) if name.endswith(".gz") else one
    if name.endswith(".gz"):
        assert one.count(b"\x1f\x8b\x08") >= 3  # several members, read as one stream
    lines = list(iter_log(tmp_path / f"2-{name}"))
    assert len(lines) == n1 == text.count(b"\n")
    racks = [line for line in lines if "/gpu/" in line["topic"]]
    by_topic: dict[str, list[int]] = {}
    for line in racks:
        by_topic.setdefault(line["topic"], []).append(line["payload"]["seq"])
    assert len(by_topic) == small_plant.n_racks
    assert all(s == list(range(len(s))) for s in by_topic.values())  # every rack's seq 0, 1, 2, ... no gap
