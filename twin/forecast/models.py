"""Forecast models: baselines, a Holt-Winters load model (statsmodels) and the physics-informed chain.

Pure numpy (and statsmodels); event time is passed in. Series are step means from
:class:`twin.forecast.history.History`; a forecast is the mean over each of the next
``H`` steps.

Why Holt-Winters (``statsmodels.tsa.holtwinters.ExponentialSmoothing``, additive daily
season, no trend) for the IT load: the load has one strong season (the inference daily
cycle) on top of a level that moves in steps (training jobs start and stop); exponential
smoothing tracks the level online, learns the season from a week of 15-min steps, fits in
~0.4 s and re-runs with fixed smoothing parameters in ~10 ms, so it can be refitted every
few hours and re-run at every issue. MSTL + ARIMA would add a weekly season the plant does
not have at several times the cost; a trend term extrapolates job steps a day ahead, which
is worse than none.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from twin.forecast.history import F

__all__ = ["HoltWinters", "PhysicsChain", "acf_weights", "persistence", "seasonal_naive"]

DAY_S = 86_400.0


def persistence(y: np.ndarray, horizon: int) -> np.ndarray:
    """The last step's value held: ``y`` (n, Q) -> (Q, horizon)."""
    return np.repeat(y[-1][:, None], horizon, axis=1)


def seasonal_naive(y: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The value one season (``period`` steps) before each target: (n, Q) -> (Q, horizon); persistence if short."""
    n = len(y)
    if n < period or horizon > period:
        return persistence(y, horizon)
    return y[n - period: n - period + horizon].T.copy()


class HoltWinters:
    """Additive-season exponential smoothing of one series, refitted every ``refit_s`` of event time."""

    def __init__(self, period: int, refit_s: float = 6 * 3600.0) -> None:
        self.period = period
        self.refit_s = refit_s
        self.params: tuple[float, float] | None = None
        self.fitted_ts = -math.inf

    def fit(self, y: np.ndarray, ts: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Fit on ``y``; return (forecast over the next ``period`` steps, in-sample one-step fits, current value)."""
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        model = ExponentialSmoothing(y, trend=None, seasonal="add", seasonal_periods=self.period,
                                     initialization_method="heuristic")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.params is None or ts - self.fitted_ts >= self.refit_s:
                res = model.fit(optimized=True)
                self.params = (float(res.params["smoothing_level"]), float(res.params["smoothing_seasonal"]))
                self.fitted_ts = ts
            else:
                res = model.fit(smoothing_level=self.params[0], smoothing_seasonal=self.params[1], optimized=False)
        now = float(res.level[-1] + res.season[-1])
        return np.asarray(res.forecast(self.period)), np.asarray(res.fittedvalues), now


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b)
    if ok.sum() < a.shape[1] + 2:
        coef = np.zeros(a.shape[1])
        coef[0] = float(np.nanmean(b)) if np.isfinite(b).any() else 0.0
        return coef
    return np.linalg.lstsq(a[ok], b[ok], rcond=None)[0]


def _hour_terms(ts: np.ndarray, k: int = 3) -> np.ndarray:
    """cos/sin of the hour of day, harmonics 1..k: (n, 2k)."""
    w = 2 * np.pi * (np.asarray(ts) % DAY_S) / DAY_S
    return np.column_stack([f(j * w) for j in range(1, k + 1) for f in (np.cos, np.sin)])


def _demand_terms(felt: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Degree-day demand with a daily shape that scales with it: [1, T, h(t), T h(t)] (n, 14)."""
    h = _hour_terms(ts)
    return np.column_stack([np.ones(len(felt)), felt, h, felt[:, None] * h])


def felt_temperature(ambient: np.ndarray, step_s: float, tau_s: float, start: float | None = None) -> np.ndarray:
    """Outdoor temperature as buildings feel it: first-order lag of ``tau_s`` (EN ISO 13790-style time constant)."""
    from scipy.signal import lfilter

    a = math.exp(-step_s / tau_s)
    v = np.asarray(ambient, dtype=np.float64)
    if len(v) == 0:
        return v.copy()
    x0 = float(v[0]) if start is None else start
    out, _ = lfilter([1.0 - a], [1.0, -a], v, zi=[a * x0])
    return np.asarray(out)


class PhysicsChain:
    """The plant's own relations, fitted by least squares on recent 15-min steps, applied to driver forecasts.

    - facility = IT + overhead, overhead = a + b IT + c T_amb + d Q_demand (plant.md (7): pumps and losses
      grow with IT, dry-cooler fans with ambient, heat pumps with the heat sold): PUE = 1 + overhead / IT;
    - heat to liquid = a + b IT (plant.md (2), f ~ 0.9);
    - offtaker demand = (a + b T_felt) (1 + daily harmonics) (degree-day law, morning and evening peaks),
      T_felt the outdoor temperature through the buildings' lag (2-16 h, the best fit);
      heat reusable = min(demand, heat to liquid) (plant.md (5));
    - headroom = min(hydro available, contract) - facility (contract definition), hydro held;
    - coolant return max = a + b IT + c T_supply (plant.md (3): T_ret = T_sup + Q / (rho cp V)).
    """

    TAUS_FELT_S = (2 * 3600.0, 4 * 3600.0, 8 * 3600.0, 16 * 3600.0)

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.c_over = np.zeros(4)
        self.c_liq = np.zeros(2)
        self.c_dem = np.zeros(14)
        self.tau_felt_s = self.TAUS_FELT_S[1]
        self.c_ret = np.zeros(3)
        self.t_felt_now = math.nan

    def fit(self, x: np.ndarray, ts: np.ndarray) -> None:
        it, fac, amb = x[:, F["it_mw"]], x[:, F["facility_mw"]], x[:, F["ambient_c"]]
        dem, sup = x[:, F["heat_demand_mw"]], x[:, F["coolant_supply_c"]]
        one = np.ones(len(x))
        amb0 = np.where(np.isfinite(amb), amb, 0.0)
        self.c_over = _lstsq(np.column_stack([one, it, amb0, dem]), fac - it)
        self.c_liq = _lstsq(np.column_stack([one, it]), x[:, F["heat_to_liquid_mw"]])
        best = math.inf
        for tau in self.TAUS_FELT_S:  # the buildings' lag: the one that explains the demand best
            felt = felt_temperature(amb0, self.step_s, tau)
            a = _demand_terms(felt, ts)
            c = _lstsq(a, dem)
            err = float(np.nanmean((a @ c - dem) ** 2)) if np.isfinite(dem).any() else 0.0
            if err < best:
                best, self.tau_felt_s, self.c_dem, self.t_felt_now = err, tau, c, float(felt[-1])
        sup0 = np.where(np.isfinite(sup), sup, 0.0)
        self.c_ret = _lstsq(np.column_stack([one, it, sup0]), x[:, F["coolant_return_max_c"]])

    def rows(self, ts: np.ndarray, it: np.ndarray, amb: np.ndarray, felt: np.ndarray, sup: np.ndarray,
             hydro_cap: np.ndarray) -> np.ndarray:
        """Quantities (Q, m) from driver rows: IT, ambient, felt temperature, supply, min(hydro, contract)."""
        one = np.ones(len(ts))
        demand = _demand_terms(felt, ts) @ self.c_dem
        fac = it + np.column_stack([one, it, amb, demand]) @ self.c_over
        liq = np.column_stack([one, it]) @ self.c_liq
        ret = np.column_stack([one, it, sup]) @ self.c_ret
        return np.vstack([fac, it, hydro_cap - fac, np.minimum(demand, liq), ret])

    def insample(self, x: np.ndarray, ts: np.ndarray, it: np.ndarray) -> np.ndarray:
        """The chain over history rows ``x`` with IT ``it`` (e.g. the load model's fits): (Q, n)."""
        amb = np.nan_to_num(x[:, F["ambient_c"]])
        felt = felt_temperature(amb, self.step_s, self.tau_felt_s)
        hyd = np.minimum(x[:, F["hydro_available_mw"]], x[:, F["contract_mw"]])
        return self.rows(ts, it, amb, felt, np.nan_to_num(x[:, F["coolant_supply_c"]]), hyd)

    def predict(self, ts: np.ndarray, it: np.ndarray, last: np.ndarray, since_s: float = 0.0) -> np.ndarray:
        """Quantities (Q, m) at times ``ts`` for IT ``it``; other drivers held at ``last`` (a feature row).

        The felt temperature relaxes from its value at the fit towards the held ambient (``since_s``: time
        from the fit to ``ts[0]`` minus one step).
        """
        m = len(ts)
        one = np.ones(m)
        amb = float(last[F["ambient_c"]]) if np.isfinite(last[F["ambient_c"]]) else 0.0
        lag = np.exp(-(np.asarray(ts) - ts[0] + since_s + self.step_s) / self.tau_felt_s)
        felt = amb + (self.t_felt_now - amb) * lag
        sup = float(last[F["coolant_supply_c"]]) if np.isfinite(last[F["coolant_supply_c"]]) else 0.0
        hydro = min(float(last[F["hydro_available_mw"]]), float(last[F["contract_mw"]]))
        return self.rows(np.asarray(ts), it, amb * one, felt, sup * one, hydro * one)


def acf_weights(r: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Autocorrelation of residual series ``r`` (n, Q) at fractional ``lags`` (steps), clipped to 0..1: (Q, L).

    The best linear carry-over of today's residual to a target ``lag`` steps ahead for an AR process.
    """
    n, q = r.shape
    out = np.zeros((q, len(lags)))
    kmax = min(int(np.ceil(lags.max())) + 1, n - 2)
    if kmax < 1:
        return out
    for j in range(q):
        s = r[:, j][np.isfinite(r[:, j])]
        if len(s) < 8 or np.var(s) == 0:
            continue
        s = s - s.mean()
        v = float(s @ s)
        ac = np.array([1.0] + [float(s[:-k] @ s[k:]) / v for k in range(1, min(kmax, len(s) - 2) + 1)])
        out[j] = np.interp(lags, np.arange(len(ac)), ac)
    return np.clip(out, 0.0, 1.0)
