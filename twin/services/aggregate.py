"""The aggregator: hall workers' HallStates + WorkerStates + the plant-level assets -> the PlantState.

Run with ``twin run aggregate`` beside N ``twin run state --halls ...`` workers. It ingests
the feeders, exchangers and weather station itself (through an inner state service that
publishes no states of its own, only its alarms and dead letters) and joins everything by
event time: the PlantState for time T goes out once the plant-level window T has closed
and every hall's HallState and its worker's WorkerState for T have arrived.

A worker that heard nothing for a while publishes heartbeats (``heartbeat`` true) ahead of
its telemetry; when that telemetry comes after all (a replay that paused, a broker that
held its backlog), the worker publishes the real states of the same times. So a heartbeat
completes tick T only while its worker stays silent: once T is otherwise complete, the
aggregator waits for the worker's next message, and takes T from the heartbeat if that
is another heartbeat (the worker is still idle: a hall cut off shows as stale at once)
and from the real state if the worker is catching up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import ValidationError

from adapters.bus.mqtt import Bus
from twin.contract import HallState, PlantState, WorkerState
from twin.live.aggregate import PLANT_LEVEL_DOMAINS, combine
from twin.live.kpi_window import KpiWindow
from twin.plant import Plant
from twin.services.state import StateService
from twin.timespec import format_t
from twin.topics import Topics

__all__ = ["AggregatorService"]

log = logging.getLogger("twin.live.aggregate")

MAX_PENDING = 600  # tick times held while waiting for the rest (bounded)

_S = TypeVar("_S", HallState, WorkerState)


def _keep_real(at: dict[str, _S], key: str, state: _S) -> None:
    """Store ``state``, unless it is a heartbeat and a real state of the same tick is there already."""
    held = at.get(key)
    if held is None or held.heartbeat or not state.heartbeat:
        at[key] = state


class AggregatorService:
    name = "aggregate"

    def __init__(self, plant: Plant, *, tick_s: float = 1.0, max_payload_bytes: int = 64 * 1024,
                 snapshot_path: Path | None = None, max_future_s: float | None = None) -> None:
        self.plant = plant
        self.topics = Topics(plant.site.id)
        self.inner = StateService(plant, tick_s=tick_s, max_payload_bytes=max_payload_bytes,
                                  snapshot_path=snapshot_path, max_future_s=max_future_s, publish_states=False)
        self.inner.listeners.append(lambda s, _h: self._plant_level(s))
        self.partial: dict[float, PlantState] = {}
        self.halls_at: dict[float, dict[str, HallState]] = {}
        self.workers_at: dict[float, dict[str, WorkerState]] = {}
        self.latest: PlantState | None = None
        self.kpi_window = KpiWindow()  # the 15-minute KPIs of the whole plant (the inner model has no racks)
        self.emitted = 0
        self.skipped = 0  # tick times given up on because a later one completed first
        self._bus: Bus | None = None
        self._hall_ids = set(plant.hall_ids)
        self._prefix = self.topics.twin_prefix
        self._arrivals = 0  # worker and hall states received, in order
        self._heartbeat_at: dict[str, int] = {}  # worker -> arrival number of its newest heartbeat
        self._waiting_since: dict[float, int] = {}  # tick -> arrival number when only heartbeats were missing

    def progress_line(self, now: float) -> str:
        line = (f"aggregate: {self.inner.model.counters.msgs_in:,} plant-level messages in, {self.emitted:,} plant "
                f"states out, {self.skipped:,} ticks given up")
        if self.latest is not None:
            line += f"; plant time {format_t(self.latest.ts)} ({now - self.latest.ts:,.1f} s behind the clock)"
        return line

    @property
    def acks_when_durable(self) -> bool:
        """Acks on receipt: its inputs are the workers' retained states and the plant-level telemetry."""
        return False

    @property
    def subscriptions(self) -> list[str]:
        t = self.topics
        return [t.telemetry_filter(d) for d in PLANT_LEVEL_DOMAINS] + [t.filter("hallState"), t.filter("worker")]

    @property
    def latest_halls(self) -> list[HallState]:
        if not self.halls_at:
            return []
        return sorted(self.halls_at[max(self.halls_at)].values(), key=lambda h: h.hall)

    def handle(self, topic: str, payload: bytes, received_ts: float) -> None:
        if not topic.startswith(self._prefix):
            self.inner.handle(topic, payload, received_ts)
            return
        try:
            if topic.startswith(self._prefix + "state/"):
                h = HallState.model_validate_json(payload)
                if h.hall in self._hall_ids:
                    _keep_real(self.halls_at.setdefault(h.ts, {}), h.hall, h)
            elif topic.startswith(self._prefix + "worker/"):
                w = WorkerState.model_validate_json(payload)
                self._arrivals += 1
                if w.heartbeat:
                    self._heartbeat_at[w.worker] = self._arrivals
                _keep_real(self.workers_at.setdefault(w.ts, {}), w.worker, w)
            else:
                return
        except ValidationError as e:
            log.warning("aggregate: %s does not match the contract: %s", topic, e.errors()[0]["msg"])
            return
        self._try_emit()

    def _plant_level(self, s: PlantState) -> None:
        if s.heartbeat:  # the hall workers' windows decide; a heartbeat must not complete one ahead of them
            return
        self.partial[s.ts] = s
        self._try_emit()

    def _complete(self, t: float) -> bool:
        halls = self.halls_at.get(t, {})
        workers = self.workers_at.get(t, {})
        owned = {h for w in workers.values() for h in w.halls}
        if not (t in self.partial and self._hall_ids <= set(halls) and self._hall_ids <= owned):
            return False
        idle = [w.worker for w in workers.values()
                if w.heartbeat or any(halls[h].heartbeat for h in w.halls if h in halls)]
        if not idle:
            return True
        since = self._waiting_since.setdefault(t, self._arrivals)
        return all(self._heartbeat_at.get(w, 0) > since for w in idle)  # each still silent after T was ready

    def _try_emit(self) -> None:
        ready = [t for t in self.partial if self._complete(t)]
        if not ready:
            self._prune()
            return
        for t in sorted(ready):
            state = combine(self.partial[t], [self.halls_at[t][h] for h in self.plant.hall_ids],
                            list(self.workers_at[t].values()))
            state = self._with_15m_kpis(state)
            self.latest = state
            self.emitted += 1
            if self._bus is not None:
                self._bus.publish_nowait(self.topics.state, state.model_dump_json().encode(), qos=1, retain=True)
        newest = max(ready)
        for t in [t for t in self._waiting_since if t <= newest]:
            del self._waiting_since[t]
        for d in (self.partial, self.halls_at, self.workers_at):
            for t in [t for t in d if t <= newest]:
                if t not in ready and d is self.partial:
                    self.skipped += 1
                del d[t]

    def _with_15m_kpis(self, s: PlantState) -> PlantState:
        """The whole plant's energies over 15 minutes, as the single state service keeps them."""
        if not s.heartbeat and np.isfinite(self.inner.model.feeder_ts).all():
            self.kpi_window.add(s.ts, s.facility_mw, s.it_mw, s.heat_to_liquid_mw, s.heat_reused_mw,
                                s.gpus_reporting / s.gpus_total if s.gpus_total else 0.0)
        k = self.kpi_window.kpis()
        return s.model_copy(update={"pue_15m": k.pue, "liquid_capture_ratio_15m": k.liquid_capture_ratio,
                                    "erf_15m": k.erf})

    def _prune(self) -> None:
        for d in (self.partial, self.halls_at, self.workers_at, self._waiting_since):
            while len(d) > MAX_PENDING:
                del d[min(d)]

    async def run(self, bus: Bus) -> None:
        self._bus = bus
        self.inner._bus = bus
        queue = bus.queue
        idle = asyncio.create_task(self.inner._idle_flush())
        try:
            while True:
                msg = await queue.get()
                topic = msg.topic.value
                if not topic.startswith(self._prefix):  # only telemetry keeps the inner idle flush waiting
                    self.inner._last_msg_wall = time.monotonic()
                payload = msg.payload if isinstance(msg.payload, bytes | bytearray) else str(msg.payload).encode()
                self.handle(topic, bytes(payload), time.time())
        finally:
            idle.cancel()
            self.inner.save()
