"""Coolant loops: CDU flow control, loop thermal inertia, facility water and dry coolers (free cooling).

Each CDU drives the flow that holds its loop's design temperature rise for the heat its
racks put into it (lagged, within its pumps' range); the return temperature follows the
heat with the loop's residence time (plant.md physics (3)). The facility water carries the
heat to dry coolers (or to the heat-reuse exchangers); their fans speed up as the air gets
warmer, and when even full airflow cannot reject the heat the facility water, and so every
loop's supply, runs warmer. A pump failure (scenario) caps one CDU's flow.

Pure and seeded: state in, state updated, outputs returned; vectorised over CDUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.params import CoolingParams
from twin import physics
from twin.plant import Plant

__all__ = ["CduOut", "CoolingState", "RejectionOut", "cdu_step", "init_cooling", "rejection_step"]


@dataclass
class CoolingState:
    design_flow_lps: float
    design_pump_w: float
    flow_lps: np.ndarray  # (cdus,) controlled flow before any failure cap
    t_return_c: np.ndarray  # (cdus,)
    t_supply_c: np.ndarray  # (cdus,) last supply (what the GPUs saw)
    fws_supply_c: float  # facility water supply, C
    q_design_w: float  # dry coolers' design rejection, W
    started: bool = False


@dataclass(frozen=True, slots=True)
class CduOut:
    supply_c: np.ndarray
    return_c: np.ndarray
    flow_lps: np.ndarray
    pump_w: np.ndarray
    fws_supply_c: np.ndarray
    fws_return_c: np.ndarray
    heat_w: np.ndarray  # heat the loop hands to facility water now: rho cp V_dot (T_r - T_s)


@dataclass(frozen=True, slots=True)
class RejectionOut:
    fans_w: float  # dry coolers and air handling
    fws_pumps_w: float
    fan_fraction: float  # dry-cooler airflow, of design


def init_cooling(plant: Plant, p: CoolingParams) -> CoolingState:
    c = plant.cooling
    rho, cp = plant.coolant.density_kg_m3, plant.coolant.cp_j_kgk
    q_design = c.cdu_capacity_kw * 1000.0
    design_flow = float(physics.loop_flow_lps(q_design, c.design_delta_t_k, rho, cp))
    n_c = len(plant.cdu_ids)
    return CoolingState(
        design_flow_lps=design_flow,
        design_pump_w=c.pump_fraction * q_design / c.liquid_fraction,
        flow_lps=np.full(n_c, design_flow),
        t_return_c=np.full(n_c, c.supply_c + c.design_delta_t_k),
        t_supply_c=np.full(n_c, c.supply_c),
        fws_supply_c=c.supply_c - p.cdu_approach_k,
        q_design_w=q_design * n_c,
    )


def cold_plate_c(s: CoolingState, plant: Plant) -> np.ndarray:
    """Coolant temperature at each rack's cold plates, from the loops' last state, C (racks,)."""
    t = physics.cold_plate_coolant_c(s.t_supply_c, s.t_return_c, plant.cooling.design_delta_t_k)
    return t[plant.rack_cdu]


def cdu_step(s: CoolingState, q_w: np.ndarray, dt_s: float, plant: Plant, p: CoolingParams,
             rng: np.random.Generator, flow_cap: np.ndarray | None = None) -> CduOut:
    """Advance every CDU by ``dt_s`` with heat ``q_w`` (cdus,) flowing into its loop, W.

    ``flow_cap``: per CDU, the most flow its pumps can drive now as a fraction of design (pump failure).
    """
    c = plant.cooling
    rho, cp = plant.coolant.density_kg_m3, plant.coolant.cp_j_kgk
    cmd = np.clip(physics.loop_flow_lps(q_w, c.design_delta_t_k, rho, cp),
                  p.min_flow_fraction * s.design_flow_lps, p.max_flow_fraction * s.design_flow_lps)
    supply_sp = max(c.supply_c, s.fws_supply_c + p.cdu_approach_k)
    supply = supply_sp + p.supply_noise_k * rng.standard_normal(q_w.shape)
    if not s.started:  # begin at steady state, not with a warm-up transient
        s.flow_lps = cmd
        s.t_return_c = supply + physics.loop_delta_t_k(q_w, cmd, rho, cp)
        s.started = True
    else:
        s.flow_lps = physics.first_order_step(s.flow_lps, cmd, p.flow_tau_s, dt_s)
    flow = s.flow_lps if flow_cap is None else np.minimum(s.flow_lps, flow_cap * s.design_flow_lps)
    s.t_return_c = physics.loop_return_step_c(s.t_return_c, supply, q_w, flow, c.loop_volume_m3, rho, cp, dt_s)
    s.t_supply_c = supply
    pump_w = physics.pump_power_w(flow, s.design_flow_lps, s.design_pump_w)
    heat_w = physics.heat_to_liquid_w(flow, s.t_return_c, supply, rho, cp)
    fws_ret = s.t_return_c - p.cdu_approach_k
    return CduOut(supply_c=supply, return_c=s.t_return_c.copy(), flow_lps=flow, pump_w=pump_w,
                  fws_supply_c=np.full_like(supply, s.fws_supply_c), fws_return_c=fws_ret, heat_w=heat_w)


def rejection_step(s: CoolingState, q_reject_w: float, q_air_w: float, t_ambient_c: float, fws_flow_ratio: float,
                   dt_s: float, plant: Plant, p: CoolingParams) -> RejectionOut:
    """Dry coolers reject ``q_reject_w`` to air at ``t_ambient_c``; air handlers move ``q_air_w`` of room heat.

    Fan airflow follows :func:`twin.physics.dry_cooler_fan_fraction` (at least the minimum speed, at most
    full speed); when full speed is not enough the facility water supply drifts up (lag ``fws_tau_s``)
    towards the coldest supply the coolers can give (:func:`twin.physics.dry_cooler_min_supply_c`).
    """
    c = plant.cooling
    fws_sp = c.supply_c - p.cdu_approach_k
    t_min = float(physics.dry_cooler_min_supply_c(q_reject_w, t_ambient_c, p.fws_rise_k, s.q_design_w,
                                                  p.dry_cooler_itd_design_k))
    target = max(fws_sp, t_min)
    s.fws_supply_c = float(physics.first_order_step(s.fws_supply_c, target, p.fws_tau_s, dt_s))
    itd = s.fws_supply_c + p.fws_rise_k - t_ambient_c
    a = float(physics.dry_cooler_fan_fraction(q_reject_w, itd, s.q_design_w, p.dry_cooler_itd_design_k))
    a = min(max(a, p.dry_cooler_min_speed), 1.0)
    fans = float(physics.fan_power_w(a, p.dry_cooler_fan_fraction * s.q_design_w))
    fans += p.air_handling_fraction * q_air_w
    fws_pumps = float(physics.pump_power_w(fws_flow_ratio, 1.0, p.fws_pump_fraction * s.q_design_w))
    return RejectionOut(fans_w=fans, fws_pumps_w=fws_pumps, fan_fraction=a)
