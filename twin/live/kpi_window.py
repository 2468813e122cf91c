"""Energy-based KPIs over the last 15 minutes of event time: interim PUE (ISO/IEC 30134-2), liquid capture
ratio and ERF (ISO/IEC 30134-6) as ratios of energies, not of one tick's powers.

Why: one tick's PUE divides the feeder meters' reading by the racks' sum, and the two are sampled at different
instants (each rack reports at its own moment within the second, or every 5 s on the embedded broker): with
training jobs swinging tens of MW, the instant ratio jumps between 0.98 and 1.23 from one second to the next,
and reads 5.5 in the first seconds, while a fifth of the racks have been heard. Over 15 minutes the energies
integrate both sides over the same interval and the skew averages out. ISO/IEC 30134-2 defines PUE as a ratio
of energies over a period; with less than a year of data its "interim PUE" is that ratio over the period used,
here 15 minutes, the interval of a utility meter's energy register.

A figure is given only when it can be trusted: the window must span at least ``min_span_fraction`` of 15 minutes,
and the plant's IT must have been heard over at least ``min_it_coverage`` of it (the GPUs reporting, as a share
of the plant's, averaged over the window by time) -- else None (null in PlantState). Pure: event time is passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from twin import physics

__all__ = ["KpiWindow", "Kpis"]

WINDOW_S = 900.0


@dataclass(frozen=True)
class Kpis:
    pue: float | None
    liquid_capture_ratio: float | None
    erf: float | None


# one interval between two states: start ts, length s, then energies MWh (facility, IT, to liquid, reused),
# and the IT coverage (GPUs reporting / GPUs in the plant) over it
_Entry = tuple[float, float, float, float, float, float, float]


class KpiWindow:
    """Trapezoid energies between consecutive states, kept for the last ``window_s`` of event time."""

    def __init__(self, window_s: float = WINDOW_S, min_it_coverage: float = 0.95,
                 min_span_fraction: float = 0.95) -> None:
        self.window_s = window_s
        self.min_it_coverage = min_it_coverage
        self.min_span_fraction = min_span_fraction
        self.entries: deque[_Entry] = deque()
        # the newest state (ts, fac, it, liq, reuse, cov) and the one before it (to redo the newest interval)
        self._last: tuple[float, float, float, float, float, float] | None = None
        self._prev: tuple[float, float, float, float, float, float] | None = None

    def add(self, ts: float, facility_mw: float, it_mw: float, liquid_mw: float, reused_mw: float,
            it_coverage: float) -> None:
        """A state at event time ``ts``. The same ``ts`` again (its window completed by late telemetry) redoes
        the last interval with the final values; an older one is ignored."""
        now = (ts, facility_mw, it_mw, liquid_mw, reused_mw, it_coverage)
        if self._last is not None and ts == self._last[0] and self.entries:
            self.entries.pop()
            prev = self._prev
        elif self._last is not None and ts < self._last[0]:
            return
        else:
            prev = self._last
        if prev is not None:
            dt_h = (ts - prev[0]) / 3600.0
            self.entries.append((prev[0], ts - prev[0], 0.5 * (prev[1] + facility_mw) * dt_h,
                                 0.5 * (prev[2] + it_mw) * dt_h, 0.5 * (prev[3] + liquid_mw) * dt_h,
                                 0.5 * (prev[4] + reused_mw) * dt_h, 0.5 * (prev[5] + it_coverage)))
        self._prev, self._last = prev, now
        while self.entries and self.entries[0][0] < ts - self.window_s:
            self.entries.popleft()

    def kpis(self) -> Kpis:
        span = sum(e[1] for e in self.entries)
        if span < self.min_span_fraction * self.window_s:
            return Kpis(None, None, None)
        fac, it, liq, reuse = (sum(e[i] for e in self.entries) for i in (2, 3, 4, 5))
        erf = physics.erf(reuse, fac)
        coverage = sum(e[1] * e[6] for e in self.entries) / span
        if coverage < self.min_it_coverage:
            return Kpis(None, None, erf)
        return Kpis(physics.pue(fac, it), liq / it if it > 0 else None, erf)

    # ---- warm restart: the window as plain lists (the snapshot's JSON metadata)

    def state(self) -> dict[str, object]:
        return {"entries": [list(e) for e in self.entries], "last": list(self._last) if self._last else None,
                "prev": list(self._prev) if self._prev else None}

    def restore(self, d: dict[str, object]) -> None:
        def floats(v: object) -> tuple[float, ...]:
            return tuple(float(x) for x in v) if isinstance(v, list) else ()

        entries = d.get("entries")
        self.entries = deque(floats(e) for e in entries) if isinstance(entries, list) else deque()  # type: ignore[misc]
        self._last = floats(d.get("last")) or None  # type: ignore[assignment]
        self._prev = floats(d.get("prev")) or None  # type: ignore[assignment]
