"""The error classes VictoriaMetrics cannot be made to produce (413, 429, 503, 500), against a stub HTTP server.

The stub is stdlib ``http.server`` in a thread, scripted per test; the sink talks to
it through the real influxdb-client HTTP layer (``InfluxHttpWriter``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from adapters.bus.mqtt import Bus
from adapters.sink.influx_http import InfluxHttpWriter
from tests.conftest import collect
from tests.servers import MosquittoServer
from twin.services.sink import SinkService
from twin.sink_delivery import Rejected, Throttled, TooLarge, Unavailable

pytestmark = pytest.mark.integration

#: (status, headers) for a request, given the request number and its lines.
Script = Callable[[int, list[str]], tuple[int, dict[str, str]]]


class Stub:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[tuple[float, int, list[str]]] = []  # (time, status, lines)
        self.accepted: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                lines = body.decode().split("\n")
                status, headers = stub.script(len(stub.requests), lines)
                stub.requests.append((time.monotonic(), status, lines))
                if status == 204:
                    stub.accepted.extend(lines)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_factory() -> Iterator[Callable[[Script], Stub]]:
    made: list[Stub] = []

    def make(script: Script) -> Stub:
        made.append(Stub(script))
        return made[-1]

    yield make
    for s in made:
        s.close()


async def until(pred: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred() or time.monotonic() >= deadline:
            return pred()
        await asyncio.sleep(0.02)


LINES = [f"m,site=s v={i}i {1795300000000000000 + i}" for i in range(200)]


def run_sink(url: str, tmp_path: Path, lines: list[str], done: Callable[[SinkService], bool]) -> SinkService:
    async def main() -> SinkService:
        sink = SinkService("s", InfluxHttpWriter(url, None, "o", "b", timeout_ms=3000),
                           spool_dir=tmp_path / "spool", flush_s=0.1, backoff_base_s=0.1, backoff_max_s=0.5)
        task = asyncio.create_task(sink.run(None))
        sink.add(lines)
        await until(lambda: done(sink), 30)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return sink

    return asyncio.run(main())


def test_the_writer_translates_statuses_into_error_classes(stub_factory: Callable[[Script], Stub]) -> None:
    codes = iter([(400, {}), (422, {}), (413, {}), (429, {"Retry-After": "3"}), (503, {}), (500, {}), (204, {})])
    stub = stub_factory(lambda n, lines: next(codes))
    w = InfluxHttpWriter(stub.url, None, "o", "b")
    for cls in (Rejected, Rejected, TooLarge, Throttled, Throttled, Unavailable):
        with pytest.raises(cls) as e:
            w.write_sync(["m v=1 1"])
        assert e.value.status is not None
    w.write_sync(["m v=1 1"])
    assert w.lines_written == 1
    refused = InfluxHttpWriter("http://127.0.0.1:1", None, "o", "b")  # nothing listens on port 1
    with pytest.raises(Unavailable):
        refused.write_sync(["m v=1 1"])


def test_413_splits_the_batch_until_it_fits(stub_factory: Callable[[Script], Stub], tmp_path: Path) -> None:
    stub = stub_factory(lambda n, lines: (413, {}) if len(lines) > 60 else (204, {}))
    sink = run_sink(stub.url, tmp_path, LINES, lambda s: s.written >= len(LINES))
    assert stub.accepted == LINES  # all, once, in order
    assert sink.deadlettered == 0 and sink.retried > 0
    assert all(len(lines) <= 60 for _, status, lines in stub.requests if status == 204)


def test_429_waits_for_retry_after_then_delivers(stub_factory: Callable[[Script], Stub], tmp_path: Path) -> None:
    stub = stub_factory(lambda n, lines: (429, {"Retry-After": "2"}) if n == 0 else (204, {}))
    sink = run_sink(stub.url, tmp_path, LINES, lambda s: s.written >= len(LINES))
    assert stub.accepted == LINES
    (t_429, status, _), (t_next, _, _) = stub.requests[0], stub.requests[1]
    assert status == 429 and t_next - t_429 >= 1.9  # it waited what the server asked, not its own 0.1 s backoff
    assert sink.spooled == len(LINES) and sink.spool.empty  # kept on disk while waiting, then drained


def test_503_and_500_back_off_and_retry_without_loss(stub_factory: Callable[[Script], Stub], tmp_path: Path) -> None:
    stub = stub_factory(lambda n, lines: [(503, {}), (500, {}), (502, {})][n] if n < 3 else (204, {}))
    sink = run_sink(stub.url, tmp_path, LINES, lambda s: s.written >= len(LINES))
    assert stub.accepted == LINES and [s for _, s, _ in stub.requests[:4]] == [503, 500, 502, 204]
    gaps = [b[0] - a[0] for a, b in zip(stub.requests, stub.requests[1:4], strict=False)]
    assert all(g >= 0.05 for g in gaps)  # backoff: at least half the 0.1 s base between tries
    assert sink.last_error is None and sink.dropped == 0


def test_a_full_spool_drops_the_oldest_raises_the_alarm_and_clears_it(
        stub_factory: Callable[[Script], Stub], mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    down = {"v": True}
    stub = stub_factory(lambda n, lines: (503, {}) if down["v"] else (204, {}))
    batches = [[f"m,site=s v={b * 100 + i}i {1795300000000000000 + b * 100 + i}" for i in range(100)]
               for b in range(40)]

    async def main() -> tuple[SinkService, list[tuple[str, bytes]]]:
        sink = SinkService(site, InfluxHttpWriter(stub.url, None, "o", "b"), spool_dir=tmp_path / "spool",
                           spool_max_bytes=128 * 1024, flush_s=0.05, backoff_base_s=0.05, backoff_max_s=0.2)
        assert sink.spool.segment_bytes == 64 * 1024
        async with Bus(mosquitto.url, service="sink", site=site, subscriptions=[]) as sb:
            alarms = asyncio.create_task(collect(mosquitto.port, f"stargate/{site}/twin/alarm/sink_spool_full",
                                                 lambda ms: len(ms) >= 3, 30))
            await asyncio.sleep(0.5)
            task = asyncio.create_task(sink.run(sb))
            for b in batches:  # 40 x ~4.5 KB spooled one batch at a time: the bound is crossed
                sink.add(b)
                await until(lambda: not sink.pending, 10)
            assert sink.spool.dropped > 0
            down["v"] = False
            assert await until(lambda: not sink.backlog, 30)
            got = await alarms
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return sink, got

    sink, alarms = asyncio.run(main())
    total = sum(len(b) for b in batches)
    assert sink.dropped == sink.spool.dropped > 0
    assert sink.written + sink.dropped == total
    # the newest were kept: what reached the database is a contiguous tail of what was produced
    want = [ln for b in batches for ln in b]
    assert stub.accepted == want[total - len(stub.accepted):]
    raised, cleared, empty = alarms[0], alarms[1], alarms[2]
    a = json.loads(raised[1])
    assert a["alarm_id"] == "sink_spool_full" and a["active"] is True and a["severity"] == "critical"
    assert a["threshold"] == 128 * 1024
    assert json.loads(cleared[1])["active"] is False and empty[1] == b""
    assert sink.stats().points_dropped == sink.dropped and not sink.stats().spool_full
