"""Mapping files: which rows of a history file become which contract messages.

A mapping is TOML::

    site = "narvik"            # the topic's site (default narvik; --site overrides)
    source = "replay"          # the messages' source field (default replay)
    time_column = "time"       # plain CSV: the time column (Unix seconds in time_unit, or ISO 8601)
    time_unit = "s"            # s, ms, us or ns
    measurement_column = "kind"  # plain CSV, optional: a column matched as "measurement"

    [[message]]
    match = { measurement = "hydro" }   # every key must equal the row's value (measurement, tag or column)
    domain = "hydro"                    # hydro, gpu, coolant, heat or ambient
    asset = "{feeder}"                  # the asset id, a template over the row's values
    # hall = "{hall}"                   # gpu: the hall
    # gpu = "{gpu}"                     # gpu: the GPU index when each row holds one GPU
    [message.fields]                    # contract field = source name, or a table
    available_mw = "avail_mw"
    import_mw = { from = "import_kw", scale = 0.001 }
    frequency_hz = { value = 50.0 }     # a constant

Rows with the same topic and time are merged into one message (annotated CSV has one
field per row; line protocol may split fields over lines). Every message is validated
against the contract's model for its domain; the first that does not fit stops the
import with the file, line and reason. Nothing is written or published before that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.contract import DOMAIN_MODELS, SITE_PATTERN
from twin.errors import TwinError
from twin.importers.rows import Row
from twin.live.decode import describe_validation_error
from twin.timespec import format_t
from twin.tomlfile import load_toml
from twin.topics import Topics

__all__ = ["FieldSource", "ImportResult", "Mapping", "MappingError", "MessageMap", "build_messages",
           "load_mapping"]

_LIST_FIELDS = ("gpu_power_w", "gpu_util", "gpu_temp_c")
_COMMON = ("ts", "seq", "source")


class MappingError(TwinError, ValueError):
    """The mapping file is wrong, or does not fit the data."""


class FieldSource(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str | None = Field(default=None, alias="from")
    scale: float = 1.0
    offset: float = 0.0
    value: float | bool | str | None = None

    @model_validator(mode="after")
    def _one(self) -> FieldSource:
        if (self.from_ is None) == (self.value is None):
            raise ValueError("give exactly one of 'from' (a source name) and 'value' (a constant)")
        return self


class MessageMap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match: dict[str, str | int | float | bool] = Field(default_factory=dict)
    domain: Literal["hydro", "gpu", "coolant", "heat", "ambient"]
    asset: str
    hall: str | None = None
    gpu: str | None = None
    fields: dict[str, str | FieldSource]

    @model_validator(mode="after")
    def _fit(self) -> MessageMap:
        model = DOMAIN_MODELS[self.domain]
        allowed = [f for f in model.model_fields if f not in _COMMON]
        for name in self.fields:
            if name not in allowed:
                raise ValueError(f"{name!r} is not a field of {self.domain} messages (one of {', '.join(allowed)})")
        if self.domain == "gpu" and not self.hall:
            raise ValueError("gpu messages need hall = \"{...}\" (the topic is gpu/{hall}/{rack})")
        if self.gpu and self.domain != "gpu":
            raise ValueError("'gpu' (the GPU index) is only for domain gpu")
        return self

    def sources(self) -> dict[str, FieldSource]:
        return {k: (FieldSource.model_validate({"from": v}) if isinstance(v, str) else v)
                for k, v in self.fields.items()}


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(default="narvik", pattern=SITE_PATTERN)
    source: str = Field(default="replay", pattern=r"^(sim|replay|adapter/[A-Za-z0-9_.-]{1,64})$")
    time_column: str = "time"
    time_unit: Literal["s", "ms", "us", "ns"] = "s"
    measurement_column: str | None = None
    message: list[MessageMap] = Field(min_length=1)


def load_mapping(path: str | Path, site: str | None = None) -> Mapping:
    def override_site(data: dict[str, Any]) -> None:
        if site:
            data["site"] = site

    return load_toml(Path(path), Mapping, "mapping",
                     "pass --mapping with a .toml file (see docs/record-replay-import.md)",
                     error=MappingError, prepare=override_site)


_TEMPLATE = re.compile(r"\{([^{}]+)\}")


def _render(template: str, values: dict[str, Any], what: str, where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key == "measurement" and key not in values:
            key = "_measurement"
        v = values.get(key)
        if v is None:
            raise MappingError(f"{where}: {what} template {template!r} needs {m.group(1)!r}, which the row lacks "
                               f"(it has {', '.join(sorted(values))[:200]})")
        return str(v)

    return _TEMPLATE.sub(sub, template)


def _matches(mm: MessageMap, row: Row) -> bool:
    for k, want in mm.match.items():
        got = row.measurement if k == "measurement" else row.values.get(k)
        if got != want and str(got) != str(want):
            return False
    return True


@dataclass
class _Acc:
    domain: str
    line: int
    rule: int
    fields: dict[str, Any] = field(default_factory=dict)
    gpus: dict[str, dict[int, Any]] = field(default_factory=dict)


@dataclass
class ImportResult:
    messages: list[tuple[float, str, bytes]]  # (ts, topic, payload), in time order
    rows: int = 0
    unmatched: dict[str, int] = field(default_factory=dict)  # measurement (or "-") -> rows


def build_messages(rows: Iterable[Row], mapping: Mapping, origin: str = "") -> ImportResult:
    """Rows to validated contract messages (time order, ``seq`` per topic); raises :class:`MappingError`."""
    topics = Topics(mapping.site)
    rules = [(i, mm, mm.sources()) for i, mm in enumerate(mapping.message)]
    acc: dict[tuple[str, float], _Acc] = {}
    result = ImportResult(messages=[])
    for row in rows:
        result.rows += 1
        where = f"{origin}:{row.line}"
        rule = next(((i, mm, src) for i, mm, src in rules if _matches(mm, row)), None)
        if rule is None:
            key = row.measurement or "-"
            result.unmatched[key] = result.unmatched.get(key, 0) + 1
            continue
        i, mm, sources = rule
        asset = _render(mm.asset, row.values, "asset", where)
        if mm.domain == "gpu":
            topic = topics.gpu(_render(mm.hall or "", row.values, "hall", where), asset)
        else:
            topic = getattr(topics, mm.domain)(asset)
        ts = round(row.time, 6)
        a = acc.get((topic, ts))
        if a is None:
            a = acc[(topic, ts)] = _Acc(mm.domain, row.line, i)
        gpu_index: int | None = None
        if mm.gpu:
            g = _render(mm.gpu, row.values, "gpu", where)
            try:
                gpu_index = int(float(g))
            except ValueError:
                raise MappingError(f"{where}: the GPU index {g!r} is not a number") from None
        for name, src in sources.items():
            if src.value is not None:
                v: Any = src.value
            else:
                if src.from_ not in row.values:
                    continue
                v = row.values[src.from_]
                if isinstance(v, str) and v.startswith("[") and name in _LIST_FIELDS:
                    try:
                        v = orjson.loads(v)
                    except orjson.JSONDecodeError:
                        raise MappingError(f"{where}: {src.from_!r} is not a JSON list") from None
                if isinstance(v, int | float) and not isinstance(v, bool) and (src.scale != 1 or src.offset):
                    v = v * src.scale + src.offset
            if gpu_index is not None and name in _LIST_FIELDS:
                a.gpus.setdefault(name, {})[gpu_index] = v
            else:
                a.fields[name] = v
    if not acc:
        seen = ", ".join(f"{k} ({n} rows)" for k, n in sorted(result.unmatched.items())[:10])
        raise MappingError(f"{origin}: the mapping matched none of the {result.rows} rows; "
                           f"the data holds: {seen or 'nothing'}")
    seqs: dict[str, int] = {}
    for (topic, ts), a in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[1].line)):
        payload: dict[str, Any] = {"ts": ts, "seq": seqs.get(topic, 0), "source": mapping.source, **a.fields}
        seqs[topic] = payload["seq"] + 1
        for name, by_index in a.gpus.items():
            n = max(by_index) + 1
            missing = [k for k in range(n) if k not in by_index]
            if missing or min(by_index) < 0:
                raise MappingError(f"{origin}:{a.line}: {topic} at {format_t(ts)}: {name} lacks GPUs "
                                   f"{missing[:10]} (every GPU index 0..{n - 1} needs a row)")
            payload[name] = [by_index[k] for k in range(n)]
        try:
            DOMAIN_MODELS[a.domain].model_validate(payload)
        except ValidationError as e:
            raise MappingError(f"{origin}:{a.line}: the mapped {a.domain} message for {topic} at {format_t(ts)} does "
                               f"not fit the contract ({describe_validation_error(e)}); see [[message]] "
                               f"#{a.rule + 1} of the mapping") from None
        for v in payload.values():
            if isinstance(v, float) and not math.isfinite(v):
                raise MappingError(f"{origin}:{a.line}: non-finite value in {topic}")
        result.messages.append((ts, topic, orjson.dumps(payload)))
    return result
