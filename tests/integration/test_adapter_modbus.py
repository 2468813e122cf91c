"""Modbus CDU adapter against pymodbus's own TCP servers, onto the real Mosquitto."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.field.base import load_adapter_config
from adapters.field.modbus_cdu import ModbusAdapter, ModbusConfig
from tests.adapter_servers import CduServer, Listener, run_adapter
from tests.servers import MosquittoServer
from twin.errors import ConfigError

pytestmark = pytest.mark.integration

MODELS = """
# model A: holding registers, scaled integers, 32-bit flow with the LOW word first, pump as a float32 in W
[models.xdu-a.fields]
supply_c = { address = 0, register = "holding", type = "int16", scale = 0.1, unit = "C" }
return_c = { address = 1, register = "holding", type = "int16", scale = 0.1, unit = "C" }
flow_lps = { address = 2, register = "holding", type = "uint32", word_order = "little", scale = 0.01, unit = "L/min" }
pump_kw = { address = 10, register = "holding", type = "float32", word_order = "big", unit = "W" }
fws_supply_c = { address = 5, register = "input", type = "int16", scale = 0.1, unit = "C" }

# model B: input registers, float32 high word first, temperatures in kelvin, flow in m3/h
[models.xdu-b.fields]
supply_c = { address = 100, register = "input", type = "float32", unit = "K" }
return_c = { address = 102, register = "input", type = "float32", unit = "K" }
flow_lps = { address = 104, register = "input", type = "float32", unit = "m3/h" }
pump_kw = { address = 106, register = "input", type = "uint16", scale = 0.1, unit = "kW" }
"""


def write_config(path: Path, site: str, a: CduServer, b: CduServer, ids: tuple[str, str] = ("h1-cdu01", "h1-cdu02"),
                 interval: float = 0.3, extra: str = "") -> Path:
    path.write_text(f"""
site = "{site}"
name = "cdu-test"
interval_s = {interval}
timeout_s = 0.3
{MODELS}
[[cdus]]
id = "{ids[0]}"
host = "127.0.0.1"
port = {a.port}
unit_id = {a.unit}
model = "xdu-a"

[[cdus]]
id = "{ids[1]}"
host = "127.0.0.1"
port = {b.port}
unit_id = {b.unit}
model = "xdu-b"
{extra}""")
    return path


def load_a(s: CduServer, supply: float = 32.1, ret: float = 42.5, flow_raw: int = 70_000, pump_w: float = 1500.0,
           fws: float = 25.0) -> None:
    s.set("holding", 0, round(supply * 10), "int16")
    s.set("holding", 1, round(ret * 10), "int16")
    s.set("holding", 2, flow_raw, "uint32", "little")
    s.set("holding", 10, pump_w, "float32", "big")
    s.set("input", 5, round(fws * 10), "int16")


def load_b(s: CduServer, supply_k: float = 305.15, ret_k: float = 315.65, flow_m3h: float = 36.0,
           pump_raw: int = 25) -> None:
    s.set("input", 100, supply_k, "float32")
    s.set("input", 102, ret_k, "float32")
    s.set("input", 104, flow_m3h, "float32")
    s.set("input", 106, pump_raw, "uint16")


def test_values_scale_word_order_and_a_silent_device(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    asyncio.run(_scenario(mosquitto, site, tmp_path))


async def _scenario(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    a, b = await CduServer(unit=3).start(), await CduServer(unit=1).start()
    try:
        load_a(a)
        load_b(b)
        # a third CDU addressed with a unit id the device does not have: Modbus exceptions, for it alone
        wrong_unit = f'[[cdus]]\nid = "h2-c1"\nhost = "127.0.0.1"\nport = {a.port}\nunit_id = 9\nmodel = "xdu-a"\n'
        cfg = load_adapter_config(write_config(tmp_path / "cdu.toml", site, a, b, extra=wrong_unit), ModbusConfig)
        ta, tb = f"stargate/{site}/coolant/h1-cdu01", f"stargate/{site}/coolant/h1-cdu02"
        status = f"stargate/{site}/twin/health/adapter-cdu-test/status"
        async with Listener(mosquitto.port, f"stargate/{site}/#") as lis, \
                run_adapter(ModbusAdapter(cfg), mosquitto.url, site):
            assert await lis.until(lambda g: len(lis.on(ta)) >= 2 and len(lis.on(tb)) >= 2)
            ma, mb = lis.on(ta)[0], lis.on(tb)[0]
            assert ma["supply_c"] == pytest.approx(32.1) and ma["return_c"] == pytest.approx(42.5)
            assert ma["flow_lps"] == pytest.approx(700.0 / 60.0)  # 70000 * 0.01 L/min, low word first
            assert ma["pump_kw"] == pytest.approx(1.5)  # 1500 W
            assert ma["fws_supply_c"] == pytest.approx(25.0) and "fws_return_c" not in ma
            assert mb["supply_c"] == pytest.approx(32.0, abs=1e-4) and mb["return_c"] == pytest.approx(42.5, abs=1e-4)
            assert mb["flow_lps"] == pytest.approx(10.0)  # 36 m3/h
            assert mb["pump_kw"] == pytest.approx(2.5)
            assert ma["source"] == "adapter/cdu-test" and [m["seq"] for m in lis.on(ta)[:2]] == [0, 1]
            assert await lis.until(lambda g: any(t == status and "h2-c1" in b.get("failing", {}) for t, b in g))
            wrong = next(b for t, b in lis.got if t == status and "h2-c1" in b.get("failing", {}))
            assert "ModbusException" in wrong["failing"]["h2-c1"] and "unit 9" in wrong["failing"]["h2-c1"]
            assert wrong["devices_total"] == 3
            assert lis.on(f"stargate/{site}/coolant/h2-c1") == []

            # an out-of-range reading (a failed sensor's 0x7FFF = 3276.7 C) is refused for that CDU only
            a.set("holding", 0, 0x7FFF, "int16")
            assert await lis.until(lambda g: any(t == status and "h1-cdu01" in b.get("failing", {}) for t, b in g))
            note = next(b for t, b in lis.got if t == status and "h1-cdu01" in b.get("failing", {}))
            assert "out of range" in note["failing"]["h1-cdu01"] and "supply_c" in note["failing"]["h1-cdu01"]
            n_a, n_b = len(lis.on(ta)), len(lis.on(tb))
            assert await lis.until(lambda g: len(lis.on(tb)) >= n_b + 3)
            assert len(lis.on(ta)) == n_a
            load_a(a, supply=31.0)
            assert await lis.until(lambda g: len(lis.on(ta)) > n_a)
            assert lis.on(ta)[n_a]["supply_c"] == pytest.approx(31.0)

            # CDU b stops answering: timeouts for b, a carries on at its pace
            b.hang = True
            assert await lis.until(lambda g: any(t == status and "no answer" in b.get("failing", {}).get("h1-cdu02", "")
                                                 for t, b in g))
            n_a, n_b = len(lis.on(ta)), len(lis.on(tb))
            assert await lis.until(lambda g: len(lis.on(ta)) >= n_a + 4)
            assert len(lis.on(tb)) == n_b
            b.hang = False  # answers again: the adapter reconnects by itself
            assert await lis.until(lambda g: len(lis.on(tb)) > n_b)
            assert lis.on(tb)[-1]["seq"] == lis.on(tb)[n_b - 1]["seq"] + 1
    finally:
        await a.stop()
        await b.stop()


def test_register_map_errors_are_one_line(tmp_path: Path) -> None:
    a, b = CduServer(), CduServer()
    p = write_config(tmp_path / "cdu.toml", "s", a, b)
    p.write_text(p.read_text().replace('unit = "m3/h"', 'unit = "kW"'))
    with pytest.raises(ConfigError, match=r"models\.xdu-b: unit 'kW' is a power, but flow_lps is a flow in L/s"):
        load_adapter_config(p, ModbusConfig)
    p = write_config(tmp_path / "cdu2.toml", "s", a, b)
    p.write_text(p.read_text().replace('model = "xdu-b"', 'model = "nope"'))
    with pytest.raises(ConfigError, match="CDU h1-cdu02: model 'nope' has no register map"):
        load_adapter_config(p, ModbusConfig)
