"""The aggregator's join by event time (twin/services/aggregate.py), fed by hand: no bus.

A hall worker that heard nothing publishes heartbeats ahead of its telemetry; the real states of the same ticks
follow when the telemetry comes after all. Seen on a NATS cluster: the h2 worker idled while a replay waited on the
killed h1 worker's replacement, and the aggregator joined h1's real states with h2's heartbeats (h2 stale, fewer
messages) though h2's real states came 20 ms later.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.contract import HallState, PlantState, WorkerState
from twin.plant import Plant, load_plant
from twin.services.aggregate import AggregatorService

REPO = Path(__file__).resolve().parents[2]
T = 1_795_300_040.0


@pytest.fixture
def plant() -> Plant:
    return load_plant(REPO / "tests" / "data" / "small.toml")


def _hall(hall: str, ts: float, heartbeat: bool = False) -> HallState:
    reporting = 0 if heartbeat else 16
    return HallState(ts=ts, hall=hall, it_mw=2.0, gpus_total=16, gpus_reporting=reporting, gpu_util_mean=0.5,
                     gpu_temp_max_c=60.0, heat_to_liquid_mw=1.8, liquid_capture_ratio=0.9,
                     coolant_return_max_c=40.0, heartbeat=heartbeat)


def _worker(hall: str, ts: float, msgs_in: int, heartbeat: bool = False) -> WorkerState:
    return WorkerState(ts=ts, worker=f"halls-{hall}", halls=[hall], msgs_in=msgs_in, msgs_rejected=0,
                       msgs_duplicate=0, msgs_late=0, seq_gaps=0,
                       stale=[f"gpu/{hall}-a"] if heartbeat else [], heartbeat=heartbeat)


def _send(agg: AggregatorService, hall: str, ts: float, msgs_in: int, heartbeat: bool = False) -> None:
    """A worker's tick as it publishes it: its WorkerState, then its HallState."""
    t = agg.topics
    agg.handle(t.worker(f"halls-{hall}"), _worker(hall, ts, msgs_in, heartbeat).model_dump_json().encode(), ts)
    agg.handle(t.hall_state(hall), _hall(hall, ts, heartbeat).model_dump_json().encode(), ts)


class _Out:
    def __init__(self, agg: AggregatorService) -> None:
        self.states: list[PlantState] = []
        agg._bus = self  # type: ignore[assignment]  # the one call it makes: publish_nowait

    def publish_nowait(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.states.append(PlantState.model_validate_json(payload))


def _plant_level(agg: AggregatorService, ts: float) -> None:
    agg.inner.emit(ts)  # the inner service's listener hands the plant-level state to the aggregator


def test_real_states_complete_a_tick(plant: Plant) -> None:
    agg = AggregatorService(plant)
    out = _Out(agg)
    _send(agg, "h1", T, 100)
    _plant_level(agg, T)
    assert out.states == []  # h2 missing
    _send(agg, "h2", T, 90)
    assert [s.ts for s in out.states] == [T]
    s = out.states[0]
    assert s.gpus_reporting == 32 and s.msgs_in == 190 and s.stale == [] and s.it_mw == pytest.approx(4.0)


def test_a_heartbeat_ahead_of_telemetry_gives_way_to_the_real_state(plant: Plant) -> None:
    agg = AggregatorService(plant)
    out = _Out(agg)
    _send(agg, "h2", T, 80, heartbeat=True)  # h2 idle, heard nothing for T yet
    _send(agg, "h1", T, 100)
    _plant_level(agg, T)
    assert out.states == []  # h2 is not known to be silent: its next message decides
    _send(agg, "h2", T - 1, 85)  # catching up from behind
    assert out.states == []
    _send(agg, "h2", T, 90)
    assert [s.ts for s in out.states] == [T]
    s = out.states[0]
    assert s.gpus_reporting == 32 and s.msgs_in == 190 and s.stale == []


def test_a_hall_that_stays_silent_shows_stale_at_its_next_heartbeat(plant: Plant) -> None:
    agg = AggregatorService(plant)
    out = _Out(agg)
    _send(agg, "h1", T, 100)
    _plant_level(agg, T)
    _send(agg, "h2", T, 80, heartbeat=True)
    assert out.states == []
    _send(agg, "h2", T + 1, 80, heartbeat=True)  # still nothing: h2 is cut off
    assert [s.ts for s in out.states] == [T]
    s = out.states[0]
    assert s.gpus_reporting == 16 and s.msgs_in == 180 and s.stale == ["gpu/h2-a"] and not s.heartbeat


def test_a_late_heartbeat_does_not_replace_a_real_state(plant: Plant) -> None:
    agg = AggregatorService(plant)
    out = _Out(agg)
    _send(agg, "h2", T, 90)
    _send(agg, "h2", T, 80, heartbeat=True)
    _send(agg, "h1", T, 100)
    _plant_level(agg, T)
    assert [s.msgs_in for s in out.states] == [190]


def test_the_whole_plants_15_minute_kpis_come_from_the_joined_states(plant: Plant) -> None:
    """The aggregator's own model has no racks: the 15-minute PUE is kept from the joined PlantStates (facility
    0.004 + 0.003 MW from the feeders, IT 2 x 2 MW from the halls)."""
    from tests.unit.test_state import msg

    agg = AggregatorService(plant)
    out = _Out(agg)
    for k in range(901):
        ts = T + k
        for feeder, imp in (("fa", 0.004), ("fb", 0.003)):
            agg.handle(f"stargate/tiny/hydro/{feeder}", msg(f"stargate/tiny/hydro/{feeder}", ts=ts, seq=k,
                       available_mw=0.5, import_mw=imp, frequency_hz=50.0, price_eur_mwh=20.0)[1], ts)
        _plant_level(agg, ts)
        _send(agg, "h1", ts, k)
        _send(agg, "h2", ts, k)
    assert out.states[0].pue_15m is None  # not 15 minutes yet
    last = out.states[-1]
    assert last.ts == T + 900 and last.pue_15m == pytest.approx(0.007 / 4.0)
    assert last.liquid_capture_ratio_15m == pytest.approx(3.6 / 4.0)
