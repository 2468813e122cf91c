"""Physics of twin/physics.py against values computed by hand (plant.md, PG25 rho 1012, cp 3957)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin import physics

RHO, CP = 1012.0, 3957.0


def test_loop_energy_balance_by_hand() -> None:
    # 20 L/s of PG25 warming by 10 K: 1012 * 3957 * 0.020 * 10 = 800,896.8 W
    q = physics.heat_to_liquid_w(20.0, 42.0, 32.0, RHO, CP)
    assert float(q) == pytest.approx(800_896.8, rel=1e-9)
    assert float(physics.loop_delta_t_k(800_896.8, 20.0, RHO, CP)) == pytest.approx(10.0, rel=1e-9)
    # OCP's 1.5 L/min per kW gives a rise of about 10 K: 1 kW at 0.025 L/s -> 1000 / (1012*3957*2.5e-5) = 9.99 K
    assert float(physics.loop_delta_t_k(1000.0, 1.5 / 60.0, RHO, CP)) == pytest.approx(9.988, abs=1e-3)
    assert float(physics.loop_flow_lps(800_896.8, 10.0, RHO, CP)) == pytest.approx(20.0, rel=1e-9)


def test_loop_return_with_inertia_settles_on_the_balance_and_heats_without_flow() -> None:
    # 0.8 m3 loop, 20 L/s: residence time 40 s; after 400 s it sits on supply + Q / (rho cp V)
    t = 32.0
    for _ in range(400):
        t = float(physics.loop_return_step_c(t, 32.0, 800_896.8, 20.0, 0.8, RHO, CP, 1.0))
    assert t == pytest.approx(42.0, abs=1e-3)
    # one 40 s step (one time constant) from 32 C covers 1 - 1/e of the way
    one = float(physics.loop_return_step_c(32.0, 32.0, 800_896.8, 20.0, 0.8, RHO, CP, 40.0))
    assert one == pytest.approx(32.0 + 10.0 * (1 - math.exp(-1.0)), abs=1e-9)
    # no flow: all the heat warms the coolant, dT = Q dt / (rho cp V) = 800894.8 * 10 / (1012*3957*0.8) = 2.5 K
    hot = float(physics.loop_return_step_c(40.0, 32.0, 800_896.8, 0.0, 0.8, RHO, CP, 10.0))
    assert hot == pytest.approx(42.5, abs=1e-6)


def test_gpu_temperature_steady_state_and_first_order_step() -> None:
    # 32 C coolant, 1,400 W, 0.03 K/W: 32 + 42 = 74 C
    assert float(physics.gpu_temp_steady_c(32.0, 1400.0, 0.03)) == pytest.approx(74.0)
    # from 50 C, tau 5 s, 5 s step: 50 + (74 - 50)(1 - 1/e) = 65.171
    t = float(physics.gpu_temp_step_c(50.0, 32.0, 1400.0, 0.03, 5.0, 5.0))
    assert t == pytest.approx(50 + 24 * (1 - math.exp(-1)), abs=1e-9)
    # float32 stays float32 and agrees with float64
    t32 = physics.gpu_temp_step_c(np.full((2, 3), 50, np.float32), np.full((2, 1), 32, np.float32),
                                  np.full((2, 3), 1400, np.float32), 0.03, 5.0, 5.0)
    assert t32.dtype == np.float32
    assert np.allclose(t32, t, atol=1e-4)
    # inputs may broadcast to a larger shape than the temperature's (one start temperature for all)
    many = physics.gpu_temp_step_c(50.0, 32.0, np.array([1400.0, 200.0]), 0.03, 5.0, 5.0)
    assert many.tolist() == pytest.approx([50 + 24 * (1 - math.exp(-1)), 50 + (38 - 50) * (1 - math.exp(-1))])
    # many steps converge to the steady state whatever the step length
    t = 40.0
    for _ in range(20):
        t = float(physics.gpu_temp_step_c(t, 32.0, 1400.0, 0.03, 5.0, 60.0))
    assert t == pytest.approx(74.0, abs=1e-9)


def test_gpu_power_and_throttling() -> None:
    assert float(physics.gpu_power_w(0.5, 200.0, 1400.0)) == pytest.approx(800.0)
    # coolant at the cold plate 50 C: a GPU may draw (87 - 50) / 0.03 = 1,233.3 W before it throttles
    p = physics.throttled_power_w(np.array([1400.0, 1000.0]), 50.0, 0.03, 87.0, 200.0)
    assert p.tolist() == pytest.approx([1233.333, 1000.0], abs=1e-3)
    # coolant hotter than the throttle point: down to idle, no lower
    assert float(physics.throttled_power_w(1400.0, 90.0, 0.03, 87.0, 200.0)) == 200.0


def test_cold_plate_coolant_only_rises_when_the_loop_rise_exceeds_design() -> None:
    assert float(physics.cold_plate_coolant_c(32.0, 42.0, 10.0)) == 32.0  # design: plant.md formula holds
    assert float(physics.cold_plate_coolant_c(32.0, 38.0, 10.0)) == 32.0
    assert float(physics.cold_plate_coolant_c(32.0, 72.0, 10.0)) == 47.0  # 30 K excess -> +15 K


def test_heat_pump_cop_by_hand() -> None:
    # lifting from 37 C to 77 C: 0.45 * 350.15 / 40 = 3.939
    assert float(physics.carnot_cop(77.0, 37.0, 0.45)) == pytest.approx(0.45 * 350.15 / 40.0)
    assert float(physics.carnot_cop(77.0, 37.0, 0.45)) == pytest.approx(3.939, abs=1e-3)
    # 30 MW of district heat at that COP: 7.616 MW electric, 22.384 MW drawn from the loop
    el = float(physics.heat_pump_electric_w(30e6, physics.carnot_cop(77.0, 37.0, 0.45)))
    assert el == pytest.approx(30e6 / 3.9392, rel=1e-4)


def test_direct_exchange_delivers_what_the_source_temperature_allows() -> None:
    # offtaker 30 -> 42 C; source 40 C with a 2 K approach heats it to 38 C only: 8/12 of 15 MW = 10 MW
    assert float(physics.hx_direct_delivered_w(15e6, 40.0, 2.0, 42.0, 30.0)) == pytest.approx(10e6)
    assert float(physics.hx_direct_delivered_w(15e6, 50.0, 2.0, 42.0, 30.0)) == pytest.approx(15e6)
    assert float(physics.hx_direct_delivered_w(15e6, 31.0, 2.0, 42.0, 30.0)) == 0.0


def test_dry_cooler_fans_and_limit() -> None:
    # half the design heat at twice the design ITD: a quarter of the airflow, 1/64 of the fan power
    a = float(physics.dry_cooler_fan_fraction(50e6, 30.0, 100e6, 15.0))
    assert a == pytest.approx(0.25)
    assert float(physics.fan_power_w(a, 1.2e6)) == pytest.approx(1.2e6 / 64)
    assert float(physics.dry_cooler_fan_fraction(1e6, 0.0, 100e6, 15.0)) == math.inf
    # at full airflow, rejecting 80 MW of a 100 MW design at 30 C air needs fluid in at 30 + 12 = 42 C,
    # so supply (10 K below) cannot be colder than 32 C
    assert float(physics.dry_cooler_min_supply_c(80e6, 30.0, 10.0, 100e6, 15.0)) == pytest.approx(32.0)


def test_pump_affinity_law() -> None:
    assert float(physics.pump_power_w(10.0, 20.0, 8000.0)) == pytest.approx(1000.0)


def test_facility_power_pue_and_erf_by_hand() -> None:
    # 150 MW IT + 1.5 pumps + 0.8 fans + 4.5 losses + 7 heat pumps + 1 building = 164.8 MW
    fac = float(physics.facility_power_w(150e6, 1.5e6, 0.8e6, 4.5e6, 7e6, 1e6))
    assert fac == pytest.approx(164.8e6)
    assert physics.pue(164.8, 150.0) == pytest.approx(164.8 / 150.0)
    assert physics.pue(1.0, 0.0) is None
    # a day at 40 MW reused over a day at 164.8 MW
    assert physics.erf(40.0 * 24, 164.8 * 24) == pytest.approx(40.0 / 164.8)
    assert physics.erf(1.0, 0.0) is None


def test_first_order_step_is_exact_for_any_step() -> None:
    assert float(physics.first_order_step(0.0, 10.0, 5.0, 5.0)) == pytest.approx(10 * (1 - math.exp(-1)))
    two = physics.first_order_step(physics.first_order_step(0.0, 10.0, 5.0, 2.5), 10.0, 5.0, 2.5)
    assert float(two) == pytest.approx(10 * (1 - math.exp(-1)))
