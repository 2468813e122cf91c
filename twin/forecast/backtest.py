"""Backtest: a state stream through the live forecaster's code in event time; metrics per model.

The first ``train_days`` warm the histories, fits and intervals; forecasts issued after that
are scored: MAE, MAPE, MASE (against persistence on the same targets) and the share of
actuals inside the 80 % interval (p10..p90), for every model including the baselines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twin.contract import QUANTITIES
from twin.errors import need_extra
from twin.forecast.calibration import Metrics
from twin.forecast.engine import MODELS, PRODUCTS, Forecaster, main_model
from twin.forecast.states import StateStream

__all__ = ["BacktestResult", "plot_backtest", "run_backtest", "run_backtests"]


@dataclass
class BacktestResult:
    product: str
    train_days: float
    states: int
    start_ts: float
    end_ts: float
    metrics: Metrics

    def table(self) -> dict[str, dict[str, dict[str, float | None]]]:
        raw = self.metrics.table(list(MODELS), QUANTITIES)
        return {q: {(main_model(q) if m == "main" else m): v for m, v in raw[q].items()} for q in QUANTITIES}

    def as_json(self, quantity: str | None = None) -> dict[str, Any]:
        t = self.table()
        return {"product": self.product, "train_days": self.train_days, "states": self.states,
                "start_ts": self.start_ts, "end_ts": self.end_ts,
                "test_days": round((self.end_ts - self.start_ts) / 86400.0 - self.train_days, 3),
                "metrics": {quantity: t[quantity]} if quantity else t}


def run_backtests(stream: StateStream, train_days: dict[str, float]) -> dict[str, BacktestResult]:
    """Run ``stream`` once through a :class:`Forecaster` issuing the products in ``train_days``.

    Forecasts issued ``train_days[product]`` days after the first state or later are scored. A
    product is issued from one interval window plus one horizon before that: what the scored
    forecasts' intervals are calibrated on; issues before it could change no figure.
    """
    for product in train_days:
        if product not in PRODUCTS:
            raise ValueError(f"unknown product {product!r} (one of {', '.join(PRODUCTS)})")
    fc = Forecaster(products=tuple(train_days))
    for product in train_days:
        fc.scorers[product].metrics = Metrics.zeros(len(MODELS), len(QUANTITIES))
    n, start, end = 0, math.nan, math.nan
    for state, halls in stream:
        if n == 0:
            start = state.ts
            for product, days in train_days.items():
                p = PRODUCTS[product]
                fc.scorers[product].record_from = rec = math.floor((start + days * 86400.0) / p.step_s)
                fc.issue_from[product] = rec - p.window - p.horizon
        fc.on_state(state, halls, emit=False)
        end = state.ts
        n += 1
    return {p: BacktestResult(p, d, n, start, end, fc.scorers[p].metrics or Metrics.zeros(1, 1))
            for p, d in train_days.items()}


def run_backtest(stream: StateStream, product: str, train_days: float = 14.0) -> BacktestResult:
    """One product (see :func:`run_backtests`)."""
    return run_backtests(stream, {product: train_days})[product]


def plot_backtest(result: BacktestResult, quantity: str, path: str | Path) -> None:
    """Actuals against every model's forecast at the product's full lead, the main model's 80 % band."""
    need_extra("matplotlib", "reports", "twin backtest --plot").use("Agg")
    import matplotlib.pyplot as plt

    j = QUANTITIES.index(quantity)
    tr = result.metrics.trace
    if not tr:
        raise ValueError("nothing was scored after the training days: a longer log or fewer --train-days")
    t = (np.array([r[0] for r in tr]) - result.start_ts) / 86400.0
    actual = np.array([r[1][j] for r in tr])
    mean = np.array([r[2][:, j] for r in tr])
    lo, hi = np.array([r[3][2, j] for r in tr]), np.array([r[4][2, j] for r in tr])
    p = PRODUCTS[result.product]
    fig, ax = plt.subplots(figsize=(9, 3.4), dpi=80)
    ax.fill_between(t, lo, hi, color="tab:blue", alpha=0.2, lw=0, label=f"{main_model(quantity)} p10-p90")
    ax.plot(t, actual, color="black", lw=1.0, label="actual")
    for i, (m, c) in enumerate(zip(MODELS, ("tab:orange", "tab:green", "tab:blue"), strict=True)):
        ax.plot(t, mean[:, i], color=c, lw=0.9, alpha=0.9 if i == 2 else 0.6,
                label=main_model(quantity) if m == "main" else m)
    lead = p.horizon * p.step_s
    ax.set_title(f"{quantity}, {result.product}: forecasts {lead / 3600:g} h ahead", fontsize=10)
    ax.set_xlabel("day of the log")
    ax.legend(fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
