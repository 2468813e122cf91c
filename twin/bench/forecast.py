"""CPU time of the forecaster to issue every product for every quantity, per minute of plant time.

Budget: 1 s of CPU per minute of plant time (so it keeps up at 60x replay). The forecaster
is warmed with ``--warm-days`` of simulated phase1 history (900 s steps, enough for its fits),
then fed PlantState / HallState at a 1 s tick for ``--minutes`` of plant time: intraday
issued every minute, day-ahead every quarter hour (physics refits each quarter hour, and one
Holt-Winters optimisation, which runs every 6 h live, in the first measured quarter hour),
all models, Forecast messages built. Baseline in the same run: the same stream through a
forecaster with the baselines only (persistence and seasonal naive).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from twin.commands.common import in_unit
from twin.contract import HallState, PlantState
from twin.forecast.engine import Forecaster
from twin.forecast.states import simulate_states

__all__ = ["register", "run"]

BUDGET_S_PER_MIN = 1.0


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=in_unit("m"), default=60,
                   help="plant time measured at a 1 s tick: minutes or 2h (default 60)")
    p.add_argument("--warm-days", type=in_unit("d"), default=3.0,
                   help="simulated history first: days or 36h (default 3)")


def _feed(fc: Forecaster, warm: list[tuple[PlantState, list[HallState]]],
          tick: list[tuple[PlantState, list[HallState]]]) -> tuple[float, int, float]:
    for s, h in warm:
        fc.on_state(s, h, emit=False)
    fc.hw.fitted_ts = -float("inf")  # the first quarter hour measured refits Holt-Winters (every 6 h live)
    n = 0
    worst = 0.0
    t0 = t_min = time.process_time()
    for k, (s, h) in enumerate(tick, 1):
        n += len(fc.on_state(s, h))
        if k % 60 == 0:
            now = time.process_time()
            worst, t_min = max(worst, now - t_min), now
    return time.process_time() - t0, n, worst


def run(args: argparse.Namespace) -> dict[str, Any]:
    warm = list(simulate_states("phase1", args.warm_days * 86400.0, 900.0))
    last, halls = warm[-1]
    t_end = last.ts
    tick = []
    for k in range(1, round(args.minutes * 60) + 1):  # the last state held, tick by tick, with a slow drift
        ts = t_end + k
        tick.append((last.model_copy(update={"ts": ts, "it_mw": last.it_mw + 0.001 * k,
                                            "facility_mw": last.facility_mw + 0.001 * k}),
                     [h.model_copy(update={"ts": ts}) for h in halls]))
    cpu_full, n_full, worst = _feed(Forecaster(), warm, tick)
    cpu_base, n_base, _ = _feed(Forecaster(main=False), warm, tick)
    per_min = cpu_full / args.minutes
    return {
        "plant_minutes": args.minutes,
        "tick_s": 1.0,
        "forecasts_issued": n_full,
        "cpu_s": round(cpu_full, 3),
        "cpu_s_per_plant_minute": round(per_min, 4),
        "budget_s_per_plant_minute": BUDGET_S_PER_MIN,
        "ratio_to_budget": round(per_min / BUDGET_S_PER_MIN, 4),
        "worst_plant_minute_cpu_s": round(worst, 4),
        "worst_minute_ratio_to_budget": round(worst / BUDGET_S_PER_MIN, 4),
        "max_replay_speed": round(60.0 / per_min, 1) if per_min > 0 else None,
        "baseline_forecasts_issued": n_base,
        "baseline_cpu_s_per_plant_minute": round(cpu_base / args.minutes, 4),
        "ratio_to_baseline": round(cpu_full / cpu_base, 2) if cpu_base > 0 else None,
    }
