"""Warm restart: the state model and alarm state saved to one ``.npz`` file and restored at start.

Written atomically (a temporary file, fsync, rename), so a crash during a save leaves
the previous snapshot intact. A snapshot of another plant (different site or asset
ids) is refused with a reason rather than loaded into the wrong arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from twin.live.plant_alarms import PlantAlarms
from twin.live.state import StateModel
from twin.plant import Plant

__all__ = ["load_snapshot", "plant_fingerprint", "save_snapshot"]

_ARRAYS = (
    "rack_ts", "rack_power_w", "rack_util_sum", "rack_temp_max_c", "rack_missing",
    "gpu_power_w", "gpu_util", "gpu_temp_c",
    "cdu_ts", "cdu_supply_c", "cdu_return_c", "cdu_flow_lps", "cdu_pump_kw",
    "feeder_ts", "feeder_available_mw", "feeder_import_mw", "feeder_frequency_hz", "feeder_price_eur_mwh",
    "feeder_curtailed", "exch_ts", "exch_delivered_kw", "exch_demand_kw", "exch_heat_pump_kw",
    "ambient_ts", "ambient_c",
)
# Not saved: the virtual sensors' expected return temperature per CDU. After a restart it starts again from the
# measured return (the loop as it is), where a saved one would be as old as the outage (an older snapshot's
# `cdu_expected_lag_w` is ignored for the same reason).


def plant_fingerprint(plant: Plant) -> str:
    ids = [plant.site.id, str(plant.rack.gpus), *plant.rack_ids, *plant.cdu_ids, *plant.feeder_ids,
           *plant.exchanger_ids, plant.weather.station]
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def save_snapshot(path: Path, model: StateModel, alarms: PlantAlarms | None = None,
                  extra: dict[str, object] | None = None) -> None:
    """``extra``: the service's own metadata (its journal segment, tick clock), returned by :func:`load_snapshot`."""
    model.materialize()
    c = model.counters
    meta = {
        "fingerprint": plant_fingerprint(model.plant),
        "counters": [c.msgs_in, c.msgs_rejected, c.msgs_duplicate, c.msgs_late, c.seq_gaps],
        "times": [model.start_ts, model.now_ts, model.last_snapshot_ts],
        "energy": [model.energy_facility_mwh, model.energy_reused_mwh, model._last_fac_mw, model._last_reuse_mw,
                   model._last_dt_h],
        "seq": [[k[0], k[1], k[2], *v] for k, v in model.seq._streams.items()],
        "kpi_window": model.kpi_window.state(),
        **(extra or {}),
    }
    arrays: dict[str, np.ndarray] = {name: getattr(model, name) for name in _ARRAYS}
    if alarms is not None:
        for b in alarms.all_banks():
            for key, arr in b.state_arrays().items():
                arrays[f"alarm__{b.rule.kind}__{key}"] = arr
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    with open(tmp, "wb") as fh:
        np.savez(fh, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)  # type: ignore[arg-type]
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_snapshot(path: Path, model: StateModel, alarms: PlantAlarms | None = None,
                  meta_out: dict[str, object] | None = None) -> str | None:
    """Restore into a fresh model; return None on success, else why the snapshot was not used.

    ``meta_out`` receives the snapshot's metadata (with what ``extra`` held when it was saved).
    """
    if not path.exists():
        return f"no snapshot at {path}"
    try:
        with np.load(path) as z:
            meta = json.loads(bytes(z["__meta__"]).decode())
            if meta["fingerprint"] != plant_fingerprint(model.plant):
                return f"snapshot {path} is of another plant (site or asset ids differ); starting empty"
            for name in _ARRAYS:
                getattr(model, name)[...] = z[name]
            if alarms is not None:
                for b in alarms.all_banks():
                    keys = {k: f"alarm__{b.rule.kind}__{k}" for k in ("active", "pending_since", "value")}
                    if all(v in z for v in keys.values()):
                        b.restore({k: z[v] for k, v in keys.items()})
    except (OSError, ValueError, KeyError) as e:
        return f"snapshot {path} could not be read ({e}); starting empty"
    if meta_out is not None:
        meta_out.update(meta)
    c = model.counters
    c.msgs_in, c.msgs_rejected, c.msgs_duplicate, c.msgs_late, c.seq_gaps = meta["counters"]
    model.start_ts, model.now_ts, model.last_snapshot_ts = meta["times"]
    (model.energy_facility_mwh, model.energy_reused_mwh, model._last_fac_mw,
     model._last_reuse_mw) = meta["energy"][:4]
    model._last_dt_h = meta["energy"][4] if len(meta["energy"]) > 4 else 0.0
    if "kpi_window" in meta:  # snapshots before it: the 15-minute KPIs start again
        model.kpi_window.restore(meta["kpi_window"])
    # a stream is [domain, index, source, last, seen, first, newest ts]; snapshots before the ts have 6 items
    model.seq._streams = {(s[0], int(s[1]), s[2]): (int(s[3]), int(s[4]), int(s[5]),
                                                   float(s[6]) if len(s) > 6 else -np.inf) for s in meta["seq"]}
    return None
