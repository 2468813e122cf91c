"""Replay throughput: full-plant rack messages/s at --speed max into Mosquitto, QoS 1, against baselines.

Starts its own Mosquitto (``/usr/sbin/mosquitto``) on a free port, writes a telemetry log
of full-plant rack messages (phase 1: 1,392 racks x 72 GPUs, about 1.4 KB each) from the
simulator, and measures, in the same run:

- ``replay_jsonl`` / ``replay_gz``: the replay path as ``twin replay --speed max`` runs it
  (read the log, set ``source: replay``, publish QoS 1 with a bounded in-flight window,
  wait for every PUBACK), from a plain and a gzip log;
- ``fastpub``: the same publisher with the payloads already in memory (the publish path alone);
- ``paho``: a bare paho-mqtt 2 publisher, single-threaded, same window, payloads in memory;
- ``mosquitto_pub``: ``mosquitto_pub -l -q 1`` (C, one message per stdin line), the ceiling.

Rates are messages/s from the first publish to the last acknowledgement; each is the
median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.bus.mqtt import parse_broker_url
from adapters.bus.publisher import FastPublisher
from adapters.logs.replay import Replayer, ReplayOptions
from adapters.logs.telemetry_log import TelemetryLogWriter
from twin.bench.servers import mosquitto_server
from twin.topics import Topics

__all__ = ["register", "run"]

FULL_PLANT_MSGS_PER_S = 1630  # phase 1 at 1 Hz: racks + CDUs + feeders + exchangers + weather
TARGET = 20_000


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--messages", type=int, default=40_000, help="rack messages per run (default 40,000)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the median counts")
    p.add_argument("--window", type=int, default=1000, help="QoS 1 messages in flight (default 1000)")
    p.add_argument("--plant", default="phase1", help="plant whose racks are replayed (default phase1)")


def _rack_messages(plant_name: str, n: int, start_ts: float = 1_795_300_000.0) -> list[tuple[float, str, bytes]]:
    from sims.messages import FrameEncoder
    from sims.plant_sim import PlantSim
    from twin.plant import load_plant

    plant = load_plant(plant_name)
    sim, enc = PlantSim(plant, seed=1, start_ts=start_ts), FrameEncoder(plant)
    out: list[tuple[float, str, bytes]] = []
    k = 0
    while len(out) < n:
        ts = start_ts + k
        f = sim.step(ts)
        out.extend((ts, topic, payload) for topic, payload in enc.racks(f))
        k += 1
    return out[:n]


def _median(runs: list[float]) -> float:
    return round(statistics.median(runs), 1)


def _repeat(fn: Callable[[], float], times: int) -> float:
    return _median([fn() for _ in range(max(1, times))])


def run(args: argparse.Namespace) -> dict[str, Any]:
    n, window = args.messages, args.window
    msgs = _rack_messages(args.plant, n)
    mean_bytes = sum(len(p) for _, _, p in msgs) / len(msgs)
    with tempfile.TemporaryDirectory(prefix="twin-bench-replay-") as tmp, mosquitto_server(Path(tmp)) as port:
        url = f"mqtt://127.0.0.1:{port}"
        logs = {}
        for name in ("jsonl", "jsonl.gz"):
            path = Path(tmp) / f"racks.{name}"
            with TelemetryLogWriter(path) as w:
                for ts, topic, payload in msgs:
                    w.write(ts, topic, payload)
            logs[name] = path

        def replay(path: Path) -> Callable[[], float]:
            def once() -> float:
                pub = FastPublisher(parse_broker_url(url), window=window)
                pub.connect()
                st = Replayer([path], ReplayOptions(speed=None)).run(pub)
                pub.close()
                if st.published != n or pub.acked != n:
                    raise RuntimeError(f"replay published {st.published}, acked {pub.acked} of {n}")
                return st.published / st.elapsed_s

            return once

        def fastpub() -> float:
            pub = FastPublisher(parse_broker_url(url), window=window)
            pub.connect()
            t0 = time.perf_counter()
            for _, topic, payload in msgs:
                pub.publish(topic, payload, 1, False, batch=True)
            ok = pub.flush(60)
            dt = time.perf_counter() - t0
            pub.close()
            if not ok or pub.acked != n:
                raise RuntimeError(f"fastpub: {pub.acked} of {n} acknowledged")
            return n / dt

        def paho() -> float:
            import paho.mqtt.client as mqtt

            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            acked = [0]

            def on_publish(*_: object) -> None:
                acked[0] += 1

            c.on_publish = on_publish
            c.max_inflight_messages_set(0)  # paho's own limit walks its table on every ack: bound it here
            c.connect("127.0.0.1", port)
            while not c.is_connected():
                c.loop(0.1)
            sock = c.socket()
            assert sock is not None
            t0 = time.perf_counter()
            for sent, (_, topic, payload) in enumerate(msgs):
                while sent - acked[0] >= window:
                    select.select([sock], [], [], 0.1)
                    c.loop_read()
                c.publish(topic, payload, qos=1)
            while acked[0] < n:
                select.select([sock], [], [], 0.1)
                c.loop_read()
            dt = time.perf_counter() - t0
            c.disconnect()
            return n / dt

        def mosquitto_pub() -> float:
            exe = shutil.which("mosquitto_pub")
            if exe is None:
                return float("nan")
            data = b"".join(p + b"\n" for _, _, p in msgs)
            t0 = time.perf_counter()
            subprocess.run([exe, "-p", str(port), "-t", Topics("bench").gpu("h1", "h1-r001"), "-q", "1", "-l",
                            "-M", str(window)], input=data, check=True, timeout=300)
            return n / (time.perf_counter() - t0)

        r = {
            "replay_jsonl": _repeat(replay(logs["jsonl"]), args.repeat),
            "replay_gz": _repeat(replay(logs["jsonl.gz"]), args.repeat),
            "fastpub": _repeat(fastpub, args.repeat),
            "paho": _repeat(paho, args.repeat),
            "mosquitto_pub": _repeat(mosquitto_pub, args.repeat),
        }
    best = r["replay_jsonl"]
    return {
        "bench": "replay",
        "messages": n,
        "payload_bytes_mean": round(mean_bytes),
        "window": window,
        "cpus": os.cpu_count(),
        "msgs_per_s": r,
        "replay_vs_mosquitto_pub": round(best / r["mosquitto_pub"], 2),
        "replay_vs_paho": round(best / r["paho"], 2),
        "replay_gz_vs_mosquitto_pub": round(r["replay_gz"] / r["mosquitto_pub"], 2),
        "full_plant_realtime_x": round(best / FULL_PLANT_MSGS_PER_S, 1),
        "target_msgs_per_s": TARGET,
        "meets_target": best >= TARGET,
    }
