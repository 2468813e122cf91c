"""The telemetry log format: lines, payload_b64, gzip, rotation, and bad lines reported with their number."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from adapters.logs.telemetry_log import LogError, LogReader, LogRecord, TelemetryLogWriter, iter_log, part_path


def test_json_payload_is_a_value_and_other_bytes_are_base64(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with TelemetryLogWriter(path) as w:
        w.write(1795300466.012, "stargate/narvik/gpu/h1/h1-r001", b'{"ts": 1.0, "seq": 3}')
        w.write(1795300467.5, "stargate/narvik/twin/health/state", b"online", qos=1, retain=True)
        w.write(1795300468.0, "stargate/narvik/twin/alarm/x", b"", qos=0)
        w.write(1795300469.0, "x/nan", b'{"v": NaN}')
    lines = [json.loads(s) for s in path.read_text().splitlines()]
    assert lines[0] == {"t": 1795300466.012, "topic": "stargate/narvik/gpu/h1/h1-r001", "qos": 1, "retain": False,
                        "payload": {"ts": 1.0, "seq": 3}}
    assert lines[1]["payload_b64"] == "b25saW5l" and lines[1]["retain"] is True and "payload" not in lines[1]
    assert lines[2]["payload_b64"] == "" and lines[2]["qos"] == 0
    recs = [r for r in LogReader(path) if isinstance(r, LogRecord)]
    assert [r.payload_bytes() for r in recs] == [b'{"ts":1.0,"seq":3}', b"online", b"", b'{"v": NaN}']
    assert [r.line for r in recs] == [1, 2, 3, 4]


def test_gzip_when_the_name_ends_in_gz(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    with TelemetryLogWriter(path) as w:
        for i in range(100):
            w.write(float(i), "t/x", b'{"i": %d}' % i)
    with gzip.open(path, "rt") as fh:
        assert json.loads(fh.readline())["payload"] == {"i": 0}
    assert [d["payload"]["i"] for d in iter_log(path)] == list(range(100))


def test_rotation_by_time_and_by_size(tmp_path: Path) -> None:
    w = TelemetryLogWriter(tmp_path / "run.jsonl", rotate_s=10)
    for i in range(35):
        w.write(1000.0 + i, "t/x", b"{}")
    w.close()
    assert [p.name for p in w.paths] == ["run.00000.jsonl", "run.00001.jsonl", "run.00002.jsonl", "run.00003.jsonl"]
    assert [len(list(iter_log(p))) for p in w.paths] == [10, 10, 10, 5]
    w = TelemetryLogWriter(tmp_path / "big.jsonl.gz", rotate_bytes=2000, flush_s=0)
    for i in range(2000):
        w.write(float(i), "t/x", b'{"i": %d, "pad": "%s"}' % (i, str(i * 7919).encode() * 5))
    w.close()
    assert len(w.paths) > 1
    got = [d["payload"]["i"] for p in w.paths for d in iter_log(p)]
    assert got == list(range(2000))


def test_part_path_names_sort_in_order() -> None:
    assert part_path(Path("d/run.jsonl.gz"), 3) == Path("d/run.00003.jsonl.gz")
    assert part_path(Path("run"), 12).name == "run.00012"


def test_a_corrupt_line_is_reported_with_its_number_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = '{"t": 1, "topic": "a/b", "qos": 1, "retain": false, "payload": {"x": 1}}\n'
    path.write_text(good + '{"t": 2, "topic": "a/b", "payl\n' + good
                    + '{"t": 3, "topic": "a/+", "payload": 1}\n' + '{"t": 4, "topic": "a/b", "payload_b64": "**"}\n'
                    + good + '{"t": 5, "topic": "a/b", "payload": {"x"')
    out = list(LogReader(path))
    errors = [(e.line, e.reason) for e in out if isinstance(e, LogError)]
    assert [n for n, _ in errors] == [2, 4, 5, 7]
    assert "not JSON" in errors[0][1] and "wildcards" in errors[1][1] and "base64" in errors[2][1]
    assert errors[3][1].startswith("truncated last line")
    assert [r.line for r in out if isinstance(r, LogRecord)] == [1, 3, 6]
    with pytest.raises(LogError, match=r"bad.jsonl:2: not JSON"):
        list(iter_log(path))


def test_a_gzip_log_cut_short_yields_what_was_flushed_then_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    w = TelemetryLogWriter(path, flush_s=0)
    for i in range(500):
        w.write(float(i), "t/x", b'{"i": %d}' % i)
    w.flush()
    data = path.read_bytes()  # what a killed recorder leaves: flushed, no gzip trailer
    w.close()
    path.write_bytes(data)
    out = list(LogReader(path))
    assert isinstance(out[-1], LogError) and "gzip stream ends early" in out[-1].reason
    assert out[-1].line == 501
    assert [r.payload["i"] for r in out if isinstance(r, LogRecord)] == list(range(500))


def test_concatenated_gzip_members_read_through_and_non_gzip_is_reported(tmp_path: Path) -> None:
    parts = []
    for k in range(2):
        p = tmp_path / f"p{k}.jsonl.gz"
        with TelemetryLogWriter(p) as w:
            for i in range(3):
                w.write(float(i), "t/x", b'{"k": %d, "i": %d}' % (k, i))
        parts.append(p.read_bytes())
    both = tmp_path / "both.jsonl.gz"  # as `cat p0.jsonl.gz p1.jsonl.gz > both.jsonl.gz` makes it
    both.write_bytes(b"".join(parts))
    assert [(d["payload"]["k"], d["payload"]["i"]) for d in iter_log(both)] == [(k, i) for k in (0, 1)
                                                                                for i in range(3)]
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_text('{"t": 1, "topic": "a", "payload": 1}\n')
    (err,) = list(LogReader(fake))
    assert isinstance(err, LogError) and err.line == 1 and "cannot decompress" in err.reason


def test_the_recorders_clock_is_steady_and_follows_the_wall_clock() -> None:
    import time

    from adapters.logs.record import WallClock

    c = WallClock()
    ts = [c() for _ in range(1000)]
    assert ts == sorted(ts) and abs(ts[-1] - time.time()) < 0.5
    c._wall0 -= 5.0  # as if the wall clock had been stepped forward by 5 s since the anchor
    assert abs(c() - time.time()) < 0.5
