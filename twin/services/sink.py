"""The sink service: the twin's outputs from the bus, as the contract's line protocol, to InfluxDB or files.

Flow (one process, two tasks):

- ingest (the bus task): each output message becomes lines (``twin.lineproto``) and is
  appended to an in-memory buffer; it never waits on HTTP or disk;
- one writer task: every ``flush_s``, or as soon as ``batch_lines`` are buffered, it
  takes a batch and writes it from a worker thread (``twin.sink_delivery.deliver``:
  400/422 split and dead-letter the bad lines, 413 split, 429/503 wait ``Retry-After``,
  other failures back off exponentially with jitter).

Whatever cannot be written now is appended to the durable spool on disk
(``adapters.sink.spool``, fsync'd), and from then on new batches queue behind it, so the
database receives everything in order once it answers again. Lines are committed out
of the spool only after the database acknowledged them (or they were dead-lettered).

Health: a retained JSON :class:`SinkStats` on ``stargate/{site}/twin/sink`` every
``stats_every_s``, logged every minute; the alarm ``sink_spool_full`` (contract Alarm,
retained on ``twin/alarm/sink_spool_full``) while the spool is dropping data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from pathlib import Path
from typing import Protocol

import orjson
from pydantic import ValidationError

from adapters.bus.mqtt import Bus
from adapters.sink.spool import Spool, SpoolPosition
from twin import lineproto
from twin.contract import DOMAIN_MODELS, Alarm, DeadLetter, Forecast, HallState, PlantState, SinkStats
from twin.sink_delivery import Backoff, Delivery, Throttled, deliver
from twin.topics import Topics, parse_telemetry_topic

__all__ = ["SPOOL_ALARM_ID", "LineWriter", "SinkService"]

log = logging.getLogger("twin.sink")

SPOOL_ALARM_ID = "sink_spool_full"


class LineWriter(Protocol):
    lines_written: int

    def write_sync(self, lines: list[str]) -> None: ...
    def close(self) -> None: ...
    def describe(self) -> str: ...




class SinkService:
    name = "sink"

    def __init__(
        self,
        site: str,
        writer: LineWriter,
        *,
        spool_dir: Path | None = None,
        spool_max_bytes: int = 512 * 1024 * 1024,
        flush_s: float = 1.0,
        batch_lines: int = 5_000,
        max_buffer: int = 500_000,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        mirror_s: float = 0.0,
        stats_every_s: float = 5.0,
        max_inflight: int = 1,
        stats_to_db_s: float = 0.0,
        scenario: str | None = None,
    ) -> None:
        self.site = site
        #: a what-if run's name: the tag ``scenario`` on every line (None: the live plant, no tag)
        self.scenario = scenario or None
        self.topics = Topics(site)
        self.writer = writer
        self.spool = Spool(spool_dir if spool_dir is not None else Path("data") / "spool", spool_max_bytes)
        self.flush_s = flush_s
        self.batch_lines = batch_lines
        self.max_buffer = max_buffer
        self.max_inflight = max_inflight
        self.mirror_s = mirror_s
        self.stats_every_s = stats_every_s
        #: > 0: the stats also go to the database (``sink_stats``) every this many seconds (at a report), through
        #: the same buffer, retries and spool as every other line, so Grafana can show the sink's health
        self.stats_to_db_s = stats_to_db_s
        self.backoff = Backoff(backoff_base_s, backoff_max_s)
        self.pending: deque[str] = deque()
        self.lines_in = 0
        self.written = 0
        self.retried = 0
        self.spooled = 0
        self.dropped = 0
        self.deadlettered = 0
        self.rejected = 0
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._inflight: tuple[list[str], SpoolPosition, int] | None = None  # lines left, commit pos, record lines
        self._wake = asyncio.Event()
        self._stopping = False
        self._bus: Bus | None = None
        self._alarm_active = False
        self._mirror_last: dict[str, int] = {}
        # manual MQTT acks: (lines_in after the message, (generation, mid, qos)), acknowledged once every
        # line up to there is written or spooled; lines taken from memory but not yet there are "in hand"
        self._acks: deque[tuple[int, tuple[int, int, int]]] = deque()
        self._in_hand = 0
        # unacknowledged messages that start a write at once: half of the smallest stock in-flight window among
        # the brokers an operator brings (Mosquitto 20, EMQX 32), so the broker never waits for the next flush
        self.ack_window = 10

    @property
    def topic(self) -> str:
        """Where the sink's health goes (retained JSON :class:`SinkStats`)."""
        return self.topics.sink_stats

    @property
    def acks_when_durable(self) -> bool:
        """Its bus acknowledges only when told: once the lines are written or spooled."""
        return True

    @property
    def subscriptions(self) -> list[str]:
        t = self.topics
        subs = [t.state, t.filter("hallState"), t.filter("forecast"), t.filter("alarm")]
        if self.mirror_s > 0:
            subs += self.topics.telemetry_filters
        return subs

    # ---------------------------------------------------------------- ingest (never waits)

    def lines_for(self, topic: str, payload: bytes) -> list[str]:
        """The contract's lines for one message ([] for an alarm clear, an unknown topic, a dropped mirror)."""
        parts = topic.split("/")
        if len(parts) < 4 or not payload:
            return []
        kind = parts[3] if parts[2] == "twin" else None
        sc = self.scenario
        try:
            if kind == "state" and len(parts) == 4:
                return [lineproto.plant_state_line(self.site, PlantState.model_validate_json(payload), sc)]
            if kind == "state" and len(parts) == 5:
                return [lineproto.hall_state_line(self.site, HallState.model_validate_json(payload), sc)]
            if kind == "forecast":
                return lineproto.forecast_lines(self.site, Forecast.model_validate_json(payload), sc)
            if kind == "alarm":
                return lineproto.alarm_lines(self.site, Alarm.model_validate_json(payload), sc)
            if kind is None and self.mirror_s > 0:
                return self._mirror(topic, payload)
        except ValidationError as e:
            self.rejected += 1
            log.warning("sink: %s payload does not match the contract: %s", topic, e.errors()[0]["msg"])
        return []

    def _mirror(self, topic: str, payload: bytes) -> list[str]:
        """At most one line per asset per ``mirror_s`` seconds of event time (the first of each window)."""
        tt = parse_telemetry_topic(topic)
        if isinstance(tt, str):
            return []
        try:
            ts = orjson.loads(payload).get("ts")
        except (orjson.JSONDecodeError, AttributeError):
            return []
        if not isinstance(ts, int | float):
            return []
        window = int(ts // self.mirror_s)
        if self._mirror_last.get(topic) == window:
            return []
        msg = DOMAIN_MODELS[tt.domain].model_validate_json(payload)
        self._mirror_last[topic] = window
        return [lineproto.mirror_line(self.site, tt.domain, tt.asset, tt.hall, msg, self.scenario)]

    def add(self, lines: list[str]) -> None:
        self.lines_in += len(lines)
        self.pending.extend(lines)
        self._trim()
        if len(self.pending) >= self.batch_lines:
            self._wake.set()

    def _trim(self) -> None:
        over = len(self.pending) - self.max_buffer
        if over > 0:  # only when the disk spool cannot keep up: keep the newest, drop the oldest, count it
            for _ in range(over):
                self.pending.popleft()
            self.dropped += over

    # ---------------------------------------------------------------- the writer

    def _take(self, n: int) -> list[str]:
        pending = self.pending
        if len(pending) <= n:
            out = list(pending)
            pending.clear()
        else:
            out = [pending.popleft() for _ in range(n)]
        self._in_hand += len(out)
        return out

    def _ack_durable(self) -> None:
        """Acknowledge the MQTT messages whose lines are all written or spooled (manual-ack buses only)."""
        durable = self.lines_in - len(self.pending) - self._in_hand
        ready = []
        while self._acks and self._acks[0][0] <= durable:
            ready.append(self._acks.popleft()[1])
        if ready and self._bus is not None:
            self._bus.ack(ready)

    @property
    def backlog(self) -> bool:
        return self._inflight is not None or not self.spool.empty

    async def step(self) -> None:
        """Write what is buffered; spool what cannot be written; drain the spool when it is time."""
        while self.pending:
            if not self.backlog and time.monotonic() >= self._retry_at:
                # up to max_inflight batches at once, so the database works while the next is compressed
                batches = [self._take(self.batch_lines) for _ in range(self.max_inflight) if self.pending]
                for b, d in zip(batches, await asyncio.gather(*(self._deliver(b) for b in batches)), strict=True):
                    self._in_hand -= len(b) - len(d.remaining)
                    if not d.done and not await self._to_spool(d.remaining, taken=True):
                        return
            elif not await self._to_spool(self._take(self.batch_lines), taken=True):
                return  # the disk refuses: the lines are back in memory; try again next step
            self._ack_durable()
        if self.backlog and time.monotonic() >= self._retry_at:
            await self._drain()

    async def _drain(self) -> None:
        while True:
            if self.pending and not await self._to_spool(self._take(len(self.pending)), taken=True):
                return  # new lines queue behind the spool, in order; the disk refused them for now
            self._ack_durable()
            if self._inflight is None:
                lines, pos = await asyncio.to_thread(self.spool.read, self.batch_lines)
                if not lines:
                    return
                self._inflight = (lines, pos, len(lines))
            lines, pos, n = self._inflight
            d = await self._deliver(lines)
            if not d.done:
                self._inflight = (d.remaining, pos, n)
                return
            self._inflight = None
            await asyncio.to_thread(self.spool.commit, pos, n)
            self._check_alarm()

    async def _deliver(self, lines: list[str]) -> Delivery:
        d = await asyncio.to_thread(deliver, self.writer.write_sync, lines)
        self.written += d.written
        self.retried += d.resent
        for ln, reason in d.dead:
            self._dead_letter(ln, reason)
        if d.error is None:
            if self.backoff.failures:
                log.info("sink: %s answers again", self.writer.describe())
            self.backoff.reset()
            self.last_error = None
            self._retry_at = 0.0
        else:
            self.retried += len(d.remaining)
            ra = d.error.retry_after if isinstance(d.error, Throttled) else None
            wait = self.backoff.next(ra)
            self._retry_at = time.monotonic() + wait
            self.last_error = str(d.error)
            log.warning("sink: write to %s failed (%s); %d lines kept, retry in %.1fs",
                        self.writer.describe(), d.error, len(d.remaining), wait)
        return d

    async def _to_spool(self, lines: list[str], taken: bool = False) -> bool:
        """Append to the spool; False (lines back in memory, bounded) when the disk refuses.

        ``taken``: the lines were taken from memory (counted in hand until they are on disk).
        """
        if not lines:
            return True
        try:
            dropped = await asyncio.to_thread(self._append_chunks, lines)
        except OSError as e:  # the disk refuses: keep them in memory (bounded), try again next step
            log.error("sink: cannot spool %d lines to %s: %s", len(lines), self.spool.directory, e)
            if taken:
                self._in_hand -= len(lines)
            self.pending.extendleft(reversed(lines))
            self._trim()
            self.last_error = f"spool: {e}"
            return False
        if taken:
            self._in_hand -= len(lines)
        self.spooled += len(lines)
        if dropped:
            self.dropped += dropped
            self._raise_alarm()
        if self._inflight is not None and self._inflight[1].segment < self.spool.committed.segment:
            self._inflight = None  # its segment was dropped (counted there)
        return True

    def _append_chunks(self, lines: list[str]) -> int:
        """Spool in records of at most ``batch_lines``, so a drain reads back batches of that size."""
        n = self.batch_lines
        return sum(self.spool.append(lines[i:i + n]) for i in range(0, len(lines), n))

    def _dead_letter(self, ln: str, reason: str) -> None:
        self.deadlettered += 1
        log.warning("sink: the database refused a line (%s); dead-lettered: %.200s", reason, ln)
        if self._bus is not None:
            dl = DeadLetter(ts=time.time(), topic=self.topic, reason=f"database refused the line: {reason}",
                            payload=ln.encode()[:1024].decode(errors="replace"))
            self._bus.publish_nowait(self.topics.deadletter, dl.model_dump_json().encode(), qos=1, retain=False)

    # ---------------------------------------------------------------- alarm and health

    def _raise_alarm(self) -> None:
        if self._alarm_active:
            return
        self._alarm_active = True
        self._publish_alarm(True, f"sink spool full ({self.spool.max_bytes} bytes): dropping the oldest "
                                  f"spooled lines; {self.spool.dropped} dropped so far")

    def _check_alarm(self) -> None:
        if self._alarm_active and self.spool.bytes < self.spool.max_bytes // 2:
            self._alarm_active = False
            self._publish_alarm(False, "sink spool below half full again")
            if self._bus is not None:
                self._bus.publish_nowait(self.topics.alarm(SPOOL_ALARM_ID), b"", qos=1, retain=True)

    def _publish_alarm(self, active: bool, message: str) -> None:
        log.log(logging.ERROR if active else logging.INFO, "sink: alarm %s %s: %s", SPOOL_ALARM_ID,
                "raised" if active else "cleared", message)
        if self._bus is None:
            return
        a = Alarm(alarm_id=SPOOL_ALARM_ID, severity="critical", active=active, ts=time.time(), message=message,
                  asset="sink", value=float(self.spool.bytes), threshold=float(self.spool.max_bytes))
        self._bus.publish_nowait(self.topics.alarm(SPOOL_ALARM_ID), a.model_dump_json().encode(), qos=1, retain=True)

    def stats(self) -> SinkStats:
        return SinkStats(
            ts=time.time(), writer=self.writer.describe(), points_in=self.lines_in, points_written=self.written,
            points_retried=self.retried, points_spooled=self.spooled, points_dropped=self.dropped,
            points_deadlettered=self.deadlettered, rejected_messages=self.rejected, buffered=len(self.pending),
            spool_lines=self.spool.lines, spool_bytes=self.spool.bytes, spool_max_bytes=self.spool.max_bytes,
            spool_full=self._alarm_active, last_error=self.last_error,
        )

    # ---------------------------------------------------------------- running

    async def run(self, bus: Bus | None) -> None:
        """Consume the bus until cancelled; then write (or spool) what is in memory."""
        self._bus = bus
        writer = asyncio.create_task(self.run_writer(), name="sink-writer")
        reporter = asyncio.create_task(self._report(), name="sink-stats")
        try:
            if bus is None:
                await asyncio.Event().wait()
            assert bus is not None
            while True:
                msg = await bus.queue.get()
                payload = msg.payload if isinstance(msg.payload, bytes | bytearray) else str(msg.payload).encode()
                self.add(self.lines_for(msg.topic.value, bytes(payload)))
                if bus.manual_ack:
                    self._acks.append((self.lines_in, bus.ack_key(msg)))
                    self._ack_durable()  # at once when it made no line or everything is on disk already
                    if len(self._acks) >= self.ack_window:
                        self._wake.set()  # write (or spool) now: the broker sends no more until these are acked
        finally:
            reporter.cancel()
            # let the writer finish the request in hand (a cancel would orphan its batch in the thread)
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(writer)
            await asyncio.shield(self.close())

    async def run_writer(self) -> None:
        """The one writer task: a step every ``flush_s``, or sooner when a batch is full."""
        while not self._stopping:
            timeout = self.flush_s
            if self.backlog:
                timeout = min(timeout, max(0.0, self._retry_at - time.monotonic()))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # coincides with the event, and the writer would then never stop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.step()
            except Exception:  # never let the writer die: log and go on
                log.exception("sink: writer step failed")
                await asyncio.sleep(self.flush_s)

    async def close(self) -> None:
        """Last flush: one try to write what is in memory, else spool it; then close the writer and spool."""
        try:
            if self.pending:
                if not self.backlog and time.monotonic() >= self._retry_at:
                    batch = self._take(len(self.pending))
                    d = await self._deliver(batch)
                    self._in_hand -= len(batch) - len(d.remaining)
                    await self._to_spool(d.remaining, taken=True)
                else:
                    await self._to_spool(self._take(len(self.pending)), taken=True)
            self._ack_durable()
            self._publish_stats()
        finally:
            self.writer.close()
            self.spool.close()

    def _publish_stats(self) -> SinkStats:
        s = self.stats()
        if self._bus is not None:
            self._bus.publish_nowait(self.topic, s.model_dump_json().encode(), qos=1, retain=True)
        return s

    async def _report(self) -> None:
        last_log = 0.0
        last_db = time.monotonic()
        while True:
            await asyncio.sleep(self.stats_every_s)
            s = self._publish_stats()
            if self.stats_to_db_s > 0 and time.monotonic() - last_db >= self.stats_to_db_s:
                last_db = time.monotonic()
                self.add([lineproto.sink_stats_line(self.site, s, self.scenario)])
            if time.monotonic() - last_log >= 60:
                last_log = time.monotonic()
                log.info("sink: %d written, %d retried, %d spooled, %d dropped, %d dead-lettered; spool %d lines "
                         "(%d bytes)%s", s.points_written, s.points_retried, s.points_spooled, s.points_dropped,
                         s.points_deadlettered, s.spool_lines, s.spool_bytes,
                         f"; last error: {s.last_error}" if s.last_error else "")
