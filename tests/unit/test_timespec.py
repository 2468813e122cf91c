"""Times, durations and sizes of the record / replay command lines."""

from __future__ import annotations

import pytest

from twin.timespec import format_t, parse_duration, parse_size, parse_time


def test_times() -> None:
    assert parse_time("now", now=5.0, first_t=None) == 5.0
    assert parse_time("1795300000.5", now=0, first_t=None) == 1795300000.5
    assert parse_time("2026-11-21T10:00:00Z", now=0, first_t=None) == 1795255200.0
    assert parse_time("2026-11-21T11:00:00+01:00", now=0, first_t=None) == 1795255200.0
    assert parse_time("2026-11-21T10:00:00", now=0, first_t=None) == 1795255200.0
    assert parse_time("+15m", now=0, first_t=100.0) == 1000.0
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday", now=0, first_t=None)
    with pytest.raises(ValueError, match="relative"):
        parse_time("+1h", now=0, first_t=None)
    assert format_t(1795255200.25) == "2026-11-21T10:00:00.250Z"


def test_durations_and_sizes() -> None:
    assert [parse_duration(s) for s in ("90", "90s", "15m", "1.5h", "2d")] == [90, 90, 900, 5400, 172800]
    assert [parse_size(s) for s in ("500k", "100M", "1G", "64MiB", "123")] == [500_000, 100_000_000,
                                                                               1_000_000_000, 64 * 1024**2, 123]
    for bad in ("0", "-1h", "1w"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    with pytest.raises(ValueError):
        parse_size("lots")
