"""Fixed-step history of the plant state in event time: the forecaster's memory.

Each PlantState (and the latest HallStates) gives one sample of :data:`FEATURES`; a
:class:`History` averages the samples that fall in each step ``[k*step, (k+1)*step)``
and closes a step when a sample of a later step arrives. Steps without a sample are
filled with the last closed value (forward fill), so the series has no holes. Pure:
no clock, no network.
"""

from __future__ import annotations

import math

import numpy as np

from twin.contract import QUANTITIES, HallState, PlantState

__all__ = ["FEATURES", "History", "quantities_of", "sample_of"]

#: What is kept per step (MW, C); NaN where the state had no value.
FEATURES: tuple[str, ...] = ("it_mw", "facility_mw", "hydro_available_mw", "contract_mw", "heat_to_liquid_mw",
                             "heat_demand_mw", "coolant_return_max_c", "coolant_supply_c", "ambient_c")
F = {name: i for i, name in enumerate(FEATURES)}


def _num(v: float | None) -> float:
    return math.nan if v is None else float(v)


def sample_of(state: PlantState, halls: list[HallState] | None = None) -> np.ndarray:
    """One sample of :data:`FEATURES` from a PlantState and its HallStates (coolant supply: mean over halls).

    Without ``heat_demand_mw`` (logs older than the field) the heat reused stands in for the demand.
    """
    sup = [h.coolant_supply_mean_c for h in halls or [] if h.coolant_supply_mean_c is not None]
    demand = state.heat_demand_mw if state.heat_demand_mw is not None else state.heat_reused_mw
    return np.array([state.it_mw, state.facility_mw, state.hydro_available_mw, state.contract_mw,
                     state.heat_to_liquid_mw, demand, _num(state.coolant_return_max_c),
                     sum(sup) / len(sup) if sup else math.nan, _num(state.ambient_c)])


def quantities_of(x: np.ndarray) -> np.ndarray:
    """The contract's forecast quantities (:data:`twin.contract.QUANTITIES`) from feature rows ``(..., F)``.

    - ``headroom_mw`` = min(hydro_available_mw, contract_mw) - facility_mw (contract definition);
    - ``heat_reusable_mw`` = min(offtaker demand, heat to liquid): heat the offtakers could take
      (plant.md physics (5): Q_reuse = min(demand, heat available at a usable temperature)).
    """
    out = np.empty((*x.shape[:-1], len(QUANTITIES)))
    out[..., 0] = x[..., F["facility_mw"]]
    out[..., 1] = x[..., F["it_mw"]]
    out[..., 2] = np.minimum(x[..., F["hydro_available_mw"]], x[..., F["contract_mw"]]) - x[..., F["facility_mw"]]
    out[..., 3] = np.minimum(x[..., F["heat_demand_mw"]], x[..., F["heat_to_liquid_mw"]])
    out[..., 4] = x[..., F["coolant_return_max_c"]]
    return out


class History:
    """Step means of :data:`FEATURES` in a ring of ``capacity`` steps of ``step_s`` seconds."""

    def __init__(self, step_s: float, capacity: int) -> None:
        self.step_s = float(step_s)
        self.capacity = int(capacity)
        self._ring = np.full((self.capacity, len(FEATURES)), np.nan)
        self.count = 0  # closed steps held (at most capacity)
        self.last_bin: int | None = None  # the newest closed step
        self._open: int | None = None
        self._sum = np.zeros(len(FEATURES))
        self._n = np.zeros(len(FEATURES))

    def add(self, ts: float, x: np.ndarray) -> int | None:
        """Add one sample at event time ``ts``; return the newest step closed by it (None if none).

        A sample older than the open step is dropped (late).
        """
        b = math.floor(ts / self.step_s)
        closed = None
        if self._open is None:
            self._open = b
        elif b < self._open:
            return None
        elif b > self._open:
            self._close(self._open, b)
            closed = b - 1
            self._open = b
        ok = np.isfinite(x)
        self._sum[ok] += x[ok]
        self._n[ok] += 1
        return closed

    def _close(self, b: int, upto: int) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            v = self._sum / self._n
        if self.count:
            prev = self._ring[self.last_bin % self.capacity]  # type: ignore[operator]
            v = np.where(self._n > 0, v, prev)
        self._sum[:] = 0.0
        self._n[:] = 0.0
        for k in range(b, min(upto, b + self.capacity)):  # the step, and forward fill of silent steps
            self._ring[k % self.capacity] = v
        self.count = min(self.count + (upto - b), self.capacity)
        self.last_bin = upto - 1

    def last(self, n: int) -> np.ndarray:
        """The newest ``n`` closed steps (fewer if not held), oldest first, shape (n, F)."""
        n = min(n, self.count)
        if n == 0 or self.last_bin is None:
            return np.empty((0, len(FEATURES)))
        idx = np.arange(self.last_bin - n + 1, self.last_bin + 1) % self.capacity
        return self._ring[idx]

    def end_ts(self, b: int) -> float:
        """Event time at the end of step ``b`` (a forecast point's ``ts``: the mean over the step ending there)."""
        return (b + 1) * self.step_s
