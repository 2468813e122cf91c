"""Every topic of the wire contract, in one table; building them and parsing them without regexes.

:data:`CHANNELS` is the contract's list of topics (address template, payload, QoS, retain, who sends it).
:class:`Topics` builds the addresses of one site from it, and ``twin asyncapi`` generates the AsyncAPI
channels from it, so that a topic cannot be added in one place and forgotten in the other.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Literal

__all__ = ["CHANNELS", "EVERY_SITE_FILTER", "TELEMETRY_DOMAINS", "Channel", "TelemetryTopic", "Topics",
           "channel", "is_twin_output", "parse_telemetry_topic", "with_site"]

TELEMETRY_DOMAINS: tuple[str, ...] = ("hydro", "gpu", "coolant", "heat", "ambient")
#: Number of topic levels after ``stargate/{site}/{domain}`` for each domain.
_ASSET_LEVELS = {"hydro": 1, "gpu": 2, "coolant": 1, "heat": 1, "ambient": 1}
#: Everything of every site (what ``twin record`` records by default).
EVERY_SITE_FILTER = "stargate/#"


@dataclass(frozen=True, slots=True)
class Channel:
    """One topic of the contract. ``direction`` is the twin's: it receives telemetry and sends the rest."""

    id: str
    address: str  # a template: {site} and the channel's own parameters
    payload: str  # the name of the model in twin.contract, or "text" for a plain-text payload
    qos: int
    retain: bool
    direction: Literal["receive", "send"]
    summary: str

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.address) if f)

    def address_for(self, site: str, **params: str) -> str:
        return self.address.format(site=site, **params)

    def filter_for(self, site: str) -> str:
        """The MQTT filter matching this channel on one site (each parameter but the site a ``+``)."""
        return self.address.format(site=site, **{p: "+" for p in self.parameters if p != "site"})


CHANNELS: tuple[Channel, ...] = (
    Channel("hydro", "stargate/{site}/hydro/{feeder}", "HydroTelemetry", 1, False, "receive",
            "A hydro supply feeder, the grid connection point."),
    Channel("gpu", "stargate/{site}/gpu/{hall}/{rack}", "GpuRackTelemetry", 1, False, "receive",
            "A GPU rack, all its GPUs in one message."),
    Channel("coolant", "stargate/{site}/coolant/{cdu}", "CoolantTelemetry", 1, False, "receive",
            "A coolant distribution unit (one technology cooling loop)."),
    Channel("heat", "stargate/{site}/heat/{exchanger}", "HeatTelemetry", 1, False, "receive",
            "A heat-reuse exchanger towards an offtaker."),
    Channel("ambient", "stargate/{site}/ambient/{station}", "AmbientTelemetry", 1, False, "receive",
            "A weather station."),
    Channel("plantState", "stargate/{site}/twin/state", "PlantState", 1, True, "send",
            "The whole plant, every tick (1 s by default)."),
    Channel("hallState", "stargate/{site}/twin/state/{hall}", "HallState", 1, True, "send",
            "One hall, every tick."),
    Channel("forecast", "stargate/{site}/twin/forecast/{quantity}", "Forecast", 1, True, "send",
            "A forecast of one quantity: every model's points with their intervals."),
    Channel("alarm", "stargate/{site}/twin/alarm/{alarm_id}", "Alarm", 1, True, "send",
            "An alarm while it is active; an empty retained message clears it."),
    Channel("worker", "stargate/{site}/twin/worker/{worker}", "WorkerState", 1, True, "send",
            "A hall worker's counters and stale assets, every tick (scale-out)."),
    Channel("deadletter", "stargate/{site}/twin/deadletter", "DeadLetter", 1, False, "send",
            "A refused message and why."),
    Channel("health", "stargate/{site}/twin/health/{service}", "text", 1, True, "send",
            "Every service's liveness; `offline` is its MQTT will."),
    Channel("adapterStatus", "stargate/{site}/twin/health/{service}/status", "AdapterStatus", 1, True, "send",
            "A field adapter's devices (service `adapter-NAME`): total and OK, why each failing one failed, "
            "partial faults."),
    Channel("sinkStats", "stargate/{site}/twin/sink", "SinkStats", 1, True, "send",
            "The sink's health: points in, written, retried, spooled, dropped, dead-lettered; spool size and "
            "bound; the last write error."),
)
_BY_ID = {c.id: c for c in CHANNELS}


def channel(channel_id: str) -> Channel:
    return _BY_ID[channel_id]


@dataclass(frozen=True, slots=True)
class TelemetryTopic:
    site: str
    domain: str
    asset: str  # the rack id for gpu, else the feeder / cdu / exchanger / station id
    hall: str | None = None  # gpu only


def parse_telemetry_topic(topic: str) -> TelemetryTopic | str:
    """Split ``stargate/{site}/{domain}/...``; return the parts, or a reason why not."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != "stargate":
        return f"topic {topic!r} is not stargate/{{site}}/{{domain}}/{{asset}}"
    domain = parts[2]
    levels = _ASSET_LEVELS.get(domain)
    if levels is None:
        return f"unknown telemetry domain {domain!r} (expected one of {', '.join(TELEMETRY_DOMAINS)})"
    if len(parts) != 3 + levels:
        shape = "gpu/{hall}/{rack}" if domain == "gpu" else f"{domain}/{{asset}}"
        return f"topic {topic!r} has the wrong number of levels for {shape}"
    if domain == "gpu":
        return TelemetryTopic(parts[1], domain, parts[4], parts[3])
    return TelemetryTopic(parts[1], domain, parts[3])


def is_twin_output(topic: str) -> bool:
    """``stargate/{site}/twin/...``: the twin's outputs, which a replay must never impersonate."""
    parts = topic.split("/", 3)
    return len(parts) >= 3 and parts[0] == "stargate" and parts[2] == "twin"


def with_site(topic: str, site: str) -> str:
    """``stargate/{other}/...`` moved to ``site``; any other topic unchanged."""
    parts = topic.split("/", 2)
    if len(parts) == 3 and parts[0] == "stargate":
        return f"stargate/{site}/{parts[2]}"
    return topic


@dataclass(frozen=True, slots=True)
class Topics:
    """The contract's topics for one site, built from :data:`CHANNELS`."""

    site: str

    def _at(self, channel_id: str, **params: str) -> str:
        return _BY_ID[channel_id].address_for(self.site, **params)

    @property
    def root(self) -> str:
        return f"stargate/{self.site}"

    @property
    def telemetry_filters(self) -> list[str]:
        """One ``#`` filter per domain: a topic with the wrong levels still arrives, to be dead-lettered."""
        return [self.telemetry_filter(d) for d in TELEMETRY_DOMAINS]

    def telemetry_filter(self, domain: str) -> str:
        return f"{self.root}/{domain}/#"

    def hydro(self, feeder: str) -> str:
        return self._at("hydro", feeder=feeder)

    def gpu(self, hall: str, rack: str) -> str:
        return self._at("gpu", hall=hall, rack=rack)

    def coolant(self, cdu: str) -> str:
        return self._at("coolant", cdu=cdu)

    def heat(self, exchanger: str) -> str:
        return self._at("heat", exchanger=exchanger)

    def ambient(self, station: str) -> str:
        return self._at("ambient", station=station)

    @property
    def state(self) -> str:
        return self._at("plantState")

    def hall_state(self, hall: str) -> str:
        return self._at("hallState", hall=hall)

    def worker(self, worker: str) -> str:
        return self._at("worker", worker=worker)

    def forecast(self, quantity: str) -> str:
        return self._at("forecast", quantity=quantity)

    def alarm(self, alarm_id: str) -> str:
        return self._at("alarm", alarm_id=alarm_id)

    @property
    def deadletter(self) -> str:
        return self._at("deadletter")

    def health(self, service: str) -> str:
        return self._at("health", service=service)

    def adapter_status(self, service: str) -> str:
        return self._at("adapterStatus", service=service)

    @property
    def sink_stats(self) -> str:
        return self._at("sinkStats")

    def filter(self, channel_id: str) -> str:
        """The MQTT filter for every topic of one channel on this site, e.g. ``filter("hallState")``."""
        return _BY_ID[channel_id].filter_for(self.site)

    @property
    def twin_prefix(self) -> str:
        """What every twin output of this site starts with."""
        return f"{self.root}/twin/"

    @property
    def twin_outputs(self) -> str:
        return f"{self.root}/twin/#"
