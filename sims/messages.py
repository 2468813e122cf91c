"""Turn a :class:`SimFrame` into contract messages (topic, JSON bytes). No network here."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson

from sims.plant_sim import SimFrame
from twin.plant import Plant
from twin.topics import Topics

__all__ = ["FrameEncoder", "log_line"]

_NP = orjson.OPT_SERIALIZE_NUMPY
_TOPIC_JSON: dict[str, bytes] = {}


def log_line(t: float, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bytes:
    """A telemetry-log line for a payload that is already compact JSON (the simulator's own).

    Byte for byte what :func:`adapters.logs.telemetry_log.encode_line` writes, without parsing the
    payload again.
    """
    return (b'{"t":' + orjson.dumps(t) + b',"topic":' + _topic_json(topic) + b',"qos":' + str(qos).encode()
            + b',"retain":' + (b"true" if retain else b"false") + b',"payload":' + payload + b"}\n")


def _topic_json(topic: str) -> bytes:
    tj = _TOPIC_JSON.get(topic)
    if tj is None:
        tj = _TOPIC_JSON[topic] = orjson.dumps(topic)
    return tj


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

    def seek(self, k: int, every: int = 1) -> None:
        """Set every ``seq`` counter to what it is before step ``k`` of a run that sends the site's
        messages every step and each rack and CDU ``i`` on the steps ``k % every == i % every``
        (:meth:`step`): a pure function of ``k``, so that steps can be encoded out of order, in
        parallel processes, and give the same bytes."""
        def before(n: int) -> np.ndarray:
            return (k - np.arange(n) % every + every - 1) // every
        self.rack_seq[:] = before(self.plant.n_racks)
        self.cdu_seq[:] = before(len(self.cdu_topics))
        for topic in (*self.feeder_topics, *self.exch_topics, self.ambient_topic):
            self.other_seq[topic] = k

    def _due(self, k: int, every: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The CDUs and racks that report at step ``k``: each ``every`` steps, index ``k`` modulo ``every``
        (None: all of them)."""
        if every == 1:
            return None, None
        cdus, racks = np.arange(len(self.cdu_topics)), np.arange(self.plant.n_racks)
        return cdus[cdus % every == k % every], racks[racks % every == k % every]

    def step(self, f: SimFrame, k: int, every: int = 1) -> list[tuple[str, bytes]]:
        """Step ``k``'s messages: the site's (feeders, exchangers, weather) every step; with ``every``
        > 1 only the CDUs and racks whose index is ``k`` modulo ``every``."""
        cdus, racks = self._due(k, every)
        return [*self.site(f), *self.cdus(f, cdus), *self.racks(f, racks)]

    def step_lines(self, f: SimFrame, k: int, every: int = 1) -> list[bytes]:
        """:meth:`step` as telemetry-log lines (``t`` = the frame's ``ts``, QoS 1, not retained)."""
        cdus, racks = self._due(k, every)
        head = b'{"t":' + orjson.dumps(f.ts) + b',"topic":'
        return [head + _topic_json(t) + b',"qos":1,"retain":false,"payload":' + p + b"}\n"
                for t, p in (*self.site(f), *self.cdus(f, cdus))] + self.rack_lines(f, racks)

    def _seq(self, topic: str) -> int:
        s = self.other_seq.get(topic, 0)
        self.other_seq[topic] = s + 1
        return s

    def racks(self, f: SimFrame, which: np.ndarray | None = None) -> Iterator[tuple[str, bytes]]:
        for topic, payload in self._rack_payloads(f, which):
            yield topic, orjson.dumps(payload, option=_NP)

    def rack_lines(self, f: SimFrame, which: np.ndarray | None = None) -> list[bytes]:
        """:meth:`racks` as telemetry-log lines (``t`` = the frame's ``ts``, QoS 1, not retained):
        one ``orjson.dumps`` a line, the same bytes as :func:`log_line` of each message."""
        return [orjson.dumps({"t": f.ts, "topic": topic, "qos": 1, "retain": False, "payload": payload},
                             option=_NP) + b"\n" for topic, payload in self._rack_payloads(f, which)]

    def _rack_payloads(self, f: SimFrame, which: np.ndarray | None) -> list[tuple[str, dict[str, object]]]:
        """Each reporting rack's topic and message (GPU figures as numpy rows, as orjson writes them)."""
        idx = np.arange(self.plant.n_racks) if which is None else which
        power = np.round(f.gpu_power_w[idx], 1)
        util = np.round(f.gpu_util[idx], 2)  # DCGM reports whole percent
        temp = np.round(f.gpu_temp_c[idx], 1)
        aux = np.round(f.aux_power_w[idx], 1).astype(np.float64).tolist()
        seqs = self.rack_seq[idx].tolist()
        self.rack_seq[idx] += 1
        return [(self.rack_topics[i], {"ts": f.ts, "seq": seqs[k], "source": self.source, "gpu_power_w": power[k],
                                       "gpu_util": util[k], "gpu_temp_c": temp[k], "aux_power_w": aux[k]})
                for k, i in enumerate(idx.tolist())]

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
