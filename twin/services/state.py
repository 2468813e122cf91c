"""The state service: telemetry in from the bus, PlantState / HallState / dead letters out.

Wiring only: decoding is :mod:`twin.live.decode`, the state is :mod:`twin.live.state`, the
tick windows are :mod:`twin.live.ticks`, the journal is :mod:`adapters.journal`. Messages
are taken off the bus' bounded queue in batches (what is there, up to 2,000): each is
appended to the journal and applied; then the batch is committed to the journal and
acknowledged to the broker at once, so that a broker's in-flight limit (Mosquitto's
default 20) never starves the service. A snapshot truncates the journal; at start the
state is the snapshot plus the journal replayed. Outputs go through the bus' outbox so
that ingest never waits on the network.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

from adapters.bus.mqtt import Bus, is_redelivery
from adapters.journal import FsyncPolicy, Journal
from twin.contract import Alarm, DeadLetter, HallState, PlantState, WorkerState
from twin.errors import ConfigError
from twin.live.alarms import AlarmBank, AlarmRule
from twin.live.decode import Decoded, Decoder, Rejected
from twin.live.plant_alarms import PlantAlarms
from twin.live.snapshot import load_snapshot, save_snapshot
from twin.live.state import StateModel
from twin.live.ticks import OrderedTickClock
from twin.plant import Plant
from twin.timespec import format_t
from twin.topics import Topics

__all__ = ["StateService"]

log = logging.getLogger("twin.live.state")

StateListener = Callable[[PlantState, list[HallState]], None]


class StateService:
    name = "state"

    def __init__(self, plant: Plant, *, tick_s: float = 1.0, max_payload_bytes: int = 64 * 1024,
                 snapshot_path: Path | None = None, snapshot_every_s: float = 10.0,
                 halls: list[str] | None = None, max_future_s: float | None = None,
                 publish_states: bool = True, journal_fsync: FsyncPolicy | None = "1s",
                 journal_max_bytes: int = 256 * 1024 * 1024) -> None:
        self.plant = plant
        self.max_future_s = max_future_s  # refuse ts this far ahead of the receive time (None: no check)
        self.topics = Topics(plant.site.id)
        self.decoder = Decoder(plant, max_payload_bytes)
        self.model = StateModel(plant)
        self.alarms = PlantAlarms(plant)
        # closes a window once every per-tick kind has passed it (brokers order per topic only); the
        # held messages are (decoded, dup, topic, payload, received_ts)
        self.clock: OrderedTickClock[tuple[Decoded, bool, str, bytes, float]] = OrderedTickClock(tick_s)
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
        self.last_event_ts: float | None = None
        self.latest: PlantState | None = None
        self.states_out = 0
        self.latest_halls: list[HallState] = []
        self.listeners: list[StateListener] = []
        self._bus: Bus | None = None
        self._unacked: list[tuple[int, int, int]] = []  # applied and journaled, not yet acked: (generation, mid, qos)
        self.batch_max = 2000  # messages per journal commit and ack batch
        self.replayed = 0  # journal records replayed at start
        self._heartbeat_label: float | None = None  # the newest heartbeat's ts (tick labels after the open window)
        self._gaps_seen = 0
        self._gaps_logged_wall = -1e9
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
        # telemetry missing by seq: the broker dropped it (a queue limit) or a publisher lost it
        self.gaps = AlarmBank(AlarmRule("telemetry_gaps", "warning", 0.5, 0.5, True, 0.0,
                                        "telemetry missing by seq since the last state (a broker queue limit?)",
                                        clear_debounce_s=60.0), [f"service/{plant.site.id}-state"])
        self.journal: Journal | None = None
        if snapshot_path is not None:
            self._restore(snapshot_path, journal_fsync, journal_max_bytes)

    def progress_line(self, now: float) -> str:
        """What it did since it started, for the log once a minute: messages in, states out, lag."""
        c = self.model.counters
        line = (f"state: {c.msgs_in:,} messages in ({c.msgs_rejected:,} refused, {c.msgs_duplicate:,} duplicates, "
                f"{max(c.seq_gaps, 0):,} missed), {self.states_out:,} states out")
        s = self.latest
        if s is not None:
            line += (f"; plant time {format_t(s.ts)} ({now - s.ts:,.1f} s behind the clock): facility "
                     f"{s.facility_mw:.1f} MW, headroom {s.headroom_mw:.1f} MW, GPUs {s.gpus_reporting:,}/"
                     f"{s.gpus_total:,}, alarms {s.alarms_active}")
        return line

    @property
    def acks_when_durable(self) -> bool:
        """Its bus acknowledges only when told: once a batch is journaled (with no journal, on receipt)."""
        return self.journal is not None

    @property
    def subscriptions(self) -> list[str]:
        if self.halls is None:
            return self.topics.telemetry_filters
        t = self.topics
        return [f"{t.root}/gpu/{h}/#" for h in self.halls] + [t.coolant(c) for c in self._cdus]

    @property
    def share_group(self) -> str | None:
        """A hall worker's partition: its bus subscribes with ``$share/twin-halls-.../`` where the broker has
        shared subscriptions (the broker keeps one queue for the partition's group), else it holds the
        partition with its fixed session (:meth:`adapters.bus.mqtt.Bus.filters`)."""
        return None if self.halls is None else f"twin-{self.worker_id}"

    @property
    def worker_id(self) -> str:
        return "plant" if self.halls is None else "halls-" + "-".join(self.halls)

    # ------------------------------------------------------------ pure-ish core

    def handle(self, topic: str, payload: bytes, received_ts: float, dup: bool = False) -> None:
        """Decode and apply one message; emit states for closed tick windows; dead-letter bad input.

        ``dup``: the MQTT dup flag (a redelivery); such a message is a duplicate unless its seq is new.
        """
        d = self.decoder.decode(topic, payload)
        if not isinstance(d, Rejected):
            d = self._check_future(d, received_ts)
        if isinstance(d, Rejected):
            self.model.reject()
            self._dead_letter(topic, payload, d.reason, received_ts)
            return
        self.last_event_ts = d.msg.ts
        for ev in self.clock.admit(d.msg.ts, d.domain, (d, dup, topic, payload, received_ts), received_ts):
            if type(ev) is float:
                self.emit(ev)
            else:
                self.model.apply(ev[0], ev[1])  # type: ignore[index]

    def ingest(self, topic: str, payload: bytes, received_ts: float, dup: bool = False) -> None:
        """Journal (write-ahead; committed per batch by :meth:`_commit`), then :meth:`handle`."""
        if self.journal is not None:
            self.journal.append(topic, payload, received_ts, dup)
        self.handle(topic, payload, received_ts, dup)

    def worker_state(self, s: PlantState) -> WorkerState:
        return WorkerState(ts=s.ts, worker=self.worker_id, halls=self.halls or self.plant.hall_ids,
                           msgs_in=s.msgs_in, msgs_rejected=s.msgs_rejected, msgs_duplicate=s.msgs_duplicate,
                           msgs_late=s.msgs_late, seq_gaps=s.seq_gaps, msgs_dropped=s.msgs_dropped,
                           alarms_active=s.alarms_active,
                           stale=[a for a in s.stale if a in self._own_assets], heartbeat=s.heartbeat)

    def _check_future(self, d: Decoded, received_ts: float) -> Decoded | Rejected:
        """Refuse event times too far ahead of the wall clock at receipt (old times pass: replays)."""
        ahead = d.msg.ts - received_ts
        if self.max_future_s is not None and ahead > self.max_future_s:
            return Rejected(f"ts {d.msg.ts:.3f} is {ahead:.0f} s ahead of the receive time "
                            f"(limit {self.max_future_s:g} s, TWIN_MAX_FUTURE_S)")
        return d

    def emit(self, ts: float, heartbeat: bool = False) -> PlantState:
        state, halls = self.model.snapshot(ts, integrate=not heartbeat)
        if heartbeat:
            halls = [h.model_copy(update={"heartbeat": True}) for h in halls]
        transitions = self.alarms.evaluate(self.model, state)
        dropped = self._bus.dropped if self._bus is not None else 0
        ok = np.array([True])
        transitions += self.overload.evaluate(np.array([dropped - self._dropped_seen]), ok, ts)
        self._dropped_seen = dropped
        gaps = max(self.model.counters.seq_gaps, 0)
        transitions += self.gaps.evaluate(np.array([gaps - self._gaps_seen]), ok, ts)
        if gaps > self._gaps_seen:
            self._log_gaps(gaps - self._gaps_seen, gaps)
        self._gaps_seen = gaps
        state = state.model_copy(update={
            "alarms_active": self.alarms.active_count() + int(self.overload.active.sum()) + int(self.gaps.active.sum()),
            "msgs_dropped": dropped, "deadletters_suppressed": self.deadletters_suppressed, "heartbeat": heartbeat})
        self.latest, self.latest_halls = state, halls
        self.states_out += 1
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

    def _log_gaps(self, new: int, total: int) -> None:
        now = time.monotonic()
        if now - self._gaps_logged_wall < 60:
            return
        self._gaps_logged_wall = now
        log.warning("%d telemetry messages missing by seq (%d since start): the broker dropped them or never got "
                    "them; if its queue for this service overflows, raise it (Mosquitto: max_queued_messages, "
                    "default 1000; NATS: max_ack_pending; EMQX: max_mqueue_len)", new, total)

    def _restore(self, path: Path, fsync: FsyncPolicy | None, max_bytes: int) -> None:
        """Snapshot, then the journal written after it, replayed (with no bus: nothing is published again)."""
        meta: dict[str, object] = {}
        self.restored = load_snapshot(path, self.model, self.alarms, meta)
        log.info("warm restart from %s" if self.restored is None else "%s", self.restored or path)
        if fsync is None:
            return
        journal = Journal(path.with_suffix(".journal"), fsync=fsync, max_bytes=max_bytes)
        clock = meta.get("clock")
        if isinstance(clock, dict):
            self.clock.restore(clock)
        elif isinstance(clock, list) and clock[0] is not None:  # snapshots before the ordered clock
            self.clock.window, self.clock.dirty = int(clock[0]), bool(clock[1])
        start = meta.get("journal_segment", 0)
        if self.restored is not None and path.exists():  # a snapshot refused (another plant): its journal too
            journal.drop_before(journal.segment)
        else:
            for rec in journal.replay(int(start) if isinstance(start, int) else 0):
                self.handle(rec.topic, rec.payload, rec.received_ts, rec.dup)
                self.replayed += 1
        if self.replayed or journal.corrupt_records:
            log.info("journal: replayed %d messages after the snapshot%s", self.replayed,
                     f"; {journal.corrupt_bytes} bytes of torn or corrupt records skipped"
                     if journal.corrupt_records else "")
        self.journal = journal

    def save(self) -> None:
        """Snapshot the state; it then holds everything journaled so far, so the journal before it goes."""
        self._commit()
        if self.snapshot_path is None:
            return
        seg = 0
        if self.journal is not None:
            seg = self.journal.rotate()
            for _k, (_d, dup, topic, payload, received_ts) in self.clock.held:  # not applied yet: journaled again
                self.journal.append(topic, payload, received_ts, dup)
            self.journal.commit()
        meta = {"journal_segment": seg, "clock": self.clock.state()}
        save_snapshot(self.snapshot_path, self.model, self.alarms, meta)
        if self.journal is not None:
            self.journal.drop_before(seg)

    def _commit(self) -> None:
        """Journal what was applied (group commit), then acknowledge it to the broker."""
        if self.journal is not None:
            self.journal.commit()
        if self._unacked:
            if self._bus is not None:
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
        """Consume the bus until cancelled: each batch journaled, committed and acknowledged, then applied.

        The ack goes out before the batch is applied, so that the broker sends the next messages (at most
        its in-flight limit, 20 on a stock Mosquitto) while this batch is worked on; a crash after the ack
        loses nothing, since the restart replays the journal.
        """
        self._bus = bus
        idle = asyncio.create_task(self._idle_flush())
        saver = asyncio.create_task(self._save_loop())
        queue = bus.queue
        manual = bus.manual_ack
        journal = self.journal
        resumed: float | None = None
        try:
            while True:
                msg = await queue.get()
                self._last_msg_wall = time.monotonic()
                now = time.time()
                if bus.resumed_at != resumed:  # a kept session resumed: its lost deliveries may come late
                    resumed = bus.resumed_at
                    if resumed is not None and bus.redelivery_wait_s > 0:
                        self.clock.hold(resumed + bus.redelivery_wait_s)
                        log.info("session resumed: no tick closes for %.0f s, while the broker may still resend "
                                 "what the lost connection had not acknowledged", bus.redelivery_wait_s)
                msgs = [msg]
                while len(msgs) < self.batch_max and not queue.empty():
                    msgs.append(queue.get_nowait())
                batch = []
                for msg in msgs:
                    payload = msg.payload if isinstance(msg.payload, bytes | bytearray) else str(msg.payload).encode()
                    item = (msg.topic.value, bytes(payload), is_redelivery(msg))
                    batch.append(item)
                    if journal is not None:
                        journal.append(item[0], item[1], now, item[2])
                    if manual:
                        self._unacked.append(bus.ack_key(msg))
                self._commit()
                for topic, payload, dup in batch:
                    self.handle(topic, payload, now, dup)
                if journal is not None and (journal.full or journal.too_old()):
                    self.save()
        finally:
            idle.cancel()
            saver.cancel()
            self.save()
            if self.journal is not None:
                self.journal.close()

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
            if not self.clock.holding(time.time()):  # held open for a resumed session's redeliveries
                self.on_idle(now - self._last_msg_wall, now - self._last_emit_wall)

    def on_idle(self, silent_s: float, since_emit_s: float) -> PlantState | None:
        """Telemetry silent for ``silent_s`` of wall time: flush the open window, later publish heartbeats.

        A heartbeat carries the tick label that the silence has reached after the open window
        (``heartbeat`` true), so that silent assets turn stale. It moves no window: telemetry that
        arrives after the stall still gets its own state for its window, which then replaces the
        heartbeat of the same ``ts`` (in the database and as the retained message).
        """
        tick = self.clock.tick_s
        if silent_s < 1.5 * min(tick, 1.0):
            return None
        last = None
        for ev in self.clock.drain():
            if type(ev) is float:
                last = self.emit(ev)
            else:
                self.model.apply(ev[0], ev[1])  # type: ignore[index]
        if last is not None:
            return last
        if since_emit_s < max(tick, 1.0) or self.clock.window is None:
            return None
        label = self.clock.label(self.clock.window + max(1, math.floor(silent_s / tick)))
        if self._heartbeat_label is not None and label <= self._heartbeat_label:
            return None
        self._heartbeat_label = label
        return self.emit(label, heartbeat=True)
