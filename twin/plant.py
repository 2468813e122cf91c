"""The plant config: a TOML file validated by pydantic, expanded to index arrays.

The simulators and the state model are both shaped from one of these, so that the
twin and the plant it mirrors agree on every asset id. See ``plants/phase1.toml``
for the default plant of ``docs/plant-and-physics.md``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from twin.contract import ASSET_ID_PATTERN, MAX_GPUS_PER_RACK, SITE_PATTERN
from twin.tomlfile import load_toml

__all__ = ["PLANTS_DIR", "Plant", "load_plant", "resolve_plant_path"]

AssetId = Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
PLANTS_DIR = Path(__file__).resolve().parent / "plants"  # shipped in the package; ./plants in a checkout links here


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Cfg):
    id: Annotated[str, StringConstraints(pattern=SITE_PATTERN)] = "narvik"
    name: str = "Stargate Norway"
    latitude: float = Field(default=68.43, ge=-90, le=90)
    longitude: float = Field(default=17.43, ge=-180, le=180)
    contract_mw: float = Field(gt=0, description="contracted maximum draw at the utility meter, MW")
    scenario: Annotated[str, StringConstraints(pattern=SITE_PATTERN)] | None = Field(
        default=None, description="a what-if plant (not the live one): the sink writes every line with the tag "
        "scenario=NAME, so that its series never overwrite the live plant's of the same site id")


class Coolant(_Cfg):
    """Technology-cooling-loop fluid. PG25 at 35 C (CoolProp): 1012 kg/m3, 3957 J/(kg K)."""

    name: str = "PG25"
    density_kg_m3: float = Field(default=1012.0, gt=0)
    cp_j_kgk: float = Field(default=3957.0, gt=0)


class GpuModel(_Cfg):
    """GPU power and thermal model (plant.md: P = P_idle + (P_max - P_idle) u; T = T_sup + R_th P)."""

    model: str = "GB300"
    p_idle_w: float = Field(default=200.0, ge=0)
    p_max_w: float = Field(default=1400.0, gt=0)
    r_th_k_w: float = Field(default=0.03, gt=0, description="cold plate thermal resistance, K/W")
    tau_s: float = Field(default=5.0, gt=0, description="GPU temperature time constant, s")
    throttle_c: float = Field(default=87.0, description="thermal throttling starts, C")

    @model_validator(mode="after")
    def _idle_below_max(self) -> GpuModel:
        if self.p_idle_w >= self.p_max_w:
            raise ValueError(f"p_idle_w ({self.p_idle_w}) must be below p_max_w ({self.p_max_w})")
        return self


class Rack(_Cfg):
    gpus: int = Field(default=72, ge=1, le=MAX_GPUS_PER_RACK, description="GPUs per rack")
    aux_power_idle_w: float = Field(default=12_000.0, ge=0)
    aux_power_max_w: float = Field(default=30_000.0, ge=0)


class Cooling(_Cfg):
    liquid_fraction: float = Field(default=0.9, gt=0, le=1, description="share of IT heat to liquid")
    flow_l_min_per_kw: float = Field(default=1.5, gt=0, description="design loop flow, L/min per kW (OCP)")
    supply_c: float = Field(default=32.0, description="loop supply set point, C")
    design_delta_t_k: float = Field(default=10.0, gt=0, description="loop temperature rise the CDU holds, K")
    pump_fraction: float = Field(default=0.011, ge=0, description="pump power at design flow / IT power")
    losses_fraction: float = Field(default=0.03, ge=0, description="electrical losses / IT power")
    building_aux_mw: float = Field(default=1.0, ge=0, description="lighting, offices, air handling, MW")
    cdu_capacity_kw: float = Field(default=800.0, gt=0, description="rated heat per CDU, kW")
    loop_volume_m3: float = Field(default=0.8, gt=0, description="coolant in one CDU's loop, m3 (loop inertia)")


class Cdu(_Cfg):
    id: AssetId
    racks: list[AssetId] = Field(min_length=1)


class Hall(_Cfg):
    id: AssetId
    racks: Annotated[int, Field(ge=1)] | Annotated[list[AssetId], Field(min_length=1)] = Field(
        description="rack count (ids {hall}-r001...) or explicit rack ids")
    racks_per_cdu: int = Field(default=6, ge=1, description="when cdus are not listed")
    cdus: list[Cdu] | None = None

    @cached_property
    def rack_ids(self) -> list[str]:
        if isinstance(self.racks, int):
            return [f"{self.id}-r{n:03d}" for n in range(1, self.racks + 1)]
        return list(self.racks)

    @cached_property
    def cdu_list(self) -> list[Cdu]:
        if self.cdus is not None:
            return list(self.cdus)
        ids = self.rack_ids
        k = self.racks_per_cdu
        return [
            Cdu(id=f"{self.id}-cdu{i // k + 1:02d}", racks=ids[i : i + k]) for i in range(0, len(ids), k)
        ]

    @model_validator(mode="after")
    def _check(self) -> Hall:
        served = [r for c in self.cdu_list for r in c.racks]
        if sorted(served) != sorted(self.rack_ids):
            missing = sorted(set(self.rack_ids) - set(served))
            extra = sorted(set(served) - set(self.rack_ids))
            raise ValueError(
                f"each rack of hall {self.id} must be served by exactly one CDU "
                f"(unserved: {missing[:3]}, unknown or repeated: {extra[:3] or 'repeats'})"
            )
        return self


class Feeder(_Cfg):
    id: AssetId
    rated_mw: float = Field(gt=0, description="rating of the connection point, MW")


class Exchanger(_Cfg):
    id: AssetId
    kind: Literal["district_heating", "industry"]
    demand_winter_mw: float = Field(ge=0, description="design demand in January, MW")
    demand_summer_mw: float = Field(ge=0, description="design demand in July, MW")
    supply_c: float = Field(description="temperature the offtaker needs, C")
    return_c: float = Field(description="temperature the offtaker returns, C")
    heat_pump: bool = Field(description="lifted by heat pumps (else direct exchange)")
    heat_pump_eta: float = Field(default=0.45, gt=0, le=1, description="share of the Carnot COP")


class Weather(_Cfg):
    station: AssetId = "kvandal"
    monthly_mean_c: list[float] = Field(min_length=12, max_length=12, description="Jan..Dec normals, C")
    daily_amplitude_k: float = Field(default=3.0, ge=0)
    noise_k: float = Field(default=2.0, ge=0, description="std of synoptic weather noise, K")


class Alarms(_Cfg):
    """Alarm thresholds: each raises past its set value and clears back past its clear value."""

    gpu_temp_high_c: float = 83.0
    gpu_temp_clear_c: float = 80.0
    coolant_return_high_c: float = 50.0
    coolant_return_clear_c: float = 48.0
    flow_low_fraction: float = Field(default=0.5, gt=0, le=1, description="of the flow the CDU's load needs")
    flow_clear_fraction: float = Field(default=0.6, gt=0, le=1)
    residual_high_fraction: float = Field(default=0.15, gt=0, description="|measured - expected| / expected heat")
    residual_clear_fraction: float = Field(default=0.10, gt=0)
    residual_min_load_fraction: float = Field(default=0.1, ge=0, description="of CDU capacity, below: no check")
    residual_debounce_s: float = Field(
        default=60.0, ge=0, description="on-delay of the residual alarm: job steps of tens of MW leave the "
        "loop behind its expected heat for tens of seconds (CDU flow control lags), a fault lasts minutes")
    headroom_low_mw: float = 5.0
    headroom_clear_mw: float = 7.5
    frequency_low_hz: float = 49.9
    frequency_high_hz: float = 50.1
    frequency_clear_margin_hz: float = Field(default=0.02, ge=0)
    debounce_s: float = Field(default=5.0, ge=0, description="on-delay: a condition must hold this long, s")
    clear_debounce_s: float = Field(default=30.0, ge=0, description="off-delay: back in range this long to clear")

    @model_validator(mode="after")
    def _clear_past_set(self) -> Alarms:
        """Each clear value lies on the normal side of its set value (else the alarm could never clear)."""
        for set_name, clear_name, high in (
            ("gpu_temp_high_c", "gpu_temp_clear_c", True),
            ("coolant_return_high_c", "coolant_return_clear_c", True),
            ("flow_low_fraction", "flow_clear_fraction", False),
            ("residual_high_fraction", "residual_clear_fraction", True),
            ("headroom_low_mw", "headroom_clear_mw", False),
        ):
            s, c = getattr(self, set_name), getattr(self, clear_name)
            if (c > s) if high else (c < s):
                side = "at or below" if high else "at or above"
                raise ValueError(f"{clear_name} ({c}) must be {side} {set_name} ({s}): an alarm clears back past "
                                 f"its set value; set {clear_name} too")
        return self

class Plant(_Cfg):
    site: Site
    coolant: Coolant = Coolant()
    gpu: GpuModel = GpuModel()
    rack: Rack = Rack()
    cooling: Cooling = Cooling()
    halls: list[Hall] = Field(min_length=1)
    feeders: list[Feeder] = Field(min_length=1)
    exchangers: list[Exchanger] = Field(default_factory=list)
    weather: Weather
    alarms: Alarms = Alarms()
    stale_after_s: float = Field(default=10.0, gt=0, description="an asset silent this long is stale, s")

    @model_validator(mode="after")
    def _unique_ids(self) -> Plant:
        for what, ids in (
            ("hall", [h.id for h in self.halls]),
            ("rack", self.rack_ids),
            ("cdu", self.cdu_ids),
            ("feeder", [f.id for f in self.feeders]),
            ("exchanger", [e.id for e in self.exchangers]),
        ):
            seen: set[str] = set()
            for i in ids:
                if i in seen:
                    raise ValueError(f"{what} id {i!r} is used twice")
                seen.add(i)
        return self

    # ---- expanded views (computed once; the state model and simulators index by them)

    @cached_property
    def hall_ids(self) -> list[str]:
        return [h.id for h in self.halls]

    @cached_property
    def rack_ids(self) -> list[str]:
        return [r for h in self.halls for r in h.rack_ids]

    @cached_property
    def rack_hall(self) -> np.ndarray:
        """Hall index of each rack."""
        return np.array([i for i, h in enumerate(self.halls) for _ in h.rack_ids], dtype=np.int64)

    @cached_property
    def rack_index(self) -> dict[str, int]:
        return {r: i for i, r in enumerate(self.rack_ids)}

    @cached_property
    def cdus(self) -> list[Cdu]:
        return [c for h in self.halls for c in h.cdu_list]

    @cached_property
    def cdu_ids(self) -> list[str]:
        return [c.id for c in self.cdus]

    @cached_property
    def cdu_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.cdu_ids)}

    @cached_property
    def cdu_hall(self) -> np.ndarray:
        return np.array([i for i, h in enumerate(self.halls) for _ in h.cdu_list], dtype=np.int64)

    @cached_property
    def rack_cdu(self) -> np.ndarray:
        """CDU index serving each rack."""
        out = np.empty(len(self.rack_ids), dtype=np.int64)
        for ci, c in enumerate(self.cdus):
            for r in c.racks:
                out[self.rack_index[r]] = ci
        return out

    @cached_property
    def feeder_ids(self) -> list[str]:
        return [f.id for f in self.feeders]

    @cached_property
    def exchanger_ids(self) -> list[str]:
        return [e.id for e in self.exchangers]

    @property
    def n_racks(self) -> int:
        return len(self.rack_ids)

    @property
    def gpus_total(self) -> int:
        return self.n_racks * self.rack.gpus

    @property
    def rack_max_power_w(self) -> float:
        return self.rack.gpus * self.gpu.p_max_w + self.rack.aux_power_max_w


def resolve_plant_path(name_or_path: str | Path) -> Path:
    """A plant file path, or a name in ``plants/`` (``phase1`` -> ``plants/phase1.toml``)."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    local = Path("plants") / f"{name_or_path}.toml"
    return local if local.exists() else PLANTS_DIR / f"{name_or_path}.toml"


def load_plant(name_or_path: str | Path) -> Plant:
    """Load and validate a plant file; raise :class:`ConfigError` with one line naming the field."""
    path = resolve_plant_path(name_or_path)
    names = ", ".join(sorted(p.stem for p in PLANTS_DIR.glob("*.toml")))
    return load_toml(path, Plant, "plant file", f"pass --plant with a .toml path or one of {names}")
