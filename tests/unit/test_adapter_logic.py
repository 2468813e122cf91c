"""Pure parts of the adapters: unit conversion, Modbus register decoding, DCGM parsing and slotting, seq."""

from __future__ import annotations

import struct

import pytest

from adapters.field.base import Emitter, Refused
from adapters.field.dcgm import DcgmConfig, GpuSample, RackAssembler, parse_exposition
from adapters.field.modbus_cdu import RegisterField, decode_registers, encode_value, plan_reads
from adapters.field.units import contract_unit, converter
from tests.adapter_servers import Gpu, exporter_page
from twin.contract import CoolantTelemetry, GpuRackTelemetry

# ---------------------------------------------------------------- units


@pytest.mark.parametrize(("unit", "field", "value", "expected"), [
    ("C", "supply_c", 35.0, 35.0),
    ("K", "supply_c", 308.15, 35.0),
    ("F", "return_c", 212.0, 100.0),
    ("L/min", "flow_lps", 90.0, 1.5),
    ("m3/h", "flow_lps", 3.6, 1.0),
    ("W", "pump_kw", 2500.0, 2.5),
    ("MW", "delivered_kw", 1.5, 1500.0),
    ("kW", "import_mw", 12_000.0, 12.0),
    ("ratio", "reservoir_pct", 0.42, 42.0),
    ("EUR/kWh", "price_eur_mwh", 0.035, 35.0),
])
def test_converter_hand_values(unit: str, field: str, value: float, expected: float) -> None:
    a, b = converter(unit, field)
    assert a * value + b == pytest.approx(expected)


def test_converter_refuses_other_quantities() -> None:
    with pytest.raises(ValueError, match="unit 'kW' is a power, but flow_lps is a flow in L/s"):
        converter("kW", "flow_lps")
    with pytest.raises(ValueError, match="unknown unit 'gpm'"):
        converter("gpm", "flow_lps")
    assert contract_unit("price_eur_mwh") == "EUR/MWh" and contract_unit("curtailed") == "bool"


# ---------------------------------------------------------------- Modbus registers


def test_decode_registers_by_hand() -> None:
    assert decode_registers([0xFFFF], "int16") == -1.0
    assert decode_registers([0xFFFF], "uint16") == 65535.0
    assert decode_registers([0x0001, 0x1170], "uint32", "big") == 70_000.0  # 0x00011170
    assert decode_registers([0x1170, 0x0001], "uint32", "little") == 70_000.0
    assert decode_registers([0xFFFF, 0xFFFE], "int32") == -2.0
    hi, lo = struct.unpack(">HH", struct.pack(">f", 42.5))
    assert decode_registers([hi, lo], "float32") == 42.5
    assert decode_registers([lo, hi], "float32", "little") == 42.5
    with pytest.raises(ValueError, match="float32 needs 2 registers, got 1"):
        decode_registers([1], "float32")


@pytest.mark.parametrize("type_", ["int16", "uint16", "int32", "uint32", "float32"])
@pytest.mark.parametrize("order", ["big", "little"])
def test_encode_decode_round_trip(type_: str, order: str) -> None:
    v = 1234.5 if type_ == "float32" else (-1234.0 if type_.startswith("int") else 1234.0)
    assert decode_registers(encode_value(v, type_, order), type_, order) == v  # type: ignore[arg-type]


def test_plan_reads_merges_nearby_registers_and_splits_far_ones() -> None:
    def f(addr: int, table: str = "holding", type_: str = "int16") -> RegisterField:
        return RegisterField.model_validate({"address": addr, "register": table, "type": type_, "unit": "C"})
    fields = {"a": f(0), "b": f(1), "c": f(10, type_="float32"), "d": f(200), "e": f(5, "input")}
    assert plan_reads(fields) == [("holding", 0, 12), ("holding", 200, 1), ("input", 5, 1)]


# ---------------------------------------------------------------- DCGM


def _cfg(**extra: object) -> DcgmConfig:
    return DcgmConfig.model_validate({
        "endpoints": ["http://n1:9400/metrics"], "gpus_per_rack": 4, "aux_power_w": 100.0,
        "hosts": [{"hostname": "n1", "hall": "h1", "rack": "r1", "slots": [3, 2, 1, 0]}], **extra})


def test_parse_exposition_reads_the_three_fields_with_labels() -> None:
    page = exporter_page("n1", {0: Gpu("GPU-x", 250.25, 87.0, 61.0)})
    got = sorted(parse_exposition(page, "fallback"), key=lambda s: s.field)
    assert got == [GpuSample("n1", 0, "GPU-x", "power_w", 250.25), GpuSample("n1", 0, "GPU-x", "temp_c", 61.0),
                   GpuSample("n1", 0, "GPU-x", "util", 87.0)]
    bare = 'DCGM_FI_DEV_GPU_TEMP{gpu="2",UUID="GPU-y"} 50\n'
    assert parse_exposition(bare, "n9") == [GpuSample("n9", 2, "GPU-y", "temp_c", 50.0)]
    with pytest.raises(ValueError, match="none of DCGM_FI_DEV_POWER_USAGE"):
        parse_exposition("<html>this is { not prometheus</html>\n", "n1")
    with pytest.raises(ValueError):
        parse_exposition('DCGM_FI_DEV_GPU_TEMP{gpu="0" 50\n', "n1")


def test_assembler_slots_missing_gpus_and_sentinels() -> None:
    asm = RackAssembler(_cfg())
    samples = [GpuSample("n1", i, f"U{i}", f, v) for i in range(4)
               for f, v in (("power_w", 100.0 * (i + 1)), ("util", 25.0 * i), ("temp_c", 40.0 + i))]
    (rep,) = asm.assemble(samples)
    assert rep.rack == "r1" and rep.missing == []
    assert rep.fields["gpu_power_w"] == [400.0, 300.0, 200.0, 100.0]  # gpu i -> slot 3 - i
    assert rep.fields["gpu_util"] == [0.75, 0.5, 0.25, 0.0] and "gpu_missing" not in rep.fields
    # gpu 0 (slot 3) gone, gpu 1 (slot 2) reports a DCGM blank sentinel: both missing, values held
    later = [s for s in samples if s.gpu != 0]
    later = [GpuSample(s.hostname, s.gpu, s.uuid, s.field, 9.223372036854776e18) if (s.gpu, s.field) == (1, "temp_c")
             else s for s in later]
    (rep,) = asm.assemble(later)
    assert rep.fields["gpu_missing"] == [2, 3]
    assert rep.fields["gpu_power_w"] == [400.0, 300.0, 200.0, 100.0]
    msg = GpuRackTelemetry.model_validate({"ts": 1.0, "seq": 0, "source": "adapter/dcgm", **rep.fields})
    assert msg.gpu_missing == [2, 3]
    assert asm.assemble([]) == []  # nothing at all: no message, the rack turns stale


def test_assembler_never_seen_slot_is_zero_power_and_coolest_temperature() -> None:
    asm = RackAssembler(_cfg())
    samples = [GpuSample("n1", 0, "U0", f, v) for f, v in (("power_w", 500.0), ("util", 100.0), ("temp_c", 55.0))]
    (rep,) = asm.assemble([*samples, GpuSample("zz", 0, "U9", "power_w", 1.0)])
    assert rep.fields["gpu_missing"] == [0, 1, 2] and rep.fields["gpu_power_w"] == [0.0, 0.0, 0.0, 500.0]
    assert rep.fields["gpu_temp_c"] == [55.0] * 4 and asm.unmapped == 1


def test_uuid_mapping_wins_over_host_slots() -> None:
    asm = RackAssembler(_cfg(gpus=[{"uuid": "SPECIAL", "hall": "h2", "rack": "r9", "slot": 1}]))
    assert asm.place(GpuSample("n1", 0, "SPECIAL", "util", 1.0)) == ("r9", 1)
    assert asm.place(GpuSample("n1", 0, "other", "util", 1.0)) == ("r1", 3)


def test_contract_gpu_missing_is_checked_against_the_lists() -> None:
    from pydantic import ValidationError

    base = {"ts": 1.0, "seq": 0, "source": "adapter/dcgm", "gpu_power_w": [1.0, 2.0], "gpu_util": [0.1, 0.2],
            "gpu_temp_c": [30.0, 31.0], "aux_power_w": 0.0}
    assert GpuRackTelemetry.model_validate(base).gpu_missing is None
    assert GpuRackTelemetry.model_validate({**base, "gpu_missing": [1]}).gpu_missing == [1]
    with pytest.raises(ValidationError, match="gpu_missing lists slot 2, beyond the 2 GPUs"):
        GpuRackTelemetry.model_validate({**base, "gpu_missing": [2]})
    with pytest.raises(ValidationError, match="lists a slot twice"):
        GpuRackTelemetry.model_validate({**base, "gpu_missing": [0, 0]})


# ---------------------------------------------------------------- Emitter


class _Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, int, bool]] = []

    def publish_nowait(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> bool:
        self.sent.append((topic, payload if isinstance(payload, bytes) else payload.encode(), qos, retain))
        return True


def test_emitter_numbers_each_topic_and_refuses_out_of_range_without_using_a_seq() -> None:
    sink = _Sink()
    em = Emitter(sink, "s1", "cdu")
    ok = {"supply_c": 30.0, "return_c": 40.0, "flow_lps": 1.0, "pump_kw": 0.5}
    a, b = em.topics.coolant("a"), em.topics.coolant("b")
    assert [em.emit(CoolantTelemetry, t, 1.0, ok).seq for t in (a, a, b, a)] == [0, 1, 0, 2]
    with pytest.raises(Refused, match="supply_c"):
        em.emit(CoolantTelemetry, a, 2.0, {**ok, "supply_c": 3276.7})
    assert em.emit(CoolantTelemetry, a, 3.0, ok).seq == 3
    assert {m[0] for m in sink.sent} == {a, b} and all(m[2] == 1 and not m[3] for m in sink.sent)
    assert b'"source":"adapter/cdu"' in sink.sent[0][1] and b"fws_supply_c" not in sink.sent[0][1]
