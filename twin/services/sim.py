"""The simulator service: steps :class:`sims.plant_sim.PlantSim` in event time and publishes telemetry.

``speed`` scales event time against wall time (1: real time); ``rack_every`` spreads
the rack and CDU messages over that many steps (each asset reports every
``rack_every`` steps), which keeps the embedded broker within what it can carry.

:mod:`twin.services.sim_log` runs the same simulator as fast as it goes into a telemetry log.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import numpy as np

from adapters.bus.mqtt import Bus
from adapters.bus.publisher import FastPublisher
from sims.messages import FrameEncoder
from sims.plant_sim import PlantSim
from sims.scenario import Scenario
from twin.plant import Plant

__all__ = ["SimService"]

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

    def messages_for_step(self, k: int, ts: float) -> list[tuple[str, bytes]]:
        return self.encoder.step(self.sim.step(ts), k, self.rack_every)

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
