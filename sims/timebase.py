"""Event time for the simulators: durations (``14d``, ``1h30m``), start times, calendar shapes.

No clock is read here: every function takes the event time it works on.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

__all__ = ["DAY_S", "YEAR_S", "day_of_year", "hour_utc", "parse_duration", "parse_start"]

DAY_S = 86_400.0
YEAR_S = 365.25 * DAY_S

_UNITS = {"d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``14d``, ``6h``, ``30m``, ``10s``, ``1h30m``, ``250ms`` or a plain number of seconds.

    Raises ``ValueError`` with a one-line message on anything else.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if not math.isfinite(text) or text < 0:
            raise ValueError(f"a duration must be a finite number of seconds >= 0, got {text!r}")
        return float(text)
    s = text.strip().lower().replace(" ", "")
    try:
        v = float(s)
    except ValueError:
        pass
    else:
        return parse_duration(v)
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"not a duration: {text!r} (use e.g. 14d, 6h, 30m, 10s, 1h30m or seconds)")
    return total


def parse_start(text: str | float | int | datetime) -> float:
    """Unix seconds from an ISO 8601 time (``2026-01-15``, ``2026-01-15T06:00:00Z``; UTC when no zone
    is given), a :class:`datetime`, or a number of Unix seconds."""
    if isinstance(text, datetime):
        dt = text if text.tzinfo else text.replace(tzinfo=UTC)
        return dt.timestamp()
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip()
    try:
        return float(s)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a start time: {text!r} (use ISO 8601 such as 2026-01-15T00:00:00Z, "
                         f"or Unix seconds)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def day_of_year(ts: float) -> float:
    """Fractional day of the year (0 at 1 January 00:00 UTC) of Unix time ``ts``."""
    dt = datetime.fromtimestamp(ts, UTC)
    jan1 = datetime(dt.year, 1, 1, tzinfo=UTC).timestamp()
    return (ts - jan1) / DAY_S


def hour_utc(ts: float) -> float:
    """Fractional hour of the day (UTC) of Unix time ``ts``."""
    return (ts % DAY_S) / 3600.0
