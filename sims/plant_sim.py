"""A seeded, vectorised simulator of the whole plant, advancing in event time.

Every asset is a slot in a numpy array shaped from the plant config; one ``step``
advances them all (no Python loop over GPUs or racks) using the physics in
:mod:`twin.physics`. The same code runs at 1x and at 1000x: time is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin import physics
from twin.plant import Plant

__all__ = ["PlantSim", "SimFrame"]

DAY_S = 86_400.0
YEAR_S = 365.25 * DAY_S


@dataclass
class SimFrame:
    """One step's telemetry for every asset, in contract units."""

    ts: float
    gpu_power_w: np.ndarray  # (racks, gpus)
    gpu_util: np.ndarray  # (racks, gpus)
    gpu_temp_c: np.ndarray  # (racks, gpus)
    aux_power_w: np.ndarray  # (racks,)
    cdu_supply_c: np.ndarray
    cdu_return_c: np.ndarray
    cdu_flow_lps: np.ndarray
    cdu_pump_kw: np.ndarray
    feeder_available_mw: np.ndarray
    feeder_import_mw: np.ndarray
    frequency_hz: float
    price_eur_mwh: float
    reservoir_pct: float
    curtailed: bool
    exch_delivered_kw: np.ndarray
    exch_demand_kw: np.ndarray
    exch_supply_c: np.ndarray
    exch_return_c: np.ndarray
    exch_heat_pump_kw: np.ndarray
    ambient_c: float
    facility_mw: float
    it_mw: float


def _month_normal_c(ts: float, normals: list[float]) -> float:
    """Interpolate monthly climate normals (given at mid-month) at Unix time ``ts``."""
    doy = (ts % YEAR_S) / DAY_S  # approximate day of year since Jan 1 of the epoch-aligned year
    x = (doy - 15.2) / (365.25 / 12.0)
    i = math.floor(x) % 12
    frac = x - math.floor(x)
    return normals[i] + (normals[(i + 1) % 12] - normals[i]) * frac


class PlantSim:
    """The plant, simulated. ``step(ts)`` returns a :class:`SimFrame` at event time ``ts``."""

    def __init__(self, plant: Plant, seed: int = 0, start_ts: float = 1_795_300_000.0) -> None:
        self.plant = plant
        self.rng = np.random.default_rng(seed)
        r, g = plant.n_racks, plant.rack.gpus
        n_c = len(plant.cdu_ids)
        rng = self.rng
        # workload: each rack runs training (synchronous swings), inference (daily cycle) or idles
        kind = rng.choice(3, size=r, p=[0.65, 0.28, 0.07])
        self.training = kind == 0
        self.inference = kind == 1
        n_jobs = max(1, r // 48)
        self.job = rng.integers(0, n_jobs, size=r)  # racks of one job swing together
        self.job_freq_hz = rng.uniform(0.2, 3.0, size=n_jobs)
        self.job_phase = rng.uniform(0, 2 * math.pi, size=n_jobs)
        self.gpu_bias = rng.normal(0.0, 0.02, size=(r, g))
        self.t_gpu = np.full((r, g), plant.cooling.supply_c + 10.0)
        self.t_return = np.full(n_c, plant.cooling.supply_c + plant.cooling.design_delta_t_k)
        self.weather_noise = 0.0
        self.freq_dev = 0.0
        self.last_ts: float | None = None
        self.start_ts = start_ts
        c = plant.cooling
        q_design_w = c.cdu_capacity_kw * 1000.0
        self.design_flow_lps = physics.loop_flow_lps(q_design_w, c.design_delta_t_k, plant.coolant.density_kg_m3,
                                                     plant.coolant.cp_j_kgk)
        self.design_pump_w = c.pump_fraction * q_design_w / c.liquid_fraction

    # --------------------------------------------------------------- components

    def utilisation(self, ts: float) -> np.ndarray:
        """GPU utilisation (racks, gpus), 0..1."""
        day = (ts % DAY_S) / DAY_S
        swing = 0.5 + 0.5 * np.sin(2 * math.pi * self.job_freq_hz * ts + self.job_phase)  # per job
        train = 0.55 + 0.40 * swing[self.job]  # compute vs communication phases
        infer = 0.35 + 0.30 * (0.5 - 0.5 * math.cos(2 * math.pi * (day - 0.1)))
        u_rack = np.where(self.training, train, np.where(self.inference, infer, 0.03))
        noise = self.rng.normal(0.0, 0.01, size=self.gpu_bias.shape)
        return np.clip(u_rack[:, None] + self.gpu_bias + noise, 0.0, 1.0)

    def ambient_c(self, ts: float, dt: float) -> float:
        w = self.plant.weather
        hour = (ts % DAY_S) / 3600.0
        daily = w.daily_amplitude_k * math.cos(2 * math.pi * (hour - 15.0) / 24.0)
        a = math.exp(-dt / (3 * DAY_S))  # AR(1) synoptic noise, 3-day memory
        self.weather_noise = a * self.weather_noise + math.sqrt(1 - a * a) * w.noise_k * self.rng.normal()
        return _month_normal_c(ts, w.monthly_mean_c) + daily + self.weather_noise

    # --------------------------------------------------------------- step

    def step(self, ts: float) -> SimFrame:
        p = self.plant
        dt = 1.0 if self.last_ts is None else max(ts - self.last_ts, 1e-3)
        self.last_ts = ts
        rho, cp = p.coolant.density_kg_m3, p.coolant.cp_j_kgk
        cool = p.cooling

        u = self.utilisation(ts)
        p_gpu = physics.gpu_power_w(u, p.gpu.p_idle_w, p.gpu.p_max_w)
        aux = p.rack.aux_power_idle_w + (p.rack.aux_power_max_w - p.rack.aux_power_idle_w) * u.mean(axis=1)
        rack_w = p_gpu.sum(axis=1) + aux
        it_w = float(rack_w.sum())

        # CDUs: heat to liquid, flow control holding the design rise, loop thermal inertia
        q_cdu = cool.liquid_fraction * np.bincount(p.rack_cdu, weights=rack_w, minlength=len(p.cdu_ids))
        flow = np.clip(physics.loop_flow_lps(q_cdu, cool.design_delta_t_k, rho, cp),
                       0.2 * self.design_flow_lps, 1.3 * self.design_flow_lps)
        supply = np.full_like(q_cdu, cool.supply_c) + self.rng.normal(0, 0.05, size=q_cdu.shape)
        target_return = supply + physics.loop_delta_t_k(q_cdu, flow, rho, cp)
        a = 1.0 - math.exp(-dt / 30.0)  # 30 s loop time constant
        self.t_return += (target_return - self.t_return) * a
        pump_w = physics.pump_power_w(flow, self.design_flow_lps, self.design_pump_w)

        # GPU temperatures follow their CDU's supply and their power with a time constant
        t_sup_rack = supply[p.rack_cdu][:, None]
        self.t_gpu = physics.gpu_temp_step_c(self.t_gpu, t_sup_rack, p_gpu, p.gpu.r_th_k_w, p.gpu.tau_s, dt)

        # weather and heat reuse
        amb = self.ambient_c(ts, dt)
        q_liq_w = float(q_cdu.sum())
        n_x = len(p.exchangers)
        demand = np.zeros(n_x)
        hour = (ts % DAY_S) / 3600.0
        for k, x in enumerate(p.exchangers):  # a handful of offtakers, not assets at scale
            if x.kind == "district_heating":
                cold = np.clip((15.0 - amb) / 19.0, 0.0, 1.3)  # 15 C: summer load; -4 C: design winter
                shape = 1.0 + 0.12 * math.cos(2 * math.pi * (hour - 8.0) / 24.0)
                demand[k] = (x.demand_summer_mw + (x.demand_winter_mw - x.demand_summer_mw) * cold) * shape
            else:
                demand[k] = x.demand_winter_mw
        delivered = np.minimum(demand, np.maximum(q_liq_w / 1e6 - np.cumsum(demand) + demand, 0.0))
        t_loop = float(self.t_return.mean())
        cop = np.array([float(physics.carnot_cop(x.supply_c, t_loop - 3.0, x.heat_pump_eta)) for x in p.exchangers])
        hp_mw = np.where([x.heat_pump for x in p.exchangers], delivered / np.maximum(cop, 1.0), 0.0)

        # dry coolers reject the rest; fan power rises steeply as the approach shrinks
        rejected_mw = max(q_liq_w / 1e6 - float(delivered.sum()), 0.0) + (1 - cool.liquid_fraction) * it_w / 1e6
        approach = max(t_loop - amb, 2.0)
        fans_mw = rejected_mw * 0.004 * (25.0 / approach) ** 1.5
        facility_mw = (it_w * (1.0 + cool.losses_fraction) + float(pump_w.sum())) / 1e6 + fans_mw \
            + float(hp_mw.sum()) + cool.building_aux_mw

        # hydro supply and the grid
        ratings = np.array([f.rated_mw for f in p.feeders])
        self.freq_dev = 0.98 * self.freq_dev + 0.004 * self.rng.normal()
        season = math.cos(2 * math.pi * ((ts % YEAR_S) / YEAR_S - 0.7))
        available = ratings * 0.98
        share = ratings / ratings.sum()
        day = (ts % DAY_S) / DAY_S
        price = 32.0 + 14.0 * math.sin(2 * math.pi * (day - 0.3)) + self.rng.normal(0, 2.0)
        return SimFrame(
            ts=ts, gpu_power_w=p_gpu, gpu_util=u, gpu_temp_c=self.t_gpu, aux_power_w=aux,
            cdu_supply_c=supply, cdu_return_c=self.t_return.copy(), cdu_flow_lps=flow, cdu_pump_kw=pump_w / 1000.0,
            feeder_available_mw=available, feeder_import_mw=facility_mw * share,
            frequency_hz=50.0 + self.freq_dev, price_eur_mwh=price, reservoir_pct=60.0 + 25.0 * season,
            curtailed=False,
            exch_delivered_kw=delivered * 1000.0, exch_demand_kw=demand * 1000.0,
            exch_supply_c=np.array([x.supply_c for x in p.exchangers]),
            exch_return_c=np.array([x.return_c for x in p.exchangers]),
            exch_heat_pump_kw=hp_mw * 1000.0, ambient_c=amb, facility_mw=facility_mw, it_mw=it_w / 1e6,
        )
