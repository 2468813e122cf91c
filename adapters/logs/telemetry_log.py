"""The telemetry log: JSON Lines of MQTT messages (contract, "Telemetry log").

What ``twin record`` and ``twin sim --out`` write and ``twin replay`` reads. One
message per line, UTF-8, gzip when the file name ends in ``.gz``::

    {"t": 1795300466.012, "topic": "stargate/narvik/gpu/h1/h1-r001", "qos": 1, "retain": false, "payload": {...}}

- ``t``: receive time (simulator: publish time in event time), Unix epoch seconds;
- ``payload``: the message as a JSON value when its bytes parse as JSON; otherwise the
  line has ``payload_b64`` (the raw bytes, base64) instead, so that invalid traffic can
  be recorded and replayed too. Replaying publishes the JSON value re-encoded as
  compact JSON, or the raw bytes.

:class:`TelemetryLogWriter` writes (with optional rotation by size or by ``t``),
:class:`LogReader` reads one file and yields a :class:`LogRecord` per good line and a
:class:`LogError` (file, line number, reason) per bad one, so that the caller decides
whether to skip or stop. :func:`iter_log` is the simple form: dicts, raising on the
first bad line. No network here.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import math
import queue
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from isal import igzip
from isal import isal_zlib as _inflate  # ISA-L's inflate: ~2.8x zlib's on these logs, the same streams

from twin.errors import TwinError

#: gzip levels 0-3 are written with ISA-L (the same format; ~4x zlib's level 1 here), 4-9 with zlib.
ISAL_MAX_LEVEL = 3

__all__ = [
    "LogError",
    "LogReader",
    "LogRecord",
    "TelemetryLogWriter",
    "decode_line",
    "encode_line",
    "iter_log",
    "part_path",
]

_MISSING = object()


class LogError(TwinError):
    """A line of a telemetry log that cannot be read: where, and why."""

    def __init__(self, path: str | Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = str(path)
        self.line = line
        self.reason = reason


@dataclass(slots=True)
class LogRecord:
    """One message of a log. ``payload`` is the JSON value; ``raw`` the bytes when it was not JSON."""

    t: float
    topic: str
    qos: int
    retain: bool
    payload: Any
    raw: bytes | None = None
    line: int = 0
    #: The payload's compact JSON exactly as in the line, when the line is in the writer's own layout
    #: (compact, ``payload`` last): lets a replay skip re-encoding. None otherwise.
    text: bytes | None = None

    @property
    def is_json(self) -> bool:
        return self.raw is None

    def payload_bytes(self) -> bytes:
        """What goes on the wire: the JSON value as compact JSON, or the raw bytes."""
        if self.raw is not None:
            return self.raw
        return self.text if self.text is not None else orjson.dumps(self.payload)


# ------------------------------------------------------------------ lines


def encode_line(t: float, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bytes:
    """One log line (with its newline) for a message as received."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return orjson.dumps({"t": t, "topic": topic, "qos": qos, "retain": retain,
                             "payload_b64": base64.b64encode(payload).decode("ascii")}) + b"\n"
    return orjson.dumps({"t": t, "topic": topic, "qos": qos, "retain": retain, "payload": value}) + b"\n"


def decode_line(data: bytes, line: int = 0) -> LogRecord | str:
    """Parse one line; a :class:`LogRecord`, or the reason it is not one."""
    try:
        d = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        return f"not JSON ({e})"
    if not isinstance(d, dict):
        return f"a line must be a JSON object, got {type(d).__name__}"
    t = d.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        return f"'t' must be a number of Unix seconds, got {t!r:.40}"
    topic = d.get("topic")
    if not isinstance(topic, str) or not topic or "+" in topic or "#" in topic:
        return f"'topic' must be a topic name without wildcards, got {topic!r:.60}"
    qos = d.get("qos", 1)
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        return f"'qos' must be 0, 1 or 2, got {qos!r:.20}"
    retain = d.get("retain", False)
    if not isinstance(retain, bool):
        return f"'retain' must be true or false, got {retain!r:.20}"
    payload = d.get("payload", _MISSING)
    b64 = d.get("payload_b64", _MISSING)
    if (payload is _MISSING) == (b64 is _MISSING):
        return "a line needs exactly one of 'payload' and 'payload_b64'"
    if b64 is not _MISSING:
        if not isinstance(b64, str):
            return "'payload_b64' must be a base64 string"
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as e:
            return f"'payload_b64' is not valid base64 ({e})"
        return LogRecord(float(t), topic, qos, retain, None, raw, line)
    text = _payload_text(data, d)
    if text is None:
        try:
            orjson.dumps(payload)
        except TypeError as e:  # e.g. nested deeper than the encoder goes
            return f"the payload cannot be encoded again ({e})"
    return LogRecord(float(t), topic, qos, retain, payload, None, line, text)


_CANONICAL_KEYS = ["t", "topic", "qos", "retain", "payload"]


def _payload_text(data: bytes, d: dict[str, Any]) -> bytes | None:
    """The payload's bytes in a line laid out as :func:`encode_line` writes it, else None.

    Compact (``{"t":`` then a digit) and the keys in the writer's order with ``payload``
    last: then the first ``,"payload":`` is the key (a JSON string cannot hold an
    unescaped quote) and the payload runs to the line's closing brace.
    """
    if not (data.startswith(b'{"t":') and data[5:6].isdigit()) or list(d) != _CANONICAL_KEYS:
        return None
    i = data.find(b',"payload":')
    end = data.rstrip(b"\r\n ")
    if i < 0 or not end.endswith(b"}"):
        return None
    return end[i + 11:-1]


# ------------------------------------------------------------------ writing


def part_path(path: Path, part: int) -> Path:
    """``run.jsonl.gz`` -> ``run.00003.jsonl.gz``: the file of one rotation part (sorts in order)."""
    name = path.name
    gz = ".gz" if name.endswith(".gz") else ""
    base = name[: len(name) - len(gz)]
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    ext = f".{ext}" if ext else ""
    return path.with_name(f"{stem}.{part:05d}{ext}{gz}")


class TelemetryLogWriter:
    """Writes a telemetry log; gzip when the name ends in ``.gz``.

    ``rotate_bytes`` starts a new file once the current one holds that many bytes (on
    disk, so compressed for ``.gz``); ``rotate_s`` once the current file spans that many
    seconds of ``t``. With either, the files are ``part_path(path, 0)``, ``(path, 1)``,
    ... instead of ``path``; ``paths`` lists those written. The file is flushed at most
    every ``flush_s`` seconds (wall clock), so a killed recorder loses at most that much.

    ``compresslevel`` 0-3 deflates with ISA-L (``isal``), 4-9 with zlib.
    Lines are gathered in memory and handed to the file (and to gzip) :data:`BUFFER_BYTES` at a
    time (a quarter of ``rotate_bytes`` at most): deflating one ~1 KB line per call cost the
    recorder a fifth of its time.
    """

    BUFFER_BYTES = 1 << 18

    def __init__(self, path: str | Path, *, rotate_bytes: int | None = None, rotate_s: float | None = None,
                 flush_s: float = 1.0, compresslevel: int = 6) -> None:
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes
        self.rotate_s = rotate_s
        self.flush_s = flush_s
        self.compresslevel = compresslevel
        self.rotating = bool(rotate_bytes or rotate_s)
        self.gzip = self.path.name.endswith(".gz")
        self.paths: list[Path] = []
        self.messages = 0
        self._raw: IO[bytes] | None = None
        self._fh: IO[bytes] | None = None
        self._file_t0: float | None = None
        self._last_flush = time.monotonic()
        self._buf = bytearray()
        self._buf_limit = self.BUFFER_BYTES if not rotate_bytes else max(4096, min(self.BUFFER_BYTES,
                                                                                  rotate_bytes // 4))
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> TelemetryLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> IO[bytes]:
        path = part_path(self.path, len(self.paths)) if self.rotating else self.path
        raw = open(path, "wb")  # noqa: SIM115 - kept open between writes
        self._raw = raw
        fh: IO[bytes] = raw
        if self.gzip and self.compresslevel <= ISAL_MAX_LEVEL:  # ISA-L: ~4x zlib's speed, a smaller file
            fh = igzip.GzipFile(filename="", fileobj=raw, mode="wb",  # type: ignore[assignment]
                                compresslevel=self.compresslevel, mtime=0)
        elif self.gzip:
            fh = gzip.GzipFile(filename="", fileobj=raw, mode="wb",  # type: ignore[assignment]
                               compresslevel=self.compresslevel, mtime=0)
        self._fh = fh
        self.paths.append(path)
        self._file_t0 = None
        return fh

    def _due_rotation(self, t: float) -> bool:
        if self._raw is None or not self.rotating:
            return False
        if self.rotate_s and self._file_t0 is not None and t - self._file_t0 >= self.rotate_s:
            return True
        pending = 0 if self.gzip else len(self._buf)
        return bool(self.rotate_bytes and self._raw.tell() + pending >= self.rotate_bytes)

    def write(self, t: float, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Append one message (``payload`` as the bytes on the wire)."""
        self.write_line(t, encode_line(t, topic, bytes(payload), qos, retain))

    def write_line(self, t: float, data: bytes) -> None:
        """Append a line already encoded with :func:`encode_line`."""
        if self._due_rotation(t):
            self._close_file()
        fh = self._fh or self._open()
        if self._file_t0 is None:
            self._file_t0 = t
        self._buf += data
        if len(self._buf) >= self._buf_limit:
            fh.write(self._buf)
            self._buf.clear()
        self.messages += 1
        now = time.monotonic()
        if now - self._last_flush >= self.flush_s:
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        if self._fh is not None:
            if self._buf:
                self._fh.write(self._buf)
                self._buf.clear()
            if isinstance(self._fh, gzip.GzipFile | igzip.GzipFile):
                self._fh.flush(zlib.Z_SYNC_FLUSH)
            self._fh.flush()
            if self._raw is not None:
                self._raw.flush()

    def _close_file(self) -> None:
        if self._fh is not None:
            if self._buf:
                self._fh.write(self._buf)
                self._buf.clear()
            self._fh.close()
            if self._raw is not None and self._raw is not self._fh:
                self._raw.close()
        self._fh = self._raw = None

    def close(self) -> None:
        self._close_file()


# ------------------------------------------------------------------ reading


class _GzipLines:
    """Decompresses a gzip file in a background thread and hands over lists of lines.

    Inflating (ISA-L's) releases the GIL, so on two cores decompression overlaps with
    parsing and publishing. Items: ``("lines", [line, ...], (from, to))`` (complete lines, no newline, and the
    compressed bytes consumed before and after their chunk: the thread runs up to four chunks ahead, so the
    reader's position comes from the lines it has handed out, not from what the thread has read),
    ``("tail", bytes)`` (a last line without its newline), ``("error", reason)``.
    """

    CHUNK = 1 << 20

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=4)
        self.stop = threading.Event()
        self.consumed = 0
        self.thread = threading.Thread(target=self._run, name="gzip-lines", daemon=True)
        self.thread.start()

    def _put(self, item: tuple[Any, ...] | None) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        dec = _inflate.decompressobj(wbits=31)
        buf = b""
        try:
            while not self.stop.is_set():
                chunk = self.raw.read(self.CHUNK)
                if not chunk:
                    break
                before = self.consumed
                self.consumed += len(chunk)
                data = dec.decompress(chunk)
                while dec.eof and dec.unused_data:  # another gzip member follows
                    rest = dec.unused_data
                    dec = _inflate.decompressobj(wbits=31)
                    data += dec.decompress(rest)
                if data:
                    parts = (buf + data).split(b"\n")
                    buf = parts.pop()
                    if parts and not self._put(("lines", parts, (before, self.consumed))):
                        return
            else:
                return
            if buf:
                self._put(("tail", buf))
            if not dec.eof and self.consumed:
                self._put(("error", "truncated: the gzip stream ends early (the recorder was stopped before "
                                    "closing the file); the rest is lost"))
        except (OSError, zlib.error, _inflate.error) as e:  # type: ignore[misc]  # isal.pyi types it as an instance
            if buf:
                self._put(("tail", buf))
            self._put(("error", f"cannot decompress ({e}); the rest of the file is lost"))
        finally:
            self._put(None)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2.0)


class LogReader:
    """Reads one log file: iterating yields a :class:`LogRecord` per good line, a :class:`LogError` per bad one.

    A gzip file that ends mid-stream (a recorder killed before it closed the file)
    yields a final :class:`LogError` saying so. ``position`` is how many bytes of the
    file (compressed for ``.gz``) have been read, against ``size``, for progress.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.size = self.path.stat().st_size
        except OSError as e:
            raise LogError(self.path, 0, f"cannot read the file ({e.strerror})") from None
        self._raw: IO[bytes] | None = None
        self._gz: _GzipLines | None = None
        self._span = (0, 0, 1)  # the current gzip chunk: bytes from, to, lines in it
        self._span_i = 0  # lines of it handed out
        self.lines = 0

    @property
    def position(self) -> int:
        if self._gz is not None:  # within the chunk of the line handed out last, in proportion to its lines
            a, b, k = self._span
            return a + (b - a) * self._span_i // max(k, 1)
        try:
            return self._raw.tell() if self._raw is not None else 0
        except (ValueError, OSError):
            return self.size

    def _record(self, data: bytes, n: int, complete: bool) -> LogRecord | LogError | None:
        if not data.strip():
            return None
        rec = decode_line(data, n)
        if isinstance(rec, str):
            return LogError(self.path, n, rec if complete else f"truncated last line ({rec})")
        return rec

    def __iter__(self) -> Iterator[LogRecord | LogError]:
        raw = open(self.path, "rb")  # noqa: SIM115 - closed below
        self._raw = raw
        n = 0
        try:
            if not self.path.name.endswith(".gz"):
                for data in iter(raw.readline, b""):
                    n += 1
                    self.lines = n
                    out = self._record(data, n, data.endswith(b"\n"))
                    if out is not None:
                        yield out
                return
            gz = self._gz = _GzipLines(raw)
            while (item := gz.queue.get()) is not None:
                kind, value = item[0], item[1]
                if kind == "error":
                    yield LogError(self.path, n + 1, value)
                    return
                batch = value if kind == "lines" else [value]
                a, b = item[2] if kind == "lines" else (gz.consumed, gz.consumed)
                self._span = (a, b, len(batch))  # once per chunk; per line only an int
                for i, data in enumerate(batch, 1):
                    self._span_i = i
                    n += 1
                    self.lines = n
                    out = self._record(data, n, kind == "lines")
                    if out is not None:
                        yield out
        finally:
            if self._gz is not None:
                self._gz.close()
            raw.close()


def iter_log(path: str | Path) -> Iterator[dict[str, Any]]:
    """The lines of a log as dicts (``payload`` or ``payload_b64`` as written); raises :class:`LogError`."""
    for rec in LogReader(path):
        if isinstance(rec, LogError):
            raise rec
        d: dict[str, Any] = {"t": rec.t, "topic": rec.topic, "qos": rec.qos, "retain": rec.retain}
        if rec.raw is None:
            d["payload"] = rec.payload
        else:
            d["payload_b64"] = base64.b64encode(rec.raw).decode("ascii")
        yield d
