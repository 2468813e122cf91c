"""OPC UA meter adapter against a real asyncua server (restarted mid-test), onto the real Mosquitto."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.field.base import load_adapter_config
from adapters.field.opcua_meters import OpcuaAdapter, OpcuaConfig
from tests.adapter_servers import Listener, MeterServer, make_certificate, run_adapter
from tests.servers import MosquittoServer
from twin.errors import ConfigError

pytestmark = pytest.mark.integration

INITIAL: dict[str, float | bool] = {
    "FeederA.Available": 0.5, "FeederA.Import": 15_000.0, "FeederA.Frequency": 50.02, "FeederA.Curtailed": False,
    "DH.Delivered": 5.0, "DH.Demand": 0.01, "DH.Supply": 75.0, "DH.Return": 318.15, "DH.HeatPump": 1.25,
}

NODES = """
[static.{fa}]
price_eur_mwh = 35.5

[[nodes]]
node = "ns=2;s=FeederA.Available"
domain = "hydro"
asset = "{fa}"
field = "available_mw"
unit = "MW"

[[nodes]]
node = "ns=2;s=FeederA.Import"
domain = "hydro"
asset = "{fa}"
field = "import_mw"
unit = "kW"

[[nodes]]
node = "ns=2;s=FeederA.Frequency"
domain = "hydro"
asset = "{fa}"
field = "frequency_hz"
unit = "Hz"

[[nodes]]
node = "ns=2;s=FeederA.Curtailed"
domain = "hydro"
asset = "{fa}"
field = "curtailed"
unit = "bool"

[[nodes]]
node = "ns=2;s=DH.Delivered"
domain = "heat"
asset = "{dh}"
field = "delivered_kw"
unit = "kW"

[[nodes]]
node = "ns=2;s=DH.Demand"
domain = "heat"
asset = "{dh}"
field = "demand_kw"
unit = "MW"

[[nodes]]
node = "ns=2;s=DH.Supply"
domain = "heat"
asset = "{dh}"
field = "supply_c"
unit = "C"

[[nodes]]
node = "ns=2;s=DH.Return"
domain = "heat"
asset = "{dh}"
field = "return_c"
unit = "K"

[[nodes]]
node = "ns=2;s=DH.HeatPump"
domain = "heat"
asset = "{dh}"
field = "heat_pump_kw"
unit = "kW"
"""


def write_config(path: Path, site: str, url: str, fa: str = "fa", dh: str = "dh", interval: float = 0.5) -> Path:
    path.write_text(f"""
site = "{site}"
name = "meters-test"
url = "{url}"
interval_s = {interval}
timeout_s = 1.0
watchdog_s = 0.3
publishing_interval_ms = 50
reconnect_max_s = 1.0
""" + NODES.format(fa=fa, dh=dh))
    return path


def test_values_change_and_resubscribe_after_restart(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    asyncio.run(_scenario(mosquitto, site, tmp_path))


async def _scenario(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    meters = await MeterServer(INITIAL).start()
    try:
        cfg = load_adapter_config(write_config(tmp_path / "opcua.toml", site, meters.url), OpcuaConfig)
        th, tx = f"stargate/{site}/hydro/fa", f"stargate/{site}/heat/dh"
        status = f"stargate/{site}/twin/health/adapter-meters-test/status"
        adapter = OpcuaAdapter(cfg)
        async with Listener(mosquitto.port, f"stargate/{site}/#") as lis, \
                run_adapter(adapter, mosquitto.url, site):
            assert await lis.until(lambda g: bool(lis.on(th)) and bool(lis.on(tx)))
            h, x = lis.on(th)[0], lis.on(tx)[0]
            assert h["available_mw"] == 0.5 and h["import_mw"] == pytest.approx(15.0)  # kW -> MW
            assert h["frequency_hz"] == 50.02 and h["price_eur_mwh"] == 35.5 and h["curtailed"] is False
            assert x["delivered_kw"] == 5.0 and x["demand_kw"] == pytest.approx(10.0)  # MW -> kW
            assert x["supply_c"] == 75.0 and x["return_c"] == pytest.approx(45.0)  # K -> C
            assert x["heat_pump_kw"] == 1.25 and x["source"] == "adapter/meters-test"

            # a value change on the server arrives on MQTT
            await meters.write("FeederA.Import", 21_000.0)
            assert await lis.until(lambda g: any(m["import_mw"] == pytest.approx(21.0) for m in lis.on(th)))
            await meters.write("FeederA.Curtailed", True)
            assert await lis.until(lambda g: any(m.get("curtailed") is True for m in lis.on(th)))

            # the server goes away: nothing more is published (the twin sees the meters stale)
            await meters.stop()
            assert await lis.until(lambda g: any(t == status and meters.url in b.get("failing", {}) for t, b in g))
            n = len(lis.on(th))
            await asyncio.sleep(1.0)  # two publish intervals: a live adapter would have sent again
            assert len(lis.on(th)) == n

            # it comes back on the same port: reconnect, subscribe again, and new changes flow
            await meters.start()
            assert await lis.until(lambda g: len(lis.on(th)) > n)
            again = lis.on(th)[n]
            assert again["import_mw"] == pytest.approx(21.0) and again["seq"] == lis.on(th)[n - 1]["seq"] + 1
            await meters.write("DH.Delivered", 123.0)
            assert await lis.until(lambda g: any(m["delivered_kw"] == 123.0 for m in lis.on(tx)))
            assert adapter.connects == 2
    finally:
        await meters.stop()


def test_user_and_password_from_config_and_environment(mosquitto: MosquittoServer, site: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_login(mosquitto, site, tmp_path, monkeypatch))


async def _login(mosquitto: MosquittoServer, site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meters = await MeterServer(INITIAL, users={"twin": "s3cret"}).start()
    try:
        p = write_config(tmp_path / "opcua.toml", site, meters.url)
        p.write_text(p.read_text().replace('name = "meters-test"', 'name = "meters-test"\nusername = "twin"\n'
                                                                   'password_env = "TEST_OPCUA_PW"'))
        cfg = load_adapter_config(p, OpcuaConfig)
        monkeypatch.delenv("TEST_OPCUA_PW", raising=False)
        with pytest.raises(ConfigError, match=r"OPC UA user 'twin' needs its password in \$TEST_OPCUA_PW"):
            OpcuaAdapter(cfg)
        th = f"stargate/{site}/hydro/fa"
        status = f"stargate/{site}/twin/health/adapter-meters-test/status"
        async with Listener(mosquitto.port, f"stargate/{site}/#") as lis:
            monkeypatch.setenv("TEST_OPCUA_PW", "wrong")
            async with run_adapter(OpcuaAdapter(cfg), mosquitto.url, site):
                assert await lis.until(lambda g: any(t == status and meters.url in b.get("failing", {})
                                                     for t, b in g))
            assert lis.on(th) == []  # refused login: nothing published
            monkeypatch.setenv("TEST_OPCUA_PW", "s3cret")
            async with run_adapter(OpcuaAdapter(cfg), mosquitto.url, site):
                assert await lis.until(lambda g: bool(lis.on(th)))
            assert lis.on(th)[0]["import_mw"] == pytest.approx(15.0)
            # the password from a file (a compose secret), named by the variable's _FILE twin
            monkeypatch.delenv("TEST_OPCUA_PW")
            secret = tmp_path / "opcua_password"
            secret.write_text("s3cret\n")
            monkeypatch.setenv("TEST_OPCUA_PW_FILE", str(secret))
            before = len(lis.on(th))
            async with run_adapter(OpcuaAdapter(cfg), mosquitto.url, site):
                assert await lis.until(lambda g: len(lis.on(th)) > before)
        secret.write_text("")
        with pytest.raises(ConfigError, match=r"TEST_OPCUA_PW_FILE: .* is empty"):
            OpcuaAdapter(cfg)
    finally:
        await meters.stop()


def test_sign_and_encrypt_with_client_certificate(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    asyncio.run(_secure(mosquitto, site, tmp_path))


async def _secure(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    server_cert = await make_certificate(tmp_path, "server", "urn:stargate:test-meters", server=True)
    client_cert, client_key = await make_certificate(tmp_path, "client", "urn:stargate-twin:adapter:opcua",
                                                     server=False)
    meters = await MeterServer(INITIAL, secure=server_cert).start()
    try:
        p = write_config(tmp_path / "opcua.toml", site, meters.url)
        plain = load_adapter_config(p, OpcuaConfig)
        p.write_text(p.read_text().replace('name = "meters-test"', f'''name = "meters-test"
security_policy = "Basic256Sha256"
security_mode = "SignAndEncrypt"
certificate = "{client_cert}"
private_key = "{client_key}"'''))
        secure = load_adapter_config(p, OpcuaConfig)
        th = f"stargate/{site}/hydro/fa"
        status = f"stargate/{site}/twin/health/adapter-meters-test/status"
        async with Listener(mosquitto.port, f"stargate/{site}/#") as lis:
            async with run_adapter(OpcuaAdapter(plain), mosquitto.url, site):  # no security: refused
                assert await lis.until(lambda g: any(t == status and meters.url in b.get("failing", {})
                                                     for t, b in g))
            assert lis.on(th) == []
            async with run_adapter(OpcuaAdapter(secure), mosquitto.url, site):
                assert await lis.until(lambda g: bool(lis.on(th)))
            assert lis.on(th)[0]["available_mw"] == 0.5
    finally:
        await meters.stop()


def test_node_map_errors_are_one_line(tmp_path: Path) -> None:
    p = write_config(tmp_path / "o.toml", "s", "opc.tcp://127.0.0.1:4840/")
    p.write_text(p.read_text().replace('field = "heat_pump_kw"', 'field = "heat_pump_mw"'))
    with pytest.raises(ConfigError, match=r"nodes\[8\]: 'heat_pump_mw' is not a heat field"):
        load_adapter_config(p, OpcuaConfig)
    p = write_config(tmp_path / "o2.toml", "s", "opc.tcp://127.0.0.1:4840/")
    p.write_text(p.read_text().replace("price_eur_mwh = 35.5", ""))
    with pytest.raises(ConfigError, match="hydro asset fa has no node or static value for price_eur_mwh"):
        load_adapter_config(p, OpcuaConfig)
