"""Every contract model accepts a valid message and refuses each kind of invalid one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from twin.contract import (
    Alarm,
    AmbientTelemetry,
    CoolantTelemetry,
    DeadLetter,
    Forecast,
    GpuRackTelemetry,
    HallState,
    HeatTelemetry,
    HydroTelemetry,
    PlantState,
)

BASE = {"ts": 1795300466.012, "seq": 7, "source": "sim"}

VALID: dict[type[BaseModel], dict[str, Any]] = {
    HydroTelemetry: {**BASE, "available_mw": 120.0, "import_mw": 101.5, "frequency_hz": 50.01,
                     "price_eur_mwh": -3.2, "reservoir_pct": 61.0, "curtailed": False},
    GpuRackTelemetry: {**BASE, "gpu_power_w": [1200.0, 1180.5, 0.0], "gpu_util": [0.9, 0.88, 0.0],
                       "gpu_temp_c": [66.0, 65.2, 30.0], "aux_power_w": 28000.0},
    CoolantTelemetry: {**BASE, "supply_c": 32.0, "return_c": 42.5, "flow_lps": 19.3, "pump_kw": 8.8,
                       "fws_supply_c": 28.0, "fws_return_c": 38.0},
    HeatTelemetry: {**BASE, "delivered_kw": 25000.0, "demand_kw": 30000.0, "supply_c": 75.0,
                    "return_c": 45.0, "heat_pump_kw": 6200.0},
    AmbientTelemetry: {**BASE, "temp_c": -4.2, "humidity_pct": 80.0, "wind_ms": 6.5},
    PlantState: {"ts": 1795300466.0, "it_mw": 180.0, "facility_mw": 200.0, "pue": 1.111, "contract_mw": 230.0,
                 "hydro_available_mw": 250.0, "headroom_mw": 30.0, "gpus_total": 100224, "gpus_reporting": 100224,
                 "gpu_util_mean": 0.8, "gpu_temp_max_c": 70.0, "heat_to_liquid_mw": 162.0,
                 "liquid_capture_ratio": 0.9, "heat_reused_mw": 45.0, "heat_pump_mw": 6.0, "erf": 0.2,
                 "coolant_return_max_c": 43.0, "ambient_c": -4.0, "stale": ["gpu/h1-r001"], "msgs_in": 10,
                 "msgs_rejected": 1, "msgs_duplicate": 0, "seq_gaps": 0},
    HallState: {"ts": 1795300466.0, "hall": "h1", "it_mw": 22.0, "gpus_total": 12528, "gpus_reporting": 12456,
                "gpu_util_mean": 0.8, "gpu_temp_max_c": 70.0, "heat_to_liquid_mw": 20.0,
                "liquid_capture_ratio": 0.9, "coolant_return_max_c": 43.0},
    Forecast: {"quantity": "facility_mw", "issued_ts": 1795300466.0, "model": "persistence", "step_s": 60.0,
               "points": [{"ts": 1795300526.0, "mean": 200.0, "p10": 195.0, "p90": 205.0}], "skill": None},
    Alarm: {"alarm_id": "gpu_temp_high-h1-r001", "severity": "warning", "active": True, "ts": 1795300466.0,
            "message": "GPU over temperature", "asset": "gpu/h1-r001", "value": 88.0, "threshold": 83.0},
    DeadLetter: {"ts": 1795300466.0, "topic": "stargate/narvik/gpu/h1/h1-r001", "reason": "bad JSON",
                 "payload": "{not json"},
}

TELEMETRY = [HydroTelemetry, GpuRackTelemetry, CoolantTelemetry, HeatTelemetry, AmbientTelemetry]


@pytest.mark.parametrize("model", list(VALID), ids=lambda m: m.__name__)
def test_valid_message_is_accepted(model: type[BaseModel]) -> None:
    m = model.model_validate_json(json.dumps(VALID[model]))
    assert m.model_dump(exclude_unset=True) == VALID[model]


@pytest.mark.parametrize("model", TELEMETRY, ids=lambda m: m.__name__)
def test_optional_fields_may_be_left_out(model: type[BaseModel]) -> None:
    required = {k: v for k, v in VALID[model].items() if model.model_fields[k].is_required()}
    assert model.model_validate_json(json.dumps(required))


@pytest.mark.parametrize("model", list(VALID), ids=lambda m: m.__name__)
@pytest.mark.parametrize("raw", [b"{not json", b"", b"[]", b"null", b'"text"', b"\xff\xfe"])
def test_bad_json_is_refused(model: type[BaseModel], raw: bytes) -> None:
    with pytest.raises(ValidationError):
        model.model_validate_json(raw)


def _with(model: type[BaseModel], **changes: Any) -> str:
    return json.dumps({**VALID[model], **changes})


@pytest.mark.parametrize(("model", "field", "value"), [
    (HydroTelemetry, "available_mw", "120"),          # number as a string
    (HydroTelemetry, "curtailed", "yes"),
    (HydroTelemetry, "seq", 1.5),
    (GpuRackTelemetry, "gpu_power_w", "1200"),
    (GpuRackTelemetry, "gpu_util", [0.9, "0.8", 0.1]),
    (CoolantTelemetry, "flow_lps", None),
    (HeatTelemetry, "delivered_kw", {"kw": 1}),
    (AmbientTelemetry, "temp_c", [1.0]),
    (AmbientTelemetry, "source", 3),
    (Alarm, "active", "true"),
    (Forecast, "points", {"ts": 1}),
])
def test_wrong_type_is_refused(model: type[BaseModel], field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        model.model_validate_json(_with(model, **{field: value}))


@pytest.mark.parametrize("model", TELEMETRY, ids=lambda m: m.__name__)
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(model: type[BaseModel], literal: str) -> None:
    field = next(k for k, v in VALID[model].items() if isinstance(v, float) and k != "ts")
    raw = _with(model, **{field: 0.0}).replace(f'"{field}": 0.0', f'"{field}": {literal}')
    assert literal in raw
    with pytest.raises(ValidationError):
        model.model_validate_json(raw)


def test_nan_inside_gpu_lists_is_refused() -> None:
    raw = _with(GpuRackTelemetry).replace("1180.5", "NaN")
    with pytest.raises(ValidationError):
        GpuRackTelemetry.model_validate_json(raw)


@pytest.mark.parametrize(("model", "field", "value"), [
    (HydroTelemetry, "available_mw", -1.0),
    (HydroTelemetry, "frequency_hz", 0.0),
    (HydroTelemetry, "reservoir_pct", 101.0),
    (GpuRackTelemetry, "gpu_util", [1.01, 0.5, 0.5]),
    (GpuRackTelemetry, "gpu_power_w", [-5.0, 0.0, 0.0]),
    (GpuRackTelemetry, "gpu_temp_c", [500.0, 30.0, 30.0]),
    (GpuRackTelemetry, "aux_power_w", -1.0),
    (CoolantTelemetry, "flow_lps", -0.1),
    (HeatTelemetry, "heat_pump_kw", -1.0),
    (AmbientTelemetry, "humidity_pct", 120.0),
    (AmbientTelemetry, "ts", -5.0),
    (AmbientTelemetry, "ts", 1795300466012.0),  # milliseconds, not seconds
    (AmbientTelemetry, "seq", -1),
    (AmbientTelemetry, "source", "simulator"),
    (Alarm, "severity", "fatal"),
    (Forecast, "quantity", "gpu_mw"),
])
def test_out_of_range_is_refused(model: type[BaseModel], field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        model.model_validate_json(_with(model, **{field: value}))


@pytest.mark.parametrize("lists", [
    {"gpu_util": [0.9, 0.8]},
    {"gpu_temp_c": [60.0, 60.0, 60.0, 60.0]},
    {"gpu_power_w": [], "gpu_util": [], "gpu_temp_c": []},
])
def test_unequal_or_empty_gpu_lists_are_refused(lists: dict[str, list[float]]) -> None:
    with pytest.raises(ValidationError, match=r"equal length|at least 1"):
        GpuRackTelemetry.model_validate_json(_with(GpuRackTelemetry, **lists))


def test_huge_gpu_list_is_refused() -> None:
    n = 2000
    raw = _with(GpuRackTelemetry, gpu_power_w=[1.0] * n, gpu_util=[0.1] * n, gpu_temp_c=[30.0] * n)
    with pytest.raises(ValidationError):
        GpuRackTelemetry.model_validate_json(raw)


@pytest.mark.parametrize("model", TELEMETRY, ids=lambda m: m.__name__)
def test_unknown_field_is_refused_in_telemetry(model: type[BaseModel]) -> None:
    """A misspelt unit suffix must not be silently ignored."""
    with pytest.raises(ValidationError, match="Extra inputs"):
        model.model_validate_json(_with(model, flow_lpm=3.0))


@pytest.mark.parametrize("model", TELEMETRY, ids=lambda m: m.__name__)
def test_missing_required_field_is_refused(model: type[BaseModel]) -> None:
    for field in (k for k in VALID[model] if model.model_fields[k].is_required()):
        data = {k: v for k, v in VALID[model].items() if k != field}
        with pytest.raises(ValidationError, match="Field required"):
            model.model_validate_json(json.dumps(data))


def test_forecast_interval_must_be_ordered() -> None:
    bad = {**VALID[Forecast], "points": [{"ts": 1795300526.0, "mean": 1.0, "p10": 5.0, "p90": 2.0}]}
    with pytest.raises(ValidationError, match="p10"):
        Forecast.model_validate_json(json.dumps(bad))


def test_plant_state_refuses_nan_on_output() -> None:
    with pytest.raises(ValidationError):
        PlantState.model_validate({**VALID[PlantState], "it_mw": float("nan")})
