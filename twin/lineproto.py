"""The contract's InfluxDB schema as line protocol, built directly (no ``Point`` on the hot path).

Measurements (``docs/contract.md``): ``plant_state`` (tag ``site``),
``hall_state`` (``site``, ``hall``), ``forecast`` (``site``, ``quantity``, ``model``),
``alarm`` (``site``, ``alarm_id``, ``severity``); optionally the downsampled raw
telemetry mirror ``raw_{domain}`` (``site``, ``asset``, and ``hall`` for racks).

Every function takes an optional ``scenario``: a what-if run's name, written as the tag
``scenario`` on each of its lines so that its series never overwrite the live plant's (same
site id); the live plant's lines carry no such tag (``None`` or ``""``), exactly as before.

Every line carries an explicit nanosecond timestamp taken from the message (state
``ts``, forecast target ``ts``, alarm ``ts``, telemetry ``ts``), never the wall clock:
same measurement, tags and timestamp overwrite in InfluxDB, so rewriting a line (a
retry, a spool drain, a replay) is idempotent.

:func:`parse_line` is a strict parser of the same syntax, used to check files and
lines (tests, the line-file writer's readers).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass

from pydantic import BaseModel

from twin.contract import Alarm, Forecast, HallState, PlantState, Telemetry
from twin.errors import TwinError

__all__ = [
    "LineProtocolError",
    "ParsedLine",
    "alarm_lines",
    "forecast_lines",
    "hall_state_line",
    "line",
    "mirror_line",
    "parse_line",
    "plant_state_line",
    "ts_ns",
]

# as influxdb-client's Point: a backslash doubles; newline, CR and tab become two-character text (never a
# line break); commas, spaces (and in keys and tag values, equals signs) are backslash-escaped
_CTRL = {"\\": "\\\\", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
_TAG_ESC = str.maketrans({**_CTRL, ",": r"\,", " ": r"\ ", "=": r"\="})
_MEAS_ESC = str.maketrans({**_CTRL, ",": r"\,", " ": r"\ "})


def ts_ns(ts: float) -> int:
    """Unix seconds to integer nanoseconds, rounded to the microsecond (float precision)."""
    return round(ts * 1_000_000) * 1000


def _field(v: object) -> str | None:
    t = type(v)
    if t is float:
        return repr(v) if math.isfinite(v) else None  # type: ignore[arg-type]
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return f"{v}i"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{int(v)}i"
    if isinstance(v, float):
        return repr(float(v)) if math.isfinite(v) else None
    return None


def line(measurement: str, tags: dict[str, str], fields: dict[str, object], t_ns: int) -> str:
    """One line; None fields and non-finite floats are left out; tags sorted (InfluxDB's order)."""
    tag_s = "".join(f",{k.translate(_TAG_ESC)}={str(v).translate(_TAG_ESC)}"
                    for k, v in sorted(tags.items()) if v not in (None, ""))
    parts = []
    for k, v in fields.items():
        s = _field(v)
        if s is not None:
            parts.append(f"{k.translate(_TAG_ESC)}={s}")
    if not parts:
        raise ValueError(f"{measurement}: a line needs at least one field")
    return f"{measurement.translate(_MEAS_ESC)}{tag_s} {','.join(parts)} {t_ns}"


def _numeric_names(model: type[BaseModel], skip: tuple[str, ...]) -> tuple[str, ...]:
    """The model's fields whose type is int or float (optionally None), in declaration order."""
    out = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        args = typing.get_args(ann) if isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union \
            else (ann,)
        if name not in skip and any(a in (int, float) for a in args):
            out.append(name)
    return tuple(out)


_PLANT_FIELDS = _numeric_names(PlantState, ("ts",))
_HALL_FIELDS = _numeric_names(HallState, ("ts", "hall"))


def _fields_of(obj: object, names: tuple[str, ...]) -> list[str]:
    parts = []
    for k in names:
        s = _field(getattr(obj, k))
        if s is not None:
            parts.append(f"{k}={s}")
    return parts


def _tag(v: str) -> str:
    return v.translate(_TAG_ESC)


def _scenario(scenario: str | None) -> str:
    """The ``scenario=NAME,`` tag (sorted before ``site``), or nothing for the live plant."""
    return f"scenario={_tag(scenario)}," if scenario else ""


def plant_state_line(site: str, s: PlantState, scenario: str | None = None) -> str:
    parts = _fields_of(s, _PLANT_FIELDS)
    parts.append(f"stale_count={len(s.stale)}i")
    parts.append("heartbeat=" + ("true" if s.heartbeat else "false"))  # always: a tick replaces its heartbeat
    return f"plant_state,{_scenario(scenario)}site={_tag(site)} {','.join(parts)} {ts_ns(s.ts)}"


def hall_state_line(site: str, s: HallState, scenario: str | None = None) -> str:
    parts = _fields_of(s, _HALL_FIELDS)
    if not parts:
        raise ValueError("hall_state: a line needs at least one field")
    parts.append("heartbeat=" + ("true" if s.heartbeat else "false"))  # as plant_state: the tick replaces it
    return f"hall_state,hall={_tag(s.hall)},{_scenario(scenario)}site={_tag(site)} {','.join(parts)} {ts_ns(s.ts)}"


def forecast_lines(site: str, f: Forecast, scenario: str | None = None) -> list[str]:
    head = f"forecast,model={_tag(f.model)},quantity={_tag(f.quantity)},{_scenario(scenario)}site={_tag(site)} "
    issued = repr(float(f.issued_ts))
    skill = f",skill={_field(float(f.skill))}" if f.skill is not None and math.isfinite(f.skill) else ""
    out = []
    for p in f.points:
        fields = [f"mean={_field(float(p.mean))}", f"p10={_field(float(p.p10))}", f"p90={_field(float(p.p90))}",
                  f"issued_ts={issued}", f"lead_s={_field(float(p.ts - f.issued_ts))}"]
        out.append(f"{head}{','.join(x for x in fields if not x.endswith('=None'))}{skill} {ts_ns(p.ts)}")
    return out


def alarm_lines(site: str, a: Alarm, scenario: str | None = None) -> list[str]:
    fields: dict[str, object] = {"active": a.active, "value": a.value, "message": a.message,
                                 "threshold": a.threshold}
    tags = {"site": site, "alarm_id": a.alarm_id, "severity": a.severity, "scenario": scenario or ""}
    if a.asset:
        tags["asset"] = a.asset
    return [line("alarm", tags, fields, ts_ns(a.ts))]


def mirror_line(site: str, domain: str, asset: str, hall: str | None, msg: Telemetry,
                scenario: str | None = None) -> str:
    """The downsampled raw-telemetry mirror: ``raw_{domain}``, one line per kept message.

    A rack's per-GPU lists are summarised (``gpu_power_w_sum``, ``gpu_util_mean``,
    ``gpu_temp_max_c``, ``gpus``); every other numeric field is copied as is.
    """
    tags = {"site": site, "asset": asset, "scenario": scenario or ""}
    if hall:
        tags["hall"] = hall
    fields: dict[str, object] = {}
    for name, value in msg:
        if name in ("ts", "seq", "source"):
            continue
        if isinstance(value, list):
            continue
        fields[name] = value
    power = getattr(msg, "gpu_power_w", None)
    if power:
        util = msg.gpu_util  # type: ignore[attr-defined]
        fields["gpu_power_w_sum"] = float(sum(power))
        fields["gpu_util_mean"] = float(sum(util)) / len(util)
        fields["gpu_temp_max_c"] = float(max(msg.gpu_temp_c))  # type: ignore[attr-defined]
        fields["gpus"] = len(power)
    return line(f"raw_{domain}", tags, fields, ts_ns(msg.ts))


def sink_stats_line(site: str, stats: BaseModel, scenario: str | None = None) -> str:
    """The sink's own stats (``SinkStats``) as a ``sink_stats`` point: its numeric and bool fields, at its ``ts``."""
    d = stats.model_dump()
    fields: dict[str, object] = {k: v for k, v in d.items() if k != "ts" and isinstance(v, int | float | bool)}
    return line("sink_stats", {"site": site, "scenario": scenario or ""}, fields, ts_ns(float(d["ts"])))


# ---------------------------------------------------------------- strict parser


class LineProtocolError(TwinError, ValueError):
    """A line that is not valid line protocol; the message says where and why."""


@dataclass(frozen=True, slots=True)
class ParsedLine:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | int | bool | str]
    t_ns: int | None  # None only with ``parse_line(..., require_timestamp=False)``


def _scan_name(s: str, i: int, stops: str, what: str) -> tuple[str, int]:
    """Read an escaped name (measurement, tag key/value, field key) up to one of ``stops``."""
    out = []
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in ",= \\":
            out.append(s[i + 1])
            i += 2
            continue
        if c in stops:
            break
        if c == '"' and what == "field key":
            raise LineProtocolError(f"unexpected quote in {what} at column {i}")
        out.append(c)
        i += 1
    if not out:
        raise LineProtocolError(f"empty {what} at column {i}")
    return "".join(out), i


_TRUE = {"t", "T", "true", "True", "TRUE"}
_FALSE = {"f", "F", "false", "False", "FALSE"}


def _scan_value(s: str, i: int) -> tuple[float | int | bool | str, int]:
    n = len(s)
    if i < n and s[i] == '"':
        out = []
        i += 1
        while i < n:
            c = s[i]
            if c == "\\" and i + 1 < n:
                nxt = s[i + 1]
                out.append(nxt if nxt in '"\\' else "\\" + nxt)  # InfluxDB unescapes only these two
                i += 2
                continue
            if c == '"':
                return "".join(out), i + 1
            out.append(c)
            i += 1
        raise LineProtocolError("unterminated string field value")
    j = i
    while j < n and s[j] not in ", ":
        j += 1
    raw = s[i:j]
    if not raw:
        raise LineProtocolError(f"empty field value at column {i}")
    if raw in _TRUE:
        return True, j
    if raw in _FALSE:
        return False, j
    try:
        if raw[-1] in "iu":
            v = int(raw[:-1])
            if raw[-1] == "u" and v < 0:
                raise ValueError
            return v, j
        f = float(raw)
    except ValueError:
        raise LineProtocolError(f"field value {raw!r} is not a number, bool or string") from None
    if not math.isfinite(f) or raw.lower().strip("+-") in ("nan", "inf", "infinity"):
        raise LineProtocolError(f"field value {raw!r} is not finite")
    return f, j


def parse_line(s: str, require_timestamp: bool = True) -> ParsedLine:
    """Parse one line strictly; raise :class:`LineProtocolError` (a ``ValueError``) saying why.

    The sink's tests read what it wrote with this (a timestamp is required: the twin always writes
    one); ``twin import lp`` reads other tools' exports with ``require_timestamp=False`` and says
    itself why a line without one is no history.
    """
    if not s or s.startswith("#") or "\n" in s:
        raise LineProtocolError("empty line, comment, or embedded newline")
    meas, i = _scan_name(s, 0, ", ", "measurement")
    tags: dict[str, str] = {}
    while i < len(s) and s[i] == ",":
        k, i = _scan_name(s, i + 1, "=, ", "tag key")
        if i >= len(s) or s[i] != "=":
            raise LineProtocolError(f"tag {k!r} has no value")
        v, i = _scan_name(s, i + 1, ", =", "tag value")
        tags[k] = v
    if i >= len(s) or s[i] != " ":
        raise LineProtocolError("no fields after the measurement and tags")
    i += 1
    fields: dict[str, float | int | bool | str] = {}
    while True:
        k, i = _scan_name(s, i, "= ,", "field key")
        if i >= len(s) or s[i] != "=":
            raise LineProtocolError(f"field {k!r} has no value")
        fields[k], i = _scan_value(s, i + 1)
        if i < len(s) and s[i] == ",":
            i += 1
            continue
        break
    if i >= len(s) and not require_timestamp:
        return ParsedLine(meas, tags, fields, None)
    if i >= len(s) or s[i] != " ":
        raise LineProtocolError("no timestamp (the twin always writes one)")
    stamp = s[i + 1:]
    if not stamp.lstrip("-").isdigit():
        raise LineProtocolError(f"timestamp {stamp!r} is not an integer")
    return ParsedLine(meas, tags, fields, int(stamp))
