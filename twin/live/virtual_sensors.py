"""Virtual sensors: what is not measured, derived from what is, with the shared physics.

Pure numpy over the state arrays. Per CDU: the heat carried to liquid (from flow and
loop rise), the heat expected from the power of the racks it serves (put through the loop's energy balance
with the CDU's measured flow), the residual between them (a drifting sensor, heat that does not reach the
loop: a fouled cold plate, a leak), and
the flow the CDU should run. Per GPU: the temperature expected from coolant supply
and power (plant.md physics (4)) against the reported one.
"""

from __future__ import annotations

import numpy as np

from twin import physics

__all__ = [
    "cdu_expected_flow_lps",
    "cdu_expected_heat_w",
    "cdu_expected_return_c",
    "energy_residual",
    "gpu_temp_excess_k",
]


def cdu_expected_heat_w(rack_power_w: np.ndarray, rack_cdu: np.ndarray, n_cdu: int,
                        liquid_fraction: float) -> np.ndarray:
    """Heat each CDU should carry, W: ``f * sum of its racks' IT power`` (plant.md physics (2))."""
    return liquid_fraction * np.bincount(rack_cdu, weights=rack_power_w, minlength=n_cdu)


def cdu_expected_return_c(previous_c: np.ndarray, supply_c: np.ndarray, expected_heat_w: np.ndarray,
                          flow_lps: np.ndarray, loop_volume_m3: float, density_kg_m3: float, cp_j_kgk: float,
                          dt_s: float) -> np.ndarray:
    """Return temperature a healthy loop would have now, C: physics (3) with the loop's inertia
    (:func:`twin.physics.loop_return_step_c`), driven by the heat the racks put in (``expected_heat_w``) and the
    CDU's own measured flow and supply temperature, from ``previous_c`` over ``dt_s``.

    Why the measured flow: the CDUs hold the loop rise near design by moving the flow with the load, so when a
    job ends the metered heat ``rho cp V_dot (T_r - T_s)`` follows the racks within the flow controller's lag
    (~15 s), not the loop's residence time ``V / V_dot`` (~100-200 s). A lag of the expected heat with the
    residence time as its time constant, as first written, assumed the flow held: after every job step the
    metered heat had fallen while the lagged expectation had not, and the residual read 0.3-0.9 for minutes
    (issue #20's bursts of ``energy_residual`` alarms in normal operation). Integrating the same energy
    balance the loop obeys, with what the CDU measures, leaves in the residual only what breaks the balance:
    heat that does not reach the loop, or a sensor that reads wrong.
    """
    return physics.loop_return_step_c(previous_c, supply_c, expected_heat_w, flow_lps, loop_volume_m3,
                                      density_kg_m3, cp_j_kgk, dt_s)


def cdu_expected_flow_lps(expected_heat_w: np.ndarray, design_delta_t_k: float, density_kg_m3: float,
                          cp_j_kgk: float) -> np.ndarray:
    """Flow that carries the expected heat at the design loop rise, L/s (physics (3) solved for V)."""
    return physics.loop_flow_lps(expected_heat_w, design_delta_t_k, density_kg_m3, cp_j_kgk)


def energy_residual(measured_w: np.ndarray, expected_w: np.ndarray, min_expected_w: float) -> np.ndarray:
    """``(measured - expected) / expected`` per CDU, dimensionless; NaN where the load is below ``min_expected_w``.

    Negative: less heat reaches the loop than the racks produce (flow collapse, a fouled
    cold plate, a return sensor reading low); positive: more (a sensor drifting high).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (measured_w - expected_w) / expected_w
    return np.where(expected_w >= min_expected_w, r, np.nan)


def gpu_temp_excess_k(gpu_temp_c: np.ndarray, gpu_power_w: np.ndarray, supply_c_per_rack: np.ndarray,
                      r_th_k_w: float) -> np.ndarray:
    """Reported minus expected steady-state GPU temperature, K, shape (racks, GPUs).

    Expected: ``T_supply + R_th * P`` with the supply of the rack's CDU. A cold plate
    that has lost contact or flow shows a growing positive excess.
    """
    expected = physics.gpu_temp_steady_c(supply_c_per_rack[:, None], gpu_power_w, r_th_k_w)
    return np.asarray(gpu_temp_c, dtype=np.float64) - expected
