"""Engineering units of field devices converted to the units of the wire contract.

Pure: no network. A contract field names its unit by its suffix (``_c``, ``_kw``,
``_mw``, ``_lps``, ``_hz``, ``_pct``, ``_eur_mwh``); a device register or an OPC UA
node carries a value in the unit its vendor chose. :func:`converter` returns the
affine map ``value_contract = a * value_device + b`` between them, or raises
:class:`ValueError` naming the units that do not fit.

Conversions (exact by definition): K = C + 273.15; F = C * 9/5 + 32;
1 L/min = 1/60 L/s; 1 m3/h = 1000/3600 L/s; 1 kW = 1000 W; 1 MW = 1000 kW.
"""

from __future__ import annotations

__all__ = ["CONTRACT_UNITS", "UNITS", "contract_unit", "converter"]

#: unit -> (quantity, a, b) with value_in_base_unit = a * value + b.
#: Base units: C, L/s, W, Hz, %, EUR/MWh, 1 (dimensionless ratio), bool.
UNITS: dict[str, tuple[str, float, float]] = {
    "C": ("temperature", 1.0, 0.0),
    "K": ("temperature", 1.0, -273.15),
    "F": ("temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    "L/s": ("flow", 1.0, 0.0),
    "L/min": ("flow", 1.0 / 60.0, 0.0),
    "m3/h": ("flow", 1000.0 / 3600.0, 0.0),
    "W": ("power", 1.0, 0.0),
    "kW": ("power", 1e3, 0.0),
    "MW": ("power", 1e6, 0.0),
    "Hz": ("frequency", 1.0, 0.0),
    "%": ("percent", 1.0, 0.0),
    "ratio": ("percent", 100.0, 0.0),
    "EUR/MWh": ("price", 1.0, 0.0),
    "EUR/kWh": ("price", 1000.0, 0.0),
    "bool": ("bool", 1.0, 0.0),
}

#: contract field suffix -> the unit the contract means.
CONTRACT_UNITS: dict[str, str] = {
    "_c": "C",
    "_lps": "L/s",
    "_w": "W",
    "_kw": "kW",
    "_mw": "MW",
    "_hz": "Hz",
    "_pct": "%",
    "_eur_mwh": "EUR/MWh",
}

#: contract fields whose name carries no unit suffix.
_UNSUFFIXED = {"curtailed": "bool"}


def contract_unit(field: str) -> str:
    """The unit a contract field is expressed in, from its name (``flow_lps`` -> ``L/s``)."""
    if field in _UNSUFFIXED:
        return _UNSUFFIXED[field]
    for suffix in sorted(CONTRACT_UNITS, key=len, reverse=True):
        if field.endswith(suffix):
            return CONTRACT_UNITS[suffix]
    raise ValueError(f"field {field!r} has no unit suffix the contract knows")


def converter(unit: str, field: str) -> tuple[float, float]:
    """``(a, b)`` such that ``a * value_in_unit + b`` is the value in the unit of ``field``."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r} (known: {', '.join(UNITS)})")
    target = contract_unit(field)
    q_from, a1, b1 = UNITS[unit]
    q_to, a2, b2 = UNITS[target]
    if q_from != q_to:
        raise ValueError(f"unit {unit!r} is a {q_from}, but {field} is a {q_to} in {target}")
    # base = a1 * v + b1 ; target = (base - b2) / a2
    return a1 / a2, (b1 - b2) / a2
