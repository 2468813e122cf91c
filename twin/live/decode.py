"""Decode one telemetry message: size check, topic lookup, JSON validation, plant checks.

Pure: no network, no clock. Returns a :class:`Decoded` message or a :class:`Rejected`
one whose reason a person can act on; the service turns the latter into a dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from pydantic import ValidationError

from twin.contract import DOMAIN_MODELS
from twin.live.fastdecode import FAST_DECODERS
from twin.plant import Plant
from twin.topics import TelemetryTopic, parse_telemetry_topic

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "Decoded", "Decoder", "Rejected", "describe_validation_error"]

DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Decoded:
    domain: str
    index: int  # index of the asset in the plant's arrays for its domain
    msg: Any  # the domain's fields as attributes (a fast Struct, or the pydantic model)
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


def describe_validation_error(e: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in e.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "payload"
        inp = err.get("input")
        shown = "" if isinstance(inp, dict | list) else f" (got {str(inp)[:40]!r})"
        parts.append(f"{loc}: {err['msg']}{shown}")
    more = f"; and {e.error_count() - limit} more" if e.error_count() > limit else ""
    return "invalid payload: " + "; ".join(parts) + more


class Decoder:
    """Turns (topic, payload bytes) into a validated message for one plant and site."""

    def __init__(self, plant: Plant, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES, fast: bool = True) -> None:
        self.plant = plant
        self.site = plant.site.id
        self.max_payload_bytes = max_payload_bytes
        self._gpus = plant.rack.gpus
        rack_hall = {r: h.id for h in plant.halls for r in h.rack_ids}
        # (domain, asset) -> index; for gpu the hall in the topic must match the rack's hall
        self._index: dict[str, dict[str, int]] = {
            "gpu": plant.rack_index,
            "coolant": plant.cdu_index,
            "hydro": {f: i for i, f in enumerate(plant.feeder_ids)},
            "heat": {e: i for i, e in enumerate(plant.exchanger_ids)},
            "ambient": {plant.weather.station: 0},
        }
        self._rack_hall = rack_hall
        self._topics: dict[str, TelemetryTopic | str] = {}
        self.fast = fast

    def _topic(self, topic: str) -> TelemetryTopic | str:
        t = self._topics.get(topic)
        if t is None:
            t = parse_telemetry_topic(topic)
            if len(self._topics) < 100_000:  # bounded: unknown topics must not grow it forever
                self._topics[topic] = t
        return t

    def decode(self, topic: str, payload: bytes) -> Decoded | Rejected:
        if len(payload) > self.max_payload_bytes:
            return Rejected(f"payload of {len(payload)} bytes exceeds the limit of {self.max_payload_bytes}")
        t = self._topic(topic)
        if isinstance(t, str):
            return Rejected(t)
        if t.site != self.site:
            return Rejected(f"site {t.site!r} is not this twin's site {self.site!r}")
        index = self._index[t.domain].get(t.asset)
        if index is None:
            return Rejected(f"unknown {t.domain} asset {t.asset!r}: not in the plant config")
        if t.hall is not None and self._rack_hall[t.asset] != t.hall:
            return Rejected(f"rack {t.asset!r} is in hall {self._rack_hall[t.asset]!r}, not {t.hall!r}")
        if self.fast:
            try:
                msg: Any = FAST_DECODERS[t.domain].decode(payload)
            except msgspec.DecodeError as e:
                return Rejected(f"invalid payload: {e}")
            except UnicodeDecodeError as e:  # msgspec raises this, not DecodeError, for invalid UTF-8 in a string
                return Rejected(f"invalid payload: not UTF-8 (byte {e.start})")
        else:
            try:
                msg = DOMAIN_MODELS[t.domain].model_validate_json(payload)
            except ValidationError as e:
                return Rejected(describe_validation_error(e))
        if t.domain == "gpu":
            n = len(msg.gpu_power_w)
            if len(msg.gpu_util) != n or len(msg.gpu_temp_c) != n:
                return Rejected(
                    "invalid payload: gpu_power_w, gpu_util and gpu_temp_c must have one equal length, got "
                    f"{n}, {len(msg.gpu_util)} and {len(msg.gpu_temp_c)}"
                )
            missing = msg.gpu_missing
            if missing:
                if max(missing) >= n:
                    return Rejected(f"invalid payload: gpu_missing lists slot {max(missing)}, beyond the {n} GPUs "
                                    "of the message")
                if len(set(missing)) != len(missing):
                    return Rejected("invalid payload: gpu_missing lists a slot twice")
            if n != self._gpus:
                return Rejected(
                    f"rack {t.asset!r} has {self._gpus} GPUs in the plant config, the message lists {n}"
                )
        return Decoded(t.domain, index, msg, topic)
