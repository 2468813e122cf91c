"""Parsing the times, durations and sizes every command takes on the command line (one syntax for all).

Pure: the current time and the log's first ``t`` are passed in.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

__all__ = ["format_t", "parse_duration", "parse_size", "parse_time"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"^(?:{_NUMBER}\s*[smhd]\s*)+$|^{_NUMBER}$")
_PART = re.compile(rf"({_NUMBER})\s*([smhd])")
_SIZES = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_duration(text: str, unit: str = "s", allow_zero: bool = False) -> float:
    """``90``, ``90s``, ``15m``, ``1.5h``, ``1h30m``, ``14d`` -> seconds (> 0, or >= 0 with ``allow_zero``).

    A bare number is in ``unit`` (``s``; ``d`` for an option named ``--train-days``). Units go from the
    largest down, each at most once (``1h30m``, not ``30m1h``).
    """
    t = text.strip().lower()
    if not _DURATION.match(t):
        raise ValueError(f"{text!r} is not a duration like 90s, 10m, 1h30m or 14d")
    parts = _PART.findall(t)
    if not parts:
        seconds = float(t) * _UNITS[unit]
    else:
        order = [list(_UNITS).index(u) for _, u in parts]
        if order != sorted(order, reverse=True) or len(set(order)) != len(order):
            raise ValueError(f"{text!r}: give each unit once, largest first (1h30m, 2d12h)")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not ((seconds > 0 or (allow_zero and seconds == 0)) and math.isfinite(seconds)):
        raise ValueError(f"{text!r} is not a duration above zero")
    return seconds


def parse_size(text: str) -> int:
    """``500k``, ``100M``, ``1G``, ``64MiB`` or bytes -> bytes (> 0); k/M/G are powers of 1000."""
    m = re.match(r"^(\d+(?:\.\d*)?)\s*([a-z]*)$", text.strip().lower())
    if not m or m.group(2) not in _SIZES or float(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a size like 500k, 100M or 1G")
    return int(float(m.group(1)) * _SIZES[m.group(2)])


def parse_time(text: str, *, now: float, first_t: float | None) -> float:
    """A point in time, as Unix seconds.

    ``now``; Unix seconds (``1795300000``); ISO 8601 (``2026-11-21T10:00:00Z``, no zone
    means UTC); or ``+DURATION`` after the log's first message (``+15m``).
    """
    s = text.strip()
    if s == "now":
        return now
    if s.startswith("+"):
        if first_t is None:
            raise ValueError(f"{text!r} is relative to the log's first message, but the log has none")
        return first_t + parse_duration(s[1:])
    try:
        v = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(v):
            raise ValueError(f"{text!r} is not a time")
        return v
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use now, Unix seconds, ISO 8601 (2026-11-21T10:00:00Z) "
                         "or +DURATION after the log's start (+15m)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def format_t(t: float | None) -> str:
    """Unix seconds as ``2026-11-21T10:00:05.123Z``."""
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
