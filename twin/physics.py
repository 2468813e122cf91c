"""Plant physics shared by the simulators and the state model (``shared/design/plant.md``).

One public function per physical model, pure numpy, vectorised, units in the
docstring, a reference to the source (in the style of pvlib). No I/O here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "KELVIN",
    "carnot_cop",
    "erf",
    "gpu_power_w",
    "gpu_temp_steady_c",
    "gpu_temp_step_c",
    "heat_to_liquid_w",
    "loop_delta_t_k",
    "loop_flow_lps",
    "pue",
    "pump_power_w",
]

KELVIN = 273.15
FloatArray = NDArray[np.float64]


def gpu_power_w(util: ArrayLike, p_idle_w: float, p_max_w: float) -> FloatArray:
    """GPU electrical power from utilisation, W: ``P = P_idle + (P_max - P_idle) * u``.

    plant.md physics (1); GB300-class P_max 1,400 W, P_idle ~200 W (assumption, 10-15 % of TDP).
    """
    u = np.asarray(util, dtype=np.float64)
    return p_idle_w + (p_max_w - p_idle_w) * u


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
                    r_th_k_w: float, tau_s: float, dt_s: float) -> FloatArray:
    """Advance the first-order GPU temperature ``tau dT/dt = T_sup + R_th P - T`` by ``dt_s``, C.

    Exact solution over a step with constant inputs: ``T + (T_ss - T) * (1 - exp(-dt/tau))``,
    stable for any step length.
    """
    t = np.asarray(t_gpu_c, dtype=np.float64)
    t_ss = gpu_temp_steady_c(t_supply_c, p_gpu_w, r_th_k_w)
    return t + (t_ss - t) * (1.0 - np.exp(-dt_s / tau_s))


def carnot_cop(t_hot_c: ArrayLike, t_cold_c: ArrayLike, eta: float = 0.45) -> FloatArray:
    """Heat-pump heating COP, dimensionless: ``COP = eta * T_hot / (T_hot - T_cold)`` in kelvin.

    plant.md physics (5); eta ~0.45 of Carnot for large industrial heat pumps.
    """
    th = np.asarray(t_hot_c, dtype=np.float64) + KELVIN
    tc = np.asarray(t_cold_c, dtype=np.float64) + KELVIN
    return eta * th / (th - tc)


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
