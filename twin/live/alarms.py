"""Alarms with hysteresis and debounce, evaluated vectorised over all assets every tick.

A rule raises when its value crosses ``set`` and has stayed past it for ``debounce_s``
of event time (on-delay); it clears when the value is back past ``clear`` (the
hysteresis band) for ``clear_debounce_s`` (off-delay), so a swinging value does not
make an alarm flap. Only the transitions come out, as contract :class:`Alarm` messages;
the Python loop runs over those, never over all assets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from twin.contract import Alarm

__all__ = ["AlarmBank", "AlarmRule"]

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class AlarmRule:
    kind: str  # e.g. gpu_temp_high; the alarm id is "{kind}-{asset id}"
    severity: Severity
    set: float
    clear: float
    above: bool = True  # raise when the value is above `set` (else below)
    debounce_s: float = 5.0  # on-delay: the condition must hold this long before the alarm raises
    what: str = ""  # e.g. "GPU over temperature"
    unit: str = ""
    clear_debounce_s: float | None = None  # off-delay (default: debounce_s): back in range this long to clear

    def __post_init__(self) -> None:
        if (self.above and not self.clear <= self.set) or (not self.above and not self.clear >= self.set):
            raise ValueError(f"{self.kind}: the clear threshold must lie on the safe side of the set threshold")


class AlarmBank:
    """The alarm state of one rule over a fixed list of assets."""

    def __init__(self, rule: AlarmRule, assets: list[str], asset_ids: list[str] | None = None) -> None:
        self.rule = rule
        self.assets = assets  # "domain/asset", for the Alarm's asset field
        self.ids = [f"{rule.kind}-{a}" for a in (asset_ids or [a.split("/", 1)[-1] for a in assets])]
        n = len(assets)
        self.active = np.zeros(n, dtype=bool)
        self.pending_since = np.full(n, np.nan)  # condition towards the other state held since
        self.value = np.full(n, np.nan)

    def evaluate(self, values: np.ndarray, valid: np.ndarray, ts: float) -> list[Alarm]:
        """Update with this tick's values (``valid`` False: no evidence, no change); return transitions."""
        r = self.rule
        v = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            beyond_set = valid & ((v > r.set) if r.above else (v < r.set))
            inside_clear = valid & ((v < r.clear) if r.above else (v > r.clear))
        towards = np.where(self.active, inside_clear, beyond_set)
        keep = ~towards & valid  # evidence for the current state: the debounce restarts
        self.pending_since[keep] = np.nan
        start = towards & np.isnan(self.pending_since)
        self.pending_since[start] = ts
        delay = np.where(self.active, r.debounce_s if r.clear_debounce_s is None else r.clear_debounce_s,
                         r.debounce_s)
        flip = towards & (ts - self.pending_since >= delay)
        self.value = np.where(valid, v, self.value)
        out: list[Alarm] = []
        for i in np.flatnonzero(flip):
            self.active[i] = not self.active[i]
            self.pending_since[i] = np.nan
            out.append(self._alarm(int(i), ts))
        return out

    def _alarm(self, i: int, ts: float) -> Alarm:
        r = self.rule
        active = bool(self.active[i])
        value = float(self.value[i])
        word = "above" if r.above else "below"
        threshold = r.set if active else r.clear
        state = "" if active else "cleared: "
        message = f"{state}{r.what} at {self.assets[i]}: {value:.3g}{r.unit} {word if active else 'back past'} " \
                  f"{threshold:.3g}{r.unit}"
        return Alarm(alarm_id=self.ids[i], severity=r.severity, active=active, ts=ts, message=message,
                     asset=self.assets[i], value=value, threshold=threshold)

    def active_alarms(self, ts: float) -> list[Alarm]:
        return [self._alarm(int(i), ts) for i in np.flatnonzero(self.active)]

    # snapshot support
    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"active": self.active, "pending_since": self.pending_since, "value": self.value}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        if arrays["active"].shape == self.active.shape:
            self.active[:] = arrays["active"]
            self.pending_since[:] = arrays["pending_since"]
            self.value[:] = arrays["value"]
