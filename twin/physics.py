"""Plant physics shared by the simulators and the state model (``docs/plant-and-physics.md``).

One public function per physical model, pure numpy, vectorised, units in the
docstring, a reference to the source (in the style of pvlib). No I/O here. "plant.md physics (N)"
in the docstrings here and elsewhere is relation (N) under "Physics" on that page.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "KELVIN",
    "carnot_cop",
    "cold_plate_coolant_c",
    "dry_cooler_fan_fraction",
    "dry_cooler_min_supply_c",
    "erf",
    "facility_power_w",
    "fan_power_w",
    "first_order_step",
    "gpu_power_w",
    "gpu_temp_steady_c",
    "gpu_temp_step_c",
    "heat_pump_electric_w",
    "heat_to_liquid_w",
    "hx_direct_delivered_w",
    "loop_delta_t_k",
    "loop_flow_lps",
    "loop_return_step_c",
    "pue",
    "pump_power_w",
    "throttled_power_w",
]

KELVIN = 273.15
FloatArray = NDArray[np.float64]


def _as_float(x: ArrayLike) -> NDArray[np.floating]:
    """float32 arrays as they are (the simulators' large per-GPU arrays), anything else as float64."""
    if isinstance(x, np.ndarray) and x.dtype == np.float32:
        return x
    return np.asarray(x, dtype=np.float64)


def gpu_power_w(util: ArrayLike, p_idle_w: float, p_max_w: float) -> NDArray[np.floating]:
    """GPU electrical power from utilisation, W: ``P = P_idle + (P_max - P_idle) * u``.

    plant.md physics (1); GB300-class P_max 1,400 W, P_idle ~200 W (assumption, 10-15 % of TDP).
    float32 arrays stay float32 (the simulators' per-GPU arrays); anything else is computed in float64.
    """
    out = _as_float(util) * (p_max_w - p_idle_w)
    out += p_idle_w
    return out


def heat_to_liquid_w(flow_lps: ArrayLike, t_return_c: ArrayLike, t_supply_c: ArrayLike,
                     density_kg_m3: float, cp_j_kgk: float) -> FloatArray:
    """Heat carried by a liquid loop, W: ``Q = rho * cp * V_dot * (T_return - T_supply)``.

    ``flow_lps`` in L/s (V_dot = flow_lps / 1000 m3/s); temperatures in C; rho in kg/m3;
    cp in J/(kg K). plant.md physics (3); contract ``heat_to_liquid_mw``. PG25 at 35 C
    (CoolProp): rho = 1012 kg/m3, cp = 3957 J/(kg K).
    """
    v = np.asarray(flow_lps, dtype=np.float64) / 1000.0
    dt = np.asarray(t_return_c, dtype=np.float64) - np.asarray(t_supply_c, dtype=np.float64)
    return density_kg_m3 * cp_j_kgk * v * dt


def loop_delta_t_k(q_w: ArrayLike, flow_lps: ArrayLike, density_kg_m3: float, cp_j_kgk: float) -> FloatArray:
    """Loop temperature rise that carries heat ``q_w`` at ``flow_lps``, K (inverse of the balance).

    Zero flow gives ``inf`` where heat is positive (the loop cannot carry it).
    """
    q = np.asarray(q_w, dtype=np.float64)
    m_cp = density_kg_m3 * cp_j_kgk * np.asarray(flow_lps, dtype=np.float64) / 1000.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m_cp > 0, q / np.where(m_cp > 0, m_cp, 1.0), np.where(q > 0, np.inf, 0.0))


def loop_flow_lps(q_w: ArrayLike, delta_t_k: float, density_kg_m3: float, cp_j_kgk: float) -> FloatArray:
    """Flow a CDU must drive to hold the loop rise ``delta_t_k`` at heat ``q_w``, L/s.

    ``V_dot = Q / (rho cp dT)``; at OCP's 1.5 L/min per kW PG25 gives dT ~ 10 K.
    """
    return np.asarray(q_w, dtype=np.float64) / (density_kg_m3 * cp_j_kgk * delta_t_k) * 1000.0


def gpu_temp_steady_c(t_supply_c: ArrayLike, p_gpu_w: ArrayLike, r_th_k_w: float) -> FloatArray:
    """Steady-state GPU temperature, C: ``T = T_supply + R_th * P`` (plant.md physics (4); R_th ~0.03 K/W)."""
    return np.asarray(t_supply_c, dtype=np.float64) + r_th_k_w * np.asarray(p_gpu_w, dtype=np.float64)


def gpu_temp_step_c(t_gpu_c: ArrayLike, t_supply_c: ArrayLike, p_gpu_w: ArrayLike,
                    r_th_k_w: float, tau_s: float, dt_s: float) -> NDArray[np.floating]:
    """Advance the first-order GPU temperature ``tau dT/dt = T_sup + R_th P - T`` by ``dt_s``, C.

    Exact solution over a step with constant inputs: ``T + (T_ss - T) * (1 - exp(-dt/tau))``,
    stable for any step length. float32 inputs stay float32.
    """
    a = 1.0 - float(np.exp(-dt_s / tau_s))
    t, p, ts = _as_float(t_gpu_c), _as_float(p_gpu_w), _as_float(t_supply_c)
    out = t * (1.0 - a)  # T + (T_ss - T) a, in as few array passes as possible
    if np.shape(out) != np.broadcast_shapes(np.shape(out), np.shape(p), np.shape(ts)):
        return out + p * (a * r_th_k_w) + ts * a  # inputs broadcast to a larger shape than T's
    out += p * (a * r_th_k_w)
    out += ts * a
    return out


def carnot_cop(t_hot_c: ArrayLike, t_cold_c: ArrayLike, eta: ArrayLike = 0.45) -> FloatArray:
    """Heat-pump heating COP, dimensionless: ``COP = eta * T_hot / (T_hot - T_cold)`` in kelvin.

    plant.md physics (5); eta ~0.45 of Carnot for large industrial heat pumps.
    """
    th = np.asarray(t_hot_c, dtype=np.float64) + KELVIN
    tc = np.asarray(t_cold_c, dtype=np.float64) + KELVIN
    return np.asarray(eta, dtype=np.float64) * th / (th - tc)


def pump_power_w(flow_lps: ArrayLike, design_flow_lps: ArrayLike, design_power_w: ArrayLike) -> FloatArray:
    """Pump electrical power at part flow, W: affinity (cube) law ``P = P_design (V / V_design)^3``."""
    ratio = np.asarray(flow_lps, dtype=np.float64) / np.asarray(design_flow_lps, dtype=np.float64)
    return np.asarray(design_power_w, dtype=np.float64) * ratio**3


def pue(facility_mw: float, it_mw: float) -> float | None:
    """Power usage effectiveness ``P_fac / P_IT`` (ISO/IEC 30134-2); None while IT power is 0."""
    return facility_mw / it_mw if it_mw > 0 else None


def erf(reused_mwh: float, facility_mwh: float) -> float | None:
    """Energy reuse factor ``E_reused / E_fac`` (ISO/IEC 30134-6); None before any facility energy."""
    return reused_mwh / facility_mwh if facility_mwh > 0 else None


# ---------------------------------------------------------------- dynamics and plant-level models


def first_order_step(x: ArrayLike, target: ArrayLike, tau_s: ArrayLike, dt_s: float) -> FloatArray:
    """Advance ``tau dx/dt = target - x`` by ``dt_s`` with ``target`` held over the step, exactly.

    ``x + (target - x)(1 - e^(-dt/tau))``: stable for any step length (a 60 s step of a 5 s lag lands
    on the target). Units of ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    tau = np.asarray(tau_s, dtype=np.float64)
    return x + (np.asarray(target, dtype=np.float64) - x) * (1.0 - np.exp(-dt_s / tau))


def loop_return_step_c(t_return_c: ArrayLike, t_supply_c: ArrayLike, q_w: ArrayLike, flow_lps: ArrayLike,
                       volume_m3: float, density_kg_m3: float, cp_j_kgk: float, dt_s: float) -> FloatArray:
    """Advance a coolant loop's return temperature by ``dt_s`` (plant.md physics (3), with thermal inertia), C.

    ``C dT_r/dt = Q - rho cp V_dot (T_r - T_s)`` with ``C = rho cp V`` (``volume_m3`` of coolant in the
    loop), so the time constant is the residence time ``V / V_dot``. Solved exactly for inputs held over
    the step: ``T_r + (Q/C - k (T_r - T_s)) (1 - e^(-k dt)) / k`` with ``k = V_dot / V``; as the flow goes
    to zero this tends to ``T_r + Q dt / C`` (the loop heats up; nothing carries the heat away).
    ``q_w`` W, ``flow_lps`` L/s, temperatures C.
    """
    tr = np.asarray(t_return_c, dtype=np.float64)
    ts = np.asarray(t_supply_c, dtype=np.float64)
    k = np.asarray(flow_lps, dtype=np.float64) / 1000.0 / volume_m3  # 1/s
    heat_rate = np.asarray(q_w, dtype=np.float64) / (density_kg_m3 * cp_j_kgk * volume_m3)  # K/s
    kdt = k * dt_s
    fac = np.where(kdt > 1e-9, -np.expm1(-kdt) / np.where(k > 0, k, 1.0), dt_s)  # guarded: no 0/0
    return tr + (heat_rate - k * (tr - ts)) * fac


def cold_plate_coolant_c(t_supply_c: ArrayLike, t_return_c: ArrayLike, design_delta_t_k: float) -> FloatArray:
    """Coolant temperature a GPU's cold plate sees, C.

    plant.md physics (4) writes ``T_gpu = T_supply + R_th P`` with ``R_th`` measured at design flow, so the
    coolant's own rise along the plate at design flow is inside ``R_th``. When the flow falls short and the
    loop rise exceeds its design value, the mean fluid temperature along the plate is higher by half the
    excess: ``T_supply + max(0, (T_return - T_supply) - dT_design) / 2``. At or above design flow this is
    ``T_supply`` and the plant.md formula holds unchanged.
    """
    ts = np.asarray(t_supply_c, dtype=np.float64)
    rise = np.asarray(t_return_c, dtype=np.float64) - ts
    return ts + 0.5 * np.maximum(rise - design_delta_t_k, 0.0)


def throttled_power_w(p_demand_w: ArrayLike, t_coolant_c: ArrayLike, r_th_k_w: float, throttle_c: float,
                      p_min_w: float) -> FloatArray:
    """GPU power after thermal throttling, W: ``min(P, max((T_throttle - T_coolant) / R_th, P_min))``.

    A GPU lowers its clocks so that its steady temperature ``T_coolant + R_th P`` stays at the throttle
    point (NVIDIA's thermal slowdown, ~87 C for GB300-class parts); it cannot go below ``P_min`` (idle).
    """
    cap = np.maximum((throttle_c - np.asarray(t_coolant_c, dtype=np.float64)) / r_th_k_w, p_min_w)
    return np.minimum(np.asarray(p_demand_w, dtype=np.float64), cap)


def dry_cooler_fan_fraction(q_w: ArrayLike, itd_k: ArrayLike, q_design_w: float,
                            itd_design_k: float) -> FloatArray:
    """Airflow a dry cooler needs to reject ``q_w``, as a fraction of design airflow (may exceed 1).

    Dry coolers are rated by capacity at an initial temperature difference ``ITD = T_fluid_in - T_air``;
    capacity is close to proportional to ITD and, over the fan's range, to airflow (manufacturer rating
    practice, e.g. EN 1048; linearised). So ``a = (Q / Q_design) (ITD_design / ITD)``. ITD at or below
    zero: the air cannot cool the fluid (``inf``).
    """
    itd = np.asarray(itd_k, dtype=np.float64)
    q = np.asarray(q_w, dtype=np.float64) / q_design_w
    return np.where(itd > 0, q * itd_design_k / np.where(itd > 0, itd, 1.0), np.inf)  # guarded: no x/0


def dry_cooler_min_supply_c(q_w: ArrayLike, t_ambient_c: ArrayLike, fluid_rise_k: float, q_design_w: float,
                            itd_design_k: float) -> FloatArray:
    """Coldest fluid supply a dry cooler at full airflow can give while rejecting ``q_w``, C.

    Inverse of :func:`dry_cooler_fan_fraction` at ``a = 1``: ``T_in = T_air + ITD_design Q / Q_design``,
    and the supply is ``fluid_rise_k`` below the fluid coming in. Hot days push the facility water (and so
    the technology loop) above its set point.
    """
    q = np.asarray(q_w, dtype=np.float64) / q_design_w
    return np.asarray(t_ambient_c, dtype=np.float64) + itd_design_k * q - fluid_rise_k


def fan_power_w(airflow_fraction: ArrayLike, design_power_w: float) -> FloatArray:
    """Fan electrical power at part airflow, W: affinity law ``P = P_design a^3`` (plant.md physics (6))."""
    a = np.asarray(airflow_fraction, dtype=np.float64)
    return design_power_w * a**3


def hx_direct_delivered_w(demand_w: ArrayLike, t_source_c: ArrayLike, approach_k: float, t_supply_c: ArrayLike,
                          t_return_c: ArrayLike) -> FloatArray:
    """Heat a direct (no heat pump) exchanger delivers to an offtaker, W.

    The offtaker circulates the flow that carries ``demand_w`` from its return ``t_return_c`` to its supply
    ``t_supply_c``; the exchanger can heat it at most to ``t_source_c - approach_k``. Delivered heat is
    ``demand * clip((T_source - approach - T_ret) / (T_sup - T_ret), 0, 1)`` (plant.md physics (5): the
    heat available at a usable temperature).
    """
    tsup = np.asarray(t_supply_c, dtype=np.float64)
    tret = np.asarray(t_return_c, dtype=np.float64)
    frac = (np.asarray(t_source_c, dtype=np.float64) - approach_k - tret) / np.maximum(tsup - tret, 1e-9)
    return np.asarray(demand_w, dtype=np.float64) * np.clip(frac, 0.0, 1.0)


def heat_pump_electric_w(q_heat_w: ArrayLike, cop: ArrayLike) -> FloatArray:
    """Electric power of a heat pump delivering ``q_heat_w`` of heat at coefficient ``cop``, W: ``Q / COP``.

    The heat drawn from the source is ``Q - P_el`` (plant.md physics (5)).
    """
    return np.asarray(q_heat_w, dtype=np.float64) / np.asarray(cop, dtype=np.float64)


def facility_power_w(it_w: ArrayLike, pumps_w: ArrayLike, fans_w: ArrayLike, losses_w: ArrayLike,
                     heat_pumps_w: ArrayLike, building_aux_w: ArrayLike) -> FloatArray:
    """Facility power at the utility meter, W (plant.md physics (7)).

    ``P_fac = P_IT + P_pumps + P_fans + P_losses + P_heat_pumps + P_aux_building``.
    """
    return (np.asarray(it_w, dtype=np.float64) + np.asarray(pumps_w, dtype=np.float64)
            + np.asarray(fans_w, dtype=np.float64) + np.asarray(losses_w, dtype=np.float64)
            + np.asarray(heat_pumps_w, dtype=np.float64) + np.asarray(building_aux_w, dtype=np.float64))
