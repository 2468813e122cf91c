"""Virtual sensors: what is not measured, derived from what is, with the shared physics.

Pure numpy over the state arrays. Per CDU: the heat carried to liquid (from flow and
loop rise), the heat expected from the power of the racks it serves, the residual
between them (a drifting sensor, a leak, a fouled cold plate, a failing pump), and
the flow the CDU should run. Per GPU: the temperature expected from coolant supply
and power (plant.md physics (4)) against the reported one.
"""

from __future__ import annotations

import numpy as np

from twin import physics

__all__ = [
    "cdu_expected_flow_lps",
    "cdu_expected_heat_lagged_w",
    "cdu_expected_heat_w",
    "energy_residual",
    "gpu_temp_excess_k",
]


def cdu_expected_heat_w(rack_power_w: np.ndarray, rack_cdu: np.ndarray, n_cdu: int,
                        liquid_fraction: float) -> np.ndarray:
    """Heat each CDU should carry, W: ``f * sum of its racks' IT power`` (plant.md physics (2))."""
    return liquid_fraction * np.bincount(rack_cdu, weights=rack_power_w, minlength=n_cdu)


def cdu_expected_heat_lagged_w(previous_w: np.ndarray, expected_w: np.ndarray, expected_flow_lps: np.ndarray,
                               loop_volume_m3: float, dt_s: float) -> np.ndarray:
    """Heat a healthy loop would show at its CDU meter now, W: the expected heat through the loop's lag.

    With flow held, physics (3) with inertia makes the metered heat ``rho cp V_dot (T_r - T_s)`` a
    first-order lag of the heat put in, with the residence time ``tau = V_loop / V_dot`` as time
    constant. Training jobs swing rack power at 0.2-3 Hz; the meter sees them smoothed, so the
    residual compares like with like. ``tau`` uses the flow the load needs (a healthy loop),
    clipped to 1..600 s.
    """
    tau = np.clip(loop_volume_m3 / np.maximum(expected_flow_lps / 1000.0, 1e-9), 1.0, 600.0)
    return physics.first_order_step(previous_w, expected_w, tau, dt_s)


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
