"""The fast decoders accept and refuse exactly what the pydantic contract models do."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.live.decode import Decoded, Decoder
from twin.plant import Plant, load_plant

T0 = 1_795_300_000.0
PLANT: Plant = load_plant("tests/data/small.toml")
FAST = Decoder(PLANT, fast=True)
SLOW = Decoder(PLANT, fast=False)

VALID: dict[str, tuple[str, dict[str, Any]]] = {
    "gpu": ("stargate/tiny/gpu/h1/h1-r001", {"gpu_power_w": [1.0, 2.0, 3.0, 4.0], "gpu_util": [0.1, 0.2, 0.3, 0.4],
                                             "gpu_temp_c": [30.0, 31.0, 32.0, 33.0], "aux_power_w": 10.0}),
    "hydro": ("stargate/tiny/hydro/fa", {"available_mw": 1.0, "import_mw": 0.5, "frequency_hz": 50.0,
                                         "price_eur_mwh": 12.0, "reservoir_pct": 50.0, "curtailed": True}),
    "coolant": ("stargate/tiny/coolant/h1-cdu01", {"supply_c": 30.0, "return_c": 40.0, "flow_lps": 1.0,
                                                   "pump_kw": 0.1, "fws_supply_c": 25.0}),
    "heat": ("stargate/tiny/heat/dh", {"delivered_kw": 1.0, "demand_kw": 2.0, "supply_c": 70.0, "return_c": 40.0,
                                       "heat_pump_kw": 0.2}),
    "ambient": ("stargate/tiny/ambient/ws1", {"temp_c": -3.0, "humidity_pct": 80.0, "wind_ms": 3.0}),
}

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-2, max_value=2),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.booleans(), st.none(), st.text(max_size=5),
    st.lists(st.floats(min_value=-10, max_value=2000), max_size=6),
    st.lists(st.integers(min_value=-2, max_value=6), max_size=6),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, bytes]:
    domain = draw(st.sampled_from(sorted(VALID)))
    topic, fields = VALID[domain]
    msg: dict[str, Any] = {"ts": T0, "seq": 3, "source": "sim", **fields}
    if domain == "gpu" and draw(st.booleans()):
        msg["gpu_missing"] = draw(st.lists(st.integers(min_value=-1, max_value=5), max_size=4))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        action = draw(st.sampled_from(["set", "delete", "add", "source", "ts"]))
        key = draw(st.sampled_from(sorted(msg)))
        if action == "set":
            msg[key] = draw(values)
        elif action == "delete":
            msg.pop(key, None)
        elif action == "add":
            msg[draw(st.sampled_from(["extra", "flow_lpm", "ts2"]))] = draw(values)
        elif action == "source":
            msg["source"] = draw(st.sampled_from(["sim", "replay", "adapter/dcgm", "adapter/", "simx", "", "Sim"]))
        else:
            msg["ts"] = draw(st.sampled_from([0, -1, T0, 4102444800.0, 4102444800.5, 1e300, 17]))
    raw = json.dumps(msg, allow_nan=True).encode()
    if draw(st.integers(min_value=0, max_value=20)) == 0:
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    return topic, raw


def _fields(d: Decoded) -> dict[str, Any]:
    names = [n for n in ("ts", "seq", "source", *VALID[d.domain][1], "gpu_missing", "reservoir_pct", "curtailed",
                         "fws_return_c") if hasattr(d.msg, n)]
    return {n: getattr(d.msg, n) for n in names}


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads())
def test_fast_and_pydantic_decoders_agree(message: tuple[str, bytes]) -> None:
    topic, raw = message
    fast, slow = FAST.decode(topic, raw), SLOW.decode(topic, raw)
    assert isinstance(fast, Decoded) == isinstance(slow, Decoded), (raw, fast, slow)
    if isinstance(fast, Decoded) and isinstance(slow, Decoded):
        assert _fields(fast) == _fields(slow)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_are_refused_by_both(raw: bytes) -> None:
    for topic, _ in VALID.values():
        assert not isinstance(FAST.decode(topic, raw), Decoded)
        assert not isinstance(SLOW.decode(topic, raw), Decoded)
