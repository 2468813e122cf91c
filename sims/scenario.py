"""Scenarios as data: a plant, a start time, a seed and events at times (``sims/scenarios/*.toml``).

::

    name = "pump-failure"
    plant = "phase1"
    start = "2026-01-15T00:00:00Z"
    events = [
      { at = "2h", kind = "pump_failure", cdu = "h3-cdu07", flow_fraction = 0.1, duration = "30m" },
    ]

:func:`load_scenario` validates a file with pydantic and raises :class:`~twin.errors.ConfigError`
with one line naming the field. :class:`Timeline` turns the events into per-step
:class:`Overrides` for the step functions (pure: the event time is passed in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sims.params import SimParams
from sims.timebase import parse_duration, parse_start
from twin.errors import ConfigError, one_line
from twin.plant import Plant
from twin.tomlfile import read_toml

__all__ = [
    "SCENARIOS_DIR",
    "Overrides",
    "Scenario",
    "Timeline",
    "list_scenarios",
    "load_scenario",
    "resolve_scenario_path",
]

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"

Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
StartTime = Annotated[float, BeforeValidator(parse_start)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Duration = Field(description="after the scenario start, e.g. 2h")
    duration: Duration | None = Field(default=None, description="how long it lasts; none: to the end")

    def active(self, t_rel: float) -> bool:
        return self.at <= t_rel and (self.duration is None or t_rel < self.at + self.duration)


class PumpFailure(_Event):
    """A CDU's pumps fail: its loop flow collapses to ``flow_fraction`` of design flow."""

    kind: Literal["pump_failure"]
    cdu: str
    flow_fraction: float = Field(default=0.1, ge=0, le=1)


class SensorDrift(_Event):
    """A CDU's return temperature sensor reads ``offset_k`` off (the loop itself is healthy): the heat its meter
    reports no longer balances the racks' power, which the twin's energy-balance residual is there to catch."""

    kind: Literal["sensor_drift"]
    cdu: str
    offset_k: float = Field(ge=-20, le=20)


class HydroCurtailment(_Event):
    """The hydro supply can deliver only ``available_mw`` (in total, or through ``feeder``)."""

    kind: Literal["hydro_curtailment"]
    available_mw: float = Field(ge=0)
    feeder: str | None = None


class PowerCap(_Event):
    """Operators cap the GPUs so that IT power stays at or below ``it_mw``."""

    kind: Literal["power_cap"]
    it_mw: float = Field(ge=0)


class OfftakerOutage(_Event):
    """A heat offtaker takes no heat (its network or plant is down)."""

    kind: Literal["offtaker_outage"]
    exchanger: str


class WeatherShift(_Event):
    """Outdoor temperature shifted by ``delta_k`` (cold snap < 0, heatwave > 0), ramped in and out."""

    kind: Literal["weather"]
    delta_k: float = Field(ge=-60, le=40)
    ramp: Duration = Field(default=6 * 3600.0, description="time to reach the full shift, and to leave it")


class FrequencyExcursion(_Event):
    """Grid frequency steps by ``delta_hz`` and recovers exponentially over ``recovery``."""

    kind: Literal["frequency_excursion"]
    delta_hz: float = Field(ge=-5, le=5)
    recovery: Duration = Field(default=120.0, gt=0)


Event = Annotated[
    PumpFailure | SensorDrift | HydroCurtailment | PowerCap | OfftakerOutage | WeatherShift | FrequencyExcursion,
    Field(discriminator="kind"),
]


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    plant: str = Field(default="phase1", description="plant file or a name in plants/")
    start: StartTime = Field(description="event time of the first step (ISO 8601 or Unix seconds)")
    seed: int = 0
    step: Duration = Field(default=10.0, gt=0, description="default step for --out runs")
    duration: Duration = Field(default=7 * 86400.0, gt=0, description="default length for --out runs")
    events: list[Event] = Field(default_factory=list)
    params: SimParams = SimParams()

    def check_against(self, plant: Plant, where: str = "") -> None:
        """Every asset an event names must exist in ``plant``; raise ConfigError (one line) if not."""
        pre = f"{where}: " if where else ""
        for i, e in enumerate(self.events):
            if isinstance(e, PumpFailure | SensorDrift) and e.cdu not in plant.cdu_index:
                raise ConfigError(f"{pre}events[{i}].cdu: unknown CDU {e.cdu!r} in plant {plant.site.name!r} "
                                  f"(e.g. {plant.cdu_ids[0]!r})")
            if isinstance(e, OfftakerOutage) and e.exchanger not in plant.exchanger_ids:
                raise ConfigError(f"{pre}events[{i}].exchanger: unknown exchanger {e.exchanger!r} "
                                  f"(one of {', '.join(plant.exchanger_ids) or 'none'})")
            if isinstance(e, HydroCurtailment) and e.feeder is not None and e.feeder not in plant.feeder_ids:
                raise ConfigError(f"{pre}events[{i}].feeder: unknown feeder {e.feeder!r} "
                                  f"(one of {', '.join(plant.feeder_ids)})")


def list_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.toml"))


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A scenario file path, or a name in ``sims/scenarios/`` (``pump-failure``)."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    return SCENARIOS_DIR / f"{name_or_path}.toml"


_EVENT_TAGS = frozenset({"pump_failure", "hydro_curtailment", "power_cap", "offtaker_outage", "weather",
                         "frequency_excursion"})


def parse_scenario(data: dict[str, Any], where: str = "scenario") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ConfigError(one_line(e, where, skip=_EVENT_TAGS)) from None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load and validate a scenario file; raise :class:`ConfigError` with one line naming the field."""
    path = resolve_scenario_path(name_or_path)
    data = read_toml(path, "scenario", f"pass a .toml path or one of {', '.join(list_scenarios())}")
    return parse_scenario(data, str(path))


@dataclass
class Overrides:
    """What the scenario's events impose at one instant (defaults: nothing)."""

    cdu_flow_cap: np.ndarray | None = None  # per CDU, fraction of design flow (inf: no cap)
    cdu_return_offset_k: np.ndarray | None = None  # per CDU, error of the reported return temperature, K
    available_mw: float | None = None  # total hydro availability
    feeder_available_mw: dict[int, float] | None = None
    it_cap_mw: float | None = None
    offtaker_out: np.ndarray | None = None  # per exchanger, bool
    weather_delta_k: float = 0.0
    frequency_delta_hz: float = 0.0

    @property
    def curtailed(self) -> bool:
        return self.available_mw is not None or bool(self.feeder_available_mw)


_NONE = Overrides()


class Timeline:
    """A scenario's events against one plant and start time: ``at(ts)`` gives the :class:`Overrides`."""

    def __init__(self, scenario: Scenario, plant: Plant, start_ts: float) -> None:
        scenario.check_against(plant)
        self.events = list(scenario.events)
        self.start_ts = start_ts
        self.plant = plant
        self.end_rel = max((e.at + (e.duration or math.inf) for e in self.events), default=0.0)
        self.first_rel = min((e.at for e in self.events), default=math.inf)

    def at(self, ts: float) -> Overrides:
        t = ts - self.start_ts
        if not self.events or t < self.first_rel:
            return _NONE
        p = self.plant
        o = Overrides()
        for e in self.events:
            if isinstance(e, WeatherShift):
                o.weather_delta_k += e.delta_k * _ramp(t, e.at, e.duration, e.ramp)
                continue
            if isinstance(e, FrequencyExcursion):
                if t >= e.at:
                    o.frequency_delta_hz += e.delta_hz * math.exp(-(t - e.at) / e.recovery)
                continue
            if not e.active(t):
                continue
            if isinstance(e, PumpFailure):
                if o.cdu_flow_cap is None:
                    o.cdu_flow_cap = np.full(len(p.cdu_ids), np.inf)
                i = p.cdu_index[e.cdu]
                o.cdu_flow_cap[i] = min(o.cdu_flow_cap[i], e.flow_fraction)
            elif isinstance(e, SensorDrift):
                if o.cdu_return_offset_k is None:
                    o.cdu_return_offset_k = np.zeros(len(p.cdu_ids))
                o.cdu_return_offset_k[p.cdu_index[e.cdu]] += e.offset_k
            elif isinstance(e, HydroCurtailment):
                if e.feeder is None:
                    o.available_mw = e.available_mw if o.available_mw is None else min(o.available_mw,
                                                                                       e.available_mw)
                else:
                    o.feeder_available_mw = {**(o.feeder_available_mw or {}),
                                             p.feeder_ids.index(e.feeder): e.available_mw}
            elif isinstance(e, PowerCap):
                o.it_cap_mw = e.it_mw if o.it_cap_mw is None else min(o.it_cap_mw, e.it_mw)
            elif isinstance(e, OfftakerOutage):
                if o.offtaker_out is None:
                    o.offtaker_out = np.zeros(len(p.exchangers), dtype=bool)
                o.offtaker_out[p.exchanger_ids.index(e.exchanger)] = True
        return o


def _ramp(t: float, at: float, duration: float | None, ramp: float) -> float:
    """0 before ``at``, rising linearly to 1 over ``ramp``, falling back to 0 over the last ``ramp``."""
    if t < at:
        return 0.0
    up = 1.0 if ramp <= 0 else min((t - at) / ramp, 1.0)
    if duration is None:
        return up
    end = at + duration
    if t >= end:
        return 0.0
    down = 1.0 if ramp <= 0 else min((end - t) / ramp, 1.0)
    return max(min(up, down), 0.0)
