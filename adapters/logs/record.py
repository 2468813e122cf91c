"""Record what a broker carries into a telemetry log (:mod:`adapters.logs.telemetry_log`).

The MQTT side is the :class:`adapters.bus.mqtt.Bus` (reconnects, resubscribes, optional
persistent session so that nothing is lost while away); ``t`` is the wall-clock time the
message came off the bus, read from the monotonic clock anchored to the wall clock at
the start (so that a clock step or slew during the recording does not bend the logged
timing; the anchor is moved only when the two part by more than a second). The bus'
own health message is switched off so that the recorder does not record itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from adapters.bus.mqtt import Bus
from adapters.logs.telemetry_log import TelemetryLogWriter

__all__ = ["RecordStats", "WallClock", "record"]


class WallClock:
    """Unix time from the monotonic clock: steady gaps, re-anchored when the wall clock moves by > ``max_drift_s``."""

    def __init__(self, max_drift_s: float = 1.0) -> None:
        self.max_drift_s = max_drift_s
        self._anchor()

    def _anchor(self) -> None:
        self._mono0, self._wall0 = time.monotonic(), time.time()

    def __call__(self) -> float:
        t = self._wall0 + (time.monotonic() - self._mono0)
        if abs(time.time() - t) > self.max_drift_s:
            self._anchor()
            t = self._wall0
        return t


@dataclass
class RecordStats:
    messages: int = 0
    started: float = 0.0
    first_t: float | None = None
    last_t: float | None = None


async def record(bus: Bus, writer: TelemetryLogWriter, stop: asyncio.Event, *, count: int | None = None,
                 duration_s: float | None = None, stats: RecordStats | None = None,
                 report: Callable[[RecordStats], None] | None = None, report_every_s: float = 60.0) -> RecordStats:
    """Write every message the bus receives until ``stop``, ``count`` messages or ``duration_s`` seconds;
    ``report(stats)`` every ``report_every_s``."""
    st = stats or RecordStats()
    st.started = time.monotonic()
    reported = st.started
    deadline = None if duration_s is None else st.started + duration_s
    queue = bus.queue
    clock = WallClock()
    while not stop.is_set() and (count is None or st.messages < count):
        timeout = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
        if timeout <= 0:
            break
        if report is not None and time.monotonic() - reported >= report_every_s:
            reported = time.monotonic()
            report(st)
        try:
            msg = await asyncio.wait_for(queue.get(), timeout)
        except TimeoutError:
            continue
        while True:
            t = clock()
            payload = msg.payload if isinstance(msg.payload, bytes | bytearray) else str(msg.payload or "").encode()
            writer.write(t, msg.topic.value, bytes(payload), int(msg.qos), bool(msg.retain))
            st.messages += 1
            st.last_t = t
            if st.first_t is None:
                st.first_t = t
            if count is not None and st.messages >= count:
                break
            with contextlib.suppress(asyncio.QueueEmpty):
                msg = queue.get_nowait()
                continue
            break
    writer.flush()
    return st
