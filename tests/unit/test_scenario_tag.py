"""The what-if tag: a scenario run's lines carry ``scenario=NAME`` (as influxdb-client's Point would write it),
the live plant's lines are exactly as before, and where the name comes from (flag, env, plant file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from influxdb_client import Point, WritePrecision

from tests.contract.test_models import VALID
from twin import lineproto
from twin.contract import Alarm, Forecast, HallState, PlantState, SinkStats
from twin.errors import ConfigError
from twin.lineproto import parse_line
from twin.plant import load_plant
from twin.services.build import scenario_of, sink_service
from twin.services.sink import SinkService
from twin.settings import load_settings
from twin.sinks import LineFileWriter

_STATS = SinkStats.model_validate({n: 0 for n in SinkStats.model_fields} | {"ts": 1.8e9, "writer": "files",
                                                                           "spool_full": False, "last_error": None})


def _lines(scenario: str | None) -> list[str]:
    s = PlantState.model_validate(VALID[PlantState])
    return [
        lineproto.plant_state_line("narvik", s, scenario),
        lineproto.hall_state_line("narvik", HallState.model_validate(VALID[HallState]), scenario),
        *lineproto.forecast_lines("narvik", Forecast.model_validate(VALID[Forecast]), scenario),
        *lineproto.alarm_lines("narvik", Alarm.model_validate(VALID[Alarm]), scenario),
        lineproto.sink_stats_line("narvik", _STATS,
                                  scenario),
    ]


def test_a_what_if_line_carries_the_tag_in_influxdbs_order() -> None:
    for ours, live in zip(_lines("expansion-520"), _lines(None), strict=True):
        p, q = parse_line(ours), parse_line(live)
        assert p.tags == {**q.tags, "scenario": "expansion-520"} and p.fields == q.fields and p.t_ns == q.t_ns
        point = Point(p.measurement)
        for k, v in p.tags.items():
            point.tag(k, v)
        for k, v in p.fields.items():
            point.field(k, v)
        theirs = point.time(p.t_ns, WritePrecision.NS).to_line_protocol()
        assert ours.split(" ", 1)[0] == theirs.split(" ", 1)[0]  # same series key, tags sorted alike


def test_the_live_plants_lines_are_unchanged() -> None:
    assert _lines(None) == _lines("")
    assert all("scenario" not in parse_line(ln).tags for ln in _lines(None))
    s = PlantState.model_validate(VALID[PlantState])
    assert lineproto.plant_state_line("narvik", s).startswith("plant_state,site=narvik ")


def test_the_sink_tags_every_line_of_a_what_if(tmp_path: Path) -> None:
    payload = PlantState.model_validate(VALID[PlantState]).model_dump_json().encode()
    for scenario, tags in (("expansion-520", {"site": "narvik", "scenario": "expansion-520"}),
                           (None, {"site": "narvik"})):
        sink = SinkService("narvik", LineFileWriter(tmp_path / "lines"), spool_dir=tmp_path / "spool",
                           scenario=scenario)
        (line,) = sink.lines_for("stargate/narvik/twin/state", payload)
        assert parse_line(line).tags == tags


def test_the_tag_comes_from_the_flag_else_the_plant_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TWIN_SCENARIO_TAG", raising=False)
    phase1, expansion = load_plant("phase1"), load_plant("expansion-520")
    assert phase1.site.scenario is None and expansion.site.scenario == "expansion-520"
    assert load_plant("tenfold").site.scenario == "tenfold"
    assert scenario_of(load_settings(), phase1) is None
    assert scenario_of(load_settings(), expansion) == "expansion-520"
    assert scenario_of(load_settings(scenario_tag="trial-3"), phase1) == "trial-3"
    assert scenario_of(load_settings(scenario_tag=""), expansion) is None  # '' forces the live plant
    monkeypatch.setenv("TWIN_SCENARIO_TAG", "from-env")
    assert scenario_of(load_settings(), expansion) == "from-env"
    settings = load_settings(data_dir=tmp_path)
    assert sink_service(settings, phase1).scenario == "from-env"


def test_a_bad_tag_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(scenario_tag="Bad Name")
    assert "scenario_tag" in str(e.value) and "\n" not in str(e.value)
