"""The sink against a real VictoriaMetrics (InfluxDB ``/api/v2/write``) and a real Mosquitto.

VictoriaMetrics keeps every sample it is sent (it does not overwrite same-timestamp
points as InfluxDB does), so "none twice" is checked for real here. It can lose the
last seconds of acknowledged writes on SIGKILL (see docs/sink.md), so
the outage test kills it at a moment when the sink's last write is ten seconds old.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from adapters.bus.mqtt import Bus
from adapters.sink.influx_http import InfluxHttpWriter
from tests.conftest import collect
from tests.contract.test_models import VALID
from tests.servers import MosquittoServer, VictoriaMetricsServer
from twin import lineproto
from twin.contract import Alarm, Forecast, HallState, PlantState
from twin.services.sink import SinkService

pytestmark = pytest.mark.integration

#: Event time of the test data: recent, inside VictoriaMetrics' default retention of a month.
T0 = float(int(time.time()) - 3 * 3600)


def writer(vm: VictoriaMetricsServer) -> InfluxHttpWriter:
    return InfluxHttpWriter(vm.url, None, "stargate", "twin", timeout_ms=5000)


def plant_state(i: int) -> bytes:
    s = PlantState.model_validate({**VALID[PlantState], "ts": T0 + i, "it_mw": float(i), "stale": []})
    return s.model_dump_json().encode()


def series(vm: VictoriaMetricsServer, name: str, site: str) -> list[dict]:  # type: ignore[type-arg]
    return vm.export(f'{{__name__="{name}",site="{site}"}}')


def stamps(found: list[dict]) -> list[int]:  # type: ignore[type-arg]
    return sorted(t for s in found for t in s["timestamps"])  # type: ignore[union-attr]


async def until(pred, timeout: float = 60.0, every: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(every)
    return bool(pred())


def test_points_land_with_the_contract_names_tags_and_times(mosquitto: MosquittoServer, victoria:
                                                            VictoriaMetricsServer, site: str, tmp_path: Path) -> None:
    hall = HallState.model_validate({**VALID[HallState], "ts": T0, "hall": "h2", "it_mw": 21.5})
    fc = Forecast.model_validate({**VALID[Forecast], "issued_ts": T0, "model": "ets",
                                  "points": [{"ts": T0 + 60, "mean": 200.0, "p10": 190.0, "p90": 210.0},
                                             {"ts": T0 + 120, "mean": 201.0, "p10": 189.0, "p90": 212.0}]})
    alarm = Alarm.model_validate({**VALID[Alarm], "ts": T0 + 0.25, "alarm_id": "coolant_hot", "asset": None,
                                  "severity": "critical", "active": True, "value": 47.5})

    async def main() -> list[tuple[str, bytes]]:
        sink = SinkService(site, writer(victoria), spool_dir=tmp_path / "spool", flush_s=0.2, stats_every_s=0.5)
        async with Bus(mosquitto.url, service="sink", site=site, subscriptions=sink.subscriptions) as sb, \
                Bus(mosquitto.url, service="pub", site=site) as pb:
            task = asyncio.create_task(sink.run(sb))
            await pb.publish(f"stargate/{site}/twin/state", plant_state(0), retain=True)
            await pb.publish(f"stargate/{site}/twin/state", plant_state(1), retain=True)
            await pb.publish(f"stargate/{site}/twin/state/h2", hall.model_dump_json())
            await pb.publish(f"stargate/{site}/twin/forecast/facility_mw", fc.model_dump_json())
            await pb.publish(f"stargate/{site}/twin/alarm/coolant_hot", alarm.model_dump_json())
            await pb.publish(f"stargate/{site}/twin/alarm/coolant_hot", b"", retain=True)  # a clear: no line
            assert await until(lambda: sink.written >= 6)
            health = await collect(mosquitto.port, f"stargate/{site}/twin/sink",
                                   lambda ms: json.loads(ms[-1][1])["points_written"] >= 6, 10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return health

    health = asyncio.run(main())
    stats = json.loads(health[-1][1])
    assert stats["points_written"] == 6 and stats["points_dropped"] == 0 and stats["spool_lines"] == 0
    assert stats["writer"].startswith("InfluxDB at http://127.0.0.1")

    ms = int(T0 * 1000)
    got = victoria.export_until(f'{{__name__=~"(plant_state|hall_state|forecast|alarm)_.*",site="{site}"}}',
                                lambda s: len(s) >= 20)
    by = {(s["metric"]["__name__"], tuple(sorted(s["metric"].items()))): s for s in got}  # type: ignore[index]
    names = {s["metric"]["__name__"] for s in got}  # type: ignore[index]
    assert {"plant_state_it_mw", "plant_state_pue", "plant_state_stale_count", "hall_state_it_mw", "forecast_mean",
            "forecast_p10", "forecast_p90", "forecast_issued_ts", "forecast_lead_s", "alarm_active",
            "alarm_value"} <= names
    (ps,) = [s for (n, _), s in by.items() if n == "plant_state_it_mw"]
    assert ps["metric"] == {"__name__": "plant_state_it_mw", "site": site}
    assert ps["timestamps"] == [ms, ms + 1000] and ps["values"] == [0.0, 1.0]
    (hs,) = [s for (n, _), s in by.items() if n == "hall_state_it_mw"]
    assert hs["metric"] == {"__name__": "hall_state_it_mw", "site": site, "hall": "h2"}
    assert hs["timestamps"] == [ms] and hs["values"] == [21.5]
    (fm,) = [s for (n, _), s in by.items() if n == "forecast_mean"]
    assert fm["metric"] == {"__name__": "forecast_mean", "site": site, "quantity": "facility_mw", "model": "ets"}
    assert fm["timestamps"] == [ms + 60_000, ms + 120_000] and fm["values"] == [200.0, 201.0]
    (lead,) = [s for (n, _), s in by.items() if n == "forecast_lead_s"]
    assert lead["values"] == [60.0, 120.0]
    (aa,) = [s for (n, _), s in by.items() if n == "alarm_active"]
    assert aa["metric"] == {"__name__": "alarm_active", "site": site, "alarm_id": "coolant_hot",
                            "severity": "critical"}
    assert aa["timestamps"] == [ms + 250] and aa["values"] == [1.0]


def test_a_30s_outage_while_producing_loses_nothing_and_doubles_nothing(
        mosquitto: MosquittoServer, victoria: VictoriaMetricsServer, site: str, tmp_path: Path) -> None:
    produced: list[int] = []

    async def main() -> SinkService:
        # flush every 14 s, so the kill can come 10 s after a write and 4 s before the next one:
        # what VictoriaMetrics acknowledged before the kill is on its disk by then.
        sink = SinkService(site, writer(victoria), spool_dir=tmp_path / "spool", flush_s=14.0,
                           backoff_base_s=0.2, backoff_max_s=2.0)
        stop = asyncio.Event()
        async with Bus(mosquitto.url, service="sink", site=site, subscriptions=sink.subscriptions) as sb, \
                Bus(mosquitto.url, service="pub", site=site) as pb:
            task = asyncio.create_task(sink.run(sb))

            async def produce() -> None:
                i = 0
                while not stop.is_set():
                    await pb.publish(f"stargate/{site}/twin/state", plant_state(i))
                    produced.append(i)
                    i += 1
                    await asyncio.sleep(0.1)

            producer = asyncio.create_task(produce())
            assert await until(lambda: sink.written > 0, 30)
            await asyncio.sleep(10)
            await asyncio.to_thread(victoria.kill)  # SIGKILL, while the producer goes on
            killed_at = len(produced)
            await asyncio.sleep(30)
            assert sink.spool.lines > 0 or sink.pending, "the outage left nothing to retry"
            await asyncio.to_thread(victoria.start)
            assert len(produced) > killed_at + 100
            assert await until(lambda: not sink.backlog, 60)
            stop.set()
            await producer
            assert await until(lambda: sink.lines_in == len(produced), 30)
            task.cancel()  # a clean stop writes what is still in memory
            await asyncio.gather(task, return_exceptions=True)
            return sink

    sink = asyncio.run(main())
    assert sink.written == len(produced) and sink.dropped == 0 and sink.deadlettered == 0
    assert sink.retried > 0 and sink.spooled > 0
    want = [int(T0 * 1000) + 1000 * i for i in produced]
    got = victoria.export_until(f'{{__name__="plant_state_it_mw",site="{site}"}}',
                                lambda s: len(stamps(s)) >= len(want), 60)
    assert len(got) == 1
    assert len(stamps(got)) == len(want), "a point is missing or arrived twice"
    assert stamps(got) == want
    assert sorted(got[0]["values"]) == [float(i) for i in produced]  # type: ignore[arg-type]


def test_a_malformed_line_is_split_out_and_only_it_is_dead_lettered(
        mosquitto: MosquittoServer, victoria: VictoriaMetricsServer, site: str, tmp_path: Path) -> None:
    """VictoriaMetrics answers 400 to a line over its 256 KiB limit (it skips syntax errors silently)."""
    good = [lineproto.line("sinktest", {"site": site}, {"v": float(i)}, lineproto.ts_ns(T0 + i)) for i in range(200)]
    bad = lineproto.line("sinktest", {"site": site}, {"v": 1.0, "blob": "x" * 300_000}, lineproto.ts_ns(T0 - 1))
    batch = [*good[:137], bad, *good[137:]]

    async def main() -> tuple[SinkService, list[tuple[str, bytes]]]:
        sink = SinkService(site, writer(victoria), spool_dir=tmp_path / "spool", flush_s=0.2)
        async with Bus(mosquitto.url, service="sink", site=site, subscriptions=[]) as sb:
            task = asyncio.create_task(sink.run(sb))
            letters = asyncio.create_task(collect(mosquitto.port, f"stargate/{site}/twin/deadletter",
                                                  lambda ms: len(ms) >= 1, 30))
            await asyncio.sleep(0.5)  # the collector subscribes
            sink.add(batch)
            assert await until(lambda: sink.written + sink.deadlettered >= len(batch), 30)
            got = await letters
            await asyncio.sleep(0.5)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return sink, got

    sink, letters = asyncio.run(main())
    assert sink.deadlettered == 1 and sink.written == len(good) and not sink.backlog
    assert len(letters) == 1
    dl = json.loads(letters[0][1])
    assert dl["topic"] == f"stargate/{site}/twin/sink" and "400" in dl["reason"]
    assert dl["payload"].startswith("sinktest,site=") and "blob=" in dl["payload"] and len(dl["payload"]) <= 1024
    got = victoria.export_until(f'{{__name__="sinktest_v",site="{site}"}}', lambda s: s and len(set(stamps(s))) >= 200)
    # every good line arrived; the bad one did not (lines VictoriaMetrics took before the bad one
    # in a refused request may appear twice: it keeps both, where InfluxDB would overwrite)
    assert sorted(set(stamps(got))) == [int(T0 * 1000) + 1000 * i for i in range(200)]
    assert int((T0 - 1) * 1000) not in stamps(got)


def test_fractional_state_times_are_stored_as_nanoseconds_truncated_to_ms(victoria: VictoriaMetricsServer) -> None:
    """Heartbeat states carry fractional ``ts``; VictoriaMetrics keeps milliseconds, truncating the line's
    nanoseconds (not rounding): a reader matching states to points must truncate too."""
    site = "fractional"
    tss = [T0 + 0.1236, T0 + 1.9996, T0 + 2.0004, T0 + 3.5]
    lines = [f"plant_state,site={site} it_mw={i}.0 {lineproto.ts_ns(t)}" for i, t in enumerate(tss)]
    writer(victoria).write_sync(lines)
    got = victoria.export_until(f'{{__name__="plant_state_it_mw",site="{site}"}}',
                                lambda s: bool(s) and len(s[0]["timestamps"]) == 4, 30)
    assert stamps(got) == [lineproto.ts_ns(t) // 1_000_000 for t in tss] == [victoria.stored_ms(t) for t in tss]
    assert stamps(got) != sorted(round(t * 1000) for t in tss)  # .1236 s and 1.9996 s would round up


def test_the_sink_writes_its_own_stats_as_sink_stats(mosquitto: MosquittoServer, victoria: VictoriaMetricsServer,
                                                    tmp_path: Path) -> None:
    """Grafana can show the sink's health: its stats go to the database too (measurement ``sink_stats``)."""
    site = "sinkstats"

    def written() -> list[float]:
        found = series(victoria, "sink_stats_points_written", site)
        return [v for f in found for v in f["values"]]  # type: ignore[union-attr]

    async def main() -> None:
        sink = SinkService(site, writer(victoria), spool_dir=tmp_path / "spool", flush_s=0.2, stats_every_s=0.2,
                           stats_to_db_s=0.5)
        async with Bus(mosquitto.url, service="sink", site=site, subscriptions=sink.subscriptions) as sb, \
                Bus(mosquitto.url, service="pub", site=site) as pb:
            task = asyncio.create_task(sink.run(sb))
            await pb.publish(f"stargate/{site}/twin/state", plant_state(1))
            assert await until(lambda: any(v >= 1 for v in written()), 30)  # a report made after that write
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    names = {s["metric"]["__name__"]  # type: ignore[index]
             for s in victoria.export(f'{{__name__=~"sink_stats_.*",site="{site}"}}')}
    assert {"sink_stats_points_in", "sink_stats_points_written", "sink_stats_spool_bytes",
            "sink_stats_spool_full", "sink_stats_points_dropped"} <= names
    assert "sink_stats_writer" not in names and "sink_stats_last_error" not in names  # text is not a metric
