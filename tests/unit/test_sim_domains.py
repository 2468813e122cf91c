"""The per-domain step functions on their own: weather, heat reuse, hydro, coolant loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sims.cooling import cdu_step, init_cooling, rejection_step
from sims.heat import district_heating_factor, heat_step, init_heat
from sims.hydro import hydro_step, init_hydro
from sims.params import CoolingParams, HeatParams, HydroParams, WeatherParams
from sims.timebase import parse_start
from sims.weather import WeatherState, monthly_normal_c, weather_step
from twin import physics
from twin.plant import Plant


def test_monthly_normals_and_the_polar_night(phase1: Plant) -> None:
    normals = phase1.weather.monthly_mean_c
    assert monthly_normal_c(15.2, normals) == pytest.approx(-4.0, abs=0.01)  # mid January
    assert monthly_normal_c(197.9, normals) == pytest.approx(14.0, abs=0.01)  # mid July (normals at mid-month)
    assert monthly_normal_c(182.6, normals) == pytest.approx(12.5, abs=0.01)  # half-way June -> July
    quiet = phase1.weather.model_copy(update={"noise_k": 0.0})
    p = WeatherParams()

    def swing(day: str) -> float:
        t0 = parse_start(day)
        temps = [weather_step(WeatherState(), t0 + h * 3600, 3600, quiet, p, np.random.default_rng(0)).temp_c
                 for h in range(24)]
        return max(temps) - min(temps)

    assert swing("2026-12-20") < 0.5 * swing("2026-06-20")  # the daily cycle fades in the polar night
    cold = weather_step(WeatherState(), parse_start("2026-01-15T13:30:00Z"), 60, quiet, p,
                        np.random.default_rng(0), delta_k=-16.0)
    assert cold.temp_c == pytest.approx(-4.0 - 16.0 + 0.3 * quiet.daily_amplitude_k, abs=0.6)


def test_district_heating_degree_days_by_hand() -> None:
    p = HeatParams(dh_daily_amplitude=0.0)
    assert district_heating_factor(-4.0, 12.0, p) == pytest.approx(1.0)  # the winter design point
    assert district_heating_factor(15.0, 12.0, p) == 0.0  # summer base only
    assert district_heating_factor(5.5, 12.0, p) == pytest.approx(0.5)
    assert district_heating_factor(-40.0, 12.0, p) == pytest.approx(p.dh_max_factor)
    shaped = HeatParams()
    assert district_heating_factor(-4.0, 6.5, shaped) > district_heating_factor(-4.0, 2.0, shaped)  # 07:30 local


def test_heat_reuse_heat_pumps_and_direct_exchange(phase1: Plant) -> None:
    s = init_heat(phase1)
    p = HeatParams(dh_daily_amplitude=0.0, industry_noise=0.0)
    rng = np.random.default_rng(0)
    out = heat_step(s, parse_start("2026-01-15T12:00:00Z"), 60, -4.0, 40.0, 150e6, p, rng)
    cop = physics.carnot_cop(75.0 + 2.0, 40.0 - 3.0, 0.45)
    assert out.demand_w[0] == pytest.approx(30e6) and out.delivered_w[0] == pytest.approx(30e6)
    assert out.cop[0] == pytest.approx(float(cop)) and 3.0 < out.cop[0] < 4.5
    assert out.heat_pump_w[0] == pytest.approx(30e6 / float(cop))
    # industry park: 30 -> 42 C from 40 C water with a 2 K approach: 8/12 of 15 MW, at 38 C
    assert out.delivered_w[1] == pytest.approx(10e6) and out.supply_c[1] == pytest.approx(38.0)
    assert out.heat_pump_w[1] == 0.0
    assert out.drawn_w == pytest.approx(30e6 - 30e6 / float(cop) + 10e6)
    # not enough heat in the facility water: shared out
    short = heat_step(s, parse_start("2026-01-15T12:01:00Z"), 60, -4.0, 40.0, 10e6, p, rng)
    assert short.drawn_w == pytest.approx(10e6)
    off = heat_step(s, parse_start("2026-01-15T12:02:00Z"), 60, -4.0, 40.0, 150e6, p, rng,
                    outage=np.array([True, False]))
    assert off.demand_w[0] == 0 and off.delivered_w[0] == 0 and off.heat_pump_w[0] == 0


def test_hydro_curtailment_frequency_and_price(phase1: Plant) -> None:
    p = HydroParams(curtailments_per_day=0.0, excursions_per_day=0.0)
    s = init_hydro(phase1)
    rng = np.random.default_rng(0)
    t0 = parse_start("2026-01-15")
    normal = hydro_step(s, t0, 1.0, 230.0, p, rng)
    assert normal.available_mw.sum() == pytest.approx(0.98 * 260) and not normal.curtailed
    cut = hydro_step(s, t0 + 1, 1.0, 230.0, p, rng, available_override_mw=150.0)
    assert cut.available_mw.sum() == pytest.approx(150.0) and cut.curtailed
    one = hydro_step(s, t0 + 2, 1.0, 230.0, p, rng, feeder_override_mw={1: 20.0})
    assert one.available_mw.tolist() == pytest.approx([127.4, 20.0]) and one.curtailed
    freqs = [hydro_step(s, t0 + 3 + k, 1.0, 230.0, p, rng).frequency_hz for k in range(3000)]
    assert abs(np.mean(freqs) - 50.0) < 0.02 and np.std(freqs) == pytest.approx(0.025, rel=0.5)
    # the price changes only on quarter hours
    prices = {hydro_step(s, t0 + 900 * 4 + k * 60, 60, 230.0, p, rng).price_eur_mwh for k in range(15)}
    assert len(prices) == 1
    dip = hydro_step(s, t0 + 9000, 1.0, 230.0, p, rng, frequency_delta_hz=-0.4)
    assert dip.frequency_hz < 49.75


def test_cdu_flow_control_loop_inertia_and_pump_failure(phase1: Plant) -> None:
    p = CoolingParams(supply_noise_k=0.0)
    s = init_cooling(phase1, p)
    rng = np.random.default_rng(0)
    n = len(phase1.cdu_ids)
    assert s.design_flow_lps == pytest.approx(800e3 / (1012 * 3957 * 10) * 1000)
    q = np.full(n, 600e3)
    first = cdu_step(s, q, 1.0, phase1, p, rng)  # starts at steady state: holds the 10 K rise
    assert first.return_c == pytest.approx(np.full(n, 42.0))
    assert first.heat_w == pytest.approx(q)
    assert first.flow_lps == pytest.approx(np.full(n, 0.75 * s.design_flow_lps))
    # a step up in heat: the return overshoots (flow lags), then settles back on the design rise
    q2 = np.full(n, 780e3)
    rises = [float(cdu_step(s, q2, 5.0, phase1, p, rng).return_c[0]) for _ in range(60)]
    assert max(rises) > 42.2 and rises[-1] == pytest.approx(42.0, abs=0.05)
    # pump failure on CDU 3: flow capped at 10 % of design; its loop heats far past the design rise
    cap = np.full(n, np.inf)
    cap[3] = 0.1
    for _ in range(120):
        out = cdu_step(s, q2, 5.0, phase1, p, rng, flow_cap=cap)
    assert out.flow_lps[3] == pytest.approx(0.1 * s.design_flow_lps)
    assert out.return_c[3] > 32.0 + 4 * 10.0 and out.return_c[0] == pytest.approx(42.0, abs=0.05)
    assert out.pump_w[3] == pytest.approx(s.design_pump_w * 0.1**3)


def test_dry_coolers_hold_the_set_point_until_the_air_is_too_warm(phase1: Plant) -> None:
    p = CoolingParams()
    s = init_cooling(phase1, p)
    winter = rejection_step(s, 50e6, 15e6, -10.0, 0.7, 60.0, phase1, p)
    assert winter.fan_fraction == p.dry_cooler_min_speed and s.fws_supply_c == pytest.approx(30.0)
    summer = rejection_step(s, 100e6, 15e6, 15.0, 0.7, 60.0, phase1, p)
    expected = 100e6 / s.q_design_w * p.dry_cooler_itd_design_k / (30.0 + p.fws_rise_k - 15.0)
    assert summer.fan_fraction == pytest.approx(expected)
    assert summer.fans_w > winter.fans_w
    for _ in range(200):  # 35 C air, 150 MW to reject: full fans and warmer facility water
        hot = rejection_step(s, 150e6, 15e6, 35.0, 0.9, 60.0, phase1, p)
    assert hot.fan_fraction == 1.0
    t_min = 35.0 + p.dry_cooler_itd_design_k * 150e6 / s.q_design_w - p.fws_rise_k
    assert s.fws_supply_c == pytest.approx(t_min, abs=0.01) and t_min > 30.0
    assert math.isclose(hot.fans_w, p.dry_cooler_fan_fraction * s.q_design_w + p.air_handling_fraction * 15e6)
