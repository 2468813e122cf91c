"""Scenario files, their validation (one-line errors), event timelines, durations and start times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sims.scenario import Timeline, list_scenarios, load_scenario, parse_scenario
from sims.timebase import day_of_year, parse_duration, parse_start
from twin.errors import ConfigError
from twin.plant import Plant, load_plant

ISSUE_SCENARIOS = {"phase1", "expansion-520", "pump-failure", "hydro-curtailment", "offtaker-outage",
                   "cold-snap", "heatwave"}


@pytest.mark.parametrize(("text", "seconds"), [
    ("14d", 14 * 86400.0), ("6h", 21600.0), ("30m", 1800.0), ("10s", 10.0), ("1h30m", 5400.0),
    ("250ms", 0.25), ("90", 90.0), (" 2d ", 172800.0), (1.5, 1.5),
])
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "3x", "h", "10s5", "-5", "1d-2h", "nan"])
def test_bad_durations_say_what_is_expected(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_start_times() -> None:
    assert parse_start("2026-01-12") == 1768176000.0
    assert parse_start("2026-01-12T06:00:00Z") == 1768176000.0 + 6 * 3600
    assert parse_start("2026-01-12T07:00:00+01:00") == 1768176000.0 + 6 * 3600
    assert parse_start("1768176000") == 1768176000.0
    assert day_of_year(parse_start("2026-02-01T12:00:00Z")) == pytest.approx(31.5)
    with pytest.raises(ValueError, match="start time"):
        parse_start("yesterday")


def test_every_scenario_of_the_issue_loads_and_fits_its_plant() -> None:
    assert set(list_scenarios()) >= ISSUE_SCENARIOS
    for name in ISSUE_SCENARIOS:
        sc = load_scenario(name)
        assert sc.name == name
        sc.check_against(load_plant(sc.plant))
    assert load_scenario("expansion-520").plant == "expansion-520"
    pf = load_scenario("pump-failure")
    ev = pf.events[0]
    assert ev.kind == "pump_failure" and ev.at == 7200.0 and ev.duration == 1800.0


def test_scenario_errors_are_one_line_naming_the_field(tmp_path: Path, phase1: Plant) -> None:
    base = {"name": "x", "start": "2026-01-01"}
    cases = [
        ({**base, "events": [{"at": "1h", "kind": "pump_failure", "cdu": "h1-cdu01", "flow_fraction": 2}]},
         "events[0].flow_fraction"),
        ({**base, "events": [{"at": "soon", "kind": "pump_failure", "cdu": "h1-cdu01"}]}, "events[0].at"),
        ({**base, "events": [{"at": "1h", "kind": "meteor"}]}, "events[0]"),
        ({**base, "start": "someday"}, "start"),
        ({**base, "colour": "red"}, "colour"),
        ({"start": "2026-01-01"}, "name"),
        ({**base, "params": {"workload": {"training_share": 3}}}, "params.workload.training_share"),
    ]
    for data, where in cases:
        with pytest.raises(ConfigError) as e:
            parse_scenario(data, "s.toml")
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(f"s.toml: {where}"), msg
    unknown = parse_scenario({**base, "events": [{"at": "1h", "kind": "pump_failure", "cdu": "h9-cdu99"}]})
    with pytest.raises(ConfigError, match=r"events\[0\]\.cdu: unknown CDU 'h9-cdu99'"):
        unknown.check_against(phase1)
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_scenario(bad)
    with pytest.raises(ConfigError, match=r"not found.*pump-failure"):
        load_scenario("no-such-scenario")


def test_timeline_turns_events_on_and_off(phase1: Plant) -> None:
    sc = parse_scenario({
        "name": "t", "start": 0, "events": [
            {"at": "1h", "kind": "pump_failure", "cdu": "h2-cdu03", "flow_fraction": 0.2, "duration": "10m"},
            {"at": "2h", "kind": "hydro_curtailment", "available_mw": 150, "duration": "1h"},
            {"at": "2h", "kind": "hydro_curtailment", "available_mw": 90, "feeder": "feeder-b", "duration": "1h"},
            {"at": "2h", "kind": "power_cap", "it_mw": 100, "duration": "1h"},
            {"at": "3h", "kind": "offtaker_outage", "exchanger": "dh-narvik", "duration": "1h"},
            {"at": "5h", "kind": "weather", "delta_k": -10, "duration": "4h", "ramp": "1h"},
            {"at": "10h", "kind": "frequency_excursion", "delta_hz": -0.4, "recovery": "60s"},
        ]})
    tl = Timeline(sc, phase1, start_ts=1000.0)
    assert tl.at(1000.0).cdu_flow_cap is None
    o = tl.at(1000.0 + 3600 + 1)
    assert o.cdu_flow_cap is not None
    i = phase1.cdu_index["h2-cdu03"]
    assert o.cdu_flow_cap[i] == 0.2 and np.isinf(np.delete(o.cdu_flow_cap, i)).all()
    assert tl.at(1000.0 + 3600 + 600).cdu_flow_cap is None  # ended: alarms can clear
    o = tl.at(1000.0 + 7200)
    assert o.available_mw == 150 and o.feeder_available_mw == {1: 90} and o.it_cap_mw == 100 and o.curtailed
    assert not tl.at(1000.0 + 3 * 3600).curtailed
    o = tl.at(1000.0 + 3 * 3600)
    assert o.offtaker_out is not None and o.offtaker_out.tolist() == [True, False]
    assert tl.at(1000.0 + 5.5 * 3600).weather_delta_k == pytest.approx(-5.0)  # half-way up the ramp
    assert tl.at(1000.0 + 7 * 3600).weather_delta_k == pytest.approx(-10.0)
    assert tl.at(1000.0 + 8.5 * 3600).weather_delta_k == pytest.approx(-5.0)  # half-way down
    assert tl.at(1000.0 + 9 * 3600).weather_delta_k == 0.0
    assert tl.at(1000.0 + 10 * 3600 + 60).frequency_delta_hz == pytest.approx(-0.4 / np.e)
