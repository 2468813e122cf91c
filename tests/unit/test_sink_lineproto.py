"""The sink's line protocol against influxdb-client's own ``Point`` serialisation, and the strict parser."""

from __future__ import annotations

import pytest
from influxdb_client import Point, WritePrecision

from tests.contract.test_models import VALID
from twin import lineproto
from twin.contract import Alarm, Forecast, GpuRackTelemetry, HallState, PlantState
from twin.lineproto import LineProtocolError, parse_line


def _point_line(measurement: str, tags: dict[str, str], fields: dict[str, object], t_ns: int) -> str:
    p = Point(measurement)
    for k, v in tags.items():
        p.tag(k, v)
    for k, v in fields.items():
        p.field(k, v)
    return p.time(t_ns, WritePrecision.NS).to_line_protocol()  # type: ignore[no-any-return]


def _same(ours: str, theirs: str) -> None:
    a, b = parse_line(ours), parse_line(theirs)
    assert (a.measurement, a.tags, a.t_ns) == (b.measurement, b.tags, b.t_ns)
    assert a.fields == b.fields
    assert {k: type(v) for k, v in a.fields.items()} == {k: type(v) for k, v in b.fields.items()}


def test_plant_state_matches_point() -> None:
    s = PlantState.model_validate({**VALID[PlantState], "pue": None})
    fields = {k: v for k, v in s.model_dump().items() if k not in ("ts", "stale") and v is not None}
    fields["stale_count"] = len(s.stale)
    _same(lineproto.plant_state_line("narvik", s), _point_line("plant_state", {"site": "narvik"}, fields,
                                                                 lineproto.ts_ns(s.ts)))


def test_hall_state_matches_point() -> None:
    h = HallState.model_validate(VALID[HallState])
    fields = {k: v for k, v in h.model_dump().items() if k not in ("ts", "hall") and isinstance(v, int | float)}
    _same(lineproto.hall_state_line("narvik", h),
          _point_line("hall_state", {"site": "narvik", "hall": h.hall}, fields, lineproto.ts_ns(h.ts)))


def test_forecast_matches_point() -> None:
    f = Forecast.model_validate({**VALID[Forecast], "skill": 0.8})
    (ours,) = lineproto.forecast_lines("narvik", f)
    p = f.points[0]
    _same(ours, _point_line("forecast", {"site": "narvik", "quantity": f.quantity, "model": f.model},
                            {"mean": p.mean, "p10": p.p10, "p90": p.p90, "issued_ts": f.issued_ts,
                             "lead_s": p.ts - f.issued_ts, "skill": 0.8}, lineproto.ts_ns(p.ts)))


@pytest.mark.parametrize("message", ['plain', 'say "hi", a=b', "back\\slash", "tab\tand, = spaces"])
def test_alarm_with_awkward_text_matches_point(message: str) -> None:
    a = Alarm.model_validate({**VALID[Alarm], "message": message, "value": 81.5, "threshold": 80.0})
    (ours,) = lineproto.alarm_lines("narvik", a)
    tags = {"site": "narvik", "alarm_id": a.alarm_id, "severity": a.severity, "asset": str(a.asset)}
    theirs = _point_line("alarm", tags, {"active": a.active, "value": 81.5, "message": message,
                                         "threshold": 80.0}, lineproto.ts_ns(a.ts))
    _same(ours, theirs)
    assert parse_line(ours).fields["message"] == message


def test_escaped_names_match_point() -> None:
    tags, fields = {"t,a g": "v =1", "site": "a b"}, {"f x": 1.5, "n": 3, "s": 'q"\\'}
    ours = lineproto.line("m x,y", tags, fields, 7)
    _same(ours, _point_line("m x,y", tags, fields, 7))
    assert parse_line(ours).tags == tags


def test_mirror_line_summarises_a_rack() -> None:
    msg = GpuRackTelemetry(ts=1795300466.5, seq=3, source="sim", gpu_power_w=[1000.0, 500.0],
                           gpu_util=[1.0, 0.5], gpu_temp_c=[60.0, 70.0], aux_power_w=2000.0)
    p = parse_line(lineproto.mirror_line("narvik", "gpu", "h1-r001", "h1", msg))
    assert p.measurement == "raw_gpu" and p.tags == {"site": "narvik", "asset": "h1-r001", "hall": "h1"}
    assert p.fields == {"aux_power_w": 2000.0, "gpu_power_w_sum": 1500.0, "gpu_util_mean": 0.75,
                        "gpu_temp_max_c": 70.0, "gpus": 2}
    assert p.t_ns == 1795300466500000000


@pytest.mark.parametrize("bad", [
    "m f=1",  # no timestamp
    "m f=1 12x",
    "m 1",
    "m,t f=1 1",
    'm f="open 1',
    "m f=1.2.3 1",
    "m f=nan 1",
    "m f=-1u 1",
    " f=1 1",
    "m  1",
])
def test_parser_refuses_malformed_lines(bad: str) -> None:
    with pytest.raises(LineProtocolError):
        parse_line(bad)


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "tab\there", "ends\\", "\\", "x\\,y", "a\\ b", "#x"])
def test_awkward_tag_values_never_break_the_line(value: str) -> None:
    """A newline becomes the text ``\\n`` (as in ``Point``); a backslash is doubled, so it never escapes a separator."""
    a = Alarm.model_validate({**VALID[Alarm], "asset": value})
    (ln,) = lineproto.alarm_lines("narvik", a)
    assert "\n" not in ln and "\r" not in ln
    p = parse_line(ln)
    assert set(p.tags) == {"site", "alarm_id", "severity", "asset"} and p.tags["severity"] == "warning"
    assert p.fields["active"] is True and p.t_ns == lineproto.ts_ns(a.ts)
    if not any(c in value for c in "\n\r\t"):
        assert p.tags["asset"] == value
