"""Turn a :class:`SimFrame` into contract messages (topic, JSON bytes). No network here."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson

from sims.plant_sim import SimFrame
from twin.plant import Plant
from twin.topics import Topics

__all__ = ["FrameEncoder"]

_NP = orjson.OPT_SERIALIZE_NUMPY


class FrameEncoder:
    """Encodes frames for one plant; keeps a ``seq`` per topic (one stream per topic)."""

    def __init__(self, plant: Plant, source: str = "sim") -> None:
        self.plant = plant
        self.source = source
        t = Topics(plant.site.id)
        self.rack_topics = [t.gpu(p_hall, r) for p_hall, r in
                            ((plant.hall_ids[h], r) for h, r in zip(plant.rack_hall, plant.rack_ids, strict=True))]
        self.cdu_topics = [t.coolant(c) for c in plant.cdu_ids]
        self.feeder_topics = [t.hydro(f) for f in plant.feeder_ids]
        self.exch_topics = [t.heat(x) for x in plant.exchanger_ids]
        self.ambient_topic = t.ambient(plant.weather.station)
        self.rack_seq = np.zeros(plant.n_racks, dtype=np.int64)
        self.cdu_seq = np.zeros(len(plant.cdu_ids), dtype=np.int64)
        self.other_seq: dict[str, int] = {}

    def _seq(self, topic: str) -> int:
        s = self.other_seq.get(topic, 0)
        self.other_seq[topic] = s + 1
        return s

    def racks(self, f: SimFrame, which: np.ndarray | None = None) -> Iterator[tuple[str, bytes]]:
        idx = np.arange(self.plant.n_racks) if which is None else which
        power = np.round(f.gpu_power_w[idx], 1)
        util = np.round(f.gpu_util[idx], 2)  # DCGM reports whole percent
        temp = np.round(f.gpu_temp_c[idx], 1)
        aux = np.round(f.aux_power_w[idx], 1)
        seqs = self.rack_seq[idx]
        self.rack_seq[idx] += 1
        for k, i in enumerate(idx.tolist()):
            yield self.rack_topics[i], orjson.dumps({
                "ts": f.ts, "seq": int(seqs[k]), "source": self.source,
                "gpu_power_w": power[k], "gpu_util": util[k], "gpu_temp_c": temp[k],
                "aux_power_w": float(aux[k]),
            }, option=_NP)

    def cdus(self, f: SimFrame, which: np.ndarray | None = None) -> Iterator[tuple[str, bytes]]:
        idx = np.arange(len(self.cdu_topics)) if which is None else which
        seqs = self.cdu_seq[idx]
        self.cdu_seq[idx] += 1
        sup, ret = np.round(f.cdu_supply_c, 3).tolist(), np.round(f.cdu_return_c, 3).tolist()
        flow, pump = np.round(f.cdu_flow_lps, 3).tolist(), np.round(f.cdu_pump_kw, 3).tolist()
        fws = f.cdu_fws_supply_c is not None and f.cdu_fws_return_c is not None
        fs = np.round(f.cdu_fws_supply_c, 3).tolist() if f.cdu_fws_supply_c is not None else []
        fr = np.round(f.cdu_fws_return_c, 3).tolist() if f.cdu_fws_return_c is not None else []
        for k, i in enumerate(idx.tolist()):
            msg = {
                "ts": f.ts, "seq": int(seqs[k]), "source": self.source,
                "supply_c": sup[i], "return_c": ret[i], "flow_lps": flow[i], "pump_kw": pump[i],
            }
            if fws:
                msg["fws_supply_c"], msg["fws_return_c"] = fs[i], fr[i]
            yield self.cdu_topics[i], orjson.dumps(msg)

    def site(self, f: SimFrame) -> Iterator[tuple[str, bytes]]:
        """Feeders, exchangers and the weather station."""
        for i, topic in enumerate(self.feeder_topics):
            yield topic, orjson.dumps({
                "ts": f.ts, "seq": self._seq(topic), "source": self.source,
                "available_mw": round(float(f.feeder_available_mw[i]), 4),
                "import_mw": round(float(f.feeder_import_mw[i]), 4),
                "frequency_hz": round(f.frequency_hz, 4), "price_eur_mwh": round(f.price_eur_mwh, 2),
                "reservoir_pct": round(f.reservoir_pct, 2), "curtailed": f.curtailed,
            })
        for i, topic in enumerate(self.exch_topics):
            yield topic, orjson.dumps({
                "ts": f.ts, "seq": self._seq(topic), "source": self.source,
                "delivered_kw": round(float(f.exch_delivered_kw[i]), 2),
                "demand_kw": round(float(f.exch_demand_kw[i]), 2),
                "supply_c": float(f.exch_supply_c[i]), "return_c": float(f.exch_return_c[i]),
                "heat_pump_kw": round(float(f.exch_heat_pump_kw[i]), 2),
            })
        amb: dict[str, object] = {"ts": f.ts, "seq": self._seq(self.ambient_topic), "source": self.source,
                                  "temp_c": round(f.ambient_c, 2)}
        if f.humidity_pct is not None:
            amb["humidity_pct"] = round(f.humidity_pct, 1)
        if f.wind_ms is not None:
            amb["wind_ms"] = round(f.wind_ms, 2)
        yield self.ambient_topic, orjson.dumps(amb)

    def all(self, f: SimFrame) -> Iterator[tuple[str, bytes]]:
        """Every asset's message for one frame: site (feeders, exchangers, weather), CDUs, racks."""
        yield from self.site(f)
        yield from self.cdus(f)
        yield from self.racks(f)
