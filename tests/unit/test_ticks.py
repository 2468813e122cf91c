"""Event-time tick windows: a state per closed window, whatever the arrival speed."""

from __future__ import annotations

import pytest

from twin.live.ticks import OrderedTickClock, TickClock


def test_a_state_is_due_when_a_later_window_opens() -> None:
    c = TickClock(1.0)
    assert [c.on_message(ts) for ts in (10.0, 10.0, 10.5, 11.0, 11.2, 13.7)] == [None, None, None, 10.0, None, 11.0]


def test_late_message_joins_the_open_window_without_emitting() -> None:
    c = TickClock(1.0)
    c.on_message(20.0)
    assert c.on_message(19.0) is None
    assert c.on_message(21.0) == 20.0


def test_flush_emits_the_open_window_once() -> None:
    c = TickClock(5.0)
    assert c.flush() is None
    c.on_message(12.0)
    assert c.flush() == 10.0
    assert c.flush() is None
    assert c.on_message(16.0) is None  # the flushed window is not emitted again
    assert c.on_message(20.0) == 15.0


def test_tick_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TickClock(0)


def _run(c: OrderedTickClock[str], msgs: list[tuple[float, str, float]]) -> list[float | str]:
    out: list[float | str] = []
    for ts, kind, rx in msgs:
        out += c.admit(ts, kind, f"{kind}@{ts:g}", rx)
    return out


def _ticks(first: int, last: int, kinds: str = "gh") -> list[tuple[float, str, float]]:
    return [(float(t), k, float(t)) for t in range(first, last + 1) for k in kinds]


def test_ordered_clock_in_order_behaves_as_the_plain_clock() -> None:
    c: OrderedTickClock[str] = OrderedTickClock(1.0)
    out = _run(c, _ticks(10, 12))
    # a kind is waited for once it reported in two windows in a row
    assert out == ["g@10", "h@10", 10.0, "g@11", "h@11", 11.0, "g@12", "h@12"]


def test_ordered_clock_waits_for_a_per_tick_kind_behind_in_a_backlog() -> None:
    """After a reconnect a broker with a queue per subscription sends h's backlog (12..15) before g's."""
    c: OrderedTickClock[str] = OrderedTickClock(1.0)
    _run(c, _ticks(10, 11))  # both kinds per tick; window 11 open
    backlog = [(float(t), "h", 20.0) for t in range(12, 16)] + [(float(t), "g", 20.1) for t in range(12, 16)]
    out = _run(c, backlog)
    assert out == [11.0, "h@12", "g@12", 12.0, "h@13", "g@13", 13.0, "h@14", "g@14", 14.0, "h@15", "g@15"]
    assert c.forced == 0 and c.window == 15


def test_ordered_clock_does_not_wait_for_a_slow_kind() -> None:
    c: OrderedTickClock[str] = OrderedTickClock(1.0)
    out = _run(c, [(10.0, "g", 10.0), (10.0, "ambient", 10.0), (11.0, "g", 11.0), (12.0, "g", 12.0)])
    assert out == ["g@10", "ambient@10", 10.0, "g@11", 11.0, "g@12"]


def test_ordered_clock_stops_waiting_for_a_kind_that_went_silent() -> None:
    c: OrderedTickClock[str] = OrderedTickClock(1.0, idle_s=1.5)
    _run(c, _ticks(10, 11))
    assert _run(c, [(12.0, "h", 12.0)]) == []  # g reported in 10 and 11: waited for
    assert _run(c, [(13.0, "h", 13.0)]) == []
    assert _run(c, [(14.0, "h", 13.6)]) == [11.0, "h@12", 12.0, "h@13", 13.0, "h@14"]  # the wait lasted 1.6 s
    assert c.forced == 1  # g is not waited for again (it did not report in 11 and 12)


def test_ordered_clock_wait_is_bounded_in_event_time() -> None:
    c: OrderedTickClock[str] = OrderedTickClock(1.0, idle_s=1e9, max_skew=3)
    _run(c, _ticks(10, 11))
    out = _run(c, [(float(t), "h", 11.0) for t in range(12, 16)])
    assert out[:3] == [11.0, "h@12", 12.0] and c.forced >= 1 and c.window is not None and c.window >= 12


def test_ordered_clock_drain_closes_held_windows_in_turn() -> None:
    c: OrderedTickClock[str] = OrderedTickClock(1.0)
    _run(c, _ticks(10, 11))
    _run(c, [(12.0, "h", 12.0), (13.0, "h", 12.0)])
    assert c.drain() == [11.0, "h@12", 12.0, "h@13", 13.0]
    assert c.drain() == []


def test_ordered_clock_state_round_trips_and_restored_kinds_are_waited_for() -> None:
    c: OrderedTickClock[str] = OrderedTickClock(1.0)
    _run(c, _ticks(10, 11))
    r: OrderedTickClock[str] = OrderedTickClock(1.0)
    r.restore(c.state())
    assert (r.window, r.dirty) == (11, True)
    # a restart long after the last receipt: the wait counts from the first message held after it
    assert r.admit(12.0, "h", "h@12", 500.0) == []
    assert r.admit(12.0, "g", "g@12", 500.2) == [11.0, "h@12", "g@12"]


def test_a_hold_keeps_the_open_window_for_a_late_redelivery() -> None:
    """After a resumed session NATS resends the lost connection's deliveries after newer ones (ack_wait)."""
    c: OrderedTickClock[str] = OrderedTickClock(1.0)
    _run(c, [*_ticks(10, 10), (11.0, "h", 11.0)])  # window 11 open; g@11 was lost with the connection
    c.hold(until=30.0)
    newer = [(float(t), k, 20.0 + t / 10) for t in range(12, 15) for k in "gh"]
    assert _run(c, newer) == []  # held: every kind passed window 11, yet it stays open
    assert _run(c, [(11.0, "g", 24.0)]) == ["g@11"]  # the redelivery joins its own window
    out = _run(c, [(15.0, "g", 31.0)])  # the hold is over: the windows close in order
    assert out[:4] == [11.0, "g@12", "h@12", 12.0] and c.window == 14
    assert c.forced == 0


def test_a_hold_gives_way_to_the_held_message_bound() -> None:
    c: OrderedTickClock[str] = OrderedTickClock(1.0, max_held=4)
    _run(c, _ticks(10, 10))
    c.hold(until=100.0)
    out = _run(c, [(float(t), "g", 11.0) for t in range(11, 16)])
    assert 10.0 in out and c.holding(50.0) and not c.holding(100.0)
    assert len(c.held) <= 4
