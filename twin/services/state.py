"""The state service: telemetry in from the bus, PlantState / HallState / dead letters out.

Wiring only: decoding is :mod:`twin.ingest`, the state is :mod:`twin.state`, the
tick windows are :mod:`twin.ticks`. Messages are handled one by one as they come
off the bus' bounded queue; outputs go through the bus' outbox so that ingest
never waits on the network.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

from adapters.mqtt import Bus
from twin.alarms import AlarmBank, AlarmRule
from twin.contract import Alarm, DeadLetter, HallState, PlantState, WorkerState
from twin.errors import ConfigError
from twin.ingest import Decoded, Decoder, Rejected
from twin.plant import Plant
from twin.plant_alarms import PlantAlarms
from twin.snapshot import load_snapshot, save_snapshot
from twin.state import StateModel
from twin.ticks import TickClock
from twin.topics import Topics

__all__ = ["StateService"]

log = logging.getLogger("twin.state")

StateListener = Callable[[PlantState, list[HallState]], None]


class StateService:
    name = "state"

    def __init__(self, plant: Plant, *, tick_s: float = 1.0, max_payload_bytes: int = 64 * 1024,
                 snapshot_path: Path | None = None, snapshot_every_s: float = 10.0,
                 halls: list[str] | None = None, max_future_s: float | None = None,
                 publish_states: bool = True) -> None:
        self.plant = plant
        self.max_future_s = max_future_s  # refuse ts this far ahead of the receive time (None: no check)
        self.topics = Topics(plant.site.id)
        self.decoder = Decoder(plant, max_payload_bytes)
        self.model = StateModel(plant)
        self.alarms = PlantAlarms(plant)
        self.clock = TickClock(tick_s)
        unknown = sorted(set(halls or []) - set(plant.hall_ids))
        if unknown:
            raise ConfigError(f"--halls: {', '.join(unknown)} not in the plant (halls: {', '.join(plant.hall_ids)})")
        self.halls = halls  # None: the whole plant; else only these halls' racks and CDUs (a hall worker)
        self.publish_states = publish_states  # False: the aggregator's plant-level part (it publishes the whole)
        mine = set(halls or [])
        self._cdus = [c for c, h in zip(plant.cdu_ids, plant.cdu_hall, strict=True) if plant.hall_ids[h] in mine]
        self._own_assets = {f"gpu/{r}" for h in plant.halls if h.id in mine for r in h.rack_ids} | {
            f"coolant/{c}" for c in self._cdus}
        self.snapshot_path = snapshot_path
        self.snapshot_every_s = snapshot_every_s
        self.restored: str | None = None  # why no snapshot was restored (None: restored)
        if snapshot_path is not None:
            self.restored = load_snapshot(snapshot_path, self.model, self.alarms)
            log.info("warm restart from %s" if self.restored is None else "%s", self.restored or snapshot_path)
        self.last_event_ts: float | None = None
        self.latest: PlantState | None = None
        self.latest_halls: list[HallState] = []
        self.listeners: list[StateListener] = []
        self._bus: Bus | None = None
        self._unacked: list[tuple[int, int, int]] = []  # applied, not yet in a snapshot: (generation, mid, qos)
        self.checkpoint_every_msgs = 20_000
        self._last_msg_wall = time.monotonic()
        self._last_emit_wall = time.monotonic()
        # bounded dead letters: a token bucket of deadletter_rate per second, deadletter_burst deep
        self.deadletter_rate, self.deadletter_burst = 100.0, 1000.0
        self._dl_tokens, self._dl_wall = self.deadletter_burst, time.monotonic()
        self.deadletters_suppressed = 0
        # overload: messages dropped because the bounded incoming queue was full
        self._dropped_seen = 0
        self.overload = AlarmBank(AlarmRule("overload", "critical", 0.5, 0.5, True, 0.0,
                                            "state service overloaded: messages dropped since the last state",
                                            clear_debounce_s=30.0), [f"service/{plant.site.id}-state"])

    @property
    def subscriptions(self) -> list[str]:
        if self.halls is None:
            return self.topics.telemetry_filters
        # a shared subscription per partition: the broker keeps one queue for the partition's group, so a
        # replacement worker with the same --halls takes over what its predecessor left
        t, share = self.topics, f"$share/twin-{self.worker_id}/"
        return [share + f for f in [f"{t.root}/gpu/{h}/#" for h in self.halls] + [t.coolant(c) for c in self._cdus]]

    @property
    def worker_id(self) -> str:
        return "plant" if self.halls is None else "halls-" + "-".join(self.halls)

    # ------------------------------------------------------------ pure-ish core

    def handle(self, topic: str, payload: bytes, received_ts: float) -> None:
        """Decode and apply one message; emit states for closed tick windows; dead-letter bad input."""
        d = self.decoder.decode(topic, payload)
        if not isinstance(d, Rejected):
            d = self._check_future(d, received_ts)
        if isinstance(d, Rejected):
            self.model.reject()
            self._dead_letter(topic, payload, d.reason, received_ts)
            return
        self.last_event_ts = d.msg.ts
        due = self.clock.on_message(d.msg.ts)
        if due is not None:
            self.emit(due)
        self.model.apply(d)

    def worker_state(self, s: PlantState) -> WorkerState:
        return WorkerState(ts=s.ts, worker=self.worker_id, halls=self.halls or self.plant.hall_ids,
                           msgs_in=s.msgs_in, msgs_rejected=s.msgs_rejected, msgs_duplicate=s.msgs_duplicate,
                           msgs_late=s.msgs_late, seq_gaps=s.seq_gaps, msgs_dropped=s.msgs_dropped,
                           alarms_active=s.alarms_active,
                           stale=[a for a in s.stale if a in self._own_assets])

    def _check_future(self, d: Decoded, received_ts: float) -> Decoded | Rejected:
        """Refuse event times too far ahead of the wall clock at receipt (old times pass: replays)."""
        ahead = d.msg.ts - received_ts
        if self.max_future_s is not None and ahead > self.max_future_s:
            return Rejected(f"ts {d.msg.ts:.3f} is {ahead:.0f} s ahead of the receive time "
                            f"(limit {self.max_future_s:g} s, TWIN_MAX_FUTURE_S)")
        return d

    def emit(self, ts: float, heartbeat: bool = False) -> PlantState:
        state, halls = self.model.snapshot(ts, integrate=not heartbeat)
        transitions = self.alarms.evaluate(self.model, state)
        dropped = self._bus.dropped if self._bus is not None else 0
        transitions += self.overload.evaluate(np.array([dropped - self._dropped_seen]), np.array([True]), ts)
        self._dropped_seen = dropped
        state = state.model_copy(update={
            "alarms_active": self.alarms.active_count() + int(self.overload.active.sum()),
            "msgs_dropped": dropped, "deadletters_suppressed": self.deadletters_suppressed})
        self.latest, self.latest_halls = state, halls
        self._last_emit_wall = time.monotonic()
        bus = self._bus
        if bus is not None:
            for a in transitions:
                self._publish_alarm(bus, a)
        if bus is not None and self.publish_states:
            if self.halls is None:
                bus.publish_nowait(self.topics.state, state.model_dump_json().encode(), qos=1, retain=True)
            else:  # a hall worker: its counters and stale assets, then its halls; the aggregator does the rest
                bus.publish_nowait(self.topics.worker(self.worker_id), self.worker_state(state).model_dump_json()
                                   .encode(), qos=1, retain=True)
                halls = [h for h in halls if h.hall in self.halls]
            for h in halls:
                bus.publish_nowait(self.topics.hall_state(h.hall), h.model_dump_json().encode(), qos=1, retain=True)
        for listener in self.listeners:
            listener(state, halls)
        return state

    def _publish_alarm(self, bus: Bus, a: Alarm) -> None:
        topic = self.topics.alarm(a.alarm_id)
        payload = a.model_dump_json().encode()
        if a.active:
            bus.publish_nowait(topic, payload, qos=1, retain=True)
        else:  # the clear itself, for the record, then an empty retained message removes the alarm
            bus.publish_nowait(topic, payload, qos=1, retain=False)
            bus.publish_nowait(topic, b"", qos=1, retain=True)
        log.info("alarm %s", a.message)

    def save(self) -> None:
        """Snapshot the state, then acknowledge the messages it now holds (at least once in, once in the state)."""
        if self.snapshot_path is not None:
            save_snapshot(self.snapshot_path, self.model, self.alarms)
        if self._unacked and self._bus is not None:
            self._bus.ack(self._unacked)
        self._unacked = []

    def _dead_letter(self, topic: str, payload: bytes, reason: str, ts: float) -> None:
        log.debug("dead letter from %r: %r", topic, reason)  # repr: no newlines from hostile input in logs
        if self._bus is None:
            return
        now = time.monotonic()
        self._dl_tokens = min(self.deadletter_burst, self._dl_tokens + (now - self._dl_wall) * self.deadletter_rate)
        self._dl_wall = now
        if self._dl_tokens < 1.0:  # policy: over the rate, count the refusal but publish no dead letter
            self.deadletters_suppressed += 1
            return
        self._dl_tokens -= 1.0
        dl = DeadLetter(ts=ts, topic=topic[:512], reason=reason[:1024],
                        payload=payload[:1024].decode("utf-8", errors="replace"))
        self._bus.publish_nowait(self.topics.deadletter, orjson.dumps(dl.model_dump()), qos=1, retain=False)

    # ------------------------------------------------------------ running

    async def run(self, bus: Bus) -> None:
        """Consume the bus until cancelled."""
        self._bus = bus
        idle = asyncio.create_task(self._idle_flush())
        saver = asyncio.create_task(self._save_loop())
        queue = bus.queue
        checkpointed = bus.manual_ack
        try:
            while True:
                msg = await queue.get()
                self._last_msg_wall = time.monotonic()
                payload = msg.payload if isinstance(msg.payload, bytes | bytearray) else str(msg.payload).encode()
                self.handle(msg.topic.value, bytes(payload), time.time())
                if checkpointed:
                    self._unacked.append((bus.generation, msg.mid, msg.qos))
                    if len(self._unacked) >= self.checkpoint_every_msgs:
                        self.save()
        finally:
            idle.cancel()
            saver.cancel()
            self.save()

    async def _save_loop(self) -> None:
        while self.snapshot_path is not None:
            await asyncio.sleep(self.snapshot_every_s)
            self.save()  # synchronous: the arrays must not change while they are written (~ms)

    async def _idle_flush(self) -> None:
        """When telemetry pauses, still publish: the open window, then heartbeats advancing event time."""
        tick = self.clock.tick_s
        while True:
            await asyncio.sleep(min(tick, 1.0) / 2)
            now = time.monotonic()
            if now - self._last_msg_wall < 1.5 * min(tick, 1.0):
                continue
            due = self.clock.flush()
            if due is not None:
                self.emit(due)
            elif now - self._last_emit_wall >= max(tick, 1.0) and self.model.now_ts is not None:
                # event time advances by the wall time spent in silence, so silent assets turn stale
                silent = now - self._last_msg_wall
                self.emit(self.model.now_ts + silent, heartbeat=True)
