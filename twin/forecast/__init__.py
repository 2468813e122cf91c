"""Forecasting: histories of the plant state, baseline / statistical / physics models, calibrated intervals.

Pure (no network, no clock): :class:`Forecaster` takes PlantState / HallState in event time and
returns the Forecasts due; :mod:`twin.services.forecast` wires it to the bus.
"""

from twin.forecast.backtest import BacktestResult, run_backtest, run_backtests
from twin.forecast.engine import MODELS, PRODUCTS, Forecaster, main_model

__all__ = ["MODELS", "PRODUCTS", "BacktestResult", "Forecaster", "main_model", "run_backtest", "run_backtests"]
