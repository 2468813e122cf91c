"""Times, durations and sizes of the record / replay command lines."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

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


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("14d", 14 * 86400), ("2d12h", 216000),
    ("1h 30m", 5400), (".5m", 30), ("1m30.5s", 90.5),
])
def test_one_duration_syntax(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["30m1h", "1h1h", "0", "0s", "-5", "1e3", "inf", "nan", "10 minutes", "", "h"])
def test_bad_durations_say_what_a_duration_looks_like(bad: str) -> None:
    with pytest.raises(ValueError, match=r"duration|largest first"):
        parse_duration(bad)


def test_a_bare_number_in_the_option_unit_and_zero_where_allowed() -> None:
    assert parse_duration("14", unit="d") == 14 * 86400
    assert parse_duration("36h", unit="d") == 36 * 3600
    assert parse_duration("0", allow_zero=True) == 0


def _options(parser: argparse.ArgumentParser, path: str = "twin") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        else:
            for opt in action.option_strings:
                yield f"{path} {opt}", action


#: Every option that takes a duration or an interval, and what ``1h30m`` becomes in its own unit.
DURATION_OPTIONS = {"--duration": 5400, "--tick": 5400, "--snapshot-every": 5400, "--session-expiry": 5400,
                    "--rotate-time": 5400, "--pace-by-state": 5400, "--mirror-telemetry": 5400, "--timeout": 5400,
                    "--step": 5400, "--simulate": 5400, "--fine-tail": 5400, "--train-days": 1.5 / 24,
                    "--hours": 1.5, "--pace-lag": 5400, "--warm-days": 1.5 / 24, "--minutes": 90,
                    "--latency-seconds": 5400, "--live-seconds": 5400, "--log-hours": 1.5, "--sample-s": 5400}


def test_every_duration_option_takes_the_one_syntax() -> None:
    from twin.cli import build_parser

    seen = set()
    for where, action in _options(build_parser()):
        opt = where.rsplit(" ", 1)[1]
        if opt not in DURATION_OPTIONS:
            continue
        seen.add(opt)
        assert getattr(action.type, "__name__", None) == "duration", where
        assert action.type is not None
        assert action.type("1h30m") == pytest.approx(DURATION_OPTIONS[opt]), where
        with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
            action.type("ten minutes")
    assert seen == set(DURATION_OPTIONS)
