"""The live state of the plant in preallocated numpy arrays, and the KPIs over it.

Pure: no network and no clock; event time is passed in. One message updates its
asset's slots in O(GPUs in the message); a snapshot aggregates over the arrays
with numpy (no Python loop over assets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from twin import physics
from twin.contract import HallState, PlantState
from twin.live import virtual_sensors
from twin.live.decode import Decoded
from twin.live.kpi_window import KpiWindow
from twin.plant import Plant

__all__ = ["Counters", "PlantFrame", "SeqTracker", "StateModel"]

_NEVER = -np.inf
#: Racks' GPU rows copied into the numpy arrays in chunks of this many, not all at the window's close:
#: the copy costs ~12 us a rack (np.array over Python floats), so phase 1's 1,392 racks at once held the
#: event loop ~24 ms each tick and the 1 Hz p99 publish-to-state latency was 31-35 ms; in chunks of 128
#: (~2 ms each) the total is the same and no single stall is long (docs/benchmarks.md, ingest).
_MATERIALIZE_EVERY = 128
_WINDOW = 64  # seq numbers remembered below the newest, to tell duplicates from late messages


class PlantFrame(Protocol):
    """One instant's telemetry of every asset as arrays in plant order, in contract units
    (:class:`sims.plant_sim.SimFrame` is one)."""

    ts: float
    gpu_power_w: np.ndarray  # (racks, gpus)
    gpu_util: np.ndarray
    gpu_temp_c: np.ndarray
    aux_power_w: np.ndarray  # (racks,)
    cdu_supply_c: np.ndarray
    cdu_return_c: np.ndarray
    cdu_flow_lps: np.ndarray
    cdu_pump_kw: np.ndarray
    feeder_available_mw: np.ndarray
    feeder_import_mw: np.ndarray
    frequency_hz: float
    price_eur_mwh: float
    curtailed: bool
    exch_delivered_kw: np.ndarray
    exch_demand_kw: np.ndarray
    exch_heat_pump_kw: np.ndarray
    ambient_c: float


@dataclass
class Counters:
    msgs_in: int = 0
    msgs_rejected: int = 0
    msgs_duplicate: int = 0
    msgs_late: int = 0
    seq_gaps: int = 0


@dataclass
class SeqTracker:
    """Per-stream seq bookkeeping: drops duplicates (QoS 1 redelivery), counts gaps and late arrivals.

    A stream is one (domain, asset, source). It keeps the newest seq, a 64-bit map of the
    seqs seen just below it, the lowest seq heard and the newest event time ``ts``. The rules:

    - a seq above the newest is new data (the seqs skipped count as gaps);
    - a seq at or below the newest with a ``ts`` newer than the stream's newest, on a first
      delivery (no MQTT dup flag), is a publisher restart: the stream starts again there,
      whatever the old seq was;
    - otherwise (an older ``ts``, or the dup flag) it is a redelivery or a late message: a
      duplicate when its bit is set or it lies below the window, else late (it fills a gap).
      The caller never lets such a message roll a value back in time.
    """

    counters: Counters
    _streams: dict[tuple[str, int, str], tuple[int, int, int, float]] = field(default_factory=dict)
    restarts: int = 0  # publisher restarts recognised

    def accept(self, key: tuple[str, int, str], seq: int, ts: float = -np.inf, dup: bool = False) -> bool:
        """Return False for a duplicate; update gap and late counters."""
        prev = self._streams.get(key)
        if prev is None:
            self._streams[key] = (seq, 0, seq, ts)
            return True
        last, seen, first, newest = prev  # bit k of seen: seq last-1-k was received; first: lowest seq heard
        if seq > last:
            shift = seq - last
            self.counters.seq_gaps += shift - 1
            seen = ((seen << shift) | (1 << (shift - 1))) & ((1 << _WINDOW) - 1) if shift <= _WINDOW else 0
            self._streams[key] = (seq, seen, first, max(newest, ts))
            return True
        if ts > newest and not dup:  # the seq went down while time moved on: the publisher restarted
            self.restarts += 1
            self._streams[key] = (seq, 0, seq, ts)
            return True
        k = last - 1 - seq
        if seq == last or k >= _WINDOW or seen >> k & 1:  # a redelivery (or an ancient message)
            self.counters.msgs_duplicate += 1
            return False
        self._streams[key] = (last, seen | (1 << k), min(first, seq), newest)
        self.counters.msgs_late += 1
        if seq > first:  # a late arrival fills a gap counted earlier
            self.counters.seq_gaps -= 1
        return True


class StateModel:
    """Latest valid value of every asset of one plant, and the contract's KPIs over them."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        n_r, g = plant.n_racks, plant.rack.gpus
        n_c, n_f, n_x = len(plant.cdu_ids), len(plant.feeder_ids), len(plant.exchanger_ids)
        self.counters = Counters()
        self.seq = SeqTracker(self.counters)
        # racks
        self.rack_ts = np.full(n_r, _NEVER)
        self.rack_power_w = np.zeros(n_r)  # sum of gpu_power_w + aux_power_w
        self.rack_util_sum = np.zeros(n_r)  # sum of gpu_util over the GPUs present in the message
        self.rack_temp_max_c = np.zeros(n_r)
        self.rack_missing = np.zeros(n_r, dtype=np.int64)  # GPUs without a fresh reading (gpu_missing)
        self.gpu_power_w = np.zeros((n_r, g), dtype=np.float32)
        self.gpu_util = np.zeros((n_r, g), dtype=np.float32)
        self.gpu_temp_c = np.zeros((n_r, g), dtype=np.float32)
        self._rows: dict[int, tuple[list[float], list[float], list[float]]] = {}  # not yet in the arrays
        # CDUs
        self.cdu_ts = np.full(n_c, _NEVER)
        self.cdu_supply_c = np.zeros(n_c)
        self.cdu_return_c = np.zeros(n_c)
        self.cdu_flow_lps = np.zeros(n_c)
        self.cdu_pump_kw = np.zeros(n_c)
        # virtual sensors, refreshed by snapshot()
        self.cdu_heat_w = np.zeros(n_c)
        self.cdu_expected_w = np.zeros(n_c)
        self.cdu_expected_flow_lps = np.zeros(n_c)
        self.cdu_expected_return_c = np.full(n_c, np.nan)  # a healthy loop's return temperature, C
        self.cdu_expected_lag_w = np.full(n_c, np.nan)  # what a healthy loop's meter shows, W
        self._vs_ts: float | None = None
        self.cdu_residual = np.full(n_c, np.nan)
        self.rack_temp_excess_max_k = np.full(n_r, np.nan)
        # feeders
        self.feeder_ts = np.full(n_f, _NEVER)
        self.feeder_available_mw = np.zeros(n_f)
        self.feeder_import_mw = np.zeros(n_f)
        self.feeder_frequency_hz = np.zeros(n_f)
        self.feeder_price_eur_mwh = np.zeros(n_f)
        self.feeder_curtailed = np.zeros(n_f, dtype=bool)
        # exchangers
        self.exch_ts = np.full(n_x, _NEVER)
        self.exch_delivered_kw = np.zeros(n_x)
        self.exch_demand_kw = np.zeros(n_x)
        self.exch_heat_pump_kw = np.zeros(n_x)
        # weather
        self.ambient_ts = np.full(1, _NEVER)
        self.ambient_c = np.zeros(1)
        # time and energy
        self.start_ts: float | None = None
        self.now_ts: float | None = None  # newest event time seen
        self.last_snapshot_ts: float | None = None
        self._last_fac_mw = 0.0
        self._last_reuse_mw = 0.0
        self._last_dt_h = 0.0  # the last trapezoid's width, h (to redo it when its window is completed later)
        self.energy_facility_mwh = 0.0
        self.kpi_window = KpiWindow()  # PUE, liquid capture and ERF as energies over the last 15 minutes
        self.energy_reused_mwh = 0.0
        self._stale_names = (
            [f"gpu/{r}" for r in plant.rack_ids],
            [f"coolant/{c}" for c in plant.cdu_ids],
            [f"hydro/{f}" for f in plant.feeder_ids],
            [f"heat/{x}" for x in plant.exchanger_ids],
            [f"ambient/{plant.weather.station}"],
        )

    # ------------------------------------------------------------------ ingest

    def apply(self, d: Decoded, dup: bool = False) -> bool:
        """Apply one decoded message; False when it was a duplicate or older than what is held.

        ``dup``: the MQTT dup flag (the broker sends the message again).

        O(GPUs in the message) with Python builtins; the per-GPU rows are copied into the
        numpy arrays in one batch per snapshot (:meth:`materialize`).
        """
        m = d.msg
        self.counters.msgs_in += 1
        if not self.seq.accept((d.domain, d.index, m.source), m.seq, m.ts, dup):
            return False
        ts, i, domain = m.ts, d.index, d.domain
        if self.start_ts is None:
            self.start_ts = ts
        if self.now_ts is None or ts > self.now_ts:
            self.now_ts = ts
        if domain == "gpu":
            if ts < self.rack_ts[i]:
                return False
            p, u, t = m.gpu_power_w, m.gpu_util, m.gpu_temp_c
            self.rack_power_w[i] = sum(p) + m.aux_power_w
            missing = m.gpu_missing
            if missing:  # held values of GPUs without a fresh reading count in power, not in util or temp
                gone = set(missing)
                present = [k for k in range(len(u)) if k not in gone]
                self.rack_util_sum[i] = sum(u[k] for k in present)
                self.rack_temp_max_c[i] = max((t[k] for k in present), default=-np.inf)
                self.rack_missing[i] = len(gone)
            else:
                self.rack_util_sum[i] = sum(u)
                self.rack_temp_max_c[i] = max(t)
                self.rack_missing[i] = 0
            self.rack_ts[i] = ts
            rows = self._rows
            rows[i] = (p, u, t)
            if len(rows) >= _MATERIALIZE_EVERY:
                self.materialize()
        elif domain == "coolant":
            if ts < self.cdu_ts[i]:
                return False
            self.cdu_supply_c[i] = m.supply_c
            self.cdu_return_c[i] = m.return_c
            self.cdu_flow_lps[i] = m.flow_lps
            self.cdu_pump_kw[i] = m.pump_kw
            self.cdu_ts[i] = ts
        elif domain == "hydro":
            if ts < self.feeder_ts[i]:
                return False
            self.feeder_available_mw[i] = m.available_mw
            self.feeder_import_mw[i] = m.import_mw
            self.feeder_frequency_hz[i] = m.frequency_hz
            self.feeder_price_eur_mwh[i] = m.price_eur_mwh
            self.feeder_curtailed[i] = m.curtailed
            self.feeder_ts[i] = ts
        elif domain == "heat":
            if ts < self.exch_ts[i]:
                return False
            self.exch_delivered_kw[i] = m.delivered_kw
            self.exch_demand_kw[i] = m.demand_kw
            self.exch_heat_pump_kw[i] = m.heat_pump_kw
            self.exch_ts[i] = ts
        elif domain == "ambient":
            if ts < self.ambient_ts[i]:
                return False
            self.ambient_c[i] = m.temp_c
            self.ambient_ts[i] = ts
        return True

    def apply_frame(self, f: PlantFrame) -> None:
        """Every asset's latest values from one whole-plant frame (the simulator's ``SimFrame``), as
        :meth:`apply` would store them from the frame's messages, vectorised and without the JSON round trip
        (whose rounding is 0.1 W and 0.001 C). The forecaster's weeks of simulated history come in here."""
        ts = f.ts
        self.counters.msgs_in += self.plant.n_racks + len(self.plant.cdu_ids) + len(self.plant.feeder_ids) \
            + len(self.plant.exchanger_ids) + 1
        self.gpu_power_w[:] = f.gpu_power_w
        self.gpu_util[:] = f.gpu_util
        self.gpu_temp_c[:] = f.gpu_temp_c
        self.rack_power_w[:] = f.gpu_power_w.sum(axis=1, dtype=np.float64) + f.aux_power_w
        self.rack_util_sum[:] = f.gpu_util.sum(axis=1, dtype=np.float64)
        self.rack_temp_max_c[:] = f.gpu_temp_c.max(axis=1)
        self.rack_missing[:] = 0
        self.rack_ts[:] = ts
        self.cdu_supply_c[:], self.cdu_return_c[:] = f.cdu_supply_c, f.cdu_return_c
        self.cdu_flow_lps[:], self.cdu_pump_kw[:] = f.cdu_flow_lps, f.cdu_pump_kw
        self.cdu_ts[:] = ts
        self.feeder_available_mw[:], self.feeder_import_mw[:] = f.feeder_available_mw, f.feeder_import_mw
        self.feeder_frequency_hz[:], self.feeder_price_eur_mwh[:] = f.frequency_hz, f.price_eur_mwh
        self.feeder_curtailed[:] = f.curtailed
        self.feeder_ts[:] = ts
        self.exch_delivered_kw[:], self.exch_demand_kw[:] = f.exch_delivered_kw, f.exch_demand_kw
        self.exch_heat_pump_kw[:] = f.exch_heat_pump_kw
        self.exch_ts[:] = ts
        self.ambient_c[:] = f.ambient_c
        self.ambient_ts[:] = ts
        if self.start_ts is None:
            self.start_ts = ts
        self.now_ts = ts if self.now_ts is None else max(self.now_ts, ts)

    def materialize(self) -> None:
        """Copy the GPU rows of the racks updated since the last call into the (racks, GPUs) arrays."""
        if not self._rows:
            return
        idx = np.fromiter(self._rows.keys(), dtype=np.int64, count=len(self._rows))
        block = np.array(list(self._rows.values()), dtype=np.float32)  # (k, 3, gpus)
        self.gpu_power_w[idx] = block[:, 0]
        self.gpu_util[idx] = block[:, 1]
        self.gpu_temp_c[idx] = block[:, 2]
        self._rows.clear()

    def reject(self) -> None:
        self.counters.msgs_in += 1
        self.counters.msgs_rejected += 1

    # ------------------------------------------------------------------ KPIs

    def _fresh(self, ts: np.ndarray, now: float) -> np.ndarray:
        return ts >= now - self.plant.stale_after_s

    def stale(self, now: float) -> list[str]:
        """``domain/asset`` silent for longer than ``stale_after_s`` at event time ``now``.

        An asset never heard from is stale once the twin has run ``stale_after_s`` in event time.
        """
        warm = self.start_ts is not None and now - self.start_ts > self.plant.stale_after_s
        out: list[str] = []
        for names, ts in zip(self._stale_names, self._ts_arrays(), strict=True):
            bad = ~self._fresh(ts, now)
            if not warm:
                bad &= np.isfinite(ts)
            out.extend(names[k] for k in np.flatnonzero(bad))
        return out

    def _ts_arrays(self) -> tuple[np.ndarray, ...]:
        return (self.rack_ts, self.cdu_ts, self.feeder_ts, self.exch_ts, self.ambient_ts)

    def heat_to_liquid_w(self) -> np.ndarray:
        """Per CDU, from the latest flow and loop temperatures (0 for a CDU never heard from)."""
        c = self.plant.coolant
        q = physics.heat_to_liquid_w(self.cdu_flow_lps, self.cdu_return_c, self.cdu_supply_c,
                                     c.density_kg_m3, c.cp_j_kgk)
        return np.where(np.isfinite(self.cdu_ts), q, 0.0)

    def update_virtual_sensors(self, ts: float) -> None:
        """Per-CDU heat, expected heat and flow, residual; per-rack GPU temperature excess, at event time ``ts``."""
        p = self.plant
        c, cool = p.coolant, p.cooling
        n_c = len(p.cdu_ids)
        self.cdu_heat_w = self.heat_to_liquid_w()
        self.cdu_expected_w = virtual_sensors.cdu_expected_heat_w(self.rack_power_w, p.rack_cdu, n_c,
                                                                   cool.liquid_fraction)
        self.cdu_expected_flow_lps = virtual_sensors.cdu_expected_flow_lps(
            self.cdu_expected_w, cool.design_delta_t_k, c.density_kg_m3, c.cp_j_kgk)
        dt = 0.0 if self._vs_ts is None else max(ts - self._vs_ts, 0.0)
        self._vs_ts = ts if self._vs_ts is None else max(ts, self._vs_ts)
        seen_c = np.isfinite(self.cdu_ts)
        # a CDU's expectation starts once it and every rack it serves have been heard (before that the racks
        # not yet heard count as 0 W and the residual would lie), from the loop as it is: the measured return.
        # A loop whose balance is off at that moment drifts away from it with the loop's time constant
        # V / V_dot (one to three minutes at phase 1's flows), and its residual shows then.
        racks_unheard = np.bincount(p.rack_cdu, weights=~np.isfinite(self.rack_ts), minlength=n_c)
        ready = seen_c & (racks_unheard == 0)
        tr = virtual_sensors.cdu_expected_return_c(self.cdu_expected_return_c, self.cdu_supply_c,
                                                   self.cdu_expected_w, self.cdu_flow_lps, cool.loop_volume_m3,
                                                   c.density_kg_m3, c.cp_j_kgk, dt)
        tr = np.where(np.isnan(self.cdu_expected_return_c), self.cdu_return_c, tr)
        self.cdu_expected_return_c = np.where(ready, tr, np.nan)
        self.cdu_expected_lag_w = physics.heat_to_liquid_w(self.cdu_flow_lps, self.cdu_expected_return_c,
                                                           self.cdu_supply_c, c.density_kg_m3, c.cp_j_kgk)
        min_w = p.alarms.residual_min_load_fraction * cool.cdu_capacity_kw * 1000.0
        self.cdu_residual = np.where(ready, virtual_sensors.energy_residual(
            self.cdu_heat_w, self.cdu_expected_lag_w, max(min_w, 1e-9)), np.nan)
        seen_r = np.isfinite(self.rack_ts) & seen_c[p.rack_cdu]
        excess = virtual_sensors.gpu_temp_excess_k(self.gpu_temp_c, self.gpu_power_w,
                                                   self.cdu_supply_c[p.rack_cdu], p.gpu.r_th_k_w)
        self.rack_temp_excess_max_k = np.where(seen_r, excess.max(axis=1), np.nan)

    def snapshot(self, ts: float, integrate: bool = True) -> tuple[PlantState, list[HallState]]:
        """PlantState and HallStates at event time ``ts``; integrates energy for ERF since the last one.

        ``integrate=False`` (a heartbeat while telemetry is silent) leaves the energy integrals alone.
        """
        plant = self.plant
        g = plant.rack.gpus
        self.materialize()
        self.update_virtual_sensors(ts)
        seen_r = np.isfinite(self.rack_ts)
        reporting = seen_r & self._fresh(self.rack_ts, ts)
        it_mw = float(self.rack_power_w.sum()) / 1e6
        facility_mw = float(self.feeder_import_mw.sum())
        hydro_mw = float(self.feeder_available_mw.sum())
        q_cdu = self.cdu_heat_w
        heat_liq_mw = float(q_cdu.sum()) / 1e6
        reused_mw = float(self.exch_delivered_kw.sum()) / 1000.0
        hp_mw = float(self.exch_heat_pump_kw.sum()) / 1000.0
        seen_c = np.isfinite(self.cdu_ts)
        n_rep = int(reporting.sum())
        gpus_rep = n_rep * g - int(self.rack_missing[reporting].sum())

        # energy integrals in event time (trapezoid between snapshots), MWh
        if integrate and self.last_snapshot_ts is not None and ts > self.last_snapshot_ts:
            dt_h = (ts - self.last_snapshot_ts) / 3600.0
            self.energy_facility_mwh += 0.5 * (self._last_fac_mw + facility_mw) * dt_h
            self.energy_reused_mwh += 0.5 * (self._last_reuse_mw + reused_mw) * dt_h
            self._last_dt_h = dt_h
        elif integrate and ts == self.last_snapshot_ts:
            # the same window again, completed by telemetry that came after it was flushed: its trapezoid
            # is redone with the complete values (energy counted once, with the window's final power)
            self.energy_facility_mwh += 0.5 * (facility_mw - self._last_fac_mw) * self._last_dt_h
            self.energy_reused_mwh += 0.5 * (reused_mw - self._last_reuse_mw) * self._last_dt_h
        if integrate and (self.last_snapshot_ts is None or ts >= self.last_snapshot_ts):
            self.last_snapshot_ts = ts
            self._last_fac_mw, self._last_reuse_mw = facility_mw, reused_mw

        if integrate and np.isfinite(self.feeder_ts).all():  # the facility's energy once every meter is heard
            self.kpi_window.add(ts, facility_mw, it_mw, heat_liq_mw, reused_mw,
                                gpus_rep / plant.gpus_total if plant.gpus_total else 0.0)
        kpis = self.kpi_window.kpis()

        seen_x = np.isfinite(self.ambient_ts)
        c = self.counters
        state = PlantState(
            ts=ts,
            it_mw=it_mw,
            facility_mw=facility_mw,
            pue=physics.pue(facility_mw, it_mw),
            contract_mw=plant.site.contract_mw,
            hydro_available_mw=hydro_mw,
            headroom_mw=min(hydro_mw, plant.site.contract_mw) - facility_mw,
            gpus_total=plant.gpus_total,
            gpus_reporting=gpus_rep,
            gpu_util_mean=float(self.rack_util_sum[reporting].sum()) / gpus_rep if gpus_rep else None,
            gpu_temp_max_c=float(self.rack_temp_max_c[reporting].max()) if gpus_rep else None,
            heat_to_liquid_mw=heat_liq_mw,
            liquid_capture_ratio=heat_liq_mw / it_mw if it_mw > 0 else None,
            heat_reused_mw=reused_mw,
            heat_pump_mw=hp_mw,
            erf=physics.erf(self.energy_reused_mwh, self.energy_facility_mwh),
            coolant_return_max_c=float(self.cdu_return_c[seen_c].max()) if seen_c.any() else None,
            ambient_c=float(self.ambient_c[seen_x].mean()) if seen_x.any() else None,
            stale=self.stale(ts),
            msgs_in=c.msgs_in,
            msgs_rejected=c.msgs_rejected,
            msgs_duplicate=c.msgs_duplicate,
            seq_gaps=max(c.seq_gaps, 0),
            msgs_late=c.msgs_late,
            # forecasting (issue 5): the offtakers' demand, for heat_reusable_mw
            heat_demand_mw=float(self.exch_demand_kw.sum()) / 1000.0 if np.isfinite(self.exch_ts).any() else None,
            pue_15m=kpis.pue,
            liquid_capture_ratio_15m=kpis.liquid_capture_ratio,
            erf_15m=kpis.erf,
        )
        return state, self._halls(ts, reporting, q_cdu, seen_c)

    def _halls(self, ts: float, reporting: np.ndarray, q_cdu: np.ndarray, seen_c: np.ndarray) -> list[HallState]:
        plant = self.plant
        n_h, g = len(plant.halls), plant.rack.gpus
        rh, ch = plant.rack_hall, plant.cdu_hall
        it_w = np.bincount(rh, weights=self.rack_power_w, minlength=n_h)
        racks_total = np.bincount(rh, minlength=n_h)
        n_rep = np.bincount(rh, weights=reporting.astype(np.float64), minlength=n_h)
        n_missing = np.bincount(rh, weights=np.where(reporting, self.rack_missing, 0), minlength=n_h)
        util_sum = np.bincount(rh, weights=np.where(reporting, self.rack_util_sum, 0.0), minlength=n_h)
        temp_max = np.full(n_h, -np.inf)
        np.maximum.at(temp_max, rh[reporting], self.rack_temp_max_c[reporting])
        q_h = np.bincount(ch, weights=q_cdu, minlength=n_h)
        ret_max = np.full(n_h, -np.inf)
        np.maximum.at(ret_max, ch[seen_c], self.cdu_return_c[seen_c])
        n_c = np.bincount(ch, weights=seen_c.astype(np.float64), minlength=n_h)
        sup_sum = np.bincount(ch, weights=np.where(seen_c, self.cdu_supply_c, 0.0), minlength=n_h)
        flow = np.bincount(ch, weights=np.where(seen_c, self.cdu_flow_lps, 0.0), minlength=n_h)
        res_mag = np.where(np.isnan(self.cdu_residual), -1.0, np.abs(self.cdu_residual))
        worst_cdu = np.full(n_h, -1)
        worst_mag = np.full(n_h, -1.0)
        order = np.argsort(res_mag)  # ascending: later (larger) values win the scatter
        worst_mag[ch[order]] = res_mag[order]
        worst_cdu[ch[order]] = order
        exc = np.full(n_h, -np.inf)
        ok = np.isfinite(self.rack_temp_excess_max_k)
        np.maximum.at(exc, rh[ok], self.rack_temp_excess_max_k[ok])
        out = []
        for h, hall in enumerate(plant.halls):
            it_mw = float(it_w[h]) / 1e6
            q_mw = float(q_h[h]) / 1e6
            gpus_rep = int(n_rep[h]) * g - int(n_missing[h])
            out.append(HallState(
                ts=ts,
                hall=hall.id,
                it_mw=it_mw,
                gpus_total=int(racks_total[h]) * g,
                gpus_reporting=gpus_rep,
                gpu_util_mean=float(util_sum[h]) / gpus_rep if gpus_rep else None,
                gpu_temp_max_c=float(temp_max[h]) if np.isfinite(temp_max[h]) else None,
                heat_to_liquid_mw=q_mw,
                liquid_capture_ratio=q_mw / it_mw if it_mw > 0 else None,
                coolant_return_max_c=float(ret_max[h]) if np.isfinite(ret_max[h]) else None,
                coolant_supply_mean_c=float(sup_sum[h] / n_c[h]) if n_c[h] else None,
                flow_lps=float(flow[h]),
                energy_residual_max=float(self.cdu_residual[worst_cdu[h]]) if worst_mag[h] >= 0 else None,
                energy_residual_cdu=plant.cdu_ids[worst_cdu[h]] if worst_mag[h] >= 0 else None,
                gpu_temp_excess_max_k=float(exc[h]) if np.isfinite(exc[h]) else None,
            ))
        return out
