"""The forecaster's inputs: the fast simulated path agrees with the JSON path; logs of either kind read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.logs.telemetry_log import TelemetryLogWriter
from sims.messages import FrameEncoder
from sims.plant_sim import PlantSim
from twin.errors import ConfigError
from twin.forecast.states import states_from_log, write_states_log
from twin.live.decode import Decoded, Decoder
from twin.live.state import StateModel
from twin.plant import Plant

T0 = 1_795_300_000.0


def test_fast_path_gives_the_states_the_messages_give(phase1: Plant, tmp_path: Path) -> None:
    sim = PlantSim(phase1, seed=3, start_ts=T0)
    enc, dec = FrameEncoder(phase1), Decoder(phase1)
    fast, slow = StateModel(phase1), StateModel(phase1)
    log = tmp_path / "raw.jsonl"
    with TelemetryLogWriter(log) as w:
        for k in range(2):
            f = sim.step(T0 + k)
            fast.apply_frame(f)
            for topic, payload in enc.all(f):
                d = dec.decode(topic, payload)
                assert isinstance(d, Decoded)
                slow.apply(d)
                w.write(f.ts, topic, payload)
            a, ha = fast.snapshot(f.ts)
            b, hb = slow.snapshot(f.ts)
            assert a.it_mw == pytest.approx(b.it_mw, abs=1e-3)  # JSON rounds GPU power to 0.1 W
            assert a.facility_mw == pytest.approx(b.facility_mw, abs=1e-3)
            assert a.heat_demand_mw == pytest.approx(b.heat_demand_mw, abs=1e-2)
            assert a.heat_to_liquid_mw == pytest.approx(b.heat_to_liquid_mw, rel=1e-3)
            assert a.coolant_return_max_c == pytest.approx(b.coolant_return_max_c, abs=1e-3)
            assert a.ambient_c == pytest.approx(b.ambient_c, abs=0.01)
            assert [h.it_mw for h in ha] == pytest.approx([h.it_mw for h in hb], abs=1e-3)
    # the raw log through the state model: one state per 1 s tick of event time
    got = list(states_from_log(log, phase1))
    assert [s.ts for s, _ in got] == [T0, T0 + 1]
    assert got[-1][0].it_mw == pytest.approx(b.it_mw, abs=1e-6)
    # a log of the twin's outputs reads back as written, halls with their state
    out = tmp_path / "states.jsonl.gz"
    assert write_states_log(out, phase1.site.id, iter(got)) == 2
    back = list(states_from_log(out))
    assert [s for s, _ in back] == [s for s, _ in got]
    assert len(back[0][1]) == len(phase1.halls)


def test_a_log_with_neither_states_nor_telemetry_is_a_one_line_error(tmp_path: Path) -> None:
    log = tmp_path / "other.jsonl"
    with TelemetryLogWriter(log) as w:
        w.write(T0, "stargate/narvik/twin/alarm/x", b'{"a": 1}')
    with pytest.raises(ConfigError, match="no twin/state messages"):
        list(states_from_log(log))
    with pytest.raises(ConfigError, match="cannot read"):
        list(states_from_log(tmp_path / "missing.jsonl"))


def test_service_warmed_from_history_issues_main_model_forecasts() -> None:
    from twin.forecast.states import simulate_states
    from twin.services.forecast import ForecastService

    svc = ForecastService("narvik")
    hist = list(simulate_states("phase1", 2.5 * 86400.0, 900.0))
    assert svc.warm(iter(hist)) == len(hist)
    assert svc.forecaster.ready  # two days of quarter hours: the fits are made
    last, halls = hist[-1]
    out = []
    for k in range(1, 3):
        for h in halls:
            svc.handle(f"stargate/narvik/twin/state/{h.hall}", h.model_copy(update={"ts": last.ts + 60 * k})
                       .model_dump_json().encode())
        out += svc.handle("stargate/narvik/twin/state",
                          last.model_copy(update={"ts": last.ts + 60 * k}).model_dump_json().encode())
    by = {f.model: f for f in out if f.quantity == "heat_reusable_mw" and f.step_s == 60.0}
    assert {"persistence-intraday", "seasonal-naive-intraday", "physics-intraday"} <= set(by)
    assert [p.mean for p in by["physics-intraday"].points] != [p.mean for p in by["persistence-intraday"].points]
    assert svc.handle("stargate/narvik/twin/state", b'{"ts": "x"}') == [] and svc.rejected == 1
