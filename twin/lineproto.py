"""The contract's InfluxDB schema as line protocol, built directly (no ``Point`` on the hot path).

Measurements (``shared/design/contract.md``): ``plant_state`` (tag ``site``),
``hall_state`` (``site``, ``hall``), ``forecast`` (``site``, ``quantity``, ``model``),
``alarm`` (``site``, ``alarm_id``, ``severity``). Timestamps in nanoseconds.
Same measurement, tags and timestamp overwrite in InfluxDB, so rewriting a line is
idempotent.
"""

from __future__ import annotations

import math

from twin.contract import Alarm, Forecast, HallState, PlantState

__all__ = ["alarm_lines", "forecast_lines", "hall_state_line", "line", "plant_state_line", "ts_ns"]

_TAG_ESC = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\=", "\n": " "})
_MEAS_ESC = str.maketrans({",": r"\,", " ": r"\ ", "\n": " "})


def ts_ns(ts: float) -> int:
    """Unix seconds to integer nanoseconds, rounded to the microsecond (float precision)."""
    return round(ts * 1_000_000) * 1000


def _field(v: object) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else None
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
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


def _numeric(d: dict[str, object], skip: tuple[str, ...]) -> dict[str, object]:
    return {k: v for k, v in d.items() if k not in skip and isinstance(v, int | float)}


def plant_state_line(site: str, s: PlantState) -> str:
    fields = _numeric(s.model_dump(), ("ts",))
    fields["stale_count"] = len(s.stale)
    return line("plant_state", {"site": site}, fields, ts_ns(s.ts))


def hall_state_line(site: str, s: HallState) -> str:
    return line("hall_state", {"site": site, "hall": s.hall}, _numeric(s.model_dump(), ("ts", "hall")), ts_ns(s.ts))


def forecast_lines(site: str, f: Forecast) -> list[str]:
    tags = {"site": site, "quantity": f.quantity, "model": f.model}
    out = []
    for p in f.points:
        fields: dict[str, object] = {"mean": p.mean, "p10": p.p10, "p90": p.p90, "issued_ts": f.issued_ts,
                                     "lead_s": p.ts - f.issued_ts}
        if f.skill is not None:
            fields["skill"] = f.skill
        out.append(line("forecast", tags, fields, ts_ns(p.ts)))
    return out


def alarm_lines(site: str, a: Alarm) -> list[str]:
    fields: dict[str, object] = {"active": a.active, "value": a.value, "message": a.message,
                                 "threshold": a.threshold}
    tags = {"site": site, "alarm_id": a.alarm_id, "severity": a.severity}
    if a.asset:
        tags["asset"] = a.asset
    return [line("alarm", tags, fields, ts_ns(a.ts))]
