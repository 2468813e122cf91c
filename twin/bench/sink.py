"""Sink throughput: contract points/s written to VictoriaMetrics, against one synchronous write per point.

Starts its own VictoriaMetrics (``victoria-metrics`` binary, Debian's package) on a
free port with a fresh data directory, builds ``--points`` lines of the contract's
schema (per tick: one ``plant_state``, eight ``hall_state``, a twelve-point
``forecast``; event time one second per tick) and measures, in the same run:

- ``sink``: the twin's sink as it runs (``SinkService``): lines handed to it in
  chunks as the bus would, batched (``--batch`` lines), gzip'd, written by its one
  writer task (``--inflight`` requests at once) through influxdb-client's HTTP layer, until VictoriaMetrics
  acknowledged the last one; then the export is checked to hold every point;
- ``naive``: influxdb-client with its defaults, ``write_api(SYNCHRONOUS)``, one
  ``write`` per point (``--naive-points`` of them, the same lines);
- ``encode``: the ingest side alone, contract JSON payloads to lines (``lines_for``).

Points are InfluxDB points (lines); each carries several fields.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from adapters.sink.influx_http import InfluxHttpWriter
from twin.bench.servers import victoria_metrics
from twin.contract import Forecast, ForecastPoint, HallState, PlantState
from twin.services.sink import SinkService
from twin.topics import Topics

__all__ = ["register", "run"]

_T = Topics("bench")
TARGET_POINTS_PER_S = 100_000
TARGET_RATIO = 20.0


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--points", type=int, default=300_000, help="points written by the sink (default 300,000)")
    p.add_argument("--naive-points", type=int, default=3_000, help="points written one by one (default 3,000)")
    p.add_argument("--batch", type=int, default=5_000, help="lines per write (default 5,000)")
    p.add_argument("--inflight", type=int, default=2, help="writes in flight (default 2, as twin run sink)")


def _payloads(n_points: int, t0: float) -> list[tuple[str, bytes]]:
    """Contract messages (topic, JSON) whose lines add up to about ``n_points``."""
    out: list[tuple[str, bytes]] = []
    k, count = 0, 0
    while count < n_points:
        ts = t0 + k
        out.append((_T.state, PlantState(
            ts=ts, it_mw=180.0 + k % 7, facility_mw=200.5, pue=1.11, contract_mw=230.0, hydro_available_mw=400.0,
            headroom_mw=29.5, gpus_total=100224, gpus_reporting=100224, gpu_util_mean=0.81, gpu_temp_max_c=71.5,
            heat_to_liquid_mw=150.2, liquid_capture_ratio=0.83, heat_reused_mw=40.1, heat_pump_mw=3.2, erf=0.2,
            coolant_return_max_c=45.3, ambient_c=-3.5, stale=[], msgs_in=k * 1630, msgs_rejected=0,
            msgs_duplicate=0, seq_gaps=0).model_dump_json().encode()))
        for h in range(1, 9):
            out.append((_T.hall_state(f"h{h}"), HallState(
                ts=ts, hall=f"h{h}", it_mw=22.5 + h * 0.1, gpus_total=12528, gpus_reporting=12528, gpu_util_mean=0.8,
                gpu_temp_max_c=70.0 + h, heat_to_liquid_mw=18.7, liquid_capture_ratio=0.83,
                coolant_return_max_c=44.0, coolant_supply_mean_c=30.0, flow_lps=180.0).model_dump_json().encode()))
        q = ("facility_mw", "it_mw", "headroom_mw", "heat_reusable_mw", "coolant_return_max_c")[k % 5]
        out.append((_T.forecast(q), Forecast(
            quantity=q, issued_ts=ts, model="ets", step_s=300.0, skill=0.7,  # type: ignore[arg-type]
            points=[ForecastPoint(ts=ts + 300.0 * (j + 1), mean=200.0 + j, p10=195.0 + j, p90=205.0 + j)
                    for j in range(12)]).model_dump_json().encode()))
        count += 1 + 8 + 12
        k += 1
    return out


def _count_points(url: str, site: str) -> int:
    data = urllib.parse.urlencode({"match[]": f'{{__name__=~"(plant_state|hall_state)_it_mw|forecast_mean",'
                                              f'site="{site}"}}'}).encode()
    with urllib.request.urlopen(f"{url}/api/v1/export", data=data, timeout=60) as r:
        return sum(len(json.loads(ln)["timestamps"]) for ln in r.read().decode().splitlines() if ln.strip())


async def _sink_run(url: str, lines: list[str], batch: int, spool: Path,
                    inflight: int) -> tuple[float, SinkService]:
    sink = SinkService("bench", InfluxHttpWriter(url, None, "stargate", "twin"), spool_dir=spool,
                       batch_lines=batch, flush_s=0.2, max_buffer=len(lines) + 1, max_inflight=inflight)
    writer = asyncio.create_task(sink.run_writer())
    chunk = 1000
    t = time.perf_counter()
    for i in range(0, len(lines), chunk):  # as the bus hands them over: a chunk, then the loop runs others
        sink.add(lines[i:i + chunk])
        await asyncio.sleep(0)
    while True:  # the writer acknowledges by counting; poll it finely
        if sink.written + sink.deadlettered >= len(lines):
            break
        await asyncio.sleep(0.002)
    dt = time.perf_counter() - t
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer
    sink.writer.close()
    return dt, sink


def _naive(url: str, lines: list[str]) -> float:
    from influxdb_client import InfluxDBClient
    from influxdb_client.client.write_api import SYNCHRONOUS

    with InfluxDBClient(url=url, token="bench", org="stargate") as client:
        api = client.write_api(write_options=SYNCHRONOUS)
        t = time.perf_counter()
        for ln in lines:
            api.write(bucket="twin", record=ln)
        return time.perf_counter() - t


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = float(int(time.time()) - 20 * 24 * 3600)  # event time inside VictoriaMetrics' default retention
    payloads = _payloads(args.points, t0)
    with tempfile.TemporaryDirectory(prefix="twin-bench-sink-") as tmp:
        encoder = SinkService("bench", InfluxHttpWriter("http://127.0.0.1:1", None, "o", "b"),
                              spool_dir=Path(tmp) / "encode-spool")
        te = time.perf_counter()
        lines = [ln for topic, payload in payloads for ln in encoder.lines_for(topic, payload)]
        encode_s = time.perf_counter() - te
        naive_lines = [ln.replace("site=bench", "site=bench-naive", 1) for ln in lines[: args.naive_points]]
        with victoria_metrics(Path(tmp)) as url:
            sink_s, sink = asyncio.run(_sink_run(url, lines, args.batch, Path(tmp) / "spool", args.inflight))
            naive_s = _naive(url, naive_lines)
            deadline = time.monotonic() + 60
            want = sum(1 for ln in lines if ln.startswith(("plant_state", "hall_state", "forecast")))
            stored = 0
            while time.monotonic() < deadline:
                stored = _count_points(url, "bench")
                if stored >= want:
                    break
                time.sleep(1)
    sink_rate = len(lines) / sink_s
    naive_rate = len(naive_lines) / naive_s
    return {
        "bench": "sink",
        "points": len(lines),
        "fields_per_point_mean": round(sum(ln.split(" ")[1].count(",") + 1 for ln in lines[:2100]) / 2100, 1),
        "batch_lines": args.batch,
        "inflight": args.inflight,
        "sink_points_per_s": round(sink_rate),
        "sink_seconds": round(sink_s, 3),
        "naive_points": len(naive_lines),
        "naive_points_per_s": round(naive_rate),
        "ratio_vs_naive": round(sink_rate / naive_rate, 1),
        "encode_points_per_s": round(len(lines) / encode_s),
        "points_stored": stored,
        "points_expected": want,
        "all_points_stored": stored == want,
        "retried": sink.retried,
        "dropped": sink.dropped,
        "target_points_per_s": TARGET_POINTS_PER_S,
        "target_ratio": TARGET_RATIO,
        "meets_target": sink_rate >= TARGET_POINTS_PER_S and sink_rate / naive_rate >= TARGET_RATIO,
    }
