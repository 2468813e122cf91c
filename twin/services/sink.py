"""The sink service: the twin's outputs from the bus, as the contract's line protocol, to a writer.

A first version (issue 6 adds the disk spool and error-class retries): lines are
batched for up to ``flush_s`` and written by one task; a failed batch is kept in a
bounded in-memory buffer and retried with backoff, oldest first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from pydantic import ValidationError

from adapters.mqtt import Bus
from twin import lineproto
from twin.contract import Alarm, Forecast, HallState, PlantState
from twin.topics import Topics

__all__ = ["LineWriter", "SinkService"]

log = logging.getLogger("twin.sink")


class LineWriter(Protocol):
    lines_written: int

    async def write(self, lines: list[str]) -> None: ...
    def close(self) -> None: ...
    def describe(self) -> str: ...


class SinkService:
    name = "sink"

    def __init__(self, site: str, writer: LineWriter, *, flush_s: float = 1.0, max_buffer: int = 1_000_000) -> None:
        self.site = site
        self.topics = Topics(site)
        self.writer = writer
        self.flush_s = flush_s
        self.pending: deque[str] = deque()
        self.max_buffer = max_buffer
        self.dropped = 0
        self.failures = 0
        self.rejected = 0

    @property
    def subscriptions(self) -> list[str]:
        r = self.topics.root
        return [f"{r}/twin/state", f"{r}/twin/state/+", f"{r}/twin/forecast/+", f"{r}/twin/alarm/+"]

    def lines_for(self, topic: str, payload: bytes) -> list[str]:
        """The contract's lines for one output message ([] for an alarm clear or unknown topic)."""
        parts = topic.split("/")
        if len(parts) < 4 or parts[2] != "twin" or not payload:
            return []
        kind = parts[3]
        try:
            if kind == "state" and len(parts) == 4:
                return [lineproto.plant_state_line(self.site, PlantState.model_validate_json(payload))]
            if kind == "state" and len(parts) == 5:
                return [lineproto.hall_state_line(self.site, HallState.model_validate_json(payload))]
            if kind == "forecast":
                return lineproto.forecast_lines(self.site, Forecast.model_validate_json(payload))
            if kind == "alarm":
                return lineproto.alarm_lines(self.site, Alarm.model_validate_json(payload))
        except ValidationError as e:
            self.rejected += 1
            log.warning("sink: %s payload does not match the contract: %s", topic, e.errors()[0]["msg"])
        return []

    def add(self, lines: list[str]) -> None:
        self.pending.extend(lines)
        over = len(self.pending) - self.max_buffer
        if over > 0:  # policy: keep the newest, drop the oldest, count it
            for _ in range(over):
                self.pending.popleft()
            self.dropped += over

    async def flush(self) -> bool:
        if not self.pending:
            return True
        batch = list(self.pending)
        try:
            await self.writer.write(batch)
        except Exception as e:  # any transport error: keep the lines, retry later
            self.failures += 1
            log.warning("sink: write to %s failed (%s); %d lines kept for retry",
                        self.writer.describe(), type(e).__name__, len(batch))
            return False
        for _ in range(len(batch)):
            self.pending.popleft()
        return True

    async def run(self, bus: Bus) -> None:
        flusher = asyncio.create_task(self._flush_loop())
        try:
            while True:
                msg = await bus.queue.get()
                payload = msg.payload if isinstance(msg.payload, bytes | bytearray) else str(msg.payload).encode()
                self.add(self.lines_for(msg.topic.value, bytes(payload)))
        finally:
            flusher.cancel()
            await self.flush()
            self.writer.close()

    async def _flush_loop(self) -> None:
        backoff = self.flush_s
        while True:
            await asyncio.sleep(backoff)
            ok = await self.flush()
            backoff = self.flush_s if ok else min(backoff * 2, 30.0)
