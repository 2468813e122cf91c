"""The forecast service live: states in over a real Mosquitto, Forecasts out (retained), and through
the sink into a real VictoriaMetrics with the contract's ``forecast`` tags and fields."""

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
from twin.contract import QUANTITIES, Forecast, HallState, PlantState
from twin.services.forecast import ForecastService
from twin.services.sink import SinkService

pytestmark = pytest.mark.integration

#: Event time: inside VictoriaMetrics' retention, day-ahead targets before now (its export ends now), on a quarter hour.
T0 = float((int(time.time()) - 26 * 3600) // 900 * 900)
MINUTES = 17  # one quarter hour closes: both products are issued


def states(site: str) -> list[tuple[str, bytes]]:
    out = []
    for k in range(MINUTES + 1):
        s = PlantState.model_validate({**VALID[PlantState], "ts": T0 + 60 * k, "it_mw": 180.0 + k,
                                       "facility_mw": 200.0 + k, "heat_demand_mw": 35.0, "stale": []})
        h = HallState.model_validate({**VALID[HallState], "ts": T0 + 60 * k, "hall": "h1"})
        out += [(f"stargate/{site}/twin/state", s.model_dump_json().encode()),
                (f"stargate/{site}/twin/state/h1", h.model_dump_json().encode())]
    return out


def test_forecasts_are_published_retained_and_land_in_victoria(mosquitto: MosquittoServer,
                                                               victoria: VictoriaMetricsServer, site: str,
                                                               tmp_path: Path) -> None:
    async def main() -> tuple[ForecastService, list[tuple[str, bytes]]]:
        fs = ForecastService(site)
        sink = SinkService(site, InfluxHttpWriter(victoria.url, None, "stargate", "twin", timeout_ms=5000),
                           spool_dir=tmp_path / "spool", flush_s=0.2)
        async with Bus(mosquitto.url, service="forecast", site=site, subscriptions=fs.subscriptions) as fb, \
                Bus(mosquitto.url, service="sink", site=site, subscriptions=sink.subscriptions) as sb, \
                Bus(mosquitto.url, service="pub", site=site) as pb:
            tasks = [asyncio.create_task(fs.run(fb)), asyncio.create_task(sink.run(sb))]
            for topic, payload in states(site):
                await pb.publish(topic, payload, retain=True)
            want = len(QUANTITIES)
            for _ in range(150):  # up to 30 s
                if fs.published >= 2 * want * 3:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
            # a late subscriber gets the retained forecast of every quantity
            retained = await collect(mosquitto.port, f"stargate/{site}/twin/forecast/+",
                                     lambda ms: len({t for t, _ in ms}) >= want, 10)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return fs, retained

    fs, retained = asyncio.run(main())
    assert {t.rsplit("/", 1)[1] for t, _ in retained} == set(QUANTITIES)
    fc = Forecast.model_validate_json(retained[0][1])
    assert fc.issued_ts >= T0 + 60 and fc.points[0].ts == fc.issued_ts + fc.step_s
    models = {f.model for f in fs.latest.values()}
    assert {"persistence-intraday", "physics-intraday", "holt-winters-intraday", "persistence-day-ahead",
            "physics-day-ahead", "seasonal-naive-day-ahead"} <= models
    assert any(f.skill is not None for f in fs.latest.values())  # intraday scored as the minutes closed

    got = victoria.export_until(f'{{__name__=~"forecast_.*",site="{site}",quantity="facility_mw",'
                                f'model="persistence-day-ahead"}}', lambda s: len(s) >= 5)
    names = {s["metric"]["__name__"] for s in got}  # type: ignore[index]
    assert names == {"forecast_mean", "forecast_p10", "forecast_p90", "forecast_issued_ts", "forecast_lead_s"}
    (mean,) = [s for s in got if s["metric"]["__name__"] == "forecast_mean"]  # type: ignore[index]
    assert mean["metric"] == {"__name__": "forecast_mean", "site": site, "quantity": "facility_mw",
                              "model": "persistence-day-ahead"}
    assert len(mean["timestamps"]) == 96  # type: ignore[arg-type]
    assert mean["timestamps"][0] == int((T0 + 900 + 900) * 1000)  # type: ignore[index]
    assert json.loads(json.dumps(mean["values"]))[0] == pytest.approx(200.0 + 7.0, abs=1.0)  # type: ignore[index]
    skill = victoria.export_until(f'{{__name__="forecast_skill",site="{site}",model="persistence-intraday"}}',
                                  lambda s: len(s) >= 1)
    assert skill and skill[0]["values"][-1] == 1.0  # type: ignore[index]
