"""The simulator service: steps :class:`sims.plant_sim.PlantSim` in event time and publishes telemetry.

``speed`` scales event time against wall time (1: real time); ``rack_every`` spreads
the rack and CDU messages over that many steps (each asset reports every
``rack_every`` steps), which keeps the embedded broker within what it can carry.

:func:`write_log` runs the same simulator as fast as it goes and writes the messages to a
telemetry log (contract, "Telemetry log") instead of a broker.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

from adapters.mqtt import Bus
from adapters.mqtt_publisher import FastPublisher
from adapters.telemetry_log import TelemetryLogWriter
from sims.messages import FrameEncoder
from sims.plant_sim import PlantSim
from sims.scenario import Scenario
from twin.plant import Plant

__all__ = ["SimService", "log_line", "write_log"]

log = logging.getLogger("twin.sim")


class SimService:
    name = "sim"

    def __init__(self, plant: Plant, *, seed: int = 0, start_ts: float | None = None, step_s: float = 1.0,
                 speed: float = 1.0, rack_every: int = 1, scenario: Scenario | None = None) -> None:
        self.plant = plant
        self.step_s = step_s
        self.speed = speed
        self.rack_every = max(1, rack_every)
        self.start_ts = float(np.floor(time.time())) if start_ts is None else start_ts
        self.sim = PlantSim(plant, seed=seed, start_ts=self.start_ts, scenario=scenario)
        self.encoder = FrameEncoder(plant)
        self.steps = 0
        self.published = 0
        self.behind_s = 0.0
        self._racks = np.arange(plant.n_racks)
        self._cdus = np.arange(len(plant.cdu_ids))

    def messages_for_step(self, k: int, ts: float) -> list[tuple[str, bytes]]:
        f = self.sim.step(ts)
        n = self.rack_every
        out = list(self.encoder.site(f))
        if n == 1:
            out += self.encoder.cdus(f)
            out += self.encoder.racks(f)
        else:
            out += self.encoder.cdus(f, self._cdus[self._cdus % n == k % n])
            out += self.encoder.racks(f, self._racks[self._racks % n == k % n])
        return out

    async def run(self, bus: Bus, duration_s: float | None = None) -> None:
        wall0 = time.monotonic()
        k = 0
        while duration_s is None or k * self.step_s < duration_s:
            ts = self.start_ts + k * self.step_s
            msgs = self.messages_for_step(k, ts)
            await bus.publish_many(msgs, qos=1)
            self.published += len(msgs)
            self.steps = k = k + 1
            target = wall0 + k * self.step_s / self.speed
            delay = target - time.monotonic()
            self.behind_s = max(-delay, 0.0)
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)


    def run_blocking(self, pub: FastPublisher, duration_s: float | None = None,
                     stop: threading.Event | None = None) -> None:
        """The same loop on the lean blocking publisher (about 10x the asyncio Bus' rate here).

        For ``--speed`` above what the Bus carries at plant scale (~2,800 msg/s: 1.7x real time
        for phase 1). Runs in a thread of its own; ``stop`` ends it between two steps.
        """
        wall0 = time.monotonic()
        k = 0
        while (duration_s is None or k * self.step_s < duration_s) and not (stop and stop.is_set()):
            ts = self.start_ts + k * self.step_s
            for topic, payload in self.messages_for_step(k, ts):
                pub.publish(topic, payload, qos=1, batch=True)
                self.published += 1
            self.steps = k = k + 1
            delay = wall0 + k * self.step_s / self.speed - time.monotonic()
            self.behind_s = max(-delay, 0.0)
            pub.idle(max(delay, 0.0))
        pub.flush()


_TOPIC_JSON: dict[str, bytes] = {}


def log_line(t: float, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bytes:
    """A telemetry-log line for a payload that is already compact JSON (the simulator's own).

    Byte for byte what :func:`adapters.telemetry_log.encode_line` writes, without parsing the
    payload again (the simulator writes ~100 M of them for a week at 10 s steps).
    """
    return (b'{"t":' + orjson.dumps(t) + b',"topic":' + _topic_json(topic) + b',"qos":' + str(qos).encode()
            + b',"retain":' + (b"true" if retain else b"false") + b',"payload":' + payload + b"}\n")


def write_log(plant: Plant, out: str | Path, *, start_ts: float, duration_s: float, step_s: float,
              seed: int = 0, scenario: Scenario | None = None, rack_every: int = 1, compresslevel: int = 1,
              progress: Callable[[float], None] | None = None) -> int:
    """Simulate ``duration_s`` of event time from ``start_ts`` in steps of ``step_s`` into a telemetry log.

    Deterministic: the same plant, scenario, seed, start and steps give a byte-identical file (gzip
    too: no name or time in its header, no wall-clock flushes). ``progress(simulated_s)`` is called
    now and then. Returns the number of messages written.
    """
    svc = SimService(plant, seed=seed, start_ts=start_ts, step_s=step_s, rack_every=rack_every, scenario=scenario)
    n_steps = int(np.ceil(duration_s / step_s - 1e-9))
    written = 0
    # the writer (gzip) runs in a thread of its own: zlib lets go of the GIL while it compresses, so
    # simulating and encoding the next steps overlap with compressing the last ones. One writer
    # thread, a FIFO queue: the file's bytes do not depend on the timing.
    chunks: queue.Queue[tuple[float, bytes, int] | None] = queue.Queue(maxsize=8)
    failed: list[BaseException] = []

    def drain(w: TelemetryLogWriter) -> None:
        try:
            while (item := chunks.get()) is not None:
                ts, data, n = item
                w.write_line(ts, data)
                w.messages += n - 1
        except BaseException as e:  # surfaced in the caller's thread
            failed.append(e)
            while chunks.get() is not None:
                pass

    with TelemetryLogWriter(out, flush_s=float("inf"), compresslevel=compresslevel) as w:
        worker = threading.Thread(target=drain, args=(w,), name="sim-log-writer", daemon=True)
        worker.start()
        last = time.monotonic()
        try:
            for k in range(n_steps):
                if failed:
                    break
                ts = start_ts + k * step_s
                t_json = orjson.dumps(ts)
                lines = [b'{"t":' + t_json + b',"topic":' + _topic_json(topic) + b',"qos":1,"retain":false,'
                         b'"payload":' + payload + b"}\n" for topic, payload in svc.messages_for_step(k, ts)]
                chunks.put((ts, b"".join(lines), len(lines)))
                written += len(lines)
                if progress is not None and time.monotonic() - last >= 0.25:
                    progress((k + 1) * step_s)
                    last = time.monotonic()
        finally:
            chunks.put(None)
            worker.join()
    if failed:
        raise failed[0]
    if progress is not None:
        progress(n_steps * step_s)
    return written


def _topic_json(topic: str) -> bytes:
    tj = _TOPIC_JSON.get(topic)
    if tj is None:
        tj = _TOPIC_JSON[topic] = orjson.dumps(topic)
    return tj
