"""Hydro feeders and heat meters over OPC UA to ``stargate/{site}/hydro/{feeder}`` and ``.../heat/{exchanger}``.

A node map names, for every node to watch, its node id (``ns=2;s=FeederA.Import``),
the asset and domain (``hydro`` or ``heat``) it belongs to, the contract field it
feeds and its unit (converted by :mod:`adapters.field.units`, with an optional ``scale``).
Fields the meters do not carry (a feeder's spot price, say) can be set as
constants per asset under ``[static.<asset>]``.

The adapter opens one session (asyncua), creates one subscription and monitors
every node (data change). It publishes the latest values of each asset as soon as
a change arrives (at most every ``min_gap_s``) and again every ``interval_s``
while the session is alive, so that a steady value does not look stale. It probes
the server every ``watchdog_s``; when the server goes away it stops publishing (the
twin then lists those assets stale), forgets the values, reconnects with backoff
and subscribes again: the server sends the current value of every node on the new
subscription. Security policy and mode, client certificate and key, user name
(password from the environment, never from the file) come from the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from adapters.field.base import AdapterConfig, DeviceHealth, Emitter, Refused
from adapters.field.units import converter
from twin.contract import ASSET_ID_PATTERN, HeatTelemetry, HydroTelemetry, Telemetry
from twin.errors import ConfigError

__all__ = ["NodeMap", "OpcuaAdapter", "OpcuaConfig"]

log = logging.getLogger("twin.adapter.opcua")

AssetId = Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
Domain = Literal["hydro", "heat"]
MODELS: dict[str, type[Telemetry]] = {"hydro": HydroTelemetry, "heat": HeatTelemetry}
_COMMON = {"ts", "seq", "source"}


def _fields(domain: str) -> tuple[set[str], set[str]]:
    """(required, optional) contract fields of a domain."""
    m = MODELS[domain].model_fields
    req = {k for k, f in m.items() if f.is_required() and k not in _COMMON}
    opt = {k for k, f in m.items() if not f.is_required() and k not in _COMMON}
    return req, opt


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeMap(_Cfg):
    node: str = Field(min_length=3, description="OPC UA node id, e.g. ns=2;s=FeederA.Import")
    domain: Domain
    asset: AssetId
    field: str
    unit: str = Field(description="unit of the node's value (times scale): MW, kW, C, Hz, %, EUR/MWh, bool...")
    scale: float = 1.0

    @model_validator(mode="after")
    def _check(self) -> NodeMap:
        req, opt = _fields(self.domain)
        if self.field not in req | opt:
            raise ValueError(f"{self.field!r} is not a {self.domain} field (known: {', '.join(sorted(req | opt))})")
        converter(self.unit, self.field)
        return self


class OpcuaConfig(AdapterConfig):
    url: str = Field(pattern=r"^opc\.tcp://", description="opc.tcp://host:4840/path")
    timeout_s: float = Field(default=4.0, gt=0, description="per OPC UA request, s")
    publishing_interval_ms: float = Field(default=250.0, gt=0, description="subscription publishing interval")
    watchdog_s: float = Field(default=1.0, gt=0, description="how often the connection is probed, s")
    min_gap_s: float = Field(default=0.05, ge=0, description="least time between two publications, s")
    reconnect_max_s: float = Field(default=10.0, gt=0)
    security_policy: Literal["None", "Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"] = "None"
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: Path | None = Field(default=None, description="client certificate (DER or PEM)")
    private_key: Path | None = None
    server_certificate: Path | None = None
    application_uri: str = Field(default="urn:stargate-twin:adapter:opcua",
                                 description="client application URI: the one in the client certificate")
    username: str | None = None
    password_env: str = Field(default="TWIN_OPCUA_PASSWORD", description="environment variable with the password; "
                              "or the same name with _FILE: the path of a file holding it (a compose secret)")
    nodes: list[NodeMap] = Field(min_length=1)
    static: dict[str, dict[str, float | bool]] = Field(default_factory=dict, description="asset -> field -> value")

    @model_validator(mode="after")
    def _check(self) -> OpcuaConfig:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError("security_policy and security_mode must both be None or both be set")
        if self.security_mode != "None" and not (self.certificate and self.private_key):
            raise ValueError(f"security_mode {self.security_mode} needs certificate and private_key")
        seen: set[tuple[str, str]] = set()
        domain_of: dict[str, str] = {}
        for n in self.nodes:
            if domain_of.setdefault(n.asset, n.domain) != n.domain:
                raise ValueError(f"asset {n.asset} is mapped as both {domain_of[n.asset]} and {n.domain}")
            if (n.asset, n.field) in seen:
                raise ValueError(f"{n.asset}.{n.field} is mapped by two nodes")
            seen.add((n.asset, n.field))
        for asset, values in self.static.items():
            if asset not in domain_of:
                raise ValueError(f"static values for {asset}, which no node maps")
            req, opt = _fields(domain_of[asset])
            for f in values:
                if f not in req | opt:
                    raise ValueError(f"static {asset}.{f} is not a {domain_of[asset]} field")
                seen.add((asset, f))
        for asset, domain in domain_of.items():
            req, _ = _fields(domain)
            lacking = sorted(f for f in req if (asset, f) not in seen)
            if lacking:
                raise ValueError(f"{domain} asset {asset} has no node or static value for {', '.join(lacking)}")
        return self


def _password(env: str) -> str | None:
    """The password in ``$env``, else in the file ``$env_FILE`` names (its content, one trailing newline off)."""
    if (value := os.environ.get(env)) is not None:
        return value
    path = os.environ.get(f"{env}_FILE")
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"OPC UA password file ${env}_FILE: cannot read {path}: {e.strerror or e}") from None
    text = text[:-1] if text.endswith("\n") else text
    if not text:
        raise ConfigError(f"OPC UA password file ${env}_FILE: {path} is empty")
    return text


class _Handler:
    """asyncua subscription callbacks: store the converted value of each changed node."""

    def __init__(self, adapter: OpcuaAdapter) -> None:
        self.adapter = adapter

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.adapter.on_change(node.nodeid, val, data)

    def status_change_notification(self, status: Any) -> None:
        log.info("subscription status change: %s", status)


class OpcuaAdapter:
    kind = "opcua"

    def __init__(self, cfg: OpcuaConfig) -> None:
        from asyncua import ua

        self.cfg = cfg
        self.name = cfg.name or self.kind
        self.health = DeviceHealth([cfg.url])
        self.password: str | None = None
        if cfg.username:
            self.password = _password(cfg.password_env)
            if self.password is None:
                raise ConfigError(f"OPC UA user {cfg.username!r} needs its password in ${cfg.password_env} "
                                  f"(or a file named by ${cfg.password_env}_FILE)")
        try:
            self._by_node = {ua.NodeId.from_string(n.node): n for n in cfg.nodes}
        except Exception as e:
            raise ConfigError(f"a node id of the node map does not parse: {e}") from None
        self._conv = {n.node: converter(n.unit, n.field) for n in cfg.nodes}
        self.assets_domain: dict[str, str] = {n.asset: n.domain for n in cfg.nodes}
        self.values: dict[str, dict[str, float | bool]] = {}
        self.live = False
        self.connects = 0
        self._changed = asyncio.Event()

    def assets(self) -> list[tuple[str, str, str | None]]:
        return [(domain, asset, None) for asset, domain in self.assets_domain.items()]

    # ------------------------------------------------------------ values

    def on_change(self, nodeid: Any, val: Any, data: Any) -> None:
        m = self._by_node.get(nodeid)
        if m is None:
            return
        status = getattr(getattr(getattr(data, "monitored_item", None), "Value", None), "StatusCode", None)
        vals = self.values.setdefault(m.asset, {})
        if (status is not None and not status.is_good()) or val is None:
            vals.pop(m.field, None)
            self.health.notes[m.node] = f"bad status {status}"
            self._changed.set()
            return
        self.health.notes.pop(m.node, None)
        try:
            if m.unit == "bool":
                vals[m.field] = bool(val)
            else:
                a, b = self._conv[m.node]
                vals[m.field] = a * float(val) * m.scale + b
        except (TypeError, ValueError):
            vals.pop(m.field, None)
            self.health.notes[m.node] = f"value {val!r} is not a number"
        self._changed.set()

    def messages(self) -> list[tuple[str, str, dict[str, float | bool]]]:
        """(domain, asset, fields) of every asset whose required fields all have a value."""
        out = []
        for asset, domain in self.assets_domain.items():
            fields = {**self.cfg.static.get(asset, {}), **self.values.get(asset, {})}
            req, _ = _fields(domain)
            if req <= fields.keys():
                out.append((domain, asset, fields))
        return out

    def publish(self, emitter: Emitter, ts: float) -> int:
        sent = 0
        for domain, asset, fields in self.messages():
            topic = emitter.topics.hydro(asset) if domain == "hydro" else emitter.topics.heat(asset)
            try:
                emitter.emit(MODELS[domain], topic, ts, fields)
                sent += 1
                self.health.notes.pop(asset, None)
            except Refused as e:
                self.health.notes[asset] = f"refused: {e}"
        return sent

    # ------------------------------------------------------------ running

    async def _configure(self, client: Any) -> None:
        c = self.cfg
        client.application_uri = c.application_uri
        if c.security_mode != "None":
            parts = [c.security_policy, c.security_mode, str(c.certificate), str(c.private_key)]
            if c.server_certificate:
                parts.append(str(c.server_certificate))
            await client.set_security_string(",".join(parts))
        if c.username:
            client.set_user(c.username)
            if self.password is not None:
                client.set_password(self.password)

    async def _session(self) -> None:
        """One session: connect, subscribe, probe until it fails (raises)."""
        from asyncua import Client, ua

        client = Client(self.cfg.url, timeout=self.cfg.timeout_s)
        await self._configure(client)
        try:
            await asyncio.wait_for(client.connect(), self.cfg.timeout_s * 2)
            sub = await client.create_subscription(self.cfg.publishing_interval_ms, _Handler(self))
            nodes = [client.get_node(nid) for nid in self._by_node]
            results = await sub.subscribe_data_change(nodes)
            for nid, r in zip(self._by_node, results, strict=True):
                if isinstance(r, ua.StatusCode):
                    self.health.notes[self._by_node[nid].node] = f"cannot monitor: {r}"
            self.live = True
            self.connects += 1
            self.health.ok(self.cfg.url, time.time())
            log.info("%s: subscribed to %d nodes on %s", self.name, len(nodes), self.cfg.url)
            while True:
                await asyncio.sleep(self.cfg.watchdog_s)
                await asyncio.wait_for(client.nodes.server_state.read_value(), self.cfg.timeout_s)
        finally:
            self.live = False
            self.values.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 2)

    async def _connection(self, emitter: Emitter) -> None:
        backoff = 0.2
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any fault of the session: translate, report, reconnect
                first = str(e).splitlines()[0] if str(e) else ""
                self.health.fail(self.cfg.url, f"{type(e).__name__} from {self.cfg.url}{': ' + first if first else ''}")
                emitter.status(self.health.status(self.name, time.time()))
            if self.health.last_ok.get(self.cfg.url, 0) > time.time() - 5:
                backoff = 0.2
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.cfg.reconnect_max_s)

    async def run(self, emitter: Emitter) -> None:
        """Keep a subscription alive and publish until cancelled."""
        conn = asyncio.create_task(self._connection(emitter), name=f"opcua-{self.name}")
        try:
            while True:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), self.cfg.interval_s)
                self._changed.clear()
                if conn.done():
                    conn.result()  # re-raise a crash of the connection task
                if self.live:
                    ts = time.time()
                    self.publish(emitter, ts)
                    emitter.status(self.health.status(self.name, ts))
                await asyncio.sleep(self.cfg.min_gap_s)
        finally:
            conn.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn
