"""Scoring forecasts as the actuals arrive, split-conformal intervals per lead, and live skill.

Each issued forecast waits in a ring until its targets close. When a step closes with its
actual value, every pending forecast that covers it yields a residual (actual - mean) at its
own lead. Residuals feed (1) the intervals: the 10 % and 90 % empirical quantiles of the
recent residuals at each lead (split conformal: calibration on forecasts the model did not
fit on), and (2) the skill: MASE against persistence, sum |error| of a model over
sum |error| of persistence on the same targets, over a rolling window. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Metrics", "Scorer", "coverage"]

MIN_RESIDUALS = 30  # per lead, before the conformal quantiles replace the cold-start interval


def coverage(actual: np.ndarray, p10: np.ndarray, p90: np.ndarray) -> float:
    """Share of finite actuals inside [p10, p90]."""
    ok = np.isfinite(actual) & np.isfinite(p10) & np.isfinite(p90)
    if not ok.any():
        return float("nan")
    return float(((actual[ok] >= p10[ok]) & (actual[ok] <= p90[ok])).mean())


@dataclass
class Metrics:
    """Running sums over evaluated points, per (model, quantity)."""

    abs_err: np.ndarray
    ape: np.ndarray
    ape_n: np.ndarray
    covered: np.ndarray
    n: np.ndarray
    # one lead's forecasts for plots: target ts, actual (Q,), mean / p10 / p90 (M, Q)
    trace: list[tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    @classmethod
    def zeros(cls, m: int, q: int) -> Metrics:
        z = np.zeros((m, q))
        return cls(z.copy(), z.copy(), z.copy(), z.copy(), z.copy())

    def table(self, models: list[str], quantities: tuple[str, ...],
              persistence: int = 0) -> dict[str, dict[str, dict[str, float | None]]]:
        """{quantity: {model: {mae, mape, mase, coverage, n}}}."""
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            mae = self.abs_err / self.n
            mape = 100.0 * self.ape / self.ape_n
            mase = self.abs_err / self.abs_err[persistence]
            cov = self.covered / self.n
        for j, q in enumerate(quantities):
            out[q] = {}
            for i, m in enumerate(models):
                def f(v: float) -> float | None:
                    return round(float(v), 4) if np.isfinite(v) else None
                out[q][m] = {"mae": f(mae[i, j]), "mape": f(mape[i, j]), "mase": f(mase[i, j]),
                             "coverage": f(cov[i, j]), "n": int(self.n[i, j])}
        return out


def _take(srt: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` empirical quantile (linear between order statistics) of the first ``n`` of each sorted column."""
    pos = q * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    a = np.take_along_axis(srt, lo[None], axis=0)[0]
    b = np.take_along_axis(srt, hi[None], axis=0)[0]
    return np.where(n > 0, a + (b - a) * (pos - lo), np.nan)


class Scorer:
    """Pending forecasts of one product, conformal residuals per lead, rolling skill per (model, quantity)."""

    def __init__(self, n_models: int, n_q: int, horizon: int, window: int, skill_window: int,
                 quantile_every: int = 1) -> None:
        self.m, self.q, self.h = n_models, n_q, horizon
        self.issue_bin = np.full(horizon, -1, dtype=np.int64)
        self.mean = np.full((horizon, n_models, n_q, horizon), np.nan)
        self.p10 = np.full_like(self.mean, np.nan)
        self.p90 = np.full_like(self.mean, np.nan)
        self.res = np.full((window, n_models, n_q, horizon), np.nan)
        self.res_n = 0
        self.err = np.full((skill_window, n_models, n_q), np.nan)  # sum |error| over leads, per closed step
        self.err_n = 0
        self.quantile_every = quantile_every
        self._q: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._q_age = 0
        self.metrics: Metrics | None = None
        self.record_from: int | None = None  # issue steps >= this are counted in metrics
        self.trace_lead = horizon

    def pending(self, issue_bin: int, mean: np.ndarray, p10: np.ndarray, p90: np.ndarray) -> None:
        k = issue_bin % self.h
        self.issue_bin[k] = issue_bin
        self.mean[k], self.p10[k], self.p90[k] = mean, p10, p90

    def close(self, b: int, actual: np.ndarray, target_ts: float) -> None:
        """Score every pending forecast that covers step ``b`` against ``actual`` (Q,)."""
        lead = b - self.issue_bin  # steps ahead, 1..h for the forecasts that cover b
        live = (self.issue_bin >= 0) & (lead >= 1) & (lead <= self.h)
        res = np.full((self.m, self.q, self.h), np.nan)
        if not live.any():
            return
        rows = np.flatnonzero(live)
        li = lead[rows] - 1
        mean = self.mean[rows, :, :, li]  # (k, M, Q)
        r = actual[None, None, :] - mean
        res[:, :, li] = np.moveaxis(r, 0, -1)
        self.res[self.res_n % len(self.res)] = res
        self.res_n += 1
        self._q_age += 1
        self.err[self.err_n % len(self.err)] = np.nansum(np.abs(r), axis=0)
        self.err_n += 1
        met = self.metrics
        if met is not None and self.record_from is not None:
            keep = self.issue_bin[rows] >= self.record_from
            if keep.any():
                rk, a = r[keep], np.abs(r[keep])
                p10, p90 = self.p10[rows[keep], :, :, li[keep]], self.p90[rows[keep], :, :, li[keep]]
                fin = np.isfinite(rk)
                met.abs_err += np.where(fin, a, 0).sum(axis=0)
                met.n += fin.sum(axis=0)
                big = np.abs(actual) > 1e-6
                with np.errstate(invalid="ignore", divide="ignore"):
                    ape = np.where(fin & big[None, None, :], a / np.abs(actual)[None, None, :], 0.0)
                met.ape += ape.sum(axis=0)
                met.ape_n += (fin & big[None, None, :]).sum(axis=0)
                met.covered += ((actual >= p10) & (actual <= p90)).sum(axis=0)
                t = np.flatnonzero(lead[rows[keep]] == self.trace_lead)
                if t.size:
                    i = rows[keep][t[0]]
                    met.trace.append((target_ts, actual.copy(), self.mean[i, :, :, self.trace_lead - 1].copy(),
                                      self.p10[i, :, :, self.trace_lead - 1].copy(),
                                      self.p90[i, :, :, self.trace_lead - 1].copy()))

    def skill(self) -> np.ndarray:
        """MASE against persistence (model 0) over the skill window, (M, Q); NaN until scored."""
        e = np.nansum(self.err, axis=0)
        n = np.isfinite(self.err[:, 0, 0]).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            out = e / e[0]
        return np.where(n > 0, out, np.nan)

    def quantiles(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q10, q90, count) of the residuals per (M, Q, lead); recomputed every ``quantile_every`` closes."""
        if self._q is None or self._q_age >= self.quantile_every:
            filled = self.res[: min(self.res_n, len(self.res))]
            if len(filled) == 0:
                nan = np.full((self.m, self.q, self.h), np.nan)
                self._q = (nan, nan, np.zeros((self.m, self.q, self.h)))
            else:
                n = np.isfinite(filled).sum(axis=0)
                srt = np.sort(filled, axis=0)  # NaN sort last: the first n of each cell are its residuals
                q10 = _take(srt, n, 0.1)
                q90 = _take(srt, n, 0.9)
                self._q = (q10, q90, n)
            self._q_age = 0
        return self._q
