"""The tenfold plant (later phases: phase 1 ten times over) loads, simulates and runs through the state model."""

from __future__ import annotations

import time

import pytest

from twin.plant import load_plant
from twin.services.sim import SimService
from twin.services.state import StateService

T0 = 1_795_300_000.0


def test_counts_are_ten_times_phase1() -> None:
    p1, p10 = load_plant("phase1"), load_plant("tenfold")
    assert (p10.n_racks, p10.gpus_total, len(p10.cdu_ids)) == (13_920, 1_002_240, 2_320)
    assert (p10.n_racks, len(p10.cdu_ids), len(p10.hall_ids)) == (10 * p1.n_racks, 10 * len(p1.cdu_ids), 80)
    assert p10.site.contract_mw == 10 * p1.site.contract_mw == 2300.0
    assert sum(f.rated_mw for f in p10.feeders) == 10 * sum(f.rated_mw for f in p1.feeders)


@pytest.mark.parametrize("halls", [None, ["h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10"]])
def test_one_step_of_the_simulator_through_the_state_model(halls: list[str] | None) -> None:
    plant = load_plant("tenfold")
    sim = SimService(plant, start_ts=T0)
    state = StateService(plant, halls=halls)
    subs = state.subscriptions  # what the broker would deliver to this worker (exact topics and prefix/#)
    exact = {f for f in subs if not f.endswith("#")}
    prefixes = tuple(f[:-1] for f in subs if f.endswith("#"))
    for step in range(3):
        for topic, payload in sim.messages_for_step(step, T0 + step):
            if topic in exact or topic.startswith(prefixes):
                state.handle(topic, payload, time.time())
    s = state.latest
    assert s is not None and s.ts == T0 + 1
    want_racks = plant.n_racks if halls is None else 10 * 174
    assert s.gpus_reporting == want_racks * 72, s.gpus_reporting
    if halls is None:
        # phase 1 at the same instant draws a tenth (same per-rack workload statistics, 10x the racks)
        p1 = load_plant("phase1")
        ref = StateService(p1)
        sim1 = SimService(p1, start_ts=T0)
        for step in range(3):
            for topic, payload in sim1.messages_for_step(step, T0 + step):
                ref.handle(topic, payload, time.time())
        assert ref.latest is not None
        assert 8.5 < s.it_mw / ref.latest.it_mw < 11.5, (s.it_mw, ref.latest.it_mw)
        assert s.facility_mw < plant.site.contract_mw
