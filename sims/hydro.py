"""Hydro supply and the Nordic grid: availability with curtailments, frequency, NO4 price, reservoir.

- Availability: the feeders' rating times a normal availability; rare random curtailments (and the
  scenario's) cut it to part of the contract for an hour or two.
- Frequency: an Ornstein-Uhlenbeck wander around 50 Hz inside the 49.9-50.1 Hz normal band, with rare
  excursions (a trip somewhere in the synchronous area) that recover over a minute or few.
- Price (NO4): set each quarter hour: a seasonal base, a daily shape with morning and evening peaks,
  AR(1) noise, and rare quarters below zero.
- Reservoir: fills from the May flood to a peak in October and draws down over winter.

Pure and seeded: state in, state updated, outputs returned. Event time is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sims.params import HydroParams
from sims.timebase import day_of_year, hour_utc
from twin.plant import Plant

__all__ = ["HydroOut", "HydroState", "hydro_step", "init_hydro"]

_QUARTER_S = 900.0


@dataclass
class HydroState:
    ratings_mw: np.ndarray
    freq_x: float | None = None
    excursion_t0: float = -math.inf
    excursion_hz: float = 0.0
    excursion_tau_s: float = 60.0
    curtail_until: float = -math.inf
    curtail_mw: float = 0.0
    quarter: int | None = None
    price_x: float = 0.0
    price: float = 0.0


@dataclass(frozen=True, slots=True)
class HydroOut:
    available_mw: np.ndarray  # per feeder
    frequency_hz: float
    price_eur_mwh: float
    reservoir_pct: float
    curtailed: bool


def init_hydro(plant: Plant) -> HydroState:
    return HydroState(ratings_mw=np.array([f.rated_mw for f in plant.feeders]))


def _poisson_hit(rate_per_day: float, dt_s: float, u: float) -> bool:
    return u < -math.expm1(-rate_per_day * dt_s / 86_400.0)


def hydro_step(s: HydroState, ts: float, dt_s: float, contract_mw: float, p: HydroParams, rng: np.random.Generator,
               available_override_mw: float | None = None, feeder_override_mw: dict[int, float] | None = None,
               frequency_delta_hz: float = 0.0) -> HydroOut:
    n = rng.random(8)
    z = rng.standard_normal(2)
    # availability and curtailments
    if ts >= s.curtail_until and _poisson_hit(p.curtailments_per_day, dt_s, float(n[0])):
        lo, hi = p.curtailment_s
        s.curtail_until = ts + lo + (hi - lo) * float(n[1])
        lo, hi = p.curtailment_to
        s.curtail_mw = contract_mw * (lo + (hi - lo) * float(n[2]))
    share = s.ratings_mw / s.ratings_mw.sum()
    available = s.ratings_mw * p.availability
    curtailed = False
    total = None
    if ts < s.curtail_until:
        total = s.curtail_mw
    if available_override_mw is not None:
        total = available_override_mw if total is None else min(total, available_override_mw)
    if total is not None:
        available = np.minimum(available, total * share)
        curtailed = True
    if feeder_override_mw:
        available = available.copy()
        for i, mw in feeder_override_mw.items():
            available[i] = min(available[i], mw)
        curtailed = True
    # frequency
    a = math.exp(-dt_s / p.frequency_tau_s)
    if s.freq_x is None:
        s.freq_x = p.frequency_std_hz * float(z[0])
    else:
        s.freq_x = a * s.freq_x + math.sqrt(1 - a * a) * p.frequency_std_hz * float(z[0])
    if _poisson_hit(p.excursions_per_day, dt_s, float(n[3])):
        lo, hi = p.excursion_hz
        sign = -1.0 if n[4] < 0.8 else 1.0
        s.excursion_t0, s.excursion_hz = ts, sign * (lo + (hi - lo) * float(n[5]))
        lo, hi = p.excursion_recovery_s
        s.excursion_tau_s = lo + (hi - lo) * float(n[6])
    exc = s.excursion_hz * math.exp(-(ts - s.excursion_t0) / s.excursion_tau_s) if ts >= s.excursion_t0 else 0.0
    freq = 50.0 + s.freq_x + exc + frequency_delta_hz
    # price, quarter-hourly
    doy = day_of_year(ts)
    q = int(ts // _QUARTER_S)
    if q != s.quarter:
        steps = 1 if s.quarter is None else min(q - s.quarter, 96)
        b = math.exp(-steps / 8.0)  # two-hour memory
        s.price_x = b * s.price_x + math.sqrt(1 - b * b) * float(z[1])
        s.quarter = q
        h = (hour_utc(q * _QUARTER_S) + 1.0) % 24.0  # local time
        shape = (math.exp(-(((h - 8.5) / 2.0) ** 2)) + 0.8 * math.exp(-(((h - 18.5) / 2.5) ** 2))
                 - 0.6 * math.exp(-(((h - 3.5) / 3.0) ** 2)))
        winter = 0.5 + 0.5 * math.cos(2 * math.pi * (doy - 15.0) / 365.25)
        price = (p.price_base_eur_mwh + p.price_winter_eur_mwh * winter + p.price_daily_eur_mwh * shape
                 + p.price_noise_eur_mwh * s.price_x)
        if _poisson_hit(p.negative_price_per_day, _QUARTER_S, float(n[7])):
            price = -abs(p.price_noise_eur_mwh) * (0.2 + float(n[5]))
        s.price = price
    reservoir = p.reservoir_mean_pct + p.reservoir_amplitude_pct * math.cos(
        2 * math.pi * (doy - p.reservoir_peak_doy) / 365.25)
    return HydroOut(available_mw=available, frequency_hz=freq, price_eur_mwh=s.price,
                    reservoir_pct=min(max(reservoir, 0.0), 100.0), curtailed=curtailed)
