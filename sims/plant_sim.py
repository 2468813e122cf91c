"""The whole plant, simulated: the per-domain step functions composed, advancing in event time.

Every asset is a slot in a numpy array shaped from the plant config; one ``step`` advances
them all (no Python loop over GPUs, racks or CDUs) with the step functions of
:mod:`sims.weather`, :mod:`sims.workload`, :mod:`sims.cooling`, :mod:`sims.heat` and
:mod:`sims.hydro`, whose physics is in :mod:`twin.physics`. The same code runs at 1x and at
1000x: time is passed in. A scenario (:mod:`sims.scenario`) adds events and parameters.

Each domain draws from its own seeded random stream, so the same seed, scenario and steps
give the same frames, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.cooling import cdu_step, cold_plate_c, init_cooling, rejection_step
from sims.heat import heat_step, init_heat
from sims.hydro import hydro_step, init_hydro
from sims.params import SimParams
from sims.scenario import Overrides, Scenario, Timeline
from sims.weather import WeatherState, weather_step
from sims.workload import init_workload, utilisation_step
from twin import physics
from twin.plant import Plant

__all__ = ["PlantSim", "SimFrame"]


@dataclass
class SimFrame:
    """One step's telemetry for every asset, in contract units, plus the plant-level figures behind it."""

    ts: float
    gpu_power_w: np.ndarray  # (racks, gpus), float32
    gpu_util: np.ndarray  # (racks, gpus), float32
    gpu_temp_c: np.ndarray  # (racks, gpus), float32
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
    # added with the scenario-driven simulators (fields may be added, never renamed)
    cdu_fws_supply_c: np.ndarray | None = None
    cdu_fws_return_c: np.ndarray | None = None
    humidity_pct: float | None = None
    wind_ms: float | None = None
    heat_to_liquid_mw: float = 0.0
    pumps_mw: float = 0.0
    fans_mw: float = 0.0
    losses_mw: float = 0.0
    heat_pump_mw: float = 0.0
    building_mw: float = 0.0
    heat_reused_mw: float = 0.0
    heat_rejected_mw: float = 0.0
    fws_supply_c: float = 0.0

    @property
    def pue(self) -> float | None:
        return physics.pue(self.facility_mw, self.it_mw)


class PlantSim:
    """The plant, simulated. ``step(ts)`` returns a :class:`SimFrame` at event time ``ts``."""

    def __init__(self, plant: Plant, seed: int = 0, start_ts: float = 1_795_300_000.0,
                 scenario: Scenario | None = None, params: SimParams | None = None) -> None:
        self.plant = plant
        self.start_ts = start_ts
        self.scenario = scenario
        self.params = params or (scenario.params if scenario is not None else SimParams())
        self.timeline = Timeline(scenario, plant, start_ts) if scenario is not None else None
        ss = np.random.SeedSequence(seed)
        r_init, r_work, r_cool, r_heat, r_hydro, r_weather = (np.random.default_rng(s) for s in ss.spawn(6))
        self._rng_work, self._rng_cool, self._rng_heat = r_work, r_cool, r_heat
        self._rng_hydro, self._rng_weather = r_hydro, r_weather
        pr = self.params
        self.workload = init_workload(plant, pr.workload, r_init)
        self.cooling = init_cooling(plant, pr.cooling)
        self.heat = init_heat(plant)
        self.hydro = init_hydro(plant)
        self.weather = WeatherState()
        self.t_gpu: np.ndarray | None = None
        self.last_ts: float | None = None
        c = plant.cooling
        self._aux_span = plant.rack.aux_power_max_w - plant.rack.aux_power_idle_w
        self._gpu_span = plant.gpu.p_max_w - plant.gpu.p_idle_w
        self.design_flow_lps = self.cooling.design_flow_lps
        self.design_pump_w = self.cooling.design_pump_w
        self._n_cdu = len(plant.cdu_ids)
        self._liquid = c.liquid_fraction
        self._ones_gpu = np.ones(plant.rack.gpus, dtype=np.float32)

    def overrides(self, ts: float) -> Overrides:
        return self.timeline.at(ts) if self.timeline is not None else Overrides()

    # --------------------------------------------------------------- step

    def step(self, ts: float) -> SimFrame:
        p, pr = self.plant, self.params
        dt = 1.0 if self.last_ts is None else max(ts - self.last_ts, 1e-3)
        self.last_ts = ts
        o = self.overrides(ts)

        wx = weather_step(self.weather, ts, dt, p.weather, pr.weather, self._rng_weather, o.weather_delta_k)

        # workload -> GPU power, throttled where the coolant at the cold plates is too warm
        u_rack, u = utilisation_step(self.workload, ts, dt, pr.workload, self._rng_work)
        p_gpu = physics.gpu_power_w(u, p.gpu.p_idle_w, p.gpu.p_max_w)
        aux = p.rack.aux_power_idle_w + self._aux_span * u_rack
        if o.it_cap_mw is not None:
            p_gpu, aux, u = self._power_cap(p_gpu, aux, u, o.it_cap_mw * 1e6)
        t_cool = cold_plate_c(self.cooling, p)
        if float(t_cool.max()) > p.gpu.throttle_c - p.gpu.r_th_k_w * p.gpu.p_max_w:
            p_gpu = physics.throttled_power_w(p_gpu, t_cool[:, None], p.gpu.r_th_k_w, p.gpu.throttle_c,
                                              p.gpu.p_idle_w).astype(np.float32)
        rack_w = (p_gpu @ self._ones_gpu).astype(np.float64) + aux  # a BLAS row sum: 10x np.sum here
        it_w = float(rack_w.sum())
        t_cool32 = t_cool.astype(np.float32)[:, None]
        if self.t_gpu is None:
            self.t_gpu = physics.gpu_temp_steady_c(t_cool32, p_gpu, p.gpu.r_th_k_w).astype(np.float32)
        else:  # a new array each step: frames already handed out stay as they were
            self.t_gpu = physics.gpu_temp_step_c(self.t_gpu, t_cool32, p_gpu, p.gpu.r_th_k_w, p.gpu.tau_s, dt)

        # coolant loops (plant.md physics (2), (3))
        q_cdu = self._liquid * np.bincount(p.rack_cdu, weights=rack_w, minlength=self._n_cdu)
        cdu = cdu_step(self.cooling, q_cdu, dt, p, pr.cooling, self._rng_cool, o.cdu_flow_cap)
        q_liq = float(cdu.heat_w.sum())
        flow_total = float(cdu.flow_lps.sum())
        t_source = float((cdu.fws_return_c * cdu.flow_lps).sum() / flow_total) if flow_total > 0 else \
            float(cdu.fws_return_c.mean())

        # heat reuse, then rejection of the rest
        hx = heat_step(self.heat, ts, dt, wx.temp_c, t_source, q_liq, pr.heat, self._rng_heat, o.offtaker_out)
        q_air = (1.0 - self._liquid) * it_w
        rej = rejection_step(self.cooling, max(q_liq - hx.drawn_w, 0.0), q_air, wx.temp_c,
                             flow_total / (self._n_cdu * self.cooling.design_flow_lps), dt, p, pr.cooling)

        # facility power at the feeders (plant.md physics (7))
        pumps_w = float(cdu.pump_w.sum()) + rej.fws_pumps_w
        losses_w = p.cooling.losses_fraction * it_w
        hp_w = float(hx.heat_pump_w.sum())
        building_w = p.cooling.building_aux_mw * 1e6
        facility_w = float(physics.facility_power_w(it_w, pumps_w, rej.fans_w, losses_w, hp_w, building_w))
        facility_mw = facility_w / 1e6

        hy = hydro_step(self.hydro, ts, dt, p.site.contract_mw, pr.hydro, self._rng_hydro, o.available_mw,
                        o.feeder_available_mw, o.frequency_delta_hz)
        # the site's draw splits over the feeders as they can deliver (by rating when none is curtailed)
        avail_total = float(hy.available_mw.sum())
        ratings = self.hydro.ratings_mw
        share = hy.available_mw / avail_total if avail_total > 0 else ratings / ratings.sum()
        return SimFrame(
            ts=ts, gpu_power_w=p_gpu, gpu_util=u, gpu_temp_c=self.t_gpu, aux_power_w=aux,
            cdu_supply_c=cdu.supply_c, cdu_flow_lps=cdu.flow_lps,
            cdu_return_c=cdu.return_c if o.cdu_return_offset_k is None else cdu.return_c + o.cdu_return_offset_k,
            cdu_pump_kw=cdu.pump_w / 1000.0,
            feeder_available_mw=hy.available_mw, feeder_import_mw=facility_mw * share,
            frequency_hz=hy.frequency_hz, price_eur_mwh=hy.price_eur_mwh, reservoir_pct=hy.reservoir_pct,
            curtailed=hy.curtailed,
            exch_delivered_kw=hx.delivered_w / 1000.0, exch_demand_kw=hx.demand_w / 1000.0,
            exch_supply_c=hx.supply_c, exch_return_c=hx.return_c, exch_heat_pump_kw=hx.heat_pump_w / 1000.0,
            ambient_c=wx.temp_c, facility_mw=facility_mw, it_mw=it_w / 1e6,
            cdu_fws_supply_c=cdu.fws_supply_c, cdu_fws_return_c=cdu.fws_return_c,
            humidity_pct=wx.humidity_pct, wind_ms=wx.wind_ms, heat_to_liquid_mw=q_liq / 1e6,
            pumps_mw=pumps_w / 1e6, fans_mw=rej.fans_w / 1e6, losses_mw=losses_w / 1e6, heat_pump_mw=hp_w / 1e6,
            building_mw=building_w / 1e6, heat_reused_mw=float(hx.delivered_w.sum()) / 1e6,
            heat_rejected_mw=max(q_liq - hx.drawn_w, 0.0) / 1e6, fws_supply_c=self.cooling.fws_supply_c,
        )

    def _power_cap(self, p_gpu: np.ndarray, aux: np.ndarray, u: np.ndarray,
                   cap_w: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scale every GPU's and rack's load above idle so that IT power is at most ``cap_w`` (power capping)."""
        p = self.plant
        base = p.gpu.p_idle_w * p_gpu.size + p.rack.aux_power_idle_w * aux.size
        dyn = float(p_gpu.sum()) + float(aux.sum()) - base
        if dyn <= 0 or base + dyn <= cap_w:
            return p_gpu, aux, u
        k = max(cap_w - base, 0.0) / dyn
        return (p.gpu.p_idle_w + (p_gpu - p.gpu.p_idle_w) * k,
                p.rack.aux_power_idle_w + (aux - p.rack.aux_power_idle_w) * k, u * k)
