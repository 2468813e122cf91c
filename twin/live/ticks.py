"""When to emit a state: event-time tick windows, so that a replay at any speed gives the same states.

Window ``k`` holds the messages with ``k * tick_s <= ts < (k + 1) * tick_s``; a state
labelled ``k * tick_s`` is emitted when the first message of a later window arrives
(before it is applied). When telemetry pauses, the service flushes the open window
after a wall-clock wait (:meth:`TickClock.flush`), so a live twin keeps publishing.
"""

from __future__ import annotations

import math
from typing import Generic, TypeVar

__all__ = ["OrderedTickClock", "TickClock"]

T = TypeVar("T")


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


class OrderedTickClock(TickClock, Generic[T]):
    """A :class:`TickClock` that waits for every per-tick source before it closes a window.

    MQTT orders messages per topic, not across topics: a broker that keeps one queue per
    subscription (NATS' MQTT gateway: a JetStream consumer each) sends a backlog subscription
    by subscription, so after a reconnect the hydro meters' next ten seconds can arrive before
    the racks' current one. A window closed on the first later message would miss most of its
    telemetry. Here a window closes once every *per-tick kind* (a kind that reported in the
    window and in the one before it) has sent something later; messages of later windows wait,
    in arrival order, until then (a per-kind watermark, as in Flink; kinds that report less
    than once a tick are never waited for). A wait ends anyway after ``idle_s`` of receive time
    (the kind stopped: it is not waited for again until it reports in two windows in a row), or
    when the held messages reach ``max_skew`` windows ahead or ``max_held`` in number; ``forced``
    counts the waits that ended so.

    :meth:`admit` returns, in order, what to do: a ``float`` is a state label to emit (with the
    items applied so far), anything else an item to apply now.
    """

    def __init__(self, tick_s: float, idle_s: float = 1.5, max_skew: int = 60, max_held: int = 20_000) -> None:
        super().__init__(tick_s)
        self.idle_s, self.max_skew, self.max_held = idle_s, max_skew, max_held
        self.kinds: dict[str, list[int]] = {}  # kind -> [newest window, the newest before it]
        self.held: list[tuple[int, T]] = []
        self.forced = 0
        self._wait_rx = 0.0  # receive time at which the current wait began
        # receive time until which no window closes (within max_skew and max_held): after a resumed session,
        # while the broker may still resend what it had delivered to the lost connection (see :meth:`hold`)
        self.hold_until = 0.0

    def admit(self, ts: float, kind: str, item: T, received_ts: float) -> list[float | T]:
        k = math.floor(ts / self.tick_s)
        w = self.kinds.get(kind)
        if w is None:
            self.kinds[kind] = [k, k - 2]
        elif k > w[0]:
            w[1], w[0] = w[0], k
        if self.window is None:
            self.window = k
        if k <= self.window:  # the open window, or a late message: applied now
            self.dirty = True
            return [item]
        if not self.held:
            self._wait_rx = received_ts
        self.held.append((k, item))
        return self._release(received_ts)

    def hold(self, until: float) -> None:
        """Close no window before receive time ``until`` (bounded by ``max_skew`` and ``max_held``).

        A broker may resend a lost connection's unacknowledged messages only after newer ones: NATS'
        MQTT gateway after its ``ack_wait`` (30 s by default). Held open, their windows still get them,
        and nothing is applied out of order; the states come that much later after a failover.
        """
        self.hold_until = max(self.hold_until, until)

    def holding(self, now: float) -> bool:
        return now < self.hold_until

    def _awaited(self) -> bool:
        """A per-tick kind has not yet passed the open window."""
        win = self.window
        return win is not None and any(n == win and b == win - 1 for n, b in self.kinds.values())

    def _release(self, now: float | None) -> list[float | T]:
        out: list[float | T] = []
        held = self.held
        while held and self.window is not None:
            if (now is not None and now < self.hold_until and held[-1][0] - self.window <= self.max_skew
                    and len(held) <= self.max_held):
                break
            if now is not None and self._awaited():
                if (now - self._wait_rx <= self.idle_s and held[-1][0] - self.window <= self.max_skew
                        and len(held) <= self.max_held):
                    break
                self.forced += 1
            if self.dirty:
                label = self.label(self.window)
                self.last_emitted = label
                out.append(label)
            nxt = min(k for k, _ in held)
            self.window, self.dirty = nxt, True
            out.extend(item for k, item in held if k == nxt)
            self.held = held = [(k, item) for k, item in held if k != nxt]
            if now is not None:
                self._wait_rx = now  # a wait for the next window starts now
        return out

    def drain(self) -> list[float | T]:
        """Telemetry silent (wall-clock idle): close every held window in turn, then the open one."""
        out = self._release(None)
        label = self.flush()
        if label is not None:
            out.append(label)
        return out

    def state(self) -> dict[str, object]:
        """What a snapshot keeps (the caller journals the held items again)."""
        return {"window": self.window, "dirty": self.dirty, "kinds": self.kinds}

    def restore(self, s: dict[str, object]) -> None:
        w, kinds = s.get("window"), s.get("kinds")
        if isinstance(w, int):
            self.window, self.dirty = w, bool(s.get("dirty"))
        if isinstance(kinds, dict):
            self.kinds = {str(k): [int(v[0]), int(v[1])] for k, v in kinds.items()}
