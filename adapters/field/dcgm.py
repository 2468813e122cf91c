"""GPU telemetry from NVIDIA dcgm-exporter endpoints to ``stargate/{site}/gpu/{hall}/{rack}``.

dcgm-exporter serves the Prometheus text format at ``http://HOST:9400/metrics``, one
sample per GPU and field, labelled ``gpu`` (index on the host), ``UUID``, ``device``,
``modelName``, ``Hostname`` (and ``pci_bus_id``, ``DCGM_FI_DRIVER_VERSION``, ...)::

    DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-604a...",device="nvidia0",modelName="...",Hostname="n1"} 266.17

Three fields are used: ``DCGM_FI_DEV_POWER_USAGE`` (W), ``DCGM_FI_DEV_GPU_UTIL``
(percent up to exporter 4.8; 4.9 reports a 0..1 ratio, hence ``util_full_scale``) and
``DCGM_FI_DEV_GPU_TEMP`` (C). A mapping file places each GPU in a rack slot, by
``Hostname`` + ``gpu`` index, or by ``UUID`` (which wins). An NVL72 rack spans
eighteen compute trays (hosts), so one rack message gathers several endpoints.

Every ``interval_s`` all endpoints are scraped concurrently (httpx), retried
``retries`` times within the round, and one message per rack is published:

- a GPU absent from the scrape (endpoint down, series missing, or a DCGM blank
  sentinel / out-of-range value) is *missing, not zero*: its slot is listed in
  ``gpu_missing`` and its list entries repeat the last value seen (0 W, 0 util and
  the rack's coolest present temperature if it was never seen);
- a rack with no GPU at all in the round gets no message, so the twin lists it
  stale after ``stale_after_s``; failing endpoints are retried every round and
  named in the adapter's status note.

DCGM does not meter the rack's CPUs, NICs and switch trays: ``aux_power_w`` comes
from the config (per rack, or a default).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from adapters.field.base import AdapterConfig, DeviceHealth, Emitter, Refused
from twin.contract import ASSET_ID_PATTERN, MAX_GPUS_PER_RACK, GpuRackTelemetry

__all__ = ["DcgmAdapter", "DcgmConfig", "GpuSample", "RackAssembler", "parse_exposition", "wanted_lines"]

log = logging.getLogger("twin.adapter.dcgm")

AssetId = Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
POWER = "DCGM_FI_DEV_POWER_USAGE"
UTIL = "DCGM_FI_DEV_GPU_UTIL"
TEMP = "DCGM_FI_DEV_GPU_TEMP"
_FIELDS = {POWER: "power_w", UTIL: "util", TEMP: "temp_c"}


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostMap(_Cfg):
    hostname: str = Field(min_length=1, description="the Hostname label the exporter reports")
    hall: AssetId
    rack: AssetId
    slots: list[Annotated[int, Field(ge=0, lt=MAX_GPUS_PER_RACK)]] = Field(
        min_length=1, description="rack slot of the GPU with gpu=\"0\", \"1\", ... on this host")


class UuidMap(_Cfg):
    uuid: str = Field(min_length=1)
    hall: AssetId
    rack: AssetId
    slot: int = Field(ge=0, lt=MAX_GPUS_PER_RACK)


class DcgmConfig(AdapterConfig):
    endpoints: list[str] = Field(min_length=1, description="dcgm-exporter URLs, e.g. http://host:9400/metrics")
    timeout_s: float = Field(default=2.0, gt=0, description="per HTTP request, s")
    retries: int = Field(default=1, ge=0, le=10, description="extra tries of a failed scrape within a round")
    gpus_per_rack: int = Field(ge=1, le=MAX_GPUS_PER_RACK, description="must equal the plant config's rack.gpus")
    aux_power_w: float = Field(default=0.0, ge=0, description="CPUs, NICs, switches per rack, W (not in DCGM)")
    rack_aux_power_w: dict[str, float] = Field(default_factory=dict, description="per-rack override, W")
    util_full_scale: float = Field(default=100.0, gt=0, description="DCGM_FI_DEV_GPU_UTIL at full load: 100 "
                                   "(percent, exporter <= 4.8) or 1 (ratio, exporter >= 4.9)")
    max_concurrency: int = Field(default=256, ge=1, description="scrapes in flight at once")
    hosts: list[HostMap] = Field(default_factory=list)
    gpus: list[UuidMap] = Field(default_factory=list, description="UUID -> slot; wins over hosts")

    @model_validator(mode="after")
    def _check(self) -> DcgmConfig:
        for url in self.endpoints:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"endpoint {url!r} is not an http(s):// URL")
        if not self.hosts and not self.gpus:
            raise ValueError("map GPUs to racks with [[hosts]] (Hostname + gpu index) or [[gpus]] (UUID)")
        hall_of: dict[str, str] = {}
        used: dict[tuple[str, int], str] = {}
        places = [(f"host {h.hostname}", h.hall, h.rack, s) for h in self.hosts for s in h.slots]
        places += [(f"uuid {g.uuid}", g.hall, g.rack, g.slot) for g in self.gpus]
        for who, hall, rack, slot in places:
            if hall_of.setdefault(rack, hall) != hall:
                raise ValueError(f"rack {rack} is mapped to halls {hall_of[rack]} and {hall}")
            if slot >= self.gpus_per_rack:
                raise ValueError(f"{who}: slot {slot} of rack {rack} is beyond gpus_per_rack={self.gpus_per_rack}")
            if who.startswith("host") and (rack, slot) in used:
                raise ValueError(f"rack {rack} slot {slot} is mapped twice ({used[rack, slot]} and {who})")
            used[rack, slot] = who
        names = [h.hostname for h in self.hosts]
        if len(set(names)) != len(names):
            raise ValueError("a hostname is listed twice in [[hosts]]")
        return self


# ---------------------------------------------------------------- parsing (pure)


@dataclass(frozen=True, slots=True)
class GpuSample:
    hostname: str
    gpu: int
    uuid: str
    field: str  # power_w | util | temp_c
    value: float


_WANTED = tuple(f"{name}{sep}" for name in _FIELDS for sep in ("{", " "))
_WANTED_META = tuple(f"# {kind} {name} " for name in _FIELDS for kind in ("HELP", "TYPE"))


def wanted_lines(text: str) -> str:
    """Only the lines of the three families used (a real page has ~30 families per GPU).

    prometheus_client's parser costs ~65 us per sample line here, so dropping the
    other families before parsing saves most of the work; the kept lines are parsed
    unchanged.
    """
    return "\n".join(line for line in text.splitlines() if line.startswith(_WANTED) or line.startswith(_WANTED_META))


def parse_exposition(text: str, default_hostname: str) -> list[GpuSample]:
    """The power, utilisation and temperature samples of one exporter page.

    ``default_hostname`` stands in when a sample has no ``Hostname`` label (the
    exporter run with ``--no-hostname``): the endpoint's host. Raises ValueError on a
    page that is not the Prometheus text format.
    """
    kept = wanted_lines(text)
    if not kept:
        raise ValueError(f"the page has none of {', '.join(_FIELDS)} (check the exporter's collectors)")
    out: list[GpuSample] = []
    for fam in text_string_to_metric_families(kept):
        name = _FIELDS.get(fam.name)
        if name is None:
            continue
        for s in fam.samples:
            if s.name != fam.name:
                continue
            labels = s.labels
            try:
                gpu = int(labels.get("gpu", ""))
            except ValueError:
                continue
            out.append(GpuSample(labels.get("Hostname") or default_hostname, gpu, labels.get("UUID", ""),
                                 name, float(s.value)))
    return out


_RANGES = {"power_w": (0.0, 20_000.0), "util": (0.0, 1.0), "temp_c": (-80.0, 200.0)}


@dataclass
class _Rack:
    hall: str
    power: list[float]
    util: list[float]
    temp: list[float]
    seen: list[bool]


@dataclass
class RackReport:
    hall: str
    rack: str
    fields: dict[str, object]
    missing: list[int]


@dataclass
class RackAssembler:
    """Places samples in rack slots and fills missing ones with the last known value. Pure."""

    cfg: DcgmConfig
    racks: dict[str, _Rack] = field(default_factory=dict)
    unmapped: int = 0

    def __post_init__(self) -> None:
        g = self.cfg.gpus_per_rack
        self._by_host: dict[tuple[str, int], tuple[str, int]] = {}
        self._by_uuid: dict[str, tuple[str, int]] = {}
        for h in self.cfg.hosts:
            for i, slot in enumerate(h.slots):
                self._by_host[h.hostname, i] = (h.rack, slot)
            self.racks.setdefault(h.rack, _Rack(h.hall, [0.0] * g, [0.0] * g, [0.0] * g, [False] * g))
        for u in self.cfg.gpus:
            self._by_uuid[u.uuid] = (u.rack, u.slot)
            self.racks.setdefault(u.rack, _Rack(u.hall, [0.0] * g, [0.0] * g, [0.0] * g, [False] * g))

    def place(self, s: GpuSample) -> tuple[str, int] | None:
        return self._by_uuid.get(s.uuid) or self._by_host.get((s.hostname, s.gpu))

    def assemble(self, samples: Iterable[GpuSample]) -> list[RackReport]:
        """One report per rack with at least one complete, valid GPU in ``samples``."""
        fresh: dict[tuple[str, int], dict[str, float]] = {}
        full = self.cfg.util_full_scale
        self.unmapped = 0
        for s in samples:
            where = self.place(s)
            if where is None:
                self.unmapped += 1
                continue
            v = s.value / full if s.field == "util" else s.value
            lo, hi = _RANGES[s.field]
            if s.field == "util" and hi < v <= hi * 1.001:
                v = hi  # rounding of 100 % by the exporter
            if math.isfinite(v) and lo <= v <= hi:
                fresh.setdefault(where, {})[s.field] = v
        out = []
        for rack_id, r in self.racks.items():
            present = []
            for slot in range(len(r.power)):
                vals = fresh.get((rack_id, slot))
                if vals is not None and len(vals) == 3:
                    r.power[slot], r.util[slot], r.temp[slot] = vals["power_w"], vals["util"], vals["temp_c"]
                    r.seen[slot] = True
                    present.append(slot)
            if not present:
                continue
            missing = [k for k in range(len(r.power)) if k not in set(present)]
            coolest = min(r.temp[k] for k in present)
            temp = [t if r.seen[k] else coolest for k, t in enumerate(r.temp)]
            aux = self.cfg.rack_aux_power_w.get(rack_id, self.cfg.aux_power_w)
            fields: dict[str, object] = {"gpu_power_w": list(r.power), "gpu_util": list(r.util),
                                         "gpu_temp_c": temp, "aux_power_w": float(aux)}
            if missing:
                fields["gpu_missing"] = missing
            out.append(RackReport(r.hall, rack_id, fields, missing))
        return out


# ---------------------------------------------------------------- the adapter


class DcgmAdapter:
    kind = "dcgm"

    def __init__(self, cfg: DcgmConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name or self.kind
        self.assembler = RackAssembler(cfg)
        self.health = DeviceHealth(list(cfg.endpoints))
        self.rounds = 0

    def assets(self) -> list[tuple[str, str, str | None]]:
        return [("gpu", rack, r.hall) for rack, r in self.assembler.racks.items()]

    async def _scrape(self, client: httpx.AsyncClient, url: str, sem: asyncio.Semaphore) -> list[GpuSample] | None:
        host = urlsplit(url).hostname or url
        reason = ""
        async with sem:
            for _ in range(self.cfg.retries + 1):
                try:
                    r = await client.get(url)
                    r.raise_for_status()
                    # parsing is CPU work: off the event loop, so MQTT and other scrapes keep going
                    samples = await asyncio.to_thread(parse_exposition, r.text, host)
                    self.health.ok(url, time.time())
                    return samples
                except httpx.HTTPStatusError as e:
                    reason = f"HTTP {e.response.status_code} from {url}"
                except httpx.HTTPError as e:
                    reason = f"{type(e).__name__} on {url}: {e}" if str(e) else f"{type(e).__name__} on {url}"
                except ValueError as e:
                    reason = f"{url} did not serve the Prometheus text format: {e}"
                    break
        self.health.fail(url, reason)
        return None

    async def poll_once(self, client: httpx.AsyncClient, emitter: Emitter, ts: float) -> int:
        """Scrape every endpoint once and publish the racks; returns the number of rack messages."""
        sem = asyncio.Semaphore(self.cfg.max_concurrency)
        pages = await asyncio.gather(*(self._scrape(client, u, sem) for u in self.cfg.endpoints))
        samples = [s for page in pages if page is not None for s in page]
        sent = 0
        reported = set()
        for rep in self.assembler.assemble(samples):
            reported.add(rep.rack)
            try:
                emitter.emit(GpuRackTelemetry, emitter.topics.gpu(rep.hall, rep.rack), ts, rep.fields)
                sent += 1
            except Refused as e:
                self.health.notes[rep.rack] = f"refused: {e}"
                continue
            if rep.missing:
                self.health.notes[rep.rack] = f"gpu_missing {rep.missing}"
            else:
                self.health.notes.pop(rep.rack, None)
        if self.assembler.unmapped:
            self.health.notes["unmapped"] = (f"{self.assembler.unmapped} samples from hosts or GPUs the mapping "
                                             f"does not place (check [[hosts]] hostname and slots)")
        else:
            self.health.notes.pop("unmapped", None)
        for rack in self.assembler.racks:
            if rack not in reported:
                self.health.notes[rack] = "no GPU of the rack in this scrape: no message (stale in the twin)"
        self.rounds += 1
        emitter.status(self.health.status(self.name, ts))
        return sent

    async def run(self, emitter: Emitter) -> None:
        """Scrape every ``interval_s`` until cancelled."""
        n = self.cfg.max_concurrency
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(timeout=self.cfg.timeout_s, limits=limits) as client:
            interval = self.cfg.interval_s
            next_t = time.monotonic()
            while True:
                await self.poll_once(client, emitter, time.time())
                next_t += interval
                now = time.monotonic()
                if next_t < now:  # a slow round: skip the missed slots, do not burst
                    next_t = now + interval - (now - next_t) % interval
                await asyncio.sleep(next_t - now)
