"""Forecast models on synthetic series with known answers; histories; conformal intervals and scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.contract.test_models import VALID
from twin.contract import QUANTITIES, PlantState
from twin.forecast.calibration import Scorer, coverage
from twin.forecast.engine import Forecaster
from twin.forecast.history import FEATURES, History, quantities_of, sample_of
from twin.forecast.models import HoltWinters, PhysicsChain, acf_weights, persistence, seasonal_naive

DAY = 96  # quarter hours


def daily(n: int, level: float = 100.0, amp: float = 20.0) -> np.ndarray:
    k = np.arange(n)
    return level + amp * np.sin(2 * np.pi * k / DAY) + 0.3 * amp * np.cos(4 * np.pi * k / DAY)


def test_pure_daily_cycle_is_forecast_near_exactly_by_holt_winters() -> None:
    y = daily(8 * DAY)
    fc, _fitted, now = HoltWinters(DAY).fit(y[: 7 * DAY], ts=0.0)
    truth = y[7 * DAY:]
    assert np.abs(fc - truth).max() < 0.01 * 20.0
    assert abs(now - y[7 * DAY - 1]) < 0.2
    # persistence is far off on the same cycle
    assert np.abs(persistence(y[: 7 * DAY, None], DAY)[0] - truth).mean() > 10.0


def test_seasonal_naive_repeats_yesterday() -> None:
    y = daily(3 * DAY)[:, None]
    assert np.allclose(seasonal_naive(y[: 2 * DAY], DAY, DAY)[0], y[2 * DAY:, 0])
    # too little history: falls back to persistence
    assert np.allclose(seasonal_naive(y[:10], 5, DAY)[0], y[9, 0])


def test_a_step_is_followed_by_persistence() -> None:
    y = np.r_[np.full(50, 100.0), np.full(3, 150.0)][:, None]
    assert np.allclose(persistence(y, 60), 150.0)


def test_history_averages_steps_and_forward_fills_gaps() -> None:
    h = History(60.0, 10)
    x = np.zeros(len(FEATURES))
    assert h.add(0.0, x + 1) is None
    assert h.add(30.0, x + 3) is None
    assert h.add(61.0, x + 10) == 0  # step 0 closes with the mean of its samples
    assert h.last(1)[0, 0] == 2.0
    assert h.add(250.0, x + 20) == 3  # steps 1..3 close: 1 holds 10, 2 and 3 are forward filled
    assert h.last(4)[:, 0].tolist() == [2.0, 10.0, 10.0, 10.0]
    assert h.add(10.0, x + 99) is None  # late: dropped
    assert h.end_ts(3) == 240.0


def test_quantities_follow_the_contract_definitions() -> None:
    row = np.array([100.0, 120.0, 200.0, 230.0, 90.0, 40.0, 45.0, 33.0, -5.0])
    q = dict(zip(QUANTITIES, quantities_of(row), strict=True))
    assert q == {"facility_mw": 120.0, "it_mw": 100.0, "headroom_mw": 80.0, "heat_reusable_mw": 40.0,
                 "coolant_return_max_c": 45.0}
    row[4] = 30.0  # less heat in the loops than the offtakers ask for
    assert quantities_of(row)[3] == 30.0


def test_sample_of_a_state_without_demand_uses_heat_reused() -> None:
    s = PlantState.model_validate({**VALID[PlantState], "heat_reused_mw": 12.0})
    assert s.heat_demand_mw is None
    assert sample_of(s)[FEATURES.index("heat_demand_mw")] == 12.0
    s2 = s.model_copy(update={"heat_demand_mw": 30.0})
    assert sample_of(s2)[FEATURES.index("heat_demand_mw")] == 30.0


def test_physics_chain_recovers_a_pue_that_grows_with_ambient() -> None:
    rng = np.random.default_rng(1)
    n = 7 * DAY
    ts = np.arange(n) * 900.0
    it = 100 + 20 * rng.random(n)
    amb = -5 + 10 * rng.random(n)
    x = np.zeros((n, len(FEATURES)))
    x[:, 0] = it
    x[:, 1] = it + 2.0 + 0.05 * it + 0.2 * amb  # overhead: a + b IT + c T_amb
    x[:, 2], x[:, 3] = 250.0, 230.0
    x[:, 4] = 0.9 * it
    x[:, 5] = 40.0
    x[:, 6] = 32.0 + 0.1 * it
    x[:, 7] = 32.0
    x[:, 8] = amb
    ch = PhysicsChain(900.0)
    ch.fit(x, ts)
    last = x[-1].copy()
    last[8] = 10.0
    t1 = ts[-1] + 900.0
    q = ch.predict(np.array([t1]), np.array([110.0]), last, now_ts=t1)[:, 0]  # ambient 10 C at t1
    assert q[0] == pytest.approx(110 + 2 + 5.5 + 2.0, abs=1e-6)  # facility = IT * PUE(T_amb, IT)
    assert q[2] == pytest.approx(230 - q[0], abs=1e-6)  # headroom against the contract
    assert q[3] == pytest.approx(40.0, abs=1e-6)  # demand below the heat in the loops
    assert q[4] == pytest.approx(43.0, abs=1e-6)


def test_ambient_ahead_follows_the_daily_cycle_from_the_current_value() -> None:
    """Diurnal persistence: the current ambient carried along last week's daily cycle; the felt temperature lags it."""
    rng = np.random.default_rng(3)
    n = 7 * DAY
    ts = np.arange(n) * 900.0
    cycle = 2.0 * np.cos(2 * np.pi * (ts / 3600.0 - 14.0) / 24.0)  # peak at 14:00
    drift = np.cumsum(rng.normal(0.0, 0.02, n))  # synoptic wander
    x = np.zeros((n, len(FEATURES)))
    x[:, FEATURES.index("ambient_c")] = -3.0 + cycle + drift
    x[:, FEATURES.index("heat_demand_mw")] = 40.0
    ch = PhysicsChain(900.0)
    ch.fit(x, ts)
    now = ts[-1]  # 23:45
    ahead = now + 900.0 * np.arange(1, DAY + 1)
    amb = ch.ambient(ahead, -1.0, now)
    want = -1.0 + 2.0 * np.cos(2 * np.pi * (ahead / 3600.0 - 14.0) / 24.0) - 2.0 * np.cos(2 * np.pi * (now / 3600.0
                                                                                                       - 14.0) / 24.0)
    assert np.abs(amb - want).max() < 0.1
    felt = ch.felt_ahead(ahead, amb)
    assert abs(felt[0] - ch.t_felt_now) < abs(amb[0] - ch.t_felt_now)  # a lag: it moves part of the way
    assert np.ptp(felt[DAY // 2:]) < np.ptp(amb[DAY // 2:])  # and smooths the daily swing


def test_acf_weights_of_white_noise_are_small_and_of_a_random_walk_near_one() -> None:
    rng = np.random.default_rng(0)
    r = np.column_stack([rng.standard_normal(2000), np.cumsum(rng.standard_normal(2000))])
    w = acf_weights(r, np.array([1.0, 2.0]))
    assert w[0].max() < 0.1
    assert w[1].min() > 0.9


def test_coverage_counts_actuals_inside_the_interval() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0, math.nan])
    assert coverage(a, np.full(5, 1.5), np.full(5, 3.0)) == 0.5


def test_scorer_calibrates_per_lead_and_scores_against_persistence() -> None:
    rng = np.random.default_rng(2)
    h = 4
    sc = Scorer(n_models=2, n_q=1, horizon=h, window=4000, skill_window=100)
    truth = 10.0
    for b in range(3000):
        if b >= 1:
            sc.close(b, np.array([truth + rng.normal(0, 1.0)]), float(b))
        mean = np.zeros((2, 1, h))
        mean[0] = truth + 2.0  # "persistence": biased by 2
        mean[1] = truth  # the model: unbiased
        sc.pending(b, mean, mean, mean)
    q10, q90, n = sc.quantiles()
    assert n.min() > 2900
    # residuals actual - mean ~ N(0, 1) for the model: its 10/90 % quantiles are -/+ 1.2816
    assert np.allclose(q10[1], -1.2816, atol=0.1) and np.allclose(q90[1], 1.2816, atol=0.1)
    assert np.allclose(q10[0], -2 - 1.2816, atol=0.1)
    skill = sc.skill()
    assert skill[0, 0] == 1.0
    assert 0.3 < skill[1, 0] < 0.5  # E|N(0,1)| / E|N(-2,1)| = 0.80 / 2.02


def test_forecaster_issues_both_products_and_skill_after_scoring() -> None:
    fc = Forecaster()
    base = PlantState.model_validate({**VALID[PlantState], "stale": []})
    out = []
    t0 = 1_800_000_000.0
    for k in range(0, 3 * 3600, 60):
        s = base.model_copy(update={"ts": t0 + k, "it_mw": 100.0 + k / 3600, "facility_mw": 120.0 + k / 3600})
        out += fc.on_state(s, [])
    intraday = [f for f in out if f.step_s == 60.0]
    day_ahead = [f for f in out if f.step_s == 900.0]
    assert {f.quantity for f in intraday} == set(QUANTITIES)
    assert {f.model for f in intraday} >= {"persistence-intraday", "seasonal-naive-intraday", "physics-intraday",
                                           "holt-winters-intraday"}
    assert len(day_ahead[-1].points) == 96 and len(intraday[-1].points) == 60
    last = [f for f in intraday if f.quantity == "facility_mw" and f.model == "persistence-intraday"][-1]
    assert last.skill == 1.0  # persistence against itself, once scored
    assert all(p.p10 <= p.p90 for f in out for p in f.points)
    assert intraday[0].skill is None  # nothing scored yet
