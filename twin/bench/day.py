"""A day of plant history: recorded from a live simulated run, replayed at max through the twin, nothing lost.

Starts its own Mosquitto (``max_queued_messages 1000000``, ``max_inflight_messages 0``, as
``deploy/mosquitto`` does) and VictoriaMetrics, then, each step a process as a user runs it:

1. record: ``twin record --out day.jsonl.gz`` while ``twin sim --scenario phase1 --step 10s
   --rack-every N --speed X`` publishes ``--hours`` of the full plant live into the broker (event
   time ending before now, so the twin's future-time check passes). The log is then checked to hold
   every message the simulator published: each topic's count against the simulator's own schedule
   (the same ``SimService`` run for ``N`` steps gives the topics of each step), and ``seq`` running
   from 0 without a break on every topic;
2. replay: ``twin run state``, ``twin run sink`` (into VictoriaMetrics) and ``twin run forecast``,
   then ``twin replay day.jsonl.gz --speed max --pace-by-state LAG``. Nothing lost means: the state
   service's ``msgs_in`` equals the log's message count with ``seq_gaps``, ``msgs_duplicate``,
   ``msgs_rejected`` and ``msgs_dropped`` 0; one PlantState per simulator step (the twin's tick
   windows with telemetry) in VictoriaMetrics; forecasts issued.

Figures: messages, record and replay wall time and msgs/s, plant-seconds per wall-second, the
state's counters, points in VictoriaMetrics and the peak RSS (``VmHWM``) of every process.

The pacing lag must exceed the step: with 10 s steps each tick's PlantState comes when the next
step's first message arrives, so a lag under one step stalls the replay until the state service's
idle heartbeats move event time on (the default is three steps).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twin.bench.servers import mosquitto_server, stop_process, victoria_metrics, victoria_timestamps
from twin.commands.common import duration, in_unit
from twin.topics import Topics

__all__ = ["expected_counts", "register", "run", "verify_log"]

TWIN = [sys.executable, "-m", "twin.cli"]


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hours", type=in_unit("h"), default=24.0,
                   help="plant history to record and replay: hours or 90m, 1d (default 24)")
    p.add_argument("--scenario", default="phase1", help="simulator scenario (default phase1: the full plant)")
    p.add_argument("--step", type=duration(), default=10.0, help="simulator step, e.g. 10 or 10s (default 10 s)")
    p.add_argument("--rack-every", type=int, default=6, help="each rack and CDU reports every N steps (default 6)")
    p.add_argument("--sim-speed", type=float, default=150.0,
                   help="plant seconds per wall second of the live run that is recorded (default 150)")
    p.add_argument("--pace-lag", type=duration(), help="--pace-by-state lag of event time (default 3 steps)")
    p.add_argument("--workdir", help="keep the log and the services' output here (default: a temporary dir)")


# ----------------------------------------------------------------------------- what the log must hold


def expected_counts(scenario_name: str, step_s: float, rack_every: int, steps: int) -> dict[str, int]:
    """Messages per topic that ``twin sim`` publishes in ``steps`` steps: its own schedule, from its own code."""
    from sims.scenario import load_scenario
    from twin.plant import load_plant
    from twin.services.sim import SimService

    scenario = load_scenario(scenario_name)
    sim = SimService(load_plant(scenario.plant), seed=scenario.seed, start_ts=scenario.start, step_s=step_s,
                     rack_every=rack_every, scenario=scenario)
    counts: dict[str, int] = {}
    for phase in range(min(rack_every, steps)):
        times = len(range(phase, steps, rack_every))  # steps k with k % rack_every == phase
        for topic, _ in sim.messages_for_step(phase, scenario.start + phase * step_s):
            counts[topic] = counts.get(topic, 0) + times
    return counts


def verify_log(path: Path, expected: dict[str, int]) -> dict[str, Any]:
    """Read the whole log: per-topic counts against ``expected`` and ``seq`` from 0 without a break."""
    from adapters.logs.telemetry_log import LogError, LogReader

    counts: dict[str, int] = {}
    next_seq: dict[str, int] = {}
    seq_breaks = bad_lines = 0
    first_ts = last_ts = None
    for rec in LogReader(path):
        if isinstance(rec, LogError):
            bad_lines += 1
            continue
        topic = rec.topic
        counts[topic] = counts.get(topic, 0) + 1
        p = rec.payload if isinstance(rec.payload, dict) else {}
        seq, ts = p.get("seq"), p.get("ts")
        if seq != next_seq.get(topic, 0):
            seq_breaks += 1
        next_seq[topic] = (seq if isinstance(seq, int) else -2) + 1
        if isinstance(ts, int | float):
            first_ts = ts if first_ts is None else min(first_ts, ts)
            last_ts = ts if last_ts is None else max(last_ts, ts)
    wrong = sorted(t for t in expected.keys() | counts.keys() if counts.get(t, 0) != expected.get(t, 0))
    return {"messages": sum(counts.values()), "expected": sum(expected.values()), "topics": len(counts),
            "topics_expected": len(expected), "topics_with_wrong_count": len(wrong), "wrong_examples": wrong[:5],
            "seq_breaks": seq_breaks, "bad_lines": bad_lines, "first_ts": first_ts, "last_ts": last_ts}


# ----------------------------------------------------------------------------- processes


class _Peaks:
    """Peak resident memory (``VmHWM``) and CPU seconds of named processes, sampled until they exit."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.peak_mb: dict[str, float] = {}
        self.cpu_s: dict[str, float] = {}
        self._tick = os.sysconf("SC_CLK_TCK")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def add(self, name: str, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.procs[name] = proc
        return proc

    def sample(self, name: str) -> None:
        proc = self.procs[name]
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), int(line.split()[1]) / 1024)
            stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            self.cpu_s[name] = (int(stat[11]) + int(stat[12])) / self._tick  # utime + stime
        except (OSError, ValueError, IndexError):
            pass

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            for name, proc in list(self.procs.items()):
                if proc.poll() is None:
                    self.sample(name)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen([*TWIN, *args], stdout=fh, stderr=subprocess.STDOUT, env=env)


def _tail(log: Path, n: int = 2000) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _wait_for(cond: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None,
              log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited ({proc.returncode}): {_tail(log) if log else ''}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s: {_tail(log) if log else ''}")
        time.sleep(0.2)


class _Watcher:
    """The twin's outputs on MQTT: services online, the latest tick PlantState, forecasts issued."""

    def __init__(self, port: int, site: str) -> None:
        import paho.mqtt.client as mqtt

        self.prefix = Topics(site).twin_prefix
        self.online: set[str] = set()
        self.latest: dict[str, Any] | None = None
        self.states = 0
        self.forecasts = 0
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.on_connect = lambda cl, *a: cl.subscribe(self.prefix + "#", qos=1)
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def _on_message(self, client: object, userdata: object, m: Any) -> None:
        rest = m.topic[len(self.prefix):]
        if rest.startswith("health/") and m.payload == b"online":
            self.online.add(rest[len("health/"):])
        elif rest == "state" and m.payload and not m.retain:
            s = json.loads(m.payload)
            self.states += 1
            if self.latest is None or s["ts"] >= self.latest["ts"]:
                self.latest = s
        elif rest.startswith("forecast/") and m.payload and not m.retain:
            self.forecasts += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _online(watcher: _Watcher, service: str) -> Callable[[], bool]:
    return lambda: service in watcher.online


# ----------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sims.scenario import load_scenario
    from twin.plant import load_plant

    if args.rack_every < 1 or args.step <= 0 or args.hours <= 0 or args.sim_speed <= 0:
        raise SystemExit("twin bench day: --hours, --step, --sim-speed must be > 0 and --rack-every >= 1")
    scenario = load_scenario(args.scenario)
    plant = load_plant(scenario.plant)
    site = plant.site.id
    step = args.step
    steps = math.ceil(args.hours * 3600 / step)
    span = steps * step
    lag = args.pace_lag if args.pace_lag is not None else 3 * step
    # event time ends ten minutes before now: the state service refuses telemetry from the future
    start = math.floor((time.time() - span - 600) / step) * step
    expected = expected_counts(args.scenario, step, args.rack_every, steps)
    n_expected = sum(expected.values())
    env = dict(os.environ, TWIN_INFLUX_TOKEN="bench-day")
    env.pop("TWIN_BROKER", None)
    checks: dict[str, bool] = {}
    out: dict[str, Any] = {
        "bench": "day", "scenario": args.scenario, "plant": scenario.plant, "gpus": plant.gpus_total,
        "racks": plant.n_racks, "hours": args.hours, "step_s": step, "steps": steps, "rack_every": args.rack_every,
        "sim_speed": args.sim_speed, "pace_lag_s": lag, "cpus": os.cpu_count(),
    }
    peaks = _Peaks()
    with tempfile.TemporaryDirectory(prefix="twin-bench-day-") as tmp, mosquitto_server(Path(tmp)) as port:
        work = Path(args.workdir) if args.workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        broker = f"mqtt://127.0.0.1:{port}"
        log_path = work / "day.jsonl.gz"
        log_path.unlink(missing_ok=True)

        # 1. record a live run -------------------------------------------------------------------
        rec_log = work / "record.log"
        recorder = peaks.add("record", _spawn(
            ["record", "--broker", broker, "--topic", f"{Topics(site).root}/#", "--out", str(log_path),
             "--count", str(n_expected), "--log-level", "INFO"], rec_log, env))
        _wait_for(lambda: "twin record: recording" in _tail(rec_log, 100_000), 120, "recorder start",
                  recorder, rec_log)
        sim_log = work / "sim.log"
        t0 = time.monotonic()
        sim = peaks.add("sim", _spawn(
            ["sim", "--scenario", args.scenario, "--broker", broker, "--step", f"{step:g}s",
             "--rack-every", str(args.rack_every), "--speed", f"{args.sim_speed:g}", "--start", f"{start:.0f}",
             "--duration", f"{span:g}s", "--no-progress"], sim_log, env))
        nominal = span / args.sim_speed
        sim_rc = sim.wait(timeout=max(600.0, 20 * nominal))
        sim_s = time.monotonic() - t0
        if sim_rc != 0:
            stop_process(recorder)
            raise RuntimeError(f"twin sim failed ({sim_rc}): {_tail(sim_log)}")
        try:  # the recorder stops by itself at --count; give it time to drain what the broker holds for it
            recorder.wait(timeout=max(120.0, sim_s))
        except subprocess.TimeoutExpired:
            recorder.send_signal(2)  # SIGINT: it closes the gzip log properly
            recorder.wait(60)
        record_s = time.monotonic() - t0
        if not log_path.exists():
            raise RuntimeError(f"no log recorded: {_tail(rec_log)}")
        tv = time.monotonic()
        log = verify_log(log_path, expected)
        verify_s = time.monotonic() - tv
        n = log["messages"]
        checks["recorded_every_message"] = (n == n_expected and log["topics_with_wrong_count"] == 0
                                            and log["bad_lines"] == 0)
        checks["recorded_seq_unbroken"] = log["seq_breaks"] == 0
        out["record"] = {
            "messages": n, "expected": n_expected, "topics": log["topics"],
            "topics_with_wrong_count": log["topics_with_wrong_count"], "seq_breaks": log["seq_breaks"],
            "bad_lines": log["bad_lines"], "log_mb": round(log_path.stat().st_size / 1e6, 1),
            "sim_wall_s": round(sim_s, 1), "wall_s": round(record_s, 1), "msgs_per_s": round(n / record_s),
            "plant_s_per_wall_s": round(span / record_s, 1), "recorder_exit": recorder.returncode,
            "verify_s": round(verify_s, 1),
        }

        # 2. replay it at max through the twin ----------------------------------------------------
        with victoria_metrics(Path(tmp)) as vm:
            common = ["--broker", broker, "--plant", scenario.plant, "--data-dir", str(work / "data")]
            watcher = _Watcher(port, site)
            services = {
                "state": peaks.add("state", _spawn(["run", "state", *common], work / "state.log", env)),
                "sink": peaks.add("sink", _spawn(["run", "sink", *common, "--influx-url", vm], work / "sink.log",
                                                 env)),
                "forecast": peaks.add("forecast", _spawn(["run", "forecast", *common[:4]], work / "forecast.log",
                                                         env)),
            }
            try:
                for name, proc in services.items():
                    _wait_for(_online(watcher, name), 120, f"twin run {name} online", proc, work / f"{name}.log")
                replay_log = work / "replay.log"
                t1 = time.monotonic()
                replay = peaks.add("replay", _spawn(
                    ["replay", str(log_path), "--broker", broker, "--speed", "max", "--pace-by-state", f"{lag:g}",
                     "--no-progress"], replay_log, env))
                replay_rc = replay.wait(timeout=max(1800.0, n / 200))
                replay_s = time.monotonic() - t1
                m = re.search(r"replayed ([\d,]+) messages", _tail(replay_log))
                replayed = int(m.group(1).replace(",", "")) if m else None
                if replay_rc != 0:
                    raise RuntimeError(f"twin replay failed ({replay_rc}): {_tail(replay_log)}")
                last_ts = log["last_ts"]

                def final() -> bool:
                    s = watcher.latest
                    return s is not None and s["ts"] >= last_ts and s["msgs_in"] >= n

                # the last tick's window closes on the state service's idle flush (a shortfall shows in the checks)
                with contextlib.suppress(RuntimeError):
                    _wait_for(final, 120, "the final PlantState", services["state"], work / "state.log")
                drain_s = time.monotonic() - t1
                state = watcher.latest or {}
                for name in services:
                    peaks.sample(name)
                # every tick state in VictoriaMetrics: the sink's writes land within seconds
                match = f'{{__name__="plant_state_it_mw",site="{site}"}}'
                grid: set[int] = set()
                stored: list[int] = []
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    stored = victoria_timestamps(vm, match)
                    grid = {t for t in stored if start * 1000 <= t <= last_ts * 1000 and (t - start * 1000)
                            % round(step * 1000) == 0}
                    if len(grid) >= steps:
                        break
                    time.sleep(2)
                forecast_points = len(victoria_timestamps(vm, f'{{__name__="forecast_mean",site="{site}"}}'))
                hall_points = len(victoria_timestamps(vm, f'{{__name__="hall_state_it_mw",site="{site}"}}'))
            finally:
                for proc in services.values():
                    stop_process(proc)
                watcher.close()
    counters = {k: state.get(k) for k in ("msgs_in", "seq_gaps", "msgs_duplicate", "msgs_rejected", "msgs_dropped",
                                          "msgs_late", "gpus_reporting", "gpus_total")}
    checks["replay_published_every_message"] = replayed == n
    checks["state_msgs_in_equals_log"] = counters["msgs_in"] == n
    checks["state_no_seq_gaps"] = counters["seq_gaps"] == 0
    checks["state_no_duplicates"] = counters["msgs_duplicate"] == 0
    checks["state_none_rejected_or_dropped"] = counters["msgs_rejected"] == 0 and counters["msgs_dropped"] == 0
    checks["plant_states_in_victoriametrics"] = len(grid) == steps
    checks["forecasts_issued"] = watcher.forecasts > 0 and forecast_points > 0
    out["replay"] = {  # the replay process, and the twin: from the replay's start to the last tick's PlantState
        "messages": replayed, "wall_s": round(replay_s, 1), "msgs_per_s": round(n / replay_s),
        "plant_s_per_wall_s": round(span / replay_s, 1), "twin_wall_s": round(drain_s, 1),
        "twin_msgs_per_s": round(n / drain_s), "twin_plant_s_per_wall_s": round(span / drain_s, 1),
    }
    out["state"] = counters
    out["plant_states_on_mqtt"] = watcher.states
    out["victoriametrics"] = {
        "plant_states": len(grid), "plant_states_expected": steps,
        "plant_state_points_other": len(stored) - len(grid),  # idle heartbeats after the end (or during a stall)
        "hall_state_points": hall_points, "forecast_points": forecast_points,
    }
    out["forecasts_issued"] = watcher.forecasts
    peaks.stop()
    out["peak_rss_mb"] = {k: round(v, 1) for k, v in peaks.peak_mb.items()}
    out["cpu_s"] = {k: round(v, 1) for k, v in peaks.cpu_s.items()}  # sampled every 0.5 s until each exits
    out["checks"] = checks
    out["nothing_lost"] = all(checks.values())
    return out
