"""Importers: line protocol (incl. the sink's own files), annotated CSV, plain CSV, and mappings that do not fit."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from adapters.logs.telemetry_log import iter_log
from adapters.sink.line_files import LineFileWriter
from tests.conftest import REPO
from twin.cli import main
from twin.contract import Alarm, PlantState
from twin.importers import MappingError, build_messages, load_mapping, read_rows
from twin.importers.rows import RowError, parse_lp_line
from twin.lineproto import alarm_lines, plant_state_line
from twin.plant import load_plant
from twin.services.sim import SimService
from twin.services.state import StateService

DATA = REPO / "tests" / "data" / "import"
T0 = 1_795_300_000.0


def payloads(fmt: str, name: str, mapping: str, **kw: str) -> list[tuple[float, str, dict]]:  # type: ignore[type-arg]
    m = load_mapping(DATA / mapping)
    res = build_messages(read_rows(DATA / name, fmt, time_column=m.time_column, time_unit=m.time_unit), m, name)
    return [(ts, topic, orjson.loads(p)) for ts, topic, p in res.messages]


def test_line_protocol_syntax() -> None:
    m, tags, fields, ts = parse_lp_line(r'my\ meas,site=a\,b,k\=1=v\ x f1=1.5,f2=-3i,f3=7u,f4=T,f5=false,'
                                        r'f6="say \"hi\", ok" 1795300000000000000')
    assert (m, tags, ts) == ("my meas", {"site": "a,b", "k=1": "v x"}, 1795300000000000000)
    assert fields == {"f1": 1.5, "f2": -3, "f3": 7, "f4": True, "f5": False, "f6": 'say "hi", ok'}
    for bad in ("m", "m,t=1", "m f=", 'm f="open 1', "m f=1 12x", "m f=nan 1"):
        with pytest.raises(ValueError):
            parse_lp_line(bad)


def test_line_protocol_export_to_hydro_and_ambient_messages() -> None:
    got = payloads("lp", "hydro.lp", "hydro.toml")
    assert [(ts - T0, t.rsplit("/", 1)[1]) for ts, t, _ in got] == [
        (0.0, "feeder-a"), (0.0, "feeder-b"), (0.5, "kvandal"), (1.0, "feeder-a"), (1.0, "feeder-b")]
    a0 = got[0][2]
    assert a0 == {"ts": T0, "seq": 0, "source": "replay", "available_mw": 120.5, "import_mw": 98.0,
                  "frequency_hz": 50.01, "price_eur_mwh": 31.2, "curtailed": False}
    assert got[3][2]["seq"] == 1 and got[3][2]["import_mw"] == pytest.approx(98.5) and got[3][2]["curtailed"]
    assert got[2][1] == "stargate/narvik/ambient/kvandal" and got[2][2]["humidity_pct"] == 81.0


def test_annotated_csv_merges_one_field_per_row_into_messages() -> None:
    got = payloads("annotated-csv", "coolant.csv", "coolant.toml")
    assert [t for _, t, _ in got] == ["stargate/narvik/coolant/h1-cdu01"] * 2
    assert got[1][2] == {"ts": 1795255201.0, "seq": 1, "source": "replay", "supply_c": 32.2, "return_c": 45.3,
                         "flow_lps": 62.4, "pump_kw": 4.2}


def test_plain_csv_one_row_per_gpu_assembles_rack_lists() -> None:
    got = payloads("csv", "racks.csv", "racks.toml")
    assert [t for _, t, _ in got] == ["stargate/tiny/gpu/h1/h1-r001"] * 2
    assert got[0][2]["gpu_power_w"] == [950.5, 948.0, 951.5, 700.0]
    assert got[1][2]["gpu_temp_c"] == [61.4, 61.0, 62.0, 55.5] and got[1][2]["aux_power_w"] == 9100


def test_the_sinks_own_line_files_import(tmp_path: Path) -> None:
    """States the twin computed, written by the sink's line-file writer, read back and mapped to weather history."""
    plant = load_plant(REPO / "tests" / "data" / "small.toml")
    svc, states = StateService(plant), []
    svc.listeners.append(lambda s, h: states.append(s))
    sim = SimService(plant, start_ts=T0)
    for k in range(6):
        for topic, payload in sim.messages_for_step(k, T0 + k):
            svc.handle(topic, payload, T0 + k)
    assert len(states) == 5
    writer = LineFileWriter(tmp_path / "lines")
    writer.write_sync(plant_state_line("tiny", s) for s in states)
    alarm = Alarm(alarm_id="coolant-hot", severity="warning", active=True, ts=T0 + 2,
                  message='return 61.2 C > 60 C, "h1-cdu01", check flow', asset="h1-cdu01", value=61.2,
                  threshold=60.0)
    writer.write_sync(alarm_lines("tiny", alarm))
    writer.close()
    (lp,) = sorted((tmp_path / "lines").glob("*.lp"))
    rows = list(read_rows(lp, "lp"))
    state_rows = [r for r in rows if r.measurement == "plant_state"]
    for row, s in zip(state_rows, states, strict=True):
        assert row.time == pytest.approx(s.ts) and row.values["site"] == "tiny"
        for k, v in PlantState.model_dump(s).items():
            if isinstance(v, float) and k != "ts":
                assert row.values[k] == pytest.approx(v), k
        assert row.values["msgs_in"] == s.msgs_in
    (arow,) = [r for r in rows if r.measurement == "alarm"]
    assert arow.values["message"] == alarm.message and arow.values["active"] is True
    mapping = tmp_path / "weather.toml"
    mapping.write_text('site = "tiny"\n[[message]]\nmatch = { measurement = "plant_state" }\ndomain = "ambient"\n'
                       'asset = "ws1"\n[message.fields]\ntemp_c = "ambient_c"\n')
    res = build_messages(read_rows(lp, "lp"), load_mapping(mapping), str(lp))
    assert [orjson.loads(p)["temp_c"] for _, _, p in res.messages] == pytest.approx([s.ambient_c for s in states])
    assert res.unmatched == {"alarm": 1}


def test_a_mapping_that_does_not_fit_stops_with_file_line_and_reason(tmp_path: Path) -> None:
    bad_field = tmp_path / "a.toml"
    bad_field.write_text('[[message]]\ndomain = "hydro"\nasset = "{feeder}"\n[message.fields]\navailable_kw = "x"\n')
    with pytest.raises(MappingError, match="'available_kw' is not a field of hydro"):
        load_mapping(bad_field)
    m = load_mapping(DATA / "hydro.toml")
    lacking = m.model_copy(update={"message": [m.message[0].model_copy(update={"fields": {
        k: v for k, v in m.message[0].fields.items() if k != "frequency_hz"}})]})
    with pytest.raises(MappingError, match=r"hydro.lp:2: the mapped hydro message .* frequency_hz: Field required"):
        build_messages(read_rows(DATA / "hydro.lp", "lp"), lacking, "hydro.lp")
    wrong_tag = m.model_copy(update={"message": [m.message[0].model_copy(update={"asset": "{line}"})]})
    with pytest.raises(MappingError, match=r"hydro.lp:2: asset template '\{line\}' needs 'line'"):
        build_messages(read_rows(DATA / "hydro.lp", "lp"), wrong_tag, "hydro.lp")
    nothing = m.model_copy(update={"message": [m.message[0].model_copy(update={"match": {"measurement": "x"}})]})
    with pytest.raises(MappingError, match=r"matched none of the 5 rows; the data holds: hydro \(4 rows\)"):
        build_messages(read_rows(DATA / "hydro.lp", "lp"), nothing, "hydro.lp")


def test_bad_input_lines_are_reported_with_their_number(tmp_path: Path) -> None:
    lp = tmp_path / "x.lp"
    lp.write_text((DATA / "hydro.lp").read_text() + "hydro,feeder=feeder-a available_mw=\n")
    with pytest.raises(RowError, match=r"x.lp:7: not line protocol"):
        list(read_rows(lp, "lp"))
    csv = tmp_path / "x.csv"
    csv.write_text("time,a\n1795300000,1\nnot-a-time,2\n")
    with pytest.raises(RowError, match=r"x.csv:3: time 'not-a-time'"):
        list(read_rows(csv, "csv"))
    with pytest.raises(RowError, match=r"x.csv:1: not annotated CSV"):
        list(read_rows(csv, "annotated-csv"))


def test_cli_writes_nothing_when_the_mapping_does_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl.gz"
    assert main(["import", "lp", str(DATA / "hydro.lp"), "--mapping", str(DATA / "coolant.toml"),
                 "--out", str(out)]) == 2
    assert "matched none of the 5 rows" in capsys.readouterr().err and not out.exists()
    assert main(["import", "lp", str(DATA / "hydro.lp"), "--mapping", str(DATA / "hydro.toml"), "--out", str(out),
                 "--site", "oslo"]) == 0
    lines = list(iter_log(out))
    assert len(lines) == 5 and lines[0]["topic"] == "stargate/oslo/hydro/feeder-a"
    assert lines[0]["t"] == lines[0]["payload"]["ts"] == T0
    assert list(tmp_path.iterdir()) == [out]
