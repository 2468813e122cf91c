"""Forecast models: baselines, a Holt-Winters load model (statsmodels) and the physics-informed chain.

Pure numpy (and statsmodels); event time is passed in. Series are step means from
:class:`twin.forecast.history.History`; a forecast is the mean over each of the next
``H`` steps.

Why Holt-Winters (``statsmodels.tsa.holtwinters.ExponentialSmoothing``, additive daily
season, no trend) for the IT load: the load has one strong season (the inference daily
cycle) on top of a level that moves in steps (training jobs start and stop); exponential
smoothing tracks the level online, learns the season from a week of 15-min steps, is
estimated in ~40 ms (every 6 h) and absorbs each new step in microseconds. MSTL + ARIMA
would add a weekly season the plant does not have at several times the cost; a trend term
extrapolates job steps a day ahead, which is worse than none.
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
    """Additive-season exponential smoothing of one series of ``step_s`` steps.

    Every ``refit_s`` of event time, on the series passed in (a week): the season starts as the
    series' mean daily profile (statsmodels' ``known`` initialisation: all seven days average the
    load's noise out; the ``heuristic`` one detrends the first five by a moving average, and with
    a seasonal smoothing ~0 the season stays what it starts as; it_mw day-ahead MASE 0.67 -> 0.64
    in the 21-day backtest, before the choice of ``a`` below, 0.49 after); statsmodels estimates
    the smoothing parameters on one-step errors; then the level's ``a`` is chosen again, from
    :data:`ALPHAS` and statsmodels' value, for the least in-sample error over the forecast's own
    leads (1..``period`` steps): one-step fits follow every wiggle of the load (``a`` ~0.6 here),
    which a day ahead is noise carried forward (multi-step estimation, "trace forecast" loss).
    In between, the smoothing equations absorb each new step with those parameters, O(1) per
    step: level ``l``, season ``s``, ``l' = a (y - s) + (1 - a) l``, ``s' = g (y - l) + (1 - g) s``
    (statsmodels' recursions).
    """

    ALPHAS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)

    def __init__(self, period: int, refit_s: float = 6 * 3600.0, step_s: float = 900.0) -> None:
        self.period = period
        self.refit_s = refit_s
        self.step_s = step_s
        self.params: tuple[float, float] | None = None
        self.fitted_ts = -math.inf  # event time of the last optimisation
        self.level = math.nan
        self.season = np.zeros(period)  # the seasonal term of the next ``period`` steps, the next first
        self._ts: float | None = None  # event time of the last step absorbed
        self._fitted = np.zeros(0)  # one-step in-sample fits, the newest last

    def fit(self, y: np.ndarray, ts: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Bring the model up to ``y`` (the series, newest last, at event time ``ts``).

        Returns (forecast over the next ``period`` steps, one-step in-sample fits aligned with
        ``y``, current value). Optimises when due, on the first call, or after a gap longer than ``y``.
        """
        new = None if self._ts is None else round((ts - self._ts) / self.step_s)
        if self.params is None or new is None or new < 0 or new > len(y) or ts - self.fitted_ts >= self.refit_s:
            self._optimise(y, ts)
        elif new > 0:
            self._absorb(y[-new:])
        self._ts = ts
        n = len(y)
        f = self._fitted[-n:]
        fitted = np.concatenate([np.full(n - len(f), np.nan), f]) if len(f) < n else f.copy()
        return self.level + self.season, fitted, float(self.level + self.season[-1])

    def _optimise(self, y: np.ndarray, ts: float) -> None:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        m = self.period
        whole = len(y) // m * m
        off = len(y) - whole
        season0 = np.roll(y[off:].reshape(-1, m).mean(axis=0), off)  # aligned: season0[0] is y[0]'s hour
        season0 -= season0.mean()
        level0 = float(np.mean(y[:m]))
        model = ExponentialSmoothing(y, trend=None, seasonal="add", seasonal_periods=m,
                                     initialization_method="known", initial_level=level0,
                                     initial_seasonal=season0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(optimized=True)
        a1, g = float(res.params["smoothing_level"]), float(res.params["smoothing_seasonal"])
        alphas = np.unique(np.r_[self.ALPHAS, a1])
        lvl, sea = self._paths(y, alphas, g, level0, season0)
        j = int(np.argmin(self._lead_errors(y, lvl, sea)))
        self.params = (float(alphas[j]), g)
        self.fitted_ts = ts
        self.level = float(lvl[j, -1])
        self.season = sea[j, -m:].copy()
        self._fitted = np.r_[level0, lvl[j, :-1]] + sea[j, :len(y)]

    def _paths(self, y: np.ndarray, alphas: np.ndarray, g: float, level0: float,
               season0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Levels (A, n) after each step and seasons (A, n + period), for each level smoothing in ``alphas``.

        ``sea[:, i]`` is the season that step ``i`` is forecast with, ``sea[:, i + period]`` its update.
        """
        m, n = self.period, len(y)
        lvl = np.empty((len(alphas), n))
        sea = np.empty((len(alphas), n + m))
        sea[:, :m] = season0
        cur = np.full(len(alphas), level0)
        for i, v in enumerate(y.tolist()):
            old = sea[:, i]
            sea[:, i + m] = g * (v - cur) + (1.0 - g) * old
            cur = alphas * (v - old) + (1.0 - alphas) * cur
            lvl[:, i] = cur
        return lvl, sea

    def _lead_errors(self, y: np.ndarray, lvl: np.ndarray, sea: np.ndarray) -> np.ndarray:
        """Mean absolute in-sample error over leads 1..period, from every origin after the first season: (A,)."""
        m, n = self.period, len(y)
        origin = np.arange(m, n - 1)
        target = origin[:, None] + np.arange(1, m + 1)[None, :]
        ok = target < n
        target = np.where(ok, target, n - 1)
        err = np.abs(y[target][None] - (lvl[:, origin][:, :, None] + sea[:, target]))
        return np.where(ok[None], err, 0.0).sum(axis=(1, 2)) / max(int(ok.sum()), 1)

    def _absorb(self, y: np.ndarray) -> None:
        assert self.params is not None
        a, g = self.params
        lvl, s = self.level, self.season
        fit = np.empty(len(y))
        for k, v in enumerate(y.tolist()):
            old = float(s[0])
            fit[k] = lvl + old
            s = np.roll(s, -1)
            s[-1] = g * (v - lvl) + (1.0 - g) * old
            lvl = a * (v - old) + (1.0 - a) * lvl
        self.level, self.season = lvl, s
        keep = max(len(self._fitted), 16 * self.period)
        self._fitted = np.concatenate([self._fitted, fit])[-keep:]


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b)
    if ok.sum() < a.shape[1] + 2:
        coef = np.zeros(a.shape[1])
        coef[0] = float(np.nanmean(b)) if np.isfinite(b).any() else 0.0
        return coef
    # normal equations, columns scaled to unit norm, min-norm solution of the small system: the same fit as
    # lstsq on the tall matrix (to ~1e-12 here), without LAPACK's threads on it (ms each on a loaded machine)
    a, b = a[ok], b[ok]
    d = np.sqrt(np.einsum("ij,ij->j", a, a))
    d = np.where(d > 0, d, 1.0)
    an = a / d
    return np.linalg.lstsq(an.T @ an, an.T @ b, rcond=None)[0] / d


def _hour_terms(ts: np.ndarray, k: int = 3) -> np.ndarray:
    """cos/sin of the hour of day, harmonics 1..k: (n, 2k)."""
    w = 2 * np.pi * (np.asarray(ts) % DAY_S) / DAY_S
    return np.column_stack([f(j * w) for j in range(1, k + 1) for f in (np.cos, np.sin)])


DEMAND_HARMONICS = 5  # the morning peak is ~2 h wide: harmonics up to 5 per day follow it
AMBIENT_HARMONICS = 2


def _demand_terms(felt: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Degree-day demand with a daily shape that scales with it: [1, T, h(t), T h(t)] (n, 2 + 4 k)."""
    h = _hour_terms(ts, DEMAND_HARMONICS)
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
      T_felt the outdoor temperature through the buildings' lag (2-16 h, the best fit); ahead, the ambient
      is the current value plus the daily cycle of the last week (diurnal persistence, :meth:`ambient`)
      and T_felt follows it through the same lag;
      heat reusable = min(demand, heat to liquid) (plant.md (5));
    - headroom = min(hydro available, contract) - facility (contract definition), hydro held;
    - coolant return max = a + b IT + c T_supply (plant.md (3): T_ret = T_sup + Q / (rho cp V)).
    """

    TAUS_FELT_S = (2 * 3600.0, 4 * 3600.0, 8 * 3600.0, 16 * 3600.0)

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.c_over = np.zeros(4)
        self.c_liq = np.zeros(2)
        self.c_dem = np.zeros(2 + 4 * DEMAND_HARMONICS)
        self.tau_felt_s = self.TAUS_FELT_S[1]
        self.c_ret = np.zeros(3)
        self.c_amb = np.zeros(1 + 2 * AMBIENT_HARMONICS)  # mean and daily cycle of the ambient
        self.t_felt_now = math.nan
        self.fit_ts = math.nan  # event time of the last row fitted (where ``t_felt_now`` holds)

    def fit(self, x: np.ndarray, ts: np.ndarray) -> None:
        it, fac, amb = x[:, F["it_mw"]], x[:, F["facility_mw"]], x[:, F["ambient_c"]]
        dem, sup = x[:, F["heat_demand_mw"]], x[:, F["coolant_supply_c"]]
        one = np.ones(len(x))
        amb0 = np.where(np.isfinite(amb), amb, 0.0)
        self.c_over = _lstsq(np.column_stack([one, it, amb0, dem]), fac - it)
        self.c_amb = _lstsq(np.column_stack([one, _hour_terms(ts, AMBIENT_HARMONICS)]), amb)
        self.fit_ts = float(ts[-1])
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

    def ambient(self, ts: np.ndarray, now_c: float, now_ts: float) -> np.ndarray:
        """Ambient ahead: ``now_c`` at ``now_ts`` carried along the fitted daily cycle (diurnal persistence).

        The synoptic part (days) is held, the daily swing (up to a few K, the largest change over
        half a day) is the last week's mean cycle.
        """
        d = _hour_terms(np.r_[now_ts, np.asarray(ts)], AMBIENT_HARMONICS) @ self.c_amb[1:]
        return now_c + d[1:] - d[0]

    def felt_ahead(self, ts: np.ndarray, amb: np.ndarray) -> np.ndarray:
        """The felt temperature at ``ts``: from its value at the fit, through the lag, driven by ``amb`` at ``ts``.

        Exact for an ambient that holds each value over the interval that ends at its time.
        """
        out = np.empty(len(ts))
        f, prev = self.t_felt_now, self.fit_ts
        for k, (t, a) in enumerate(zip(np.asarray(ts).tolist(), np.asarray(amb).tolist(), strict=True)):
            f = a + (f - a) * math.exp(-max(t - prev, 0.0) / self.tau_felt_s)
            out[k], prev = f, t
        return out

    def predict(self, ts: np.ndarray, it: np.ndarray, last: np.ndarray, now_ts: float | None = None) -> np.ndarray:
        """Quantities (Q, m) at times ``ts`` for IT ``it``, the rest from ``last`` (a feature row at ``now_ts``).

        Ambient: :meth:`ambient` from ``last``; felt temperature: :meth:`felt_ahead`; coolant supply
        and hydro availability held. ``now_ts`` defaults to the fit's time.
        """
        ts = np.asarray(ts, dtype=np.float64)
        one = np.ones(len(ts))
        now = self.fit_ts if now_ts is None else now_ts
        amb_now = float(last[F["ambient_c"]]) if np.isfinite(last[F["ambient_c"]]) else 0.0
        amb = self.ambient(ts, amb_now, now) if math.isfinite(now) else amb_now * one
        felt = self.felt_ahead(ts, amb)
        sup = float(last[F["coolant_supply_c"]]) if np.isfinite(last[F["coolant_supply_c"]]) else 0.0
        hydro = min(float(last[F["hydro_available_mw"]]), float(last[F["contract_mw"]]))
        return self.rows(ts, it, amb, felt, sup * one, hydro * one)


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
