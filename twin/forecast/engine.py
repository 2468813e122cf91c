"""The forecaster: histories in, forecasts out, scored as the actuals arrive. Pure; event time passed in.

Products (:data:`PRODUCTS`): ``intraday`` (60 one-minute steps, issued when each minute closes)
and ``day-ahead`` (96 quarter-hour steps, issued when each quarter hour closes). For every
quantity three models: ``persistence`` and ``seasonal-naive`` (baselines) and the main model
(``holt-winters`` for ``it_mw``, ``physics`` for the others). The main model is the physics
chain (:class:`~twin.forecast.models.PhysicsChain`) on the Holt-Winters IT forecast, plus the
current residual carried forward with weights from its autocorrelation at each lead. A
Forecast's ``model`` is ``{model}-{product}``, e.g. ``physics-day-ahead``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from twin.contract import QUANTITIES, Forecast, ForecastPoint, HallState, PlantState
from twin.forecast.calibration import MIN_RESIDUALS, Scorer
from twin.forecast.history import F, History, quantities_of, sample_of
from twin.forecast.models import DAY_S, HoltWinters, PhysicsChain, acf_weights, persistence, seasonal_naive

__all__ = ["MODELS", "PRODUCTS", "Forecaster", "Product", "main_model"]

MODELS = ("persistence", "seasonal-naive", "main")


@dataclass(frozen=True)
class Product:
    name: str
    step_s: float
    horizon: int  # steps
    capacity: int  # steps of history kept
    anchor_steps: int  # steps averaged for the current value the main model starts from
    window: int  # closed steps of residuals kept for the intervals
    quantile_every: int

    @property
    def period(self) -> int:
        return int(DAY_S // self.step_s)


PRODUCTS = {
    "intraday": Product("intraday", 60.0, 60, 2 * 1440 + 120, 5, 1440, 15),
    "day-ahead": Product("day-ahead", 900.0, 96, 10 * 96, 1, 7 * 96, 4),
}
_FIT_STEPS = 7 * 96  # a week of quarter hours for the fits
_MIN_FIT_STEPS = 2 * 96


@contextlib.contextmanager
def _quiet_nan() -> Iterator[None]:
    """A quantity with no value yet (all NaN: no heat demand in a log of feeders only) is expected here: numpy's
    "Mean of empty slice" / "All-NaN slice" warnings would reach the user's terminal, so they are silenced."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def main_model(quantity: str) -> str:
    return "holt-winters" if quantity == "it_mw" else "physics"


class Forecaster:
    """Keeps the histories, fits, issues, scores. ``on_state`` returns the Forecasts due (none most ticks)."""

    def __init__(self, products: tuple[str, ...] = ("intraday", "day-ahead"), skill_window_s: float = DAY_S,
                 main: bool = True) -> None:
        self.products = products
        self.main = main  # False: baselines only (the benchmark's baseline)
        self.hist = {n: History(p.step_s, p.capacity) for n, p in PRODUCTS.items()}
        self.scorers = {n: Scorer(len(MODELS), len(QUANTITIES), p.horizon, p.window,
                                  int(skill_window_s // p.step_s), p.quantile_every) for n, p in PRODUCTS.items()}
        self.hw = HoltWinters(PRODUCTS["day-ahead"].period, step_s=PRODUCTS["day-ahead"].step_s)
        self.chain = PhysicsChain(PRODUCTS["day-ahead"].step_s)
        self.ready = False
        self._hw_t = np.zeros(0)
        self._hw_y = np.zeros(0)
        self._w: dict[str, np.ndarray] = {}
        self.issued = 0
        self.issue_from: dict[str, int] = {}  # a product is issued from this step on (a backtest's warm-up)
        self._cold: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}

    # ---------------------------------------------------------------- input

    def on_state(self, state: PlantState, halls: list[HallState] | None = None, emit: bool = True) -> list[Forecast]:
        return self.on_sample(state.ts, sample_of(state, halls), emit)

    def on_sample(self, ts: float, x: np.ndarray, emit: bool = True) -> list[Forecast]:
        out: list[Forecast] = []
        for name in ("day-ahead", "intraday"):  # the fit on quarter hours first: intraday uses it
            p, h = PRODUCTS[name], self.hist[name]
            prev = h.last_bin
            closed = h.add(ts, x)
            if closed is None:
                continue
            first = closed if prev is None else max(prev + 1, closed - p.horizon)
            q = quantities_of(h.last(closed - first + 1))
            for k, b in enumerate(range(first, closed + 1)):
                self.scorers[name].close(b, q[k], h.end_ts(b))
            if name == "day-ahead" and self.main:
                self._fit()
            if name in self.products and closed >= self.issue_from.get(name, closed):
                out += self._issue(p, closed, emit)
        return out

    # ---------------------------------------------------------------- fitting

    def _fit(self) -> None:
        h = self.hist["day-ahead"]
        x = h.last(_FIT_STEPS)
        if len(x) < _MIN_FIT_STEPS or h.last_bin is None:
            return
        step = h.step_s
        ts = h.end_ts(h.last_bin) - step * np.arange(len(x) - 1, -1, -1)
        it = x[:, F["it_mw"]]
        if not np.isfinite(it).all():
            it = np.nan_to_num(it, nan=float(np.nanmean(it)) if np.isfinite(it).any() else 0.0)
        fc, fitted, now = self.hw.fit(it, float(ts[-1]))
        self.chain.fit(x, ts)
        self._hw_t = np.concatenate([[ts[-1]], ts[-1] + step * np.arange(1, len(fc) + 1)])
        self._hw_y = np.concatenate([[now], fc])
        # residuals of the chain in sample (after the first season), and their autocorrelation per lead
        per = self.hw.period
        r = (quantities_of(x) - self.chain.insample(x, ts, fitted).T)[per:]
        for name in self.products:
            p = PRODUCTS[name]
            self._w[name] = acf_weights(r, np.arange(1, p.horizon + 1) * p.step_s / step)
        self.ready = True

    # ---------------------------------------------------------------- issuing

    def _means(self, p: Product, b: int) -> tuple[np.ndarray, float]:
        h = self.hist[p.name]
        rows = h.last(max(p.period + 1, p.anchor_steps))
        y = quantities_of(rows)
        issue_ts = h.end_ts(b)
        means = np.empty((len(MODELS), len(QUANTITIES), p.horizon))
        means[0] = persistence(y, p.horizon)
        means[1] = seasonal_naive(y, p.horizon, p.period)
        if not self.ready or not self.main:
            means[2] = means[0]
            return means, issue_ts
        target = issue_ts + p.step_s * np.arange(1, p.horizon + 1)
        with _quiet_nan():
            last = np.nanmean(rows[-p.anchor_steps:], axis=0)
        it_t = np.interp(target, self._hw_t, self._hw_y)
        chain = self.chain.predict(target, it_t, last, issue_ts)
        now = self.chain.predict(np.array([issue_ts]), np.interp([issue_ts], self._hw_t, self._hw_y), last,
                                 issue_ts)[:, 0]
        anchor = quantities_of(last) - now
        w = self._w.get(p.name, np.zeros((len(QUANTITIES), p.horizon)))
        means[2] = chain + w * np.nan_to_num(anchor)[:, None]
        bad = ~np.isfinite(means[2])
        means[2][bad] = means[0][bad]
        return means, issue_ts

    def _cold_interval(self, p: Product) -> tuple[np.ndarray, np.ndarray]:
        """Before enough scored forecasts: quantiles of the history's own changes over each lead."""
        y = quantities_of(self.hist[p.name].last(p.capacity))
        q10 = np.zeros((len(QUANTITIES), p.horizon))
        q90 = np.zeros_like(q10)
        for k in range(1, p.horizon + 1):
            if len(y) > k + 1:
                d = y[k:] - y[:-k]
                with _quiet_nan():
                    q10[:, k - 1], q90[:, k - 1] = np.nan_to_num(np.nanquantile(d, [0.1, 0.9], axis=0))
        return q10, q90

    def _issue(self, p: Product, b: int, emit: bool) -> list[Forecast]:
        means, issue_ts = self._means(p, b)
        sc = self.scorers[p.name]
        q10, q90, n = sc.quantiles()
        cold = n < MIN_RESIDUALS
        if cold.any():
            cached = self._cold.get(p.name)
            if cached is None or self.issued - cached[0] >= p.quantile_every:
                cached = self._cold[p.name] = (self.issued, *self._cold_interval(p))
            _, c10, c90 = cached
            q10 = np.where(cold, c10[None], q10)
            q90 = np.where(cold, c90[None], q90)
        p10, p90 = means + q10, means + q90
        p10 = np.minimum(p10, p90)
        sc.pending(b, means, p10, p90)
        self.issued += 1
        if not emit:
            return []
        skill = sc.skill()
        target = issue_ts + p.step_s * np.arange(1, p.horizon + 1)
        out = []
        for j, qn in enumerate(QUANTITIES):
            for i, m in enumerate(MODELS if self.main else MODELS[:2]):
                mean, lo, hi = means[i, j], p10[i, j], p90[i, j]
                if not (np.isfinite(mean).all() and np.isfinite(lo).all() and np.isfinite(hi).all()):
                    continue
                name = main_model(qn) if m == "main" else m
                s = float(skill[i, j])
                out.append(Forecast(
                    quantity=qn, issued_ts=issue_ts, model=f"{name}-{p.name}", step_s=p.step_s,  # type: ignore[arg-type]
                    points=[ForecastPoint(ts=float(t), mean=float(a), p10=float(c), p90=float(d))
                            for t, a, c, d in zip(target, mean, lo, hi, strict=True)],
                    skill=s if np.isfinite(s) else None))
        return out
