"""``twin run state``'s StateService fed only by the three adapters against real servers: the plant figures.

Small plant (tests/data/small.toml): 8 racks of 4 GPUs in halls h1 and h2, CDUs h1-cdu01, h1-cdu02,
h2-c1, h2-c2 (water-like coolant: 1000 kg/m3, 4000 J/(kg K)), feeders fa and fb, exchanger dh,
contract 1 MW. Expected figures, by hand:

- rack k (0..7): 4 GPUs at 200 + 50 k W, aux 1,000 W -> sum 12,000 W + 8,000 W = it_mw 0.020
- feeders: import 12 + 11 kW -> facility_mw 0.023; available 0.6 + 0.5 -> 1.1 MW; headroom 1.0 - 0.023
- CDUs: 0.1 L/s, 30 -> 40 C: 1000 * 4000 * 1e-4 * 10 = 4,000 W each -> heat_to_liquid_mw 0.016, capture 0.8
- exchanger: 8 kW delivered, 2 kW heat pumps -> 0.008 and 0.002 MW

Then one GPU leaves its exporter page (31 GPUs reporting, IT power held) and one exporter stops
(its rack stale after stale_after_s, 27 GPUs reporting).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from adapters.bus.mqtt import Bus
from adapters.field.base import load_adapter_config
from adapters.field.dcgm import DcgmAdapter, DcgmConfig
from adapters.field.modbus_cdu import ModbusAdapter, ModbusConfig
from adapters.field.opcua_meters import OpcuaAdapter, OpcuaConfig
from tests.adapter_servers import CduServer, ExporterServer, Gpu, Listener, MeterServer, run_adapter
from tests.conftest import REPO
from tests.servers import MosquittoServer
from twin.plant import Plant, load_plant
from twin.services.state import StateService

pytestmark = pytest.mark.integration

RACKS = [("h1", "h1-r001"), ("h1", "h1-r002"), ("h1", "h1-r003"), ("h1", "h1-r004"),
         ("h2", "h2-a"), ("h2", "h2-b"), ("h2", "h2-c"), ("h2", "h2-d")]
CDUS = ["h1-cdu01", "h1-cdu02", "h2-c1", "h2-c2"]
METERS: dict[str, float | bool] = {
    "FA.Available": 0.6, "FA.Import": 12.0, "FA.Frequency": 50.0,
    "FB.Available": 0.5, "FB.Import": 11.0, "FB.Frequency": 49.98,
    "DH.Delivered": 8.0, "DH.Demand": 20.0, "DH.Supply": 75.0, "DH.Return": 45.0, "DH.HeatPump": 2.0,
}


def small_plant(tmp_path: Path, site: str) -> Plant:
    text = (REPO / "tests" / "data" / "small.toml").read_text()
    text = text.replace('id = "tiny"', f'id = "{site}"').replace("stale_after_s = 10.0", "stale_after_s = 2.0")
    p = tmp_path / "small.toml"
    p.write_text(text)
    return load_plant(p)


def dcgm_config(tmp_path: Path, site: str, hosts: list[ExporterServer]) -> DcgmConfig:
    body = [f'site = "{site}"', "interval_s = 0.5", "timeout_s = 0.5", "gpus_per_rack = 4", "aux_power_w = 1000.0",
            "endpoints = [" + ", ".join(f'"{h.url}"' for h in hosts) + "]"]
    for (hall, rack), h in zip(RACKS, hosts, strict=True):
        body += ["[[hosts]]", f'hostname = "{h.hostname}"', f'hall = "{hall}"', f'rack = "{rack}"',
                 "slots = [0, 1, 2, 3]"]
    (tmp_path / "dcgm.toml").write_text("\n".join(body) + "\n")
    return load_adapter_config(tmp_path / "dcgm.toml", DcgmConfig)


def modbus_config(tmp_path: Path, site: str, servers: list[CduServer]) -> ModbusConfig:
    body = [f'site = "{site}"', "interval_s = 0.5", "timeout_s = 0.5", "[models.cdu.fields]",
            'supply_c = { address = 0, type = "int16", scale = 0.1, unit = "C" }',
            'return_c = { address = 1, type = "int16", scale = 0.1, unit = "C" }',
            'flow_lps = { address = 2, type = "uint16", scale = 0.001, unit = "L/s" }',
            'pump_kw = { address = 3, type = "uint16", unit = "W" }']
    for cdu, s in zip(CDUS, servers, strict=True):
        body += ["[[cdus]]", f'id = "{cdu}"', 'host = "127.0.0.1"', f"port = {s.port}", f"unit_id = {s.unit}",
                 'model = "cdu"']
    (tmp_path / "modbus.toml").write_text("\n".join(body) + "\n")
    return load_adapter_config(tmp_path / "modbus.toml", ModbusConfig)


def opcua_config(tmp_path: Path, site: str, url: str) -> OpcuaConfig:
    body = [f'site = "{site}"', f'url = "{url}"', "interval_s = 0.5", "watchdog_s = 0.5",
            "[static.fa]", "price_eur_mwh = 20.0", "[static.fb]", "price_eur_mwh = 20.0"]
    nodes = [("FA.Available", "hydro", "fa", "available_mw", "MW"), ("FA.Import", "hydro", "fa", "import_mw", "kW"),
             ("FA.Frequency", "hydro", "fa", "frequency_hz", "Hz"),
             ("FB.Available", "hydro", "fb", "available_mw", "MW"), ("FB.Import", "hydro", "fb", "import_mw", "kW"),
             ("FB.Frequency", "hydro", "fb", "frequency_hz", "Hz"),
             ("DH.Delivered", "heat", "dh", "delivered_kw", "kW"), ("DH.Demand", "heat", "dh", "demand_kw", "kW"),
             ("DH.Supply", "heat", "dh", "supply_c", "C"), ("DH.Return", "heat", "dh", "return_c", "C"),
             ("DH.HeatPump", "heat", "dh", "heat_pump_kw", "kW")]
    for node, domain, asset, field, unit in nodes:
        body += ["[[nodes]]", f'node = "ns=2;s={node}"', f'domain = "{domain}"', f'asset = "{asset}"',
                 f'field = "{field}"', f'unit = "{unit}"']
    (tmp_path / "opcua.toml").write_text("\n".join(body) + "\n")
    return load_adapter_config(tmp_path / "opcua.toml", OpcuaConfig)


def expected_figures(s: dict[str, object]) -> bool:
    def near(key: str, v: float) -> bool:
        x = s.get(key)
        return isinstance(x, float | int) and abs(x - v) < 1e-9
    return (s.get("gpus_reporting") == 32 and near("it_mw", 0.020) and near("facility_mw", 0.023)
            and near("heat_to_liquid_mw", 0.016) and near("heat_reused_mw", 0.008))


def test_state_from_adapters_only(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    asyncio.run(_scenario(mosquitto, site, tmp_path))


async def _scenario(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    plant = small_plant(tmp_path, site)
    hosts = [ExporterServer(f"tray-{rack}", {i: Gpu(f"GPU-{rack}-{i}", 200.0 + 50 * k, 50.0, 40.0 + k)
                                              for i in range(4)}) for k, (_, rack) in enumerate(RACKS)]
    cdus = [await CduServer(unit=1).start() for _ in CDUS]
    for s in cdus:
        s.set("holding", 0, 300, "int16")
        s.set("holding", 1, 400, "int16")
        s.set("holding", 2, 100, "uint16")
        s.set("holding", 3, 220, "uint16")
    meters = await MeterServer(METERS).start()
    try:
        service = StateService(plant, tick_s=0.5)
        state_topic = f"stargate/{site}/twin/state"
        async with contextlib.AsyncExitStack() as stack:
            lis = await stack.enter_async_context(Listener(mosquitto.port, state_topic))
            bus = await stack.enter_async_context(Bus(mosquitto.url, service="state", site=site,
                                                      subscriptions=service.subscriptions))
            task = asyncio.create_task(service.run(bus))
            stack.push_async_callback(_cancel, task)
            await stack.enter_async_context(run_adapter(DcgmAdapter(dcgm_config(tmp_path, site, hosts)),
                                                        mosquitto.url, site))
            await stack.enter_async_context(run_adapter(ModbusAdapter(modbus_config(tmp_path, site, cdus)),
                                                        mosquitto.url, site))
            await stack.enter_async_context(run_adapter(OpcuaAdapter(opcua_config(tmp_path, site, meters.url)),
                                                        mosquitto.url, site))

            ok = await lis.until(lambda g: any(expected_figures(b) for _, b in g), timeout=30)
            assert ok, f"no state with the expected figures; last: {lis.got[-1:] if lis.got else None}"
            s = next(b for _, b in lis.got if expected_figures(b))
            assert s["gpus_total"] == 32 and s["gpu_util_mean"] == pytest.approx(0.5)
            assert s["gpu_temp_max_c"] == pytest.approx(47.0)
            assert s["pue"] == pytest.approx(0.023 / 0.020)
            assert s["hydro_available_mw"] == pytest.approx(1.1)
            assert s["headroom_mw"] == pytest.approx(1.0 - 0.023)
            assert s["liquid_capture_ratio"] == pytest.approx(0.8)
            assert s["heat_pump_mw"] == pytest.approx(0.002)
            assert s["coolant_return_max_c"] == pytest.approx(40.0)
            assert s["msgs_rejected"] == 0 and s["msgs_duplicate"] == 0
            assert not [a for a in s["stale"] if not a.startswith("ambient/")]  # no weather adapter here

            # one GPU drops out of a page: reported missing (gpu_missing), its power held, not zeroed
            del hosts[0].gpus[2]
            ok = await lis.until(lambda g: any(b["gpus_reporting"] == 31 for _, b in g), timeout=30)
            assert ok, f"the missing GPU never showed; last: {lis.got[-1:]}"
            s = next(b for _, b in lis.got if b["gpus_reporting"] == 31)
            assert s["it_mw"] == pytest.approx(0.020) and s["msgs_rejected"] == 0

            # an exporter goes down: its rack falls silent and the twin lists it stale
            hosts[-1].stop()
            ok = await lis.until(lambda g: any("gpu/h2-d" in b["stale"] and b["gpus_reporting"] == 27
                                               for _, b in g), timeout=30)
            assert ok, f"h2-d never turned stale; last: {lis.got[-1:]}"
    finally:
        for h in hosts:
            h.stop()
        for c in cdus:
            await c.stop()
        await meters.stop()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
