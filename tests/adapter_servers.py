"""Real servers on loopback for the adapter tests: dcgm-exporter pages, Modbus CDUs, OPC UA meters.

- :class:`ExporterServer`: a stdlib HTTP server (own thread, OS-chosen port) serving
  ``/metrics`` in dcgm-exporter's text format and labels, one per GPU host;
- :class:`CduServer`: pymodbus's own async Modbus TCP server holding one CDU's
  registers, able to stop answering (requests hang) on demand;
- :class:`MeterServer`: an asyncua server exposing feeder and heat-meter variables,
  stoppable and restartable on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiomqtt

from adapters.bus.mqtt import Bus
from adapters.field.base import Emitter
from adapters.field.modbus_cdu import DataType, encode_value
from tests.servers import free_port

__all__ = ["CduServer", "ExporterServer", "Gpu", "Listener", "MeterServer", "exporter_page", "make_certificate",
           "run_adapter"]


async def make_certificate(directory: Path, name: str, app_uri: str, server: bool) -> tuple[Path, Path]:
    """A self-signed OPC UA application certificate (DER) and its key (PEM), made with asyncua's helper."""
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert, key = directory / f"{name}-cert.der", directory / f"{name}-key.pem"
    use = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    await setup_self_signed_certificate(key, cert, app_uri, "127.0.0.1", use, {"commonName": name})
    return cert, key


@contextlib.asynccontextmanager
async def run_adapter(adapter: Any, broker_url: str, site: str) -> AsyncIterator[Emitter]:
    """Run an adapter in this process against the broker, as ``twin adapter`` does; cancel it on exit."""
    async with Bus(broker_url, service=f"adapter-{adapter.name}", site=site) as bus:
        emitter = Emitter(bus, site, adapter.name)
        task = asyncio.create_task(adapter.run(emitter))
        try:
            yield emitter
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


class Listener:
    """A subscriber gathering (topic, payload dict or text) in the background; ``until(pred)`` waits for a match."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.port = port
        self.filter = topic_filter
        self.got: list[tuple[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> Listener:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            await client.subscribe(self.filter, qos=1)
            self._ready.set()
            async for m in client.messages:
                raw = bytes(m.payload)  # type: ignore[arg-type]
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                self.got.append((m.topic.value, body))

    def on(self, topic: str) -> list[Any]:
        return [b for t, b in self.got if t == topic]

    async def until(self, pred: Callable[[list[tuple[str, Any]]], bool], timeout: float = 20.0) -> bool:
        """Wait until ``pred(got)`` holds; False when the deadline passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.got):
                return True
            await asyncio.sleep(0.05)
        return pred(self.got)


@dataclass
class Gpu:
    uuid: str
    power_w: float
    util_pct: float
    temp_c: float


_HELP = {
    "DCGM_FI_DEV_SM_CLOCK": "SM clock frequency (in MHz).",
    "DCGM_FI_DEV_GPU_TEMP": "GPU temperature (in C).",
    "DCGM_FI_DEV_POWER_USAGE": "Power draw (in W).",
    "DCGM_FI_DEV_GPU_UTIL": "GPU utilization (in %).",
}


def exporter_page(hostname: str, gpus: dict[int, Gpu], model: str = "NVIDIA GB300") -> str:
    """One /metrics page as dcgm-exporter writes it (HELP/TYPE lines, its label set, float values)."""
    lines = []
    for name, help_text in _HELP.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for i, g in sorted(gpus.items()):
            value = {"DCGM_FI_DEV_SM_CLOCK": 1980, "DCGM_FI_DEV_GPU_TEMP": g.temp_c,
                     "DCGM_FI_DEV_POWER_USAGE": g.power_w, "DCGM_FI_DEV_GPU_UTIL": g.util_pct}[name]
            labels = (f'gpu="{i}",UUID="{g.uuid}",pci_bus_id="00000000:{0x18 + i:02X}:00.0",device="nvidia{i}",'
                      f'modelName="{model}",Hostname="{hostname}",DCGM_FI_DRIVER_VERSION="580.65.06"')
            shown = f"{value:.6f}" if isinstance(value, float) else str(value)
            lines.append(f"{name}{{{labels}}} {shown}")
    return "\n".join(lines) + "\n"


class ExporterServer:
    """One GPU host's dcgm-exporter: ``url``, ``gpus`` (edit freely), ``stop()``."""

    def __init__(self, hostname: str, gpus: dict[int, Gpu], port: int = 0) -> None:
        self.hostname = hostname
        self.gpus = gpus
        self.requests = 0
        self.delay_s = 0.0  # > 0: answer that late (an endpoint that accepts but does not answer in time)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = exporter_page(outer.hostname, dict(outer.gpus)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class CduServer:
    """pymodbus's Modbus TCP server for one CDU (unit id ``unit``); ``set(...)`` writes engineering values."""

    def __init__(self, unit: int = 1) -> None:
        self.unit = unit
        self.port = free_port()
        self.holding: dict[int, int] = {}
        self.input: dict[int, int] = {}
        self.hang = False
        self.reads = 0
        self.server: object | None = None

    def set(self, register: str, address: int, value: float, type_: DataType, word_order: str = "big") -> None:
        regs = self.holding if register == "holding" else self.input
        for k, w in enumerate(encode_value(value, type_, word_order)):
            regs[address + k] = w

    async def _action(self, fc: int, start: int, address: int, count: int, registers: list[int],
                      values: object) -> None:
        self.reads += 1
        if self.hang:  # a device that stops answering: the request never gets a reply
            await asyncio.sleep(3600)
        src = self.holding if fc == 3 else self.input
        for a in range(address, address + count):
            registers[a - start] = src.get(a, 0)

    async def start(self) -> CduServer:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType as SimType
        from pymodbus.simulator import SimData, SimDevice

        def regs() -> list[SimData]:
            return [SimData(address=0, count=1000, values=0, datatype=SimType.REGISTERS)]

        def bits() -> list[SimData]:
            return [SimData(address=0, count=16, values=False, datatype=SimType.BITS)]

        device = SimDevice(id=self.unit, simdata=(bits(), bits(), regs(), regs()), action=self._action)
        server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await server.serve_forever(background=True)
        self.server = server
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()  # type: ignore[attr-defined]
            self.server = None


class MeterServer:
    """An asyncua server with string node ids ``ns=2;s=<name>``; ``write(name, value)``, ``stop()``, ``start()``."""

    NS_URI = "urn:stargate:test-meters"

    def __init__(self, initial: dict[str, float | bool], users: dict[str, str] | None = None,
                 secure: tuple[Path, Path] | None = None) -> None:
        self.port = free_port()
        self.secure = secure  # (certificate, key): Basic256Sha256 SignAndEncrypt only
        self.users = users  # None: anonymous; else user name -> password, anonymous refused
        self.values = dict(initial)
        self.server: object | None = None
        self.vars: dict[str, object] = {}

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/twin/"

    async def start(self) -> MeterServer:
        from asyncua import Server, ua

        users = self.users

        class Passwords:
            def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                         certificate: Any = None) -> Any:
                from asyncua.crypto.permission_rules import User, UserRole

                ok = users is not None and username in users and users[username] == password
                return User(role=UserRole.User, name=username) if ok else None

        server = Server(user_manager=Passwords()) if users is not None else Server()  # type: ignore[arg-type]
        await server.init()
        server.set_endpoint(self.url)
        if self.secure is not None:
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            await server.load_certificate(str(self.secure[0]))
            await server.load_private_key(str(self.secure[1]))
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if users is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        ns = await server.register_namespace(self.NS_URI)
        assert ns == 2, ns
        obj = await server.nodes.objects.add_object(ua.NodeId("Meters", ns), "Meters")
        self.vars = {}
        for name, value in self.values.items():
            variant = ua.Variant(value, ua.VariantType.Boolean if isinstance(value, bool) else ua.VariantType.Double)
            self.vars[name] = await obj.add_variable(ua.NodeId(name, ns), name, variant)
        await server.start()
        self.server = server
        return self

    async def write(self, name: str, value: float | bool) -> None:
        from asyncua import ua

        self.values[name] = value
        vt = ua.VariantType.Boolean if isinstance(value, bool) else ua.VariantType.Double
        await self.vars[name].write_value(ua.Variant(value, vt))  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()  # type: ignore[attr-defined]
            self.server = None
