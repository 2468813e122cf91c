"""Where the forecaster's input comes from: PlantState / HallState streams in event time.

- :func:`states_from_log`: a log of the twin's outputs (``twin/state``, ``twin/state/+``), or a
  raw telemetry log run through the state model (:class:`twin.live.decode.Decoder` and
  :meth:`twin.live.state.StateModel.snapshot`, one state per 1 s tick of event time).
- :func:`simulate_states`: the simulator feeding the state model in process, at coarse steps,
  for weeks of history in seconds: each :class:`sims.plant_sim.SimFrame` goes in through
  :meth:`~twin.live.state.StateModel.apply_frame` (skipping the JSON round trip), then the same
  :meth:`~twin.live.state.StateModel.snapshot` is taken.
- :func:`write_states_log`: such a stream as a telemetry log of ``twin/state`` messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from adapters.logs.telemetry_log import LogError, LogReader, TelemetryLogWriter
from twin.contract import HallState, PlantState
from twin.errors import ConfigError
from twin.live.decode import Decoder, Rejected
from twin.live.state import StateModel
from twin.live.ticks import TickClock
from twin.plant import Plant, load_plant
from twin.topics import Topics

__all__ = ["StateStream", "simulate_states", "states_from_log", "write_states_log"]

StateStream = Iterator[tuple[PlantState, list[HallState]]]



def simulate_states(scenario: str = "phase1", duration_s: float = 21 * 86400.0, step_s: float = 300.0,
                    fine_tail_s: float = 0.0, fine_step_s: float = 60.0, seed: int | None = None,
                    progress: Callable[[float], None] | None = None) -> StateStream:
    """States from the simulator at ``step_s`` (the last ``fine_tail_s`` at ``fine_step_s``), in event time."""
    from sims.plant_sim import PlantSim
    from sims.scenario import load_scenario
    from sims.timebase import parse_start

    sc = load_scenario(scenario)
    plant = load_plant(sc.plant)
    start = parse_start(sc.start)
    sim = PlantSim(plant, seed=sc.seed if seed is None else seed, start_ts=start, scenario=sc)
    model = StateModel(plant)
    t, end, fine_from = start, start + duration_s, start + duration_s - fine_tail_s
    while t < end:
        model.apply_frame(sim.step(t))
        yield model.snapshot(t)
        if progress is not None:
            progress((t - start) / duration_s)
        t += fine_step_s if t >= fine_from - 1e-9 else step_s


def _site_of(topic: str) -> str | None:
    parts = topic.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "stargate" else None


def states_from_log(path: str | Path, plant: Plant | None = None, tick_s: float = 1.0,
                    progress: Callable[[float], None] | None = None) -> StateStream:
    """States from a log: twin outputs as they are, raw telemetry through the state model.

    Raises :class:`~twin.errors.ConfigError` (one line) for an unreadable log or one with neither.
    """
    try:
        reader = LogReader(path)
    except LogError as e:
        raise ConfigError(f"{path}: {e}") from None
    pending: tuple[PlantState, list[HallState]] | None = None
    decoder: Decoder | None = None
    model: StateModel | None = None
    clock = TickClock(tick_s)
    seen = 0
    for n, rec in enumerate(reader):
        if isinstance(rec, LogError):
            raise ConfigError(f"{path}: {rec}")
        if progress is not None and n % 2000 == 0:
            progress(reader.position / max(reader.size, 1))
        parts = rec.topic.split("/")
        if len(parts) >= 4 and parts[2] == "twin" and parts[3] == "state":
            if len(parts) == 4:
                if pending is not None:
                    yield pending
                    seen += 1
                pending = (PlantState.model_validate(rec.payload), [])
            elif len(parts) == 5 and pending is not None:
                pending[1].append(HallState.model_validate(rec.payload))
            continue
        if len(parts) < 3 or parts[2] == "twin":
            continue
        if decoder is None or model is None:
            plant = plant or load_plant("phase1")
            if _site_of(rec.topic) != plant.site.id:
                continue
            decoder, model = Decoder(plant), StateModel(plant)
        d = decoder.decode(rec.topic, rec.payload_bytes())
        if isinstance(d, Rejected):
            model.reject()
            continue
        due = clock.on_message(d.msg.ts)
        if due is not None:
            yield model.snapshot(due)
            seen += 1
        model.apply(d)
    if pending is not None:
        yield pending
        seen += 1
    elif model is not None and (due := clock.flush()) is not None:
        yield model.snapshot(due)
        seen += 1
    if not seen:
        raise ConfigError(f"{path}: no twin/state messages and no telemetry of the plant in this log")


def write_states_log(path: str | Path, site: str, stream: StateStream) -> int:
    """Write PlantState / HallState messages as a telemetry log (event time as ``t``); returns states written."""
    topics = Topics(site)
    n = 0
    with TelemetryLogWriter(path) as w:
        for state, halls in stream:
            w.write(state.ts, topics.state, state.model_dump_json().encode(), 1, True)
            for h in halls:
                w.write(h.ts, topics.hall_state(h.hall), h.model_dump_json().encode(), 1, True)
            n += 1
    return n
