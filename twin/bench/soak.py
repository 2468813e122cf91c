"""Soak: the plant at 1 Hz through the whole stack for N minutes; loss (must be 0) and memory growth.

Starts its own Mosquitto and VictoriaMetrics, then the services as a user runs them, each its
own process: ``twin run state``, ``twin run sink`` (into VictoriaMetrics) and ``twin sim``
publishing the full plant at real time. It watches every PlantState on MQTT, samples the
resident memory of the state and sink processes, and at the end reports:

- telemetry lost: messages missing by ``seq`` in the state (``seq_gaps``), dropped on overload
  (``msgs_dropped``), refused (``msgs_rejected``), and GPUs not reporting in the last state;
- points lost: PlantStates published on MQTT that are not in VictoriaMetrics;
- RSS growth of each service from the end of the warm-up (the first fifth) to the end, in %
  (required: under 10 %).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from twin.bench.servers import mosquitto_server, victoria_metrics, victoria_timestamps
from twin.commands.common import duration, in_unit
from twin.topics import Topics

__all__ = ["register", "run"]


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=in_unit("m"), default=10.0, help="length of the run: minutes or 1h (default 10)")
    p.add_argument("--plant", default="phase1", help="plant (default phase1)")
    p.add_argument("--sample-s", type=duration(), default=5.0, help="memory sampling period (default 5 s)")


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _watch(port: int, site: str, states: list[dict[str, Any]], stop: threading.Event) -> None:
    import paho.mqtt.client as mqtt

    def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        if m.payload:
            states.append(json.loads(m.payload))

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.on_connect = lambda cl, *a: cl.subscribe(Topics(site).state, qos=1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    stop.wait()
    c.loop_stop()
    c.disconnect()


def _vm_count(url: str, site: str) -> int:
    return len(victoria_timestamps(url, f'{{__name__="plant_state_it_mw",site="{site}"}}', timeout=60))


def _growth(samples: list[float]) -> float | None:
    if len(samples) < 5:
        return None
    base = samples[max(len(samples) // 5, 1) - 1]
    return round(100.0 * (max(samples[-max(len(samples) // 3, 1):]) - base) / base, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from twin.plant import load_plant

    plant = load_plant(args.plant)
    site = plant.site.id
    seconds = int(args.minutes * 60)
    twin = [sys.executable, "-m", "twin.cli"]
    with tempfile.TemporaryDirectory(prefix="twin-bench-soak-") as tmp, mosquitto_server(Path(tmp)) as port, \
            victoria_metrics(Path(tmp)) as vm:
        broker = f"mqtt://127.0.0.1:{port}"
        env = dict(os.environ, TWIN_INFLUX_TOKEN="soak-token")
        common = ["--broker", broker, "--plant", args.plant, "--data-dir", str(Path(tmp) / "data")]
        state = subprocess.Popen([*twin, "run", "state", *common], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        sink = subprocess.Popen([*twin, "run", "sink", *common, "--influx-url", vm], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        states: list[dict[str, Any]] = []
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(port, site, states, stop), daemon=True)
        watcher.start()
        time.sleep(5)  # services connected and subscribed
        sim = subprocess.Popen([*twin, "sim", "--broker", broker, "--plant", args.plant, "--speed", "1",
                                "--duration", f"{seconds}s", "--no-progress"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        rss: dict[str, list[float]] = {"state": [], "sink": []}
        t0 = time.monotonic()
        while sim.poll() is None and time.monotonic() - t0 < seconds + 120:
            for name, proc in (("state", state), ("sink", sink)):
                v = _rss_mb(proc.pid)
                if v is not None:
                    rss[name].append(v)
            time.sleep(args.sample_s)
        sim_rc = sim.wait(60)
        time.sleep(8)  # the last window is flushed, the sink writes it
        stop.set()
        for proc in (state, sink):
            proc.terminate()
        for proc in (state, sink):
            proc.wait(60)
        watcher.join(10)
        time.sleep(3)
        in_vm = _vm_count(vm, site)
    real = [s for s in states if float(s["ts"]).is_integer()]  # tick states (heartbeats have fractional ts)
    last = real[-1] if real else {}
    published = len({s["ts"] for s in real})
    return {
        "plant": args.plant, "minutes": args.minutes, "sim_exit": sim_rc,
        "states_published": published,
        "telemetry_msgs_in": last.get("msgs_in"),
        "telemetry_lost_seq_gaps": last.get("seq_gaps"),
        "telemetry_dropped_overload": last.get("msgs_dropped"),
        "telemetry_rejected": last.get("msgs_rejected"),
        "gpus_reporting_at_end": last.get("gpus_reporting"), "gpus_total": last.get("gpus_total"),
        "points_in_victoriametrics": in_vm,
        "points_lost": published - in_vm if published >= in_vm else 0,
        "rss_state_mb": {"start": round(rss["state"][0], 1) if rss["state"] else None,
                         "end": round(rss["state"][-1], 1) if rss["state"] else None,
                         "growth_after_warmup_pct": _growth(rss["state"])},
        "rss_sink_mb": {"start": round(rss["sink"][0], 1) if rss["sink"] else None,
                        "end": round(rss["sink"][-1], 1) if rss["sink"] else None,
                        "growth_after_warmup_pct": _growth(rss["sink"])},
    }
