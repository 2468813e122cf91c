"""Reading history files into rows: InfluxDB line protocol, InfluxDB annotated CSV, plain CSV.

Every reader yields :class:`Row`: the time (Unix seconds), the measurement (None for
plain CSV without a measurement column), every tag / column / field value by name, and
the line number in the file, so that errors can point at it. A line that cannot be
parsed raises :class:`RowError` with its line number.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Any

from twin.errors import TwinError
from twin.lineproto import parse_line

__all__ = ["FORMATS", "PRECISIONS", "Row", "RowError", "TextOptions", "parse_lp_line", "read_rows"]

Progress = Callable[[int], None] | None

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


@dataclass(frozen=True, slots=True)
class TextOptions:
    """How to read a text export: its encoding (``utf-8-sig`` reads UTF-8 with or without a BOM), the CSV
    delimiter (None: sniffed from the first 64 KiB), and the zone of times written without one (None:
    such a time is refused, since guessing UTC would shift a Norwegian export by an hour or two)."""

    encoding: str = "utf-8-sig"
    delimiter: str | None = None
    timezone: str | None = None


class _Counting(io.RawIOBase):
    """The compressed or plain bytes of a file, counting what has been read (for progress)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.fh.readinto(b)  # type: ignore[attr-defined]
        self.read_bytes += n or 0
        return n or 0

    def close(self) -> None:
        self.fh.close()
        super().close()


class _Source:
    """A file opened for rows: text decoded with the options, gzip undone, bytes read counted, and every
    decoding fault turned into one :class:`RowError` naming the file, the line and what to do."""

    def __init__(self, path: Path, opts: TextOptions) -> None:
        self.path = path
        self.opts = opts
        self.raw = _Counting(open(path, "rb"))  # noqa: SIM115 - closed by close()
        self.line = 0
        binary: IO[bytes] = io.BufferedReader(self.raw)
        if path.name.endswith(".gz"):
            binary = gzip.GzipFile(fileobj=binary, mode="rb")  # type: ignore[assignment]
        self.text = io.TextIOWrapper(binary, encoding=opts.encoding, newline="")

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.text.close()

    def lines(self) -> Iterator[str]:
        try:
            for ln in self.text:
                self.line += 1
                yield ln
        except _READ_FAULTS as e:
            raise _fault(self.path, self.line, e, self.opts.encoding) from None


_READ_FAULTS = (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error)


def _fault(path: Path, line: int, e: BaseException, encoding: str = "utf-8") -> RowError:
    """One line for a file that cannot be decoded: the wrong encoding, a cut-off or corrupt gzip stream."""
    if isinstance(e, UnicodeDecodeError):
        return RowError(path, line + 1, f"not {encoding.replace('-sig', '')} text (byte 0x{e.object[e.start]:02x}): "
                        "pass --encoding with the file's encoding, e.g. latin-1 or cp1252")
    if isinstance(e, EOFError):
        return RowError(path, line, "truncated: the gzip stream ends early (the file was cut off while it was "
                        "written or copied)")
    if isinstance(e, gzip.BadGzipFile):
        return RowError(path, 1, "not a gzip file, though it is named .gz")
    return RowError(path, line, f"corrupt gzip data ({e})")


def _open_text(path: Path, opts: TextOptions | None = None) -> _Source:
    return _Source(path, opts or TextOptions())


# ------------------------------------------------------------------ line protocol


def parse_lp_line(s: str) -> tuple[str, dict[str, str], dict[str, Any], int | None]:
    """One line of InfluxDB line protocol: measurement, tags, fields, timestamp (or None).

    The same strict parser the sink's own output is checked with (:func:`twin.lineproto.parse_line`);
    raises ``ValueError`` saying what is wrong.
    """
    p = parse_line(s.rstrip(), require_timestamp=False)
    return p.measurement, p.tags, p.fields, p.t_ns


def _lp_rows(path: Path, precision: str, opts: TextOptions, progress: Progress) -> Iterator[Row]:
    scale = PRECISIONS[precision]
    with _open_text(path, opts) as src:
        for n, raw in enumerate(src.lines(), 1):
            if n % 10_000 == 0 and progress is not None:
                progress(src.raw.read_bytes)
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
        if progress is not None:
            progress(src.raw.read_bytes)


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


def _annotated_rows(path: Path, progress: Progress) -> Iterator[Row]:
    from influxdb_client.client.flux_csv_parser import FluxCsvParser, FluxCsvParserException, FluxSerializationMode

    counted = _Counting(open(path, "rb"))  # noqa: SIM115 - closed in finally
    raw: IO[bytes] = io.BufferedReader(counted)
    if path.name.endswith(".gz"):
        raw = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
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
            if progress is not None and lines.line % 10_000 == 0:
                progress(counted.read_bytes)
            yield Row(lines.line, t.timestamp(), v.get("_measurement"), v)
        if progress is not None:
            progress(counted.read_bytes)
    except _READ_FAULTS as e:
        raise _fault(path, lines.line, e) from None
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


def _sniff_delimiter(path: Path, opts: TextOptions) -> str:
    """The delimiter of a CSV export: ``,`` ``;`` (the spreadsheet default where the decimal mark is a comma),
    tab or ``|``, from the first 64 KiB."""
    with _open_text(path, opts) as src:
        sample = ""
        for ln in src.lines():
            sample += ln
            if len(sample) > 65536:
                break
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _row_time(tv: str, scale: float, tz: str | None) -> float | str:
    """A time cell as Unix seconds: a number in the mapping's unit, or ISO 8601; a reason if neither."""
    try:
        return float(tv) * scale
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(tv.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return f"time {tv[:40]!r} is neither a number nor ISO 8601"
    if dt.tzinfo is None:
        if tz is None:
            return (f"time {tv[:40]!r} has no zone: pass --timezone with the zone it was written in "
                    "(e.g. Europe/Oslo, or UTC)")
        dt = dt.replace(tzinfo=_zone(tz))
    return dt.timestamp()


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _csv_rows(path: Path, time_column: str, time_unit: str, measurement_column: str | None, opts: TextOptions,
              progress: Progress) -> Iterator[Row]:
    scale = PRECISIONS[time_unit]
    delimiter = opts.delimiter or _sniff_delimiter(path, opts)
    with _open_text(path, opts) as src:
        reader = csv.reader(src.lines(), delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip() for h in header]
        if time_column not in header:
            hint = ""
            if len(header) == 1 and any(d in header[0] for d in ";\t|,"):
                hint = "; the columns were not split: pass --delimiter (e.g. ';')"
            raise RowError(path, 1, f"no time column {time_column!r} in the header "
                                    f"({', '.join(header)[:200]}){hint}")
        if measurement_column and measurement_column not in header:
            raise RowError(path, 1, f"no measurement column {measurement_column!r} in the header")
        for row in reader:
            n = reader.line_num
            if n % 10_000 == 0 and progress is not None:
                progress(src.raw.read_bytes)
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise RowError(path, n, f"{len(row)} cells, the header has {len(header)} "
                                        f"(delimiter {delimiter!r}; --delimiter sets another)")
            cells = dict(zip(header, row, strict=True))
            tv = cells[time_column].strip()
            t = _row_time(tv, scale, opts.timezone)
            if isinstance(t, str):
                raise RowError(path, n, t)
            if not math.isfinite(t):
                raise RowError(path, n, f"time {tv[:40]!r} is not a finite number")
            values = {k: _cell(c) for k, c in cells.items()}
            m = values.get(measurement_column) if measurement_column else None
            yield Row(n, t, None if m is None else str(m), values)
        if progress is not None:
            progress(src.raw.read_bytes)


def read_rows(path: str | Path, fmt: str, *, precision: str = "ns", time_column: str = "time",
              time_unit: str = "s", measurement_column: str | None = None, text: TextOptions | None = None,
              progress: Progress = None) -> Iterator[Row]:
    """Rows of one file in format ``fmt`` (one of :data:`FORMATS`); ``progress(bytes_read)`` now and then
    (bytes of the file on disk, compressed or not)."""
    p = Path(path)
    opts = text or TextOptions()
    if fmt == "lp":
        return _lp_rows(p, precision, opts, progress)
    if fmt == "annotated-csv":
        return _annotated_rows(p, progress)
    if fmt == "csv":
        return _csv_rows(p, time_column, time_unit, measurement_column, opts, progress)
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
