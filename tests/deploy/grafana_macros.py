"""Grafana's InfluxQL macros and template variables, expanded as its InfluxDB data source does, so that a
dashboard's query text can be run as is against a real InfluxDB.

- ``$timeFilter`` -> ``time >= <from>ms and time <= <to>ms``;
- ``$__interval`` / ``$interval`` -> the group-by interval Grafana picks for the range (range / max data points,
  rounded up to a round duration, at least the data source's 1 s); ``$__interval_ms`` -> it in milliseconds;
- template variables ``$name`` and ``${name}`` (``${name:raw}`` too) -> their value; inside a regex literal
  (``/^$site$/``) the value is regex-escaped, as Grafana does for regex context.
"""

from __future__ import annotations

import re

__all__ = ["expand", "interval_for"]

_ROUND_S = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def interval_for(from_ms: int, to_ms: int, max_points: int = 1000) -> tuple[str, int]:
    """The ``$__interval`` for a range: ``(text, milliseconds)``."""
    want = max((to_ms - from_ms) / 1000 / max_points, 1)
    s = next((r for r in _ROUND_S if r >= want), _ROUND_S[-1])
    text = f"{s // 3600}h" if s % 3600 == 0 else f"{s // 60}m" if s % 60 == 0 else f"{s}s"
    return text, s * 1000


_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_REGEX_LITERAL = re.compile(r"(=~|!~)\s*/((?:[^/\\]|\\.)*)/")


def expand(query: str, variables: dict[str, str], from_ms: int, to_ms: int, max_points: int = 1000) -> str:
    """The query Grafana sends for this range and these variable values; an unknown ``$name`` raises."""
    text, ms = interval_for(from_ms, to_ms, max_points)
    q = query.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    q = q.replace("$__interval_ms", str(ms)).replace("$__interval", text).replace("$interval", text)

    def value(m: re.Match[str], escape: bool) -> str:
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise KeyError(f"${name} is not a variable of the dashboard: {query}")
        return re.escape(variables[name]) if escape else variables[name]

    def in_regex(m: re.Match[str]) -> str:
        return f"{m.group(1)} /{_VAR.sub(lambda v: value(v, True), m.group(2))}/"

    q = _REGEX_LITERAL.sub(in_regex, q)
    return _VAR.sub(lambda v: value(v, False), q)
