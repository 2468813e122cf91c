"""Line protocol of the contract's measurements: names, tags, escaping, timestamps."""

from __future__ import annotations

from tests.contract.test_models import VALID
from twin import lineproto
from twin.contract import Alarm, Forecast, HallState, PlantState


def test_plant_state_line_has_the_numeric_fields_and_site_tag() -> None:
    s = PlantState.model_validate(VALID[PlantState])
    ln = lineproto.plant_state_line("narvik", s)
    head, fields, ts = ln.split(" ")
    assert head == "plant_state,site=narvik"
    assert ts == "1795300466000000000"
    kv = dict(f.split("=") for f in fields.split(","))
    assert kv["it_mw"] == "180.0" and kv["gpus_total"] == "100224i" and kv["stale_count"] == "1i"
    assert "stale" not in kv and "ts" not in kv


def test_none_fields_are_left_out() -> None:
    s = PlantState.model_validate({**VALID[PlantState], "pue": None, "erf": None})
    ln = lineproto.plant_state_line("narvik", s)
    assert "pue=" not in ln and "erf=" not in ln


def test_hall_forecast_and_alarm_lines() -> None:
    h = HallState.model_validate(VALID[HallState])
    assert lineproto.hall_state_line("narvik", h).startswith("hall_state,hall=h1,site=narvik it_mw=22.0,")
    f = Forecast.model_validate(VALID[Forecast])
    (fl,) = lineproto.forecast_lines("narvik", f)
    assert fl == ("forecast,model=persistence,quantity=facility_mw,site=narvik "
                  "mean=200.0,p10=195.0,p90=205.0,issued_ts=1795300466.0,lead_s=60.0 1795300526000000000")
    a = Alarm.model_validate({**VALID[Alarm], "message": 'say "hi", a=b'})
    (al,) = lineproto.alarm_lines("narvik", a)
    assert al.startswith("alarm,alarm_id=gpu_temp_high-h1-r001,asset=gpu/h1-r001,severity=warning,site=narvik ")
    assert 'message="say \\"hi\\", a=b"' in al and "active=true" in al


def test_tags_with_spaces_commas_and_equals_are_escaped() -> None:
    ln = lineproto.line("m x", {"t,a g": "v =1"}, {"f": 1.5}, 7)
    assert ln == r"m\ x,t\,a\ g=v\ \=1 f=1.5 7"


def test_timestamps_round_to_the_microsecond() -> None:
    assert lineproto.ts_ns(1795300466.012) == 1795300466012000000
