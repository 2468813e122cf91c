"""The plant's alarm rules, built from the plant config and evaluated on the state every tick.

GPU over temperature and throttling (per rack), coolant return high, flow low and
energy-balance residual (per CDU), headroom low against contract and hydro
availability (plant), frequency out of the normal band and curtailment (per feeder),
and stale assets (heard from once, then silent past ``stale_after_s``: per feeder, exchanger and
weather station, and as a count per hall for racks and for CDUs).
"""

from __future__ import annotations

import numpy as np

from twin.contract import Alarm, PlantState
from twin.live.alarms import AlarmBank, AlarmRule, Severity
from twin.live.state import StateModel
from twin.plant import Plant

__all__ = ["PlantAlarms"]


class PlantAlarms:
    def __init__(self, plant: Plant) -> None:
        a, p = plant.alarms, plant
        db = a.debounce_s

        def rule(kind: str, severity: Severity, set_: float, clear: float, above: bool, what: str,
                 unit: str = "", debounce: float | None = None) -> AlarmRule:
            return AlarmRule(kind, severity, set_, clear, above, db if debounce is None else debounce, what, unit,
                             a.clear_debounce_s if debounce is None else debounce)

        racks = [f"gpu/{r}" for r in p.rack_ids]
        cdus = [f"coolant/{c}" for c in p.cdu_ids]
        feeders = [f"hydro/{f}" for f in p.feeder_ids]
        exchangers = [f"heat/{x}" for x in p.exchanger_ids]
        ambient = [f"ambient/{p.weather.station}"]
        self.plant = plant
        self.banks: dict[str, AlarmBank] = {
            "gpu_temp_high": AlarmBank(rule("gpu_temp_high", "warning", a.gpu_temp_high_c, a.gpu_temp_clear_c,
                                                 True, "GPU over temperature", " C"), racks),
            "gpu_throttle": AlarmBank(rule("gpu_throttle", "critical", p.gpu.throttle_c,
                                                min(a.gpu_temp_high_c, p.gpu.throttle_c), True,
                                                "GPU at its throttling temperature", " C"), racks),
            "coolant_return_high": AlarmBank(rule(
                "coolant_return_high", "warning", a.coolant_return_high_c, a.coolant_return_clear_c, True,
                "coolant return high", " C"), cdus),
            "flow_low": AlarmBank(rule("flow_low", "critical", a.flow_low_fraction, a.flow_clear_fraction,
                                            False, "loop flow low (fraction of what the load needs)"), cdus),
            "energy_residual": AlarmBank(rule(
                "energy_residual", "warning", a.residual_high_fraction, a.residual_clear_fraction, True,
                "energy-balance residual |measured - expected| / expected heat", debounce=a.residual_debounce_s),
                cdus),
            "headroom_low": AlarmBank(rule("headroom_low", "critical", a.headroom_low_mw, a.headroom_clear_mw,
                                                False, "headroom against contract and hydro availability",
                                                " MW"), [f"plant/{p.site.id}"]),
            "frequency_low": AlarmBank(rule(
                "frequency_low", "warning", a.frequency_low_hz, a.frequency_low_hz + a.frequency_clear_margin_hz,
                False, "grid frequency below the normal band", " Hz"), feeders),
            "frequency_high": AlarmBank(rule(
                "frequency_high", "warning", a.frequency_high_hz, a.frequency_high_hz - a.frequency_clear_margin_hz,
                True, "grid frequency above the normal band", " Hz"), feeders),
            "curtailed": AlarmBank(rule("curtailed", "warning", 0.5, 0.5, True,
                                        "hydro supply curtailed (1 = curtailed)", debounce=0.0), feeders),
        }
        stale_after = p.stale_after_s
        # a few site assets: one alarm each; racks and CDUs: one alarm per hall with the count, so that a
        # hall switch failing raises 2 alarms, not 200 (alarm floods, ISA-18.2)
        self.stale_banks = [
            AlarmBank(rule(f"stale_{dom}", "warning", stale_after, stale_after, True,
                           "asset silent (seconds since its last message)", " s", debounce=0.0), names)
            for dom, names in (("hydro", feeders), ("heat", exchangers), ("ambient", ambient))
        ]
        halls = [f"hall/{h}" for h in p.hall_ids]
        self.stale_hall_banks = [
            AlarmBank(rule(f"stale_{dom}", "warning", 0.5, 0.5, True,
                           f"{what} silent for longer than {stale_after:g} s (count)", debounce=0.0), halls)
            for dom, what in (("racks", "racks"), ("cdus", "CDUs"))
        ]

    def evaluate(self, m: StateModel, s: PlantState) -> list[Alarm]:
        """Transitions at this state's time, after :meth:`StateModel.snapshot` refreshed the virtual sensors."""
        ts = s.ts
        fresh_r = np.isfinite(m.rack_ts) & (m.rack_ts >= ts - self.plant.stale_after_s)
        fresh_c = np.isfinite(m.cdu_ts) & (m.cdu_ts >= ts - self.plant.stale_after_s)
        fresh_f = np.isfinite(m.feeder_ts)
        b = self.banks
        with np.errstate(divide="ignore", invalid="ignore"):
            flow_ratio = m.cdu_flow_lps / m.cdu_expected_flow_lps
        loaded = fresh_c & np.isfinite(m.cdu_residual)
        out = b["gpu_temp_high"].evaluate(m.rack_temp_max_c, fresh_r, ts)
        out += b["gpu_throttle"].evaluate(m.rack_temp_max_c, fresh_r, ts)
        out += b["coolant_return_high"].evaluate(m.cdu_return_c, fresh_c, ts)
        out += b["flow_low"].evaluate(flow_ratio, loaded, ts)
        out += b["energy_residual"].evaluate(np.abs(m.cdu_residual), loaded, ts)
        out += b["headroom_low"].evaluate(np.array([s.headroom_mw]), np.array([fresh_f.any()]), ts)
        out += b["frequency_low"].evaluate(m.feeder_frequency_hz, fresh_f, ts)
        out += b["frequency_high"].evaluate(m.feeder_frequency_hz, fresh_f, ts)
        out += b["curtailed"].evaluate(m.feeder_curtailed.astype(np.float64), fresh_f, ts)
        n_h = len(self.plant.hall_ids)
        for bank, last, hall_of in zip(self.stale_hall_banks, (m.rack_ts, m.cdu_ts),
                                       (self.plant.rack_hall, self.plant.cdu_hall), strict=True):
            silent = np.isfinite(last) & (last < ts - self.plant.stale_after_s)
            count = np.bincount(hall_of, weights=silent.astype(np.float64), minlength=n_h)
            out += bank.evaluate(count, np.ones(n_h, dtype=bool), ts)
        for bank, last in zip(self.stale_banks, (m.feeder_ts, m.exch_ts, m.ambient_ts), strict=True):
            seen = np.isfinite(last)
            out += bank.evaluate(np.where(seen, ts - last, 0.0), seen, ts)
        return out

    def all_banks(self) -> list[AlarmBank]:
        return [*self.banks.values(), *self.stale_banks, *self.stale_hall_banks]

    def active_count(self) -> int:
        return int(sum(int(bank.active.sum()) for bank in self.all_banks()))
