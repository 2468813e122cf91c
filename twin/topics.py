"""Topic names of the wire contract: building them and parsing them without regexes."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TELEMETRY_DOMAINS", "TelemetryTopic", "Topics", "parse_telemetry_topic"]

TELEMETRY_DOMAINS: tuple[str, ...] = ("hydro", "gpu", "coolant", "heat", "ambient")
#: Number of topic levels after ``stargate/{site}/{domain}`` for each domain.
_ASSET_LEVELS = {"hydro": 1, "gpu": 2, "coolant": 1, "heat": 1, "ambient": 1}


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


@dataclass(frozen=True, slots=True)
class Topics:
    """The contract's topics for one site."""

    site: str

    @property
    def root(self) -> str:
        return f"stargate/{self.site}"

    @property
    def telemetry_filters(self) -> list[str]:
        return [f"{self.root}/{d}/#" for d in TELEMETRY_DOMAINS]

    def hydro(self, feeder: str) -> str:
        return f"{self.root}/hydro/{feeder}"

    def gpu(self, hall: str, rack: str) -> str:
        return f"{self.root}/gpu/{hall}/{rack}"

    def coolant(self, cdu: str) -> str:
        return f"{self.root}/coolant/{cdu}"

    def heat(self, exchanger: str) -> str:
        return f"{self.root}/heat/{exchanger}"

    def ambient(self, station: str) -> str:
        return f"{self.root}/ambient/{station}"

    @property
    def state(self) -> str:
        return f"{self.root}/twin/state"

    def hall_state(self, hall: str) -> str:
        return f"{self.root}/twin/state/{hall}"

    def worker(self, worker: str) -> str:
        return f"{self.root}/twin/worker/{worker}"

    def forecast(self, quantity: str) -> str:
        return f"{self.root}/twin/forecast/{quantity}"

    def alarm(self, alarm_id: str) -> str:
        return f"{self.root}/twin/alarm/{alarm_id}"

    @property
    def deadletter(self) -> str:
        return f"{self.root}/twin/deadletter"

    def health(self, service: str) -> str:
        return f"{self.root}/twin/health/{service}"

    @property
    def twin_outputs(self) -> str:
        return f"{self.root}/twin/#"
