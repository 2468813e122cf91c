"""What every field adapter shares: config loading, seq numbering, device health, status notes.

An adapter reads one kind of plant interface (DCGM exporters, Modbus CDUs, OPC UA
meters) and publishes contract telemetry. Each one:

- loads a TOML config validated by pydantic at start; a bad file stops it with one
  line naming the file and the field (:func:`load_adapter_config`);
- publishes with ``source: adapter/<name>`` and its own ``seq`` per topic
  (:class:`Emitter`), building every message through the contract's pydantic model so
  that an out-of-range reading is refused here, per device, and never published;
- keeps per-device health (:class:`DeviceHealth`) and publishes a retained JSON note
  (:class:`AdapterStatus`) on ``stargate/{site}/twin/health/adapter-<name>/status``
  whenever it changes; the text ``online``/``offline`` on
  ``stargate/{site}/twin/health/adapter-<name>`` comes from the bus (its MQTT will).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from twin.contract import SITE_PATTERN, AdapterStatus, Telemetry
from twin.errors import TwinError
from twin.live.decode import describe_validation_error
from twin.plant import Plant
from twin.tomlfile import load_toml
from twin.topics import Topics

__all__ = [
    "ADAPTER_NAME_PATTERN",
    "AdapterConfig",
    "DeviceHealth",
    "Emitter",
    "Refused",
    "StatusSink",
    "load_adapter_config",
    "plant_mismatch",
]

log = logging.getLogger("twin.adapter")

ADAPTER_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
C = TypeVar("C", bound="AdapterConfig")
T = TypeVar("T", bound=Telemetry)


class AdapterConfig(BaseModel):
    """Keys every adapter config file has at its top level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: Annotated[str, StringConstraints(pattern=SITE_PATTERN)] = Field(
        default="narvik", description="site id of the topic root stargate/{site}")
    name: Annotated[str, StringConstraints(pattern=ADAPTER_NAME_PATTERN)] | None = Field(
        default=None, description="instance name: source adapter/<name>, health adapter-<name> (default: the kind)")
    interval_s: float = Field(default=1.0, gt=0, le=3600, description="publish / poll period, s")


def load_adapter_config(path: str | Path, model: type[C]) -> C:
    """Read and validate an adapter's TOML config; :class:`ConfigError` with one line on any fault."""
    return load_toml(Path(path), model, "adapter config",
                     "pass --config with a .toml file (examples in deploy/adapters/)")


class StatusSink(Protocol):
    """Where messages go: the MQTT :class:`adapters.bus.mqtt.Bus` (or a list in unit tests)."""

    def publish_nowait(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> bool: ...


class Refused(TwinError, ValueError):
    """A reading that would not make a valid contract message (out of range, missing field)."""




@dataclass
class DeviceHealth:
    """Per device (endpoint, CDU, server): last success, last error, consecutive failures."""

    devices: list[str]
    last_ok: dict[str, float] = field(default_factory=dict)
    failing: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def ok(self, device: str, ts: float, note: str | None = None) -> None:
        self.last_ok[device] = ts
        self.failing.pop(device, None)
        self.failures[device] = 0
        if note:
            self.notes[device] = note
        else:
            self.notes.pop(device, None)

    def fail(self, device: str, reason: str) -> None:
        n = self.failures.get(device, 0) + 1
        self.failures[device] = n
        if self.failing.get(device) != reason:
            log.warning("%s: %s", device, reason)
        self.failing[device] = reason
        self.notes.pop(device, None)

    def status(self, adapter: str, ts: float) -> AdapterStatus:
        return AdapterStatus(ts=ts, adapter=adapter, devices_total=len(self.devices),
                             devices_ok=len([d for d in self.devices if d in self.last_ok and d not in self.failing]),
                             failing=dict(sorted(self.failing.items())), notes=dict(sorted(self.notes.items())))


class Emitter:
    """Builds contract messages with ``source`` and per-topic ``seq`` and hands them to the bus."""

    def __init__(self, sink: StatusSink, site: str, name: str) -> None:
        self.sink = sink
        self.name = name
        self.source = f"adapter/{name}"
        self.topics = Topics(site)
        self.health_topic = self.topics.health(f"adapter-{name}")
        self.status_topic = self.topics.adapter_status(f"adapter-{name}")
        self._seq: dict[str, int] = {}
        self.published = 0
        self.refused = 0
        self._last_status: bytes | None = None

    def build(self, model: type[T], topic: str, ts: float, fields: dict[str, Any]) -> T:
        """The validated message for ``topic`` with the next seq (not yet consumed); :class:`Refused` if invalid."""
        try:
            return model.model_validate({"ts": ts, "seq": self._seq.get(topic, 0), "source": self.source, **fields})
        except ValidationError as e:
            self.refused += 1
            raise Refused(describe_validation_error(e).removeprefix("invalid payload: ")) from None

    def emit(self, model: type[T], topic: str, ts: float, fields: dict[str, Any]) -> T:
        """Validate, number and queue one message; raises :class:`Refused` (nothing sent, no seq used)."""
        msg = self.build(model, topic, ts, fields)
        self._seq[topic] = msg.seq + 1
        self.sink.publish_nowait(topic, msg.model_dump_json(exclude_none=True).encode(), qos=1, retain=False)
        self.published += 1
        return msg

    def status(self, status: AdapterStatus) -> bool:
        """Publish the retained status note when it differs from the last one (``ts`` aside)."""
        body = status.model_dump(exclude={"ts"})
        key = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        if key == self._last_status:
            return False
        self._last_status = key
        self.sink.publish_nowait(self.status_topic, status.model_dump_json().encode(), qos=1, retain=True)
        return True


def plant_mismatch(assets: list[tuple[str, str, str | None]], plant: Plant,
                   gpus_per_rack: int | None = None) -> str | None:
    """Why an adapter's assets ``(domain, asset, hall)`` do not fit the plant config, or None when they do.

    The twin refuses messages for unknown assets (dead letters), so a mapping typo is
    better caught at start.
    """
    rack_hall = {r: h.id for h in plant.halls for r in h.rack_ids}
    known = {"coolant": set(plant.cdu_ids), "hydro": set(plant.feeder_ids), "heat": set(plant.exchanger_ids)}
    if gpus_per_rack is not None and gpus_per_rack != plant.rack.gpus:
        return f"gpus_per_rack = {gpus_per_rack}, but the plant's racks have {plant.rack.gpus} GPUs"
    for domain, asset, hall in assets:
        if domain == "gpu":
            if asset not in rack_hall:
                return f"rack {asset} is not in the plant config"
            if hall is not None and rack_hall[asset] != hall:
                return f"rack {asset} is in hall {rack_hall[asset]} of the plant config, not {hall}"
        elif asset not in known.get(domain, set()):
            return f"{domain} asset {asset} is not in the plant config"
    return None
