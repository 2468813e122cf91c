"""Heartbeats while telemetry is silent, and no holes in event time when the telemetry comes after a stall."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from tests.fakes import RecordingBus
from twin.plant import Plant
from twin.services.sim import SimService
from twin.services.state import StateService

T0 = 1_795_300_000.0


def _states(bus: RecordingBus) -> list[dict[str, object]]:
    return [json.loads(p) for t, p, _, _ in bus.sent if t == "stargate/tiny/twin/state"]


def test_telemetry_after_a_stall_gets_a_state_for_every_window(small_plant: Plant) -> None:
    sim = SimService(small_plant, seed=1, start_ts=T0)
    svc = StateService(small_plant)
    bus = RecordingBus()
    svc._bus = bus  # type: ignore[assignment]
    for k in range(4):
        for topic, payload in sim.messages_for_step(k, T0 + k):
            svc.handle(topic, payload, T0 + k)
    # the broker or the process stalls for 3.2 s of wall time: the open window, then heartbeats
    assert svc.on_idle(1.6, 1.6) is not None  # window 3 flushed
    hb = svc.on_idle(3.2, 1.6)
    assert hb is not None and hb.heartbeat and hb.ts == T0 + 6  # the tick the silence has reached
    assert svc.on_idle(3.4, 0.2) is None  # at most one a second
    for k in range(4, 10):  # the delayed telemetry arrives in a burst
        for topic, payload in sim.messages_for_step(k, T0 + k):
            svc.handle(topic, payload, T0 + 9.5)
    states = _states(bus)
    ticks = [s["ts"] for s in states if not s["heartbeat"]]
    assert ticks == [T0 + k for k in range(9)]  # every window, in order, none late or lost
    assert [s["ts"] for s in states if s["heartbeat"]] == [T0 + 6]  # replaced by the tick state of T0 + 6
    assert svc.model.counters.msgs_late == 0 and svc.model.counters.seq_gaps == 0


def test_heartbeats_advance_event_time_so_silent_assets_turn_stale(small_plant: Plant) -> None:
    sim = SimService(small_plant, seed=1, start_ts=T0)
    svc = StateService(small_plant)
    for k in range(3):
        for topic, payload in sim.messages_for_step(k, T0 + k):
            svc.handle(topic, payload, T0 + k)
    svc.on_idle(2.0, 2.0)
    beats = [svc.on_idle(s, 1.0) for s in (5.0, 5.5, 20.0)]
    assert beats[1] is None and beats[0] is not None and beats[2] is not None
    assert beats[0].ts == T0 + 7 and beats[2].ts == T0 + 22
    assert beats[0].gpus_reporting == small_plant.gpus_total and beats[0].stale == []
    assert beats[2].gpus_reporting == 0 and beats[2].heartbeat  # stale_after_s (10 s) of silence


def test_a_window_flushed_early_and_completed_later_counts_its_energy_once_with_the_final_power(
        small_plant: Plant) -> None:
    sim = SimService(small_plant, seed=1, start_ts=T0)
    steps = [sim.messages_for_step(k, T0 + k) for k in range(6)]
    whole = StateService(small_plant)
    for msgs in steps:
        for topic, payload in msgs:
            whole.handle(topic, payload, T0)
    expected = whole.emit(T0 + 5)
    svc = StateService(small_plant)
    for k, msgs in enumerate(steps):
        late = [m for m in msgs if k == 3 and ("/hydro/" in m[0] or "/heat/" in m[0])]  # the meters' messages
        for topic, payload in [m for m in msgs if m not in late]:
            svc.handle(topic, payload, T0)
        if late:
            assert svc.on_idle(2.0, 2.0) is not None  # window 3 flushed without its meters' new readings
            for topic, payload in late:  # they come after the stall
                svc.handle(topic, payload, T0)
    got = svc.emit(T0 + 5)
    assert got.erf == pytest.approx(expected.erf, rel=1e-12)
    assert svc.model.energy_facility_mwh == pytest.approx(whole.model.energy_facility_mwh, rel=1e-12)
    assert svc.model.energy_reused_mwh == pytest.approx(whole.model.energy_reused_mwh, rel=1e-12)


def test_the_run_loop_takes_every_message_across_batch_boundaries(small_plant: Plant) -> None:
    """A backlog longer than one batch (2,000): the message after a full batch is not dropped (it once was)."""
    import aiomqtt

    sim = SimService(small_plant, start_ts=1_795_300_000.0)
    msgs = [m for k in range(300) for m in sim.messages_for_step(k, 1_795_300_000.0 + k)]
    assert len(msgs) > 2 * 2000 + 1
    bus = RecordingBus()
    bus.queue = asyncio.Queue()  # type: ignore[attr-defined]
    for mid, (topic, payload) in enumerate(msgs, 1):
        bus.queue.put_nowait(aiomqtt.Message(topic, payload, 1, False, mid, None))  # type: ignore[attr-defined]
    service = StateService(small_plant)

    async def main() -> None:
        task = asyncio.create_task(service.run(bus))  # type: ignore[arg-type]
        for _ in range(200):
            if bus.queue.empty():  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert service.model.counters.msgs_in == len(msgs)
