"""When to emit a state: event-time tick windows, so that a replay at any speed gives the same states.

Window ``k`` holds the messages with ``k * tick_s <= ts < (k + 1) * tick_s``; a state
labelled ``k * tick_s`` is emitted when the first message of a later window arrives
(before it is applied). When telemetry pauses, the service flushes the open window
after a wall-clock wait (:meth:`TickClock.flush`), so a live twin keeps publishing.
"""

from __future__ import annotations

import math

__all__ = ["TickClock"]


class TickClock:
    def __init__(self, tick_s: float) -> None:
        if tick_s <= 0:
            raise ValueError("tick_s must be > 0")
        self.tick_s = tick_s
        self.window: int | None = None
        self.dirty = False  # messages applied in the open window since its last emission
        self.last_emitted: float | None = None

    def label(self, window: int) -> float:
        return window * self.tick_s

    def on_message(self, ts: float) -> float | None:
        """Call before applying a message at ``ts``; returns a state time to emit first, or None.

        Late messages (an older window) are applied to the open window without emitting.
        """
        k = math.floor(ts / self.tick_s)
        due = None
        if self.window is None:
            self.window = k
        elif k > self.window:
            if self.dirty:
                due = self.label(self.window)
                self.last_emitted = due
            self.window = k
        self.dirty = True
        return due

    def flush(self) -> float | None:
        """The open window's label, if it holds messages not yet emitted (wall-clock idle flush)."""
        if self.window is None or not self.dirty:
            return None
        self.dirty = False
        self.last_emitted = self.label(self.window)
        return self.last_emitted
