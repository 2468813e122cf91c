"""Reading history files into rows: InfluxDB line protocol, InfluxDB annotated CSV, plain CSV.

Every reader yields :class:`Row`: the time (Unix seconds), the measurement (None for
plain CSV without a measurement column), every tag / column / field value by name, and
the line number in the file, so that errors can point at it. A line that cannot be
parsed raises :class:`RowError` with its line number.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from twin.errors import TwinError
from twin.lineproto import parse_line
from twin.timespec import parse_time

__all__ = ["FORMATS", "PRECISIONS", "Row", "RowError", "parse_lp_line", "read_rows"]

FORMATS = ("lp", "annotated-csv", "csv")
PRECISIONS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


class RowError(TwinError, ValueError):
    def __init__(self, path: str | Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.line = line


@dataclass(slots=True)
class Row:
    line: int
    time: float
    measurement: str | None
    values: dict[str, Any]


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


# ------------------------------------------------------------------ line protocol


def parse_lp_line(s: str) -> tuple[str, dict[str, str], dict[str, Any], int | None]:
    """One line of InfluxDB line protocol: measurement, tags, fields, timestamp (or None).

    The same strict parser the sink's own output is checked with (:func:`twin.lineproto.parse_line`);
    raises ``ValueError`` saying what is wrong.
    """
    p = parse_line(s.rstrip(), require_timestamp=False)
    return p.measurement, p.tags, p.fields, p.t_ns


def _lp_rows(path: Path, precision: str) -> Iterator[Row]:
    scale = PRECISIONS[precision]
    with _open_text(path) as fh:
        for n, raw in enumerate(fh, 1):
            s = raw.rstrip("\r\n")
            if not s.strip() or s.lstrip().startswith("#"):
                continue
            try:
                m, tags, fields, ts = parse_lp_line(s)
            except ValueError as e:
                raise RowError(path, n, f"not line protocol: {e}") from None
            if ts is None:
                raise RowError(path, n, "line has no timestamp (history needs one)")
            if not -1e19 < ts < 1e28:  # ts * scale would overflow a float (OverflowError), or is no time at all
                raise RowError(path, n, f"timestamp {str(ts)[:40]} is out of range")
            yield Row(n, ts * scale, m, {**tags, **fields})


# ------------------------------------------------------------------ annotated CSV


class _CountingLines:
    """A binary line iterator that counts lines, for FluxCsvParser (which wants an HTTP-response-like object)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.line = 0

    def __iter__(self) -> Iterator[bytes]:
        for ln in self.fh:
            self.line += 1
            yield ln

    def close(self) -> None:
        self.fh.close()


def _annotated_rows(path: Path) -> Iterator[Row]:
    from influxdb_client.client.flux_csv_parser import FluxCsvParser, FluxCsvParserException, FluxSerializationMode

    raw: IO[bytes] = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
    lines = _CountingLines(raw)
    parser = FluxCsvParser(response=lines, serialization_mode=FluxSerializationMode.stream)
    try:
        for rec in parser.generator():
            v = dict(rec.values)
            t = v.get("_time")
            if not isinstance(t, datetime):
                raise RowError(path, lines.line, "no _time column (annotated CSV as `influx query --raw` writes it)")
            if "_field" in v and "_value" in v:
                v[str(v["_field"])] = v["_value"]
            yield Row(lines.line, t.timestamp(), v.get("_measurement"), v)
    except FluxCsvParserException as e:
        raise RowError(path, lines.line, f"not annotated CSV ({e})") from None
    except (ValueError, IndexError, KeyError) as e:
        raise RowError(path, lines.line, f"cannot parse annotated CSV ({e})") from None
    finally:
        raw.close()


# ------------------------------------------------------------------ plain CSV


def _cell(s: str) -> Any:
    t = s.strip()
    if t == "":
        return None
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        v = float(t)
    except ValueError:
        return t
    return v if math.isfinite(v) else t


def _csv_rows(path: Path, time_column: str, time_unit: str, measurement_column: str | None) -> Iterator[Row]:
    scale = PRECISIONS[time_unit]
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip() for h in header]
        if time_column not in header:
            raise RowError(path, 1, f"no time column {time_column!r} in the header ({', '.join(header)[:200]})")
        if measurement_column and measurement_column not in header:
            raise RowError(path, 1, f"no measurement column {measurement_column!r} in the header")
        for row in reader:
            n = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise RowError(path, n, f"{len(row)} cells, the header has {len(header)}")
            cells = dict(zip(header, row, strict=True))
            tv = cells[time_column].strip()
            try:
                t = float(tv) * scale
            except ValueError:
                try:
                    t = parse_time(tv, now=0.0, first_t=None)
                except ValueError:
                    raise RowError(path, n, f"time {tv!r} is neither a number nor ISO 8601") from None
            if not math.isfinite(t):
                raise RowError(path, n, f"time {tv[:40]!r} is not a finite number")
            values = {k: _cell(c) for k, c in cells.items()}
            m = values.get(measurement_column) if measurement_column else None
            yield Row(n, t, None if m is None else str(m), values)


def read_rows(path: str | Path, fmt: str, *, precision: str = "ns", time_column: str = "time",
              time_unit: str = "s", measurement_column: str | None = None) -> Iterator[Row]:
    """Rows of one file in format ``fmt`` (one of :data:`FORMATS`)."""
    p = Path(path)
    if fmt == "lp":
        return _lp_rows(p, precision)
    if fmt == "annotated-csv":
        return _annotated_rows(p)
    if fmt == "csv":
        return _csv_rows(p, time_column, time_unit, measurement_column)
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
