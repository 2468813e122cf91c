"""Ambient weather at the site: monthly climate normals, a daily cycle, synoptic noise, scenario shifts.

Pure and seeded: state in, state updated, outputs returned; event time is passed in.
Narvik normals (plant file): January -4 C, July 14 C, annual mean ~3.8 C. At 68 N the
daily swing nearly vanishes in the polar night (December) and is widest in June.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sims.params import WeatherParams
from sims.timebase import YEAR_S, day_of_year, hour_utc
from twin.plant import Weather

__all__ = ["WeatherOut", "WeatherState", "monthly_normal_c", "weather_step"]

_MONTH_DAYS = 365.25 / 12.0


def monthly_normal_c(doy: float, normals: list[float]) -> float:
    """Climate normal at fractional day of year ``doy``: linear between mid-month values, C."""
    x = (doy - _MONTH_DAYS / 2.0) / _MONTH_DAYS
    i = math.floor(x)
    frac = x - i
    a, b = normals[i % 12], normals[(i + 1) % 12]
    return a + (b - a) * frac


@dataclass
class WeatherState:
    noise_k: float | None = None  # synoptic anomaly, K (None: draw from the stationary law at first step)
    humidity_x: float = 0.0
    wind_x: float = 0.0


@dataclass(frozen=True, slots=True)
class WeatherOut:
    temp_c: float
    humidity_pct: float
    wind_ms: float


def weather_step(state: WeatherState, ts: float, dt_s: float, w: Weather, p: WeatherParams,
                 rng: np.random.Generator, delta_k: float = 0.0) -> WeatherOut:
    """Advance the weather to event time ``ts`` (``dt_s`` since the last step).

    Temperature = normal(day of year) + daily cycle (amplitude shrinking towards the polar night)
    + AR(1) synoptic anomaly (std ``w.noise_k``, memory ``p.synoptic_tau_s``) + ``delta_k`` (scenario).
    """
    doy = day_of_year(ts)
    normal = monthly_normal_c(doy, w.monthly_mean_c)
    sun = 0.5 - 0.5 * math.cos(2 * math.pi * (doy - 172.0 + 182.6) / (YEAR_S / 86400.0))  # 1 at midsummer
    amp = w.daily_amplitude_k * (p.polar_night_amplitude + (1 - p.polar_night_amplitude) * sun)
    daily = amp * math.cos(2 * math.pi * (hour_utc(ts) - p.peak_hour_utc) / 24.0)
    a = math.exp(-dt_s / p.synoptic_tau_s)
    n = rng.standard_normal(3)
    if state.noise_k is None:
        state.noise_k = w.noise_k * float(n[0])
    else:
        state.noise_k = a * state.noise_k + math.sqrt(1 - a * a) * w.noise_k * float(n[0])
    b = math.exp(-dt_s / 21600.0)  # humidity and wind anomalies: 6 h memory
    state.humidity_x = b * state.humidity_x + math.sqrt(1 - b * b) * float(n[1])
    state.wind_x = b * state.wind_x + math.sqrt(1 - b * b) * float(n[2])
    temp = normal + daily + state.noise_k + delta_k
    humidity = min(max(p.humidity_mean_pct - 8.0 * daily / max(amp, 1e-6) * (amp > 0.1)
                       + 8.0 * state.humidity_x, 15.0), 100.0)
    wind = p.wind_mean_ms * math.exp(0.45 * state.wind_x - 0.1)
    return WeatherOut(temp_c=temp, humidity_pct=humidity, wind_ms=wind)
