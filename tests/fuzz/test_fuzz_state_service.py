"""Fuzzing the state service end to end in-process: ``StateService.handle(topic, payload, received_ts)``.

Per case: no exception; a message the reference decoder refuses (or whose ``ts`` is more
than ``max_future_s`` ahead of the receive time) produces exactly one dead letter with a
reason (or, over the dead-letter rate limit, one more suppressed one) and leaves the state
as it was, counters ``msgs_in`` / ``msgs_rejected`` aside; a message it accepts produces no
dead letter. The bus is a fake that records what would be published (a unit test of the
service's pure core).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from functools import cache
from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, Phase, given, settings

from tests.conftest import REPO
from tests.fakes import RecordingBus
from tests.fuzz.hostile import DOMAINS, NOW, SEEDS, has_duplicate_key, telemetry_case, valid_message
from twin.contract import DeadLetter
from twin.live.decode import Decoded, Decoder
from twin.plant import Plant, load_plant
from twin.services.state import StateService

CASES = int(os.environ.get("TWIN_FUZZ_CASES", "10000"))
MAX_FUTURE_S = 300.0


@cache
def _plant() -> Plant:
    return load_plant(REPO / "tests" / "data" / "small.toml")


@cache
def _service() -> tuple[StateService, RecordingBus, Decoder]:
    plant = _plant()
    svc = StateService(plant, max_future_s=MAX_FUTURE_S)
    bus = RecordingBus()
    svc._bus = bus  # type: ignore[assignment]
    if hasattr(svc, "deadletter_rate"):  # a dead letter for every refusal here, where the service allows it
        svc.deadletter_rate = svc.deadletter_burst = 1e12
    # a live plant first: every asset has reported once
    for d in DOMAINS:
        assets = {"hydro": plant.feeder_ids, "gpu": plant.rack_ids, "coolant": plant.cdu_ids,
                  "heat": plant.exchanger_ids, "ambient": [plant.weather.station]}[d]
        hall_of = {r: h.id for h in plant.halls for r in h.rack_ids}
        for a in assets:
            root = f"stargate/{plant.site.id}/{d}"
            topic = f"{root}/{hall_of[a]}/{a}" if d == "gpu" else f"{root}/{a}"
            svc.handle(topic, orjson.dumps(valid_message(d, plant, ts=NOW - 10)), NOW)
    assert svc.model.counters.msgs_rejected == 0
    return svc, bus, Decoder(plant, fast=False)


_COUNTED = {"msgs_in", "msgs_rejected"}


def _state(svc: StateService) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in vars(svc.model).items():
        if k == "plant":
            continue
        if isinstance(v, np.ndarray):
            out[k] = v.copy()
        elif k == "counters":
            out[k] = {f: x for f, x in dataclasses.asdict(v).items() if f not in _COUNTED}
        else:
            out[k] = copy.deepcopy(v)
    out["_clock"] = copy.deepcopy(vars(svc.clock))
    out["_last_event_ts"] = svc.last_event_ts
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if hasattr(a, "__dict__") or hasattr(a, "__slots__"):  # e.g. the seq tracker, which holds the counters
        names = [f for f in (vars(a) if hasattr(a, "__dict__") else a.__slots__) if f not in _COUNTED]
        return all(_same(getattr(a, f), getattr(b, f)) for f in names)
    return bool(a == b) or (a != a and b != b)  # NaN == NaN here


@settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
          phases=[Phase.generate, Phase.shrink])
@given(seed=SEEDS)
def test_state_service_dead_letters_hostile_input_and_keeps_its_state(seed: int) -> None:
    _, topic, payload = telemetry_case(_plant(), seed)
    svc, bus, reference = _service()
    before = _state(svc)
    counts = (svc.model.counters.msgs_in, svc.model.counters.msgs_rejected)
    suppressed = getattr(svc, "deadletters_suppressed", 0)  # over the dead-letter rate limit: counted, not sent
    bus.sent.clear()
    svc.handle(topic, payload, NOW)
    dead = [orjson.loads(p) for t, p, _, _ in bus.sent if t == svc.topics.deadletter]
    ref = reference.decode(topic, payload)
    refused = not isinstance(ref, Decoded) or ref.msg.ts - NOW > MAX_FUTURE_S
    if not refused and dead and has_duplicate_key(payload):
        refused = True  # a key given twice: the service's msgspec path checks every occurrence, pydantic the last
    if refused:
        assert len(dead) + getattr(svc, "deadletters_suppressed", 0) - suppressed == 1, (ref, bus.sent)
        for d in dead:
            dl = DeadLetter.model_validate(d)  # the contract's model: the dead letter is itself valid
            assert dl.reason and dl.topic == topic[:512] and dl.ts == NOW
            if isinstance(ref, Decoded) and ref.msg.ts - NOW > MAX_FUTURE_S:
                assert "ahead of the receive time" in dl.reason, dl.reason
        assert (svc.model.counters.msgs_in, svc.model.counters.msgs_rejected) == (counts[0] + 1, counts[1] + 1)
        after = _state(svc)
        changed = [k for k in before if not _same(before[k], after[k])]
        assert not changed, changed
    else:
        assert not dead, dead
