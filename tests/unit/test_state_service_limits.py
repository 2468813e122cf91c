"""Bounded outputs of the state service: dead letters are rate-limited, overload raises an alarm."""

from __future__ import annotations

import json

from tests.fakes import RecordingBus
from twin.plant import Plant
from twin.services.state import StateService

T0 = 1_795_300_000.0


def test_dead_letters_are_rate_limited_and_counted(small_plant: Plant) -> None:
    svc = StateService(small_plant)
    bus = RecordingBus()
    svc._bus = bus  # type: ignore[assignment]
    for _ in range(3000):
        svc.handle("stargate/tiny/gpu/h1/h1-r001", b"{broken", T0)
    letters = [p for t, p, _, _ in bus.sent if t.endswith("/twin/deadletter")]
    assert 1000 <= len(letters) < 1100  # the burst, plus what the rate refilled meanwhile
    assert svc.deadletters_suppressed == 3000 - len(letters)
    assert svc.model.counters.msgs_rejected == 3000  # every refusal is counted, published or not
    state = svc.emit(T0)
    assert state.deadletters_suppressed == svc.deadletters_suppressed and state.msgs_rejected == 3000
    assert json.loads(letters[0])["reason"].startswith("invalid payload")


def test_dropped_messages_raise_the_overload_alarm_and_it_clears(small_plant: Plant) -> None:
    svc = StateService(small_plant)
    bus = RecordingBus()
    svc._bus = bus  # type: ignore[assignment]
    svc.emit(T0)
    bus.dropped = 250  # the bounded incoming queue overflowed
    s = svc.emit(T0 + 1)
    assert s.msgs_dropped == 250 and s.alarms_active == 1
    raised = [json.loads(p) for t, p, _, r in bus.sent if t.endswith("/twin/alarm/overload-tiny-state") and p]
    assert raised and raised[0]["active"] and raised[0]["value"] == 250
    for k in range(2, 40):  # no more drops: cleared after the 30 s off-delay
        s = svc.emit(T0 + k)
    assert s.alarms_active == 0
    assert any(t.endswith("/twin/alarm/overload-tiny-state") and p == b"" and r for t, p, _, r in bus.sent)
