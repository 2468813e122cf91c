"""Heat reuse: what the offtakers ask for, and what the plant can deliver to them.

- District heating (Narvik): demand follows the outdoor temperature as the town's buildings feel
  it (a lag of hours) with a degree-day law between a summer base and the winter design, plus
  morning and evening peaks. Its 70-80 C supply comes from heat pumps lifting facility water,
  with a COP from their temperatures (plant.md physics (5)).
- Industry park: steady demand at 40-45 C, by direct exchange: it gets what the facility water's
  temperature allows (:func:`twin.physics.hx_direct_delivered_w`).
- An offtaker outage (scenario) sets its demand to zero.

Pure and seeded: state in, state updated, outputs returned; vectorised over exchangers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sims.params import HeatParams
from sims.timebase import hour_utc
from twin import physics
from twin.plant import Plant

__all__ = ["HeatOut", "HeatState", "district_heating_factor", "heat_step", "init_heat"]


@dataclass
class HeatState:
    is_dh: np.ndarray  # (exchangers,) bool
    heat_pump: np.ndarray  # (exchangers,) bool
    winter_w: np.ndarray
    summer_w: np.ndarray
    supply_c: np.ndarray
    return_c: np.ndarray
    eta: np.ndarray
    t_felt_c: float | None = None  # outdoor temperature as the buildings feel it (lagged)
    noise_x: float = 0.0


@dataclass(frozen=True, slots=True)
class HeatOut:
    demand_w: np.ndarray
    delivered_w: np.ndarray
    supply_c: np.ndarray  # offtaker-side supply actually reached
    return_c: np.ndarray
    heat_pump_w: np.ndarray  # electric
    cop: np.ndarray  # nan where there is no heat pump
    drawn_w: float  # heat taken from the facility water in total


def init_heat(plant: Plant) -> HeatState:
    xs = plant.exchangers
    return HeatState(
        is_dh=np.array([x.kind == "district_heating" for x in xs], dtype=bool),
        heat_pump=np.array([x.heat_pump for x in xs], dtype=bool),
        winter_w=np.array([x.demand_winter_mw * 1e6 for x in xs]),
        summer_w=np.array([x.demand_summer_mw * 1e6 for x in xs]),
        supply_c=np.array([x.supply_c for x in xs]),
        return_c=np.array([x.return_c for x in xs]),
        eta=np.array([x.heat_pump_eta for x in xs]),
    )


def district_heating_factor(t_felt_c: float, hour: float, p: HeatParams) -> float:
    """District-heating demand between summer (0) and winter design (1) and beyond, times the daily shape.

    Degree-day law: ``clip((T_base - T) / (T_base - T_design), 0, max)``; daily shape in local time
    (UTC+1): a morning peak around 07:30 and a smaller evening one around 18:00, lower at night.
    """
    cold = min(max((p.dh_base_c - t_felt_c) / (p.dh_base_c - p.dh_design_c), 0.0), p.dh_max_factor)
    h = (hour + 1.0) % 24.0
    shape = (math.exp(-(((h - 7.5) / 1.8) ** 2)) + 0.6 * math.exp(-(((h - 18.0) / 2.2) ** 2))
             - 0.35 * math.exp(-(((h - 2.5) / 3.0) ** 2)) - 0.25)
    return cold * (1.0 + p.dh_daily_amplitude * shape)


def heat_step(s: HeatState, ts: float, dt_s: float, ambient_c: float, t_source_c: float, available_w: float,
              p: HeatParams, rng: np.random.Generator, outage: np.ndarray | None = None) -> HeatOut:
    """Offtaker demand at ``ts`` and delivery from facility water at ``t_source_c`` holding ``available_w``."""
    if s.t_felt_c is None:
        s.t_felt_c = ambient_c
    else:
        s.t_felt_c = float(physics.first_order_step(s.t_felt_c, ambient_c, p.dh_lag_s, dt_s))
    a = math.exp(-dt_s / 3600.0)
    s.noise_x = a * s.noise_x + math.sqrt(1 - a * a) * float(rng.standard_normal())
    f_dh = district_heating_factor(s.t_felt_c, hour_utc(ts), p)
    demand = np.where(s.is_dh, s.summer_w + (s.winter_w - s.summer_w) * f_dh,
                      s.winter_w * (1.0 + p.industry_noise * s.noise_x))
    demand = np.maximum(demand, 0.0)
    if outage is not None:
        demand = np.where(outage, 0.0, demand)
    # heat pumps: deliver up to their capacity at the offtaker's temperature
    cop = physics.carnot_cop(s.supply_c + p.hp_condenser_approach_k, t_source_c - p.hp_evaporator_approach_k,
                             s.eta)
    cop = np.where(s.heat_pump, np.clip(cop, 1.0, 12.0), np.nan)
    hp_cap = p.hp_capacity_factor * s.winter_w
    direct = physics.hx_direct_delivered_w(demand, t_source_c, p.hx_approach_k, s.supply_c, s.return_c)
    delivered = np.where(s.heat_pump, np.minimum(demand, hp_cap), direct)
    electric = np.where(s.heat_pump, physics.heat_pump_electric_w(delivered, np.where(s.heat_pump, cop, 1.0)), 0.0)
    drawn = delivered - electric
    total = float(drawn.sum())
    if total > max(available_w, 0.0):  # not enough heat in the facility water: share it out
        k = max(available_w, 0.0) / total
        delivered, electric, drawn = delivered * k, electric * k, drawn * k
        total = float(drawn.sum())
    supply = np.where(s.heat_pump, s.supply_c, np.minimum(s.supply_c, t_source_c - p.hx_approach_k))
    supply = np.where(delivered > 0, supply, s.return_c)
    return HeatOut(demand_w=demand, delivered_w=delivered, supply_c=supply, return_c=s.return_c.copy(),
                   heat_pump_w=electric, cop=cop, drawn_w=total)
