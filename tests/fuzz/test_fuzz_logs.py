"""Fuzzing the readers of untrusted text: telemetry log lines and files, and ``twin import``'s history parsers.

10,000 cases each. A telemetry log (``twin replay``) and a history export (``twin import``)
come from outside; every line of them must end as a record or as an error that names
the line, never as an exception of another kind.
"""

from __future__ import annotations

import base64
import gzip
import math
import os
import random
import tempfile
from pathlib import Path

import orjson
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz.hostile import NOW, PAYLOAD_KINDS, RAW_TOKENS, SEEDS, mutate, random_json
from twin.importers.rows import RowError, parse_lp_line, read_rows

from adapters.logs.telemetry_log import LogError, LogReader, LogRecord, decode_line  # isort: skip

CASES = int(os.environ.get("TWIN_FUZZ_CASES", "10000"))
FUZZ = settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                phases=[Phase.generate, Phase.shrink])
_DIR = Path(tempfile.mkdtemp(prefix="fuzz-logs-"))

_LOG_BASE = {"t": NOW, "topic": "stargate/narvik/ambient/kvandal", "qos": 1, "retain": False,
             "payload": {"ts": NOW, "seq": 0, "source": "sim", "temp_c": -3.0}}


def _log_line(kind: str, seed: int) -> bytes:
    r = random.Random(seed)
    base = dict(_LOG_BASE)
    if r.random() < 0.3:
        del base["payload"]
        base["payload_b64"] = r.choice([base64.b64encode(r.randbytes(20)).decode(), "not base64!", "QQ=", "", 5])
    if r.random() < 0.2:
        base["t"] = r.choice([1e308, -1.0, 0, True, "1", None, 10**30, 2**64])
    if r.random() < 0.2:
        base["topic"] = r.choice(["", "a/+/b", "#", "x" * 70_000, 5, None, "stargate/narvik/twin/state"])
    if r.random() < 0.2:
        base["qos"] = r.choice([3, -1, 1.0, True, "1", None, 2**70])
    return mutate(base, kind, r, limit=1 << 20)


@FUZZ
@given(seed=SEEDS)
def test_log_lines_decode_to_a_record_or_a_reason(seed: int) -> None:
    line = _log_line(random.Random(seed).choice(PAYLOAD_KINDS), seed)
    rec = decode_line(line, 7)
    if isinstance(rec, str):
        assert rec
        return
    assert isinstance(rec, LogRecord)
    assert isinstance(rec.t, float) and math.isfinite(rec.t)
    assert isinstance(rec.topic, str) and rec.topic and "+" not in rec.topic and "#" not in rec.topic
    assert rec.qos in (0, 1, 2) and isinstance(rec.retain, bool)
    assert isinstance(rec.payload_bytes(), bytes)  # what a replay would publish


@settings(FUZZ, max_examples=max(1, CASES // 5))  # files of 1-8 lines: ~CASES lines in all
@given(seed=SEEDS)
def test_log_files_yield_records_or_errors_naming_the_line(seed: int) -> None:
    r = random.Random(seed)
    kinds = [r.choice(PAYLOAD_KINDS) for _ in range(r.randrange(1, 9))]
    gz = r.choice(["plain", "plain", "gzip", "gzip-cut", "bytes"])
    data = b"".join(_log_line(k, seed + i) + r.choice([b"\n", b"\r\n", b"\n\n", b""]) for i, k in enumerate(kinds))
    if gz == "bytes":
        data = r.randbytes(r.randrange(200))
    path = _DIR / ("log.jsonl.gz" if gz != "plain" else "log.jsonl")
    if gz.startswith("gzip"):
        data = gzip.compress(data, mtime=0)
        if gz == "gzip-cut":
            data = data[: r.randrange(len(data))]
    path.write_bytes(data)
    out = list(LogReader(path))
    for x in out:
        assert isinstance(x, LogRecord | LogError), x
        if isinstance(x, LogError):
            assert x.line >= 1 and x.reason and str(path) in str(x)


def _lp_line(seed: int) -> str:
    r = random.Random(seed)
    parts = [r.choice(["hydro", "h y", "h\\,y", "", "#c", "gpu"]),
             r.choice(["", ",feeder=a", ",feeder=", ",=a", ",a=b\\", ",x=1,y=2"]),
             r.choice([" ", "", "  ", "\t"]),
             r.choice(["f=1", "f=1i", "f=-1u", "f=t", 'f="s"', 'f="unterminated', "f=", "=1", "f=NaN", "f=inf",
                       "f=1e999", "f=" + "9" * 5000 + "i", "f=1,g=2", "f=1,", 'f="a\\"b"', "f=0x1", "f=1_0"]),
             r.choice(["", " 1", " 1795300000000000000", " -1", " x", " " + "9" * 400, " 1 2", " 1.5",
                       " " + "9" * 4000])]
    s = "".join(parts)
    if r.random() < 0.2:
        s = "".join(r.choice(s + "\\\", =\n") for _ in range(len(s)))
    if r.random() < 0.1:
        s = r.randbytes(r.randrange(60)).decode("utf-8", errors="replace")
    return s


@FUZZ
@given(seed=SEEDS)
def test_history_rows_parse_or_raise_a_row_error(seed: int) -> None:
    try:  # one line of line protocol
        m, _tags, fields, ts = parse_lp_line(_lp_line(seed))
        assert m and fields and (ts is None or isinstance(ts, int))
    except ValueError:
        pass
    for fmt in ("lp", "csv"):  # and a file of each format
        _check_rows(seed, fmt)


def _check_rows(seed: int, fmt: str) -> None:
    r = random.Random(seed)
    path = _DIR / f"rows.{fmt}"
    if fmt == "lp":
        path.write_text("\n".join(_lp_line(seed + i) for i in range(r.randrange(1, 4))), encoding="utf-8")
    else:
        cells = [str(random_json(r)) if r.random() < 0.5 else r.choice([x.decode("utf-8", "replace")
                                                                         for x in RAW_TOKENS[:30]])
                 for _ in range(6)]
        header = r.choice(["time,a,b", "a,b,c", "time", "", "time,time,a"])
        path.write_text(header + "\n" + "\n".join(",".join(cells[i:i + 3]) for i in range(0, 6, 3)) + "\n",
                        encoding="utf-8")
    try:
        for row in read_rows(path, fmt):
            assert isinstance(row.time, float) and math.isfinite(row.time) and row.line >= 1
    except RowError as e:
        assert e.line >= 0 and str(e)


def test_the_fuzzed_log_lines_include_good_ones() -> None:  # the control: the cases above are not all refused
    good = [decode_line(_log_line("none", s)) for s in range(50)]
    assert sum(isinstance(g, LogRecord) for g in good) > 10
    assert isinstance(decode_line(orjson.dumps(_LOG_BASE)), LogRecord)
