"""Hostile input for the decoders: what an attacker or a broken publisher can put on a topic.

Payloads that are valid but for one thing (a wrong type, NaN, an infinity, a far-future
``ts``, a list of the wrong length, an unknown or repeated field, a huge list, a deep
nesting), random bytes, random JSON, invalid UTF-8, truncated and oversized payloads, and
topics wrong in every part. Hypothesis draws one seed per case; the seed drives a
``random.Random`` that picks the kind of damage and builds the bytes. One draw per case
keeps hypothesis' own cost at ~1-2 ms a case on these loaded 2 cores (each further draw
costs ~0.5 ms), so that 10,000 cases per decoder fit in CI.
"""

from __future__ import annotations

import json
import random
import string
from typing import Any

from hypothesis import strategies as st

from twin.plant import Plant

__all__ = ["DOMAINS", "NOW", "RAW_TOKENS", "SEEDS", "has_duplicate_key", "mutate", "random_json", "telemetry_case",
           "topic_for", "valid_message"]

#: The wall-clock time at receipt in the fuzz tests (the twin checks ``ts`` against it).
NOW = 1_795_300_000.0
DOMAINS = ("hydro", "gpu", "coolant", "heat", "ambient")
MUTATIONS = ("none", "drop", "raw", "json", "float", "int", "extra", "dup", "list_len", "element", "future",
             "huge_list", "deep", "string")
PAYLOAD_KINDS = (*MUTATIONS, "bytes", "json_doc", "deep_doc", "oversized", "utf8", "truncated", "empty")
TOPIC_KINDS = ("right",) * 6 + ("site", "asset", "hall", "shape", "text", "long", "twin")

#: Raw JSON-ish tokens put where a value belongs: non-finite numbers, wrong types, overflow, nesting.
RAW_TOKENS = [
    b"NaN", b"-NaN", b"nan", b"Infinity", b"-Infinity", b"inf", b"1e999", b"-1e999", b"1e-999", b"null", b"true",
    b"false", b'"12.5"', b'""', b"[]", b"{}", b"[1.0]", b'{"v": 1}', b"-0", b"0x10", b"1_000", b"01", b".5", b"5.",
    b"9" * 400, b"-" + b"9" * 30, b"1" + b"0" * 5000, b'"\\ud800"', b'"\xff\xfe"', b"\x00", b"",
    b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b"[" * 50, b"-1.0", b"1e308", b"2e308",
    b"18446744073709551616", b"-9223372036854775809", b"4102444800.0", b"4102444801.0",
]
_FLOATS = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e308, -1e308, 5e-324, 2.0**53 + 1, 1e16, -1.0]


def random_json(r: random.Random, depth: int = 0) -> Any:
    """A random JSON value: scalars of every type, lists and objects a few levels deep."""
    k = r.randrange(9 if depth < 3 else 6)
    if k == 0:
        return None
    if k == 1:
        return r.random() < 0.5
    if k == 2:
        return r.choice([0, 1, -1, 2**31, 2**63, -(2**63) - 1, 2**64, r.randrange(-10**6, 10**6)])
    if k == 3:
        return r.choice([*_FLOATS, r.uniform(-1e6, 1e6)])
    if k in (4, 5):
        return "".join(r.choice(string.printable + "\u00e4\u2028\ud7ff\U0001f600") for _ in range(r.randrange(12)))
    if k in (6, 7):
        return [random_json(r, depth + 1) for _ in range(r.randrange(5))]
    return {str(random_json(r, 3)): random_json(r, depth + 1) for _ in range(r.randrange(5))}


def valid_message(domain: str, plant: Plant, ts: float = NOW - 1.0, seq: int = 0) -> dict[str, Any]:
    """A message of ``domain`` the plant accepts."""
    head: dict[str, Any] = {"ts": ts, "seq": seq, "source": "sim"}
    g = plant.rack.gpus
    body: dict[str, dict[str, Any]] = {
        "hydro": {"available_mw": 0.5, "import_mw": 0.3, "frequency_hz": 50.0, "price_eur_mwh": -4.5,
                  "reservoir_pct": 60.0, "curtailed": False},
        "gpu": {"gpu_power_w": [500.0] * g, "gpu_util": [0.5] * g, "gpu_temp_c": [55.0] * g, "aux_power_w": 700.0},
        "coolant": {"supply_c": 30.0, "return_c": 40.0, "flow_lps": 1.0, "pump_kw": 1.0, "fws_supply_c": 20.0},
        "heat": {"delivered_kw": 10.0, "demand_kw": 12.0, "supply_c": 60.0, "return_c": 40.0, "heat_pump_kw": 0.0},
        "ambient": {"temp_c": -3.0, "humidity_pct": 80.0, "wind_ms": 4.0},
    }
    return head | body[domain]


def _dump(v: Any) -> bytes:
    return json.dumps(v, allow_nan=True).encode()  # NaN / Infinity tokens on purpose


def mutate(base: dict[str, Any], kind: str, r: random.Random, limit: int = 64 * 1024) -> bytes:
    """``base`` as JSON text with one thing wrong (``kind``), or a payload of another kind altogether."""
    if kind == "bytes":
        return r.randbytes(r.randrange(300))
    if kind == "json_doc":
        return _dump(random_json(r))
    if kind == "deep_doc":
        n = r.choice([r.randrange(1, 2000), r.randrange(2000, 30_000)])
        return b"[" * n + b"]" * n if r.random() < 0.5 else b'{"a":' * n + b"1" + b"}" * n
    if kind == "oversized":
        body = _dump(base)
        return body[:-1] + b" " * (limit - len(body) + r.randrange(1, 5000)) + b"}"
    if kind == "utf8":
        return _dump(base).replace(b'"sim"', b'"s' + r.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]) + b'm"')
    if kind == "truncated":
        body = _dump(base)
        return body[: r.randrange(len(body))]
    if kind == "empty":
        return r.choice([b"", b" ", b"null", b"{}", b"[]", b"0", b'""'])
    items: list[tuple[str, bytes]] = [(k, _dump(v)) for k, v in base.items()]
    i = r.randrange(len(items))
    key = items[i][0]
    lists = [k for k, v in base.items() if isinstance(v, list)]
    if kind == "drop":
        del items[i]
    elif kind == "raw":
        items[i] = (key, r.choice(RAW_TOKENS))
    elif kind == "json":
        items[i] = (key, _dump(random_json(r)))
    elif kind == "float":
        items[i] = (key, _dump(r.choice(_FLOATS)))
    elif kind == "int":
        items[i] = (key, str(r.choice([-1, 0, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30])).encode())
    elif kind == "string":
        items[i] = (key, _dump(r.choice(["", "1.0", "sim\n", "x" * 10_000, "adapter/" + "a" * 200, "\u0000"])))
    elif kind == "extra":
        items.insert(i, (r.choice(["gpu_power_kw", "extra", "ts ", "TS", "__proto__", "", "\n"]),
                         _dump(random_json(r))))
    elif kind == "dup":
        items.append((key, _dump(random_json(r) if r.random() < 0.5 else base[key])))
    elif kind in ("list_len", "element", "huge_list") and lists:
        k = r.choice(lists)
        j = [name for name, _ in items].index(k)
        if kind == "list_len":
            n = r.choice([0, 1, len(base[k]) - 1, len(base[k]) + 1, 73, 577, 4096])
            items[j] = (k, _dump([1.0] * n))
        elif kind == "huge_list":
            items[j] = (k, b"[" + b",".join([b"0.5"] * r.randrange(1_000, 40_000)) + b"]")
        else:
            vals = [_dump(v) for v in base[k]]
            vals[r.randrange(len(vals))] = r.choice(RAW_TOKENS)
            items[j] = (k, b"[" + b",".join(vals) + b"]")
    elif kind == "future":
        ahead = r.choice([299.0, 300.5, 301.0, 3600.0, 86_400.0 * 365, 4_102_444_800.0 - NOW, 5e9])
        items = [(k, _dump(NOW + ahead) if k == "ts" else v) for k, v in items]
    elif kind == "deep":
        n = r.randrange(100, 20_000)
        items[i] = (key, b"[" * n + b"]" * n)
    if r.random() < 0.3:
        r.shuffle(items)
    sep = r.choice([b",", b", ", b",\n", b" ,\t"])
    return b"{" + sep.join(_dump(k) + b":" + v for k, v in items) + b"}"


def topic_for(plant: Plant, domain: str, kind: str, r: random.Random) -> str:
    """Mostly the right topic for an asset of ``domain``; else one wrong in site, asset, hall, shape or text."""
    site = plant.site.id
    assets = {"hydro": plant.feeder_ids, "gpu": plant.rack_ids, "coolant": plant.cdu_ids,
              "heat": plant.exchanger_ids, "ambient": [plant.weather.station]}[domain]
    a = r.choice(list(assets))
    hall_of = {x: h.id for h in plant.halls for x in h.rack_ids}

    def right(s: str = site, x: str = a) -> str:
        return f"stargate/{s}/gpu/{hall_of.get(x, 'h1')}/{x}" if domain == "gpu" else f"stargate/{s}/{domain}/{x}"

    if kind == "right":
        return right()
    if kind == "site":
        return right(s=r.choice(["narvik", "", "TINY", "a/b", "+", "#", "x" * 33, site + " ", site + "\n"]))
    if kind == "asset":
        return right(x=r.choice(["nope", "", "a b", "+", "#", "x" * 65, "\u00e4", a + "/extra", a + "\x00"]))
    if kind == "hall":
        wrong = [h.id for h in plant.halls if h.id != hall_of.get(a)] or ["h99"]
        return f"stargate/{site}/gpu/{r.choice([*wrong, '', 'h99'])}/{a}"
    if kind == "shape":
        return r.choice([f"stargate/{site}", f"stargate/{site}/{domain}", f"stargate/{site}/{domain}/",
                         f"/stargate/{site}/{domain}/{a}", f"stargate/{site}/power/{a}", f"stargate/{site}/gpu/{a}",
                         f"stargate//{domain}/{a}", "", "/", "//////"])
    if kind == "long":
        return right() + "/x" * r.randrange(1, 5_000)
    if kind == "twin":
        return f"stargate/{site}/twin/state"
    return "".join(r.choice(string.printable + "/+#\u00e4") for _ in range(r.randrange(80)))


#: What hypothesis draws: one seed per case.
SEEDS = st.integers(0, 2**32)


def telemetry_case(plant: Plant, seed: int, domain: str | None = None) -> tuple[str, str, bytes]:
    """``(domain, topic, payload)`` of one case: a domain (or the given one), a kind of topic and of payload."""
    r = random.Random(seed)
    d = domain or r.choice(DOMAINS)
    return d, topic_for(plant, d, r.choice(TOPIC_KINDS), r), mutate(valid_message(d, plant), r.choice(PAYLOAD_KINDS), r)


def has_duplicate_key(payload: bytes) -> bool:
    """A JSON object with a key twice at the top level (parsers differ on those: first, last or refuse)."""
    if not payload.lstrip().startswith(b"{"):
        return False
    dup = False

    def pairs(kv: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal dup
        keys = [k for k, _ in kv]
        dup = dup or len(set(keys)) != len(keys)
        return dict(kv)

    try:
        json.loads(payload, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return False
    return dup
