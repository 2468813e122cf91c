"""Event-time tick windows: a state per closed window, whatever the arrival speed."""

from __future__ import annotations

import pytest

from twin.ticks import TickClock


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
