"""Fuzzing the telemetry decoder (``twin.live.decode.Decoder``): both paths, every domain, 10,000 cases each.

Per case: neither path raises; a refusal has a reason; the fast (msgspec) and the reference
(pydantic) path accept and refuse the same inputs (except a key given twice, where pydantic
checks only the last occurrence); what is accepted is finite and of the plant's shape, and
both paths read the same values.
"""

from __future__ import annotations

import math
import os
from functools import cache

from hypothesis import HealthCheck, Phase, given, settings

from tests.conftest import REPO
from tests.fuzz.hostile import DOMAINS, SEEDS, has_duplicate_key, telemetry_case
from twin.contract import DOMAIN_MODELS
from twin.live.decode import Decoded, Decoder, Rejected
from twin.plant import Plant, load_plant

CASES = int(os.environ.get("TWIN_FUZZ_CASES", "10000"))  # per decoder; CI runs the default


@cache
def _plant() -> Plant:
    return load_plant(REPO / "tests" / "data" / "small.toml")


@cache
def _decoders() -> tuple[Decoder, Decoder]:
    return Decoder(_plant(), fast=True), Decoder(_plant(), fast=False)


def _check(topic: str, payload: bytes) -> None:
    fast, ref = (d.decode(topic, payload) for d in _decoders())
    for r in (fast, ref):
        assert isinstance(r, Decoded | Rejected)
        if isinstance(r, Rejected):
            assert isinstance(r.reason, str) and r.reason, r
    if type(fast) is not type(ref):  # msgspec checks every occurrence of a key, pydantic only the last
        assert has_duplicate_key(payload), (fast, ref)
        return
    if isinstance(fast, Decoded) and isinstance(ref, Decoded):
        assert (fast.domain, fast.index) == (ref.domain, ref.index)
        for name in DOMAIN_MODELS[fast.domain].model_fields:
            a, b = getattr(fast.msg, name), getattr(ref.msg, name)
            assert a == b, (name, a, b)
            for v in a if isinstance(a, list) else [a]:
                assert not isinstance(v, float) or math.isfinite(v), (name, v)
        if fast.domain == "gpu":
            assert len(fast.msg.gpu_power_w) == _plant().rack.gpus


@settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
          phases=[Phase.generate, Phase.shrink])
@given(seed=SEEDS)
def test_decoder_survives_hostile_input_in_every_domain(seed: int) -> None:
    for i, domain in enumerate(DOMAINS):  # one case per domain: CASES cases for each domain's decoder
        _, topic, payload = telemetry_case(_plant(), seed * 8 + i, domain)
        try:
            _check(topic, payload)
        except AssertionError as e:
            raise AssertionError(f"{domain}: {topic[:200]!r} {payload[:400]!r}: {e}") from None
