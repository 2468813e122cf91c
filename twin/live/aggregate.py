"""Scale-out: combine hall workers' HallStates and WorkerStates with the plant-level figures into a PlantState.

Pure. Each hall worker (``twin run state --halls ...``) owns some halls' racks and CDUs
and publishes their HallStates and its WorkerState every tick; the aggregator keeps
the plant-level assets (feeders, exchangers, weather: a handful of messages) itself and
joins the three by event time. The result follows the contract's definitions exactly
as a single state service would compute them (sums, a GPU-weighted mean, maxima).
"""

from __future__ import annotations

from twin.contract import HallState, PlantState, WorkerState

__all__ = ["PLANT_LEVEL_DOMAINS", "combine"]

#: Domains the aggregator ingests itself; racks and CDUs belong to the hall workers.
PLANT_LEVEL_DOMAINS = ("hydro", "heat", "ambient")


def _max(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return max(vals) if vals else None


def combine(plant_level: PlantState, halls: list[HallState], workers: list[WorkerState]) -> PlantState:
    """The PlantState of the whole plant at ``plant_level.ts``.

    ``plant_level``: the aggregator's own state of the plant-level assets (its rack and CDU
    figures are ignored); ``halls``: one HallState per hall at that time; ``workers``: the
    WorkerStates of the workers that own those halls.
    """
    it_mw = sum(h.it_mw for h in halls)
    reporting = sum(h.gpus_reporting for h in halls)
    util = sum((h.gpu_util_mean or 0.0) * h.gpus_reporting for h in halls)
    heat = sum(h.heat_to_liquid_mw for h in halls)
    plant_stale = [a for a in plant_level.stale if a.split("/", 1)[0] in PLANT_LEVEL_DOMAINS]
    return plant_level.model_copy(update={
        "it_mw": it_mw,
        "pue": plant_level.facility_mw / it_mw if it_mw > 0 else None,
        "gpus_total": sum(h.gpus_total for h in halls),
        "gpus_reporting": reporting,
        "gpu_util_mean": util / reporting if reporting else None,
        "gpu_temp_max_c": _max([h.gpu_temp_max_c for h in halls]),
        "heat_to_liquid_mw": heat,
        "liquid_capture_ratio": heat / it_mw if it_mw > 0 else None,
        "coolant_return_max_c": _max([h.coolant_return_max_c for h in halls]),
        "stale": [a for w in workers for a in w.stale] + plant_stale,
        "msgs_in": plant_level.msgs_in + sum(w.msgs_in for w in workers),
        "msgs_rejected": plant_level.msgs_rejected + sum(w.msgs_rejected for w in workers),
        "msgs_duplicate": plant_level.msgs_duplicate + sum(w.msgs_duplicate for w in workers),
        "msgs_late": plant_level.msgs_late + sum(w.msgs_late for w in workers),
        "seq_gaps": plant_level.seq_gaps + sum(w.seq_gaps for w in workers),
        "msgs_dropped": plant_level.msgs_dropped + sum(w.msgs_dropped for w in workers),
        "alarms_active": plant_level.alarms_active + sum(w.alarms_active for w in workers),
    })
