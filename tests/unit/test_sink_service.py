"""SinkService's writer logic with a fake writer (pure logic; the real servers are in tests/integration)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from twin.services.sink import SinkService
from twin.sink_delivery import Unavailable


class DownWriter:
    lines_written = 0

    def __init__(self) -> None:
        self.down = True
        self.got: list[str] = []

    def write_sync(self, lines: list[str]) -> None:
        if self.down:
            raise Unavailable("connection refused")
        self.got.extend(lines)

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "fake"


LINES = [f"m v={i}i {i}" for i in range(12_000)]


def test_a_failed_batch_goes_to_the_spool_and_later_lines_queue_behind_it(tmp_path: Path) -> None:
    w = DownWriter()
    sink = SinkService("s", w, spool_dir=tmp_path, backoff_base_s=0.01, backoff_max_s=0.01)

    async def main() -> None:
        sink.add(LINES[:7000])
        await sink.step()
        assert sink.spool.lines == 7000 and not sink.pending and sink.last_error
        sink.add(LINES[7000:])
        w.down = False
        await asyncio.sleep(0.02)
        await sink.step()

    asyncio.run(main())
    assert w.got == LINES  # in order, once
    assert sink.written == len(LINES) and sink.spool.empty and sink.last_error is None


def test_when_the_disk_refuses_the_lines_stay_in_memory_and_the_step_returns(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    w = DownWriter()
    sink = SinkService("s", w, spool_dir=tmp_path, backoff_base_s=0.01, backoff_max_s=0.01, max_buffer=10_000)

    def refuse(lines: list[str]) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sink.spool, "append", refuse)

    async def main() -> None:
        sink.add(LINES[:5000])
        await asyncio.wait_for(sink.step(), 10)  # returns rather than spinning
        assert list(sink.pending) == LINES[:5000]
        assert sink.last_error is not None and "No space" in sink.last_error
        sink.add(LINES[5000:])  # the memory bound keeps the newest
        assert len(sink.pending) == 10_000 and sink.dropped == 2000 and sink.pending[-1] == LINES[-1]

    asyncio.run(main())


def test_a_clean_stop_spools_what_is_in_memory_when_the_database_is_down(tmp_path: Path) -> None:
    w = DownWriter()

    async def main() -> None:
        sink = SinkService("s", w, spool_dir=tmp_path, flush_s=30)
        task = asyncio.create_task(sink.run(None))
        sink.add(LINES[:100])
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    w.down = False
    again = SinkService("s", w, spool_dir=tmp_path, backoff_base_s=0.01)
    asyncio.run(again.step())
    assert w.got == LINES[:100]
