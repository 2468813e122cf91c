"""Simulator speed: simulated seconds per wall second for the full plant at 1 s steps, and peak RSS.

Measured in the same run, each against real time (1.0 = real time), and the step against a
baseline of the same run (``baseline_gpu_update_ms``: one bare numpy update of every GPU's
temperature, the least any full-plant step must do; ``step_vs_baseline`` is how many of those a
whole plant step costs):

- ``step``: the step functions alone (``PlantSim.step``), no messages;
- ``step_encode``: steps plus every contract message encoded (1,629 per step for phase 1);
- ``publish_max``: steps, encoding and QoS 1 publishing to a real Mosquitto that the benchmark
  starts itself, as fast as the broker acknowledges;
- ``publish_fast``: the same with :class:`adapters.bus.publisher.FastPublisher` (the lean
  blocking publisher the replayer uses) instead of the asyncio ``Bus``: how fast a full-plant
  ``--speed`` could go;
- ``live_1x``: a live run at ``--speed 1`` for ``--live-seconds``: the process's CPU time per wall
  second (``cpu_cores``; under 1.0 means it publishes the full plant at 1x on less than one core);
- ``log``: ``twin sim --out x.jsonl.gz --step 10s`` for ``--log-hours`` of plant time, in one process
  (``log_jobs1``) and with a worker process per core (``log``): plant time per wall second, and what
  a week would take (``log_week_min``); ``log_parallel_speedup`` is the ratio of the two.

Targets: ``step`` >= 1,000x real time; ``live_1x.cpu_cores`` < 1.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from adapters.bus.mqtt import Bus, parse_broker_url
from adapters.bus.publisher import FastPublisher
from sims.messages import FrameEncoder
from sims.plant_sim import PlantSim
from twin.bench.servers import mosquitto_server
from twin.commands.common import duration, in_unit
from twin.plant import load_plant
from twin.services.sim import SimService
from twin.services.sim_log import DEFLATE, default_jobs, write_log

__all__ = ["register", "run"]

TARGET_X = 1000.0
START = 1_768_176_000.0  # 2026-01-12, a January Monday


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plant", default="phase1", help="plant (default phase1)")
    p.add_argument("--steps", type=int, default=600, help="1 s steps for the step and encode figures")
    p.add_argument("--publish-steps", type=int, default=30, help="1 s steps published at full speed")
    p.add_argument("--live-seconds", type=duration(), default=10.0, help="length of the live 1x run, e.g. 10 or 1m")
    p.add_argument("--no-broker", action="store_true", help="skip the Mosquitto figures")
    p.add_argument("--log-hours", type=in_unit("h", allow_zero=True), default=1.0,
                   help="plant hours written to a 10 s log: hours or 30m (0: skip)")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run(args: argparse.Namespace) -> dict[str, Any]:
    plant = load_plant(args.plant)
    out: dict[str, Any] = {"plant": args.plant, "racks": plant.n_racks, "gpus": plant.gpus_total,
                           "step_s": 1.0}
    rss0 = _rss_mb()

    # baseline, same run: one bare first-order update of every GPU's temperature (float32, numpy)
    shape = (plant.n_racks, plant.rack.gpus)
    t_gpu, p_gpu = np.full(shape, 60.0, np.float32), np.full(shape, 1000.0, np.float32)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        t_gpu = t_gpu * np.float32(0.8) + p_gpu * np.float32(0.006)
    base = (time.perf_counter() - t0) / args.steps
    out["baseline_gpu_update_ms"] = round(base * 1e3, 3)

    sim = PlantSim(plant, seed=0, start_ts=START)
    sim.step(START)
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(1, args.steps + 1):
        sim.step(START + k)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out["step_x_real_time"] = round(args.steps / wall, 1)
    out["step_x_real_time_per_cpu_s"] = round(args.steps / cpu, 1)  # less sensitive to others' load
    out["step_ms"] = round(wall / args.steps * 1e3, 3)
    out["step_vs_baseline"] = round(wall / args.steps / base, 2)
    out["step_rss_mb"] = round(_rss_mb(), 1)

    enc = FrameEncoder(plant)
    n_enc = max(args.steps // 10, 10)
    msgs = 0
    t0 = time.perf_counter()
    for k in range(n_enc):
        msgs += sum(1 for _ in enc.all(sim.step(START + args.steps + 1 + k)))
    wall = time.perf_counter() - t0
    out["messages_per_step"] = msgs // n_enc
    out["step_encode_x_real_time"] = round(n_enc / wall, 2)
    out["encode_ms"] = round(wall / n_enc * 1e3 - out["step_ms"], 3)

    if not args.no_broker:
        with tempfile.TemporaryDirectory(prefix="twin-bench-sim-") as tmp, mosquitto_server(Path(tmp)) as port:
            url = f"mqtt://127.0.0.1:{port}"
            out.update(asyncio.run(_publish(plant, url, args)))
            out.update(_publish_fast(plant, url, args))
    if args.log_hours > 0:
        out.update(_log(plant, args.log_hours))
    out["peak_rss_mb"] = round(_rss_mb(), 1)
    out["rss_at_start_mb"] = round(rss0, 1)
    out["target_step_x_real_time"] = TARGET_X
    out["meets_step_target"] = out["step_x_real_time"] >= TARGET_X
    if "live_1x_cpu_cores" in out:
        out["meets_live_target"] = out["live_1x_cpu_cores"] < 1.0 and out["live_1x_behind_s"] < 2.0
    return out


async def _publish(plant: Any, url: str, args: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {}
    async with Bus(url, service="bench-sim", site=plant.site.id, health=False) as bus:
        svc = SimService(plant, seed=0, start_ts=START, step_s=1.0)
        svc.messages_for_step(0, START)
        t0 = time.perf_counter()
        n = 0
        for k in range(1, args.publish_steps + 1):
            n += await bus.publish_many(svc.messages_for_step(k, START + k), qos=1)
        wall = time.perf_counter() - t0
        res["publish_max_x_real_time"] = round(args.publish_steps / wall, 2)
        res["publish_max_msgs_per_s"] = round(n / wall)
        live = SimService(plant, seed=0, start_ts=START, step_s=1.0, speed=1.0)
        c0, w0 = time.process_time(), time.perf_counter()
        await live.run(bus, duration_s=args.live_seconds)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        res["live_1x_seconds"] = round(wall, 2)
        res["live_1x_messages"] = live.published
        res["live_1x_cpu_cores"] = round(cpu / wall, 3)
        res["live_1x_behind_s"] = round(live.behind_s, 3)
    return res


def _publish_fast(plant: Any, url: str, args: argparse.Namespace) -> dict[str, Any]:
    svc = SimService(plant, seed=0, start_ts=START, step_s=1.0)
    with FastPublisher(parse_broker_url(url), window=1000) as pub:
        t0 = time.perf_counter()
        n = 0
        for k in range(args.publish_steps):
            for topic, payload in svc.messages_for_step(k, START + k):
                pub.publish(topic, payload, qos=1, batch=True)
                n += 1
        pub.flush()
        wall = time.perf_counter() - t0
    return {"publish_fast_x_real_time": round(args.publish_steps / wall, 2),
            "publish_fast_msgs_per_s": round(n / wall)}


def _log(plant: Any, hours: float) -> dict[str, Any]:
    """A 10 s-step gzip log of ``hours`` of plant time, in one process and with a worker per core."""
    out: dict[str, Any] = {"log_hours": hours, "log_deflate": DEFLATE, "log_jobs": default_jobs()}
    with tempfile.TemporaryDirectory(prefix="twin-bench-log-") as tmp:
        for key, jobs in (("log_jobs1", 1), ("log", default_jobs())):
            path = Path(tmp) / f"{key}.jsonl.gz"
            t0 = time.perf_counter()
            n = write_log(plant, path, start_ts=START, duration_s=hours * 3600, step_s=10.0, jobs=jobs)
            wall = time.perf_counter() - t0
            out[f"{key}_x_real_time"] = round(hours * 3600 / wall, 1)
            out[f"{key}_msgs_per_s"] = round(n / wall)
            out[f"{key}_week_min"] = round(7 * 86400 / (hours * 3600 / wall) / 60, 1)
            out["log_mb_per_plant_hour"] = round(path.stat().st_size / 1e6 / hours, 1)
            path.unlink()
    out["log_parallel_speedup"] = round(out["log_x_real_time"] / out["log_jobs1_x_real_time"], 2)
    return out
