"""The state service's journal: received telemetry made durable locally, so that it can be acknowledged at once.

Why: a broker keeps only a few unacknowledged QoS 1 messages in flight to a client
(Mosquitto 20, EMQX 32, NATS ``max_ack_pending``, RabbitMQ a prefetch) and queues or
drops the rest. A consumer that acknowledges only once a snapshot holds a message
(seconds later) starves at that limit. The state service instead appends every message
to this journal and acknowledges it as soon as the append is written; a snapshot then
truncates the journal, and a restart replays snapshot + journal, which equals an
uninterrupted run. This is a write-ahead log, as in databases, with Redis' ``appendfsync``
policies.

Layout under the journal directory:

- ``{n:012d}.wal``: append-only segments of records
  ``<length u32><crc32 u32>`` + body, body = ``<received_ts f64><flags u8><topic_len u16>``
  + topic (UTF-8) + payload. ``flags`` bit 0: the MQTT dup flag.
- A snapshot says which segment it was taken at (:meth:`Journal.rotate`); replay starts
  there and older segments are deleted once the snapshot is on disk (:meth:`Journal.drop_before`).

Group commit: :meth:`append` fills a buffer; :meth:`commit` writes it with one ``write``
and, by the fsync policy, ``always``: fsyncs before returning (an acknowledged message
survives a power cut); ``1s``: fsyncs at most once a second from a thread (survives a
crash of the process; a power cut may lose the last second, which the broker then
redelivers only if it had not been acknowledged); ``never``: leaves it to the OS.

On replay a torn or corrupt record (a crash during a write, a bad disk block) ends
that segment's replay: the rest of the segment cannot be framed. The bytes skipped
are counted in ``corrupt_bytes`` and logged; replay goes on with the next segment.

Bound: ``max_bytes`` of segments. :attr:`full` turns true at the bound and the service
answers with a snapshot, which truncates the journal; the journal never drops a record
on its own. ``max_age_s`` likewise: :meth:`too_old` says when the oldest unsnapshotted
record is older than that (the snapshot timer normally comes first).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from twin.errors import ConfigError

__all__ = ["FSYNC_POLICIES", "FsyncPolicy", "Journal", "JournalRecord"]

log = logging.getLogger("twin.journal")

FsyncPolicy = Literal["always", "1s", "never"]
FSYNC_POLICIES: tuple[str, ...] = ("always", "1s", "never")

_HEAD = struct.Struct("<II")
_BODY = struct.Struct("<dBH")
_SUFFIX = ".wal"


@dataclass(frozen=True, slots=True)
class JournalRecord:
    topic: str
    payload: bytes
    received_ts: float
    dup: bool


class Journal:
    def __init__(self, directory: Path, *, fsync: FsyncPolicy = "1s", max_bytes: int = 256 * 1024 * 1024,
                 max_age_s: float = 600.0) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ConfigError(f"journal fsync policy must be one of {', '.join(FSYNC_POLICIES)} (TWIN_JOURNAL_FSYNC), "
                              f"got {fsync!r}")
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create the journal directory {self.directory}: {e.strerror}; "
                              "check --data-dir (TWIN_DATA_DIR)") from None
        self.fsync: FsyncPolicy = fsync
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.records = 0  # appended since start
        self.commits = 0
        self.fsyncs = 0
        self.corrupt_bytes = 0  # skipped on replay: torn or corrupt tails
        self.corrupt_records = 0
        self.full_events = 0  # times the size bound was reached (each answered by a snapshot)
        self._buf = bytearray()
        segs = self.segments()
        self._seg = (segs[-1] + 1) if segs else 0  # never append to a segment written before a crash
        self._sizes = {s: (self.directory / self._name(s)).stat().st_size for s in segs}
        self._fd = self._open(self._seg)
        self._first_wall: float | None = time.time() if segs else None
        self._dirty = False
        self._lock = threading.Lock()  # the 1 s fsync thread against rotate/close
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        if fsync == "1s":
            self._syncer = threading.Thread(target=self._sync_every_second, name="journal-fsync", daemon=True)
            self._syncer.start()

    # ---------------------------------------------------------------- files

    @staticmethod
    def _name(seg: int) -> str:
        return f"{seg:012d}{_SUFFIX}"

    def segments(self) -> list[int]:
        out = []
        for p in self.directory.glob(f"*{_SUFFIX}"):
            try:
                out.append(int(p.stem))
            except ValueError:
                continue
        return sorted(out)

    def _open(self, seg: int) -> int:
        self._sizes.setdefault(seg, 0)
        return os.open(self.directory / self._name(seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    @property
    def segment(self) -> int:
        """The segment being appended to."""
        return self._seg

    @property
    def size(self) -> int:
        return sum(self._sizes.values()) + len(self._buf)

    @property
    def full(self) -> bool:
        return self.size >= self.max_bytes

    def too_old(self, now: float | None = None) -> bool:
        return self._first_wall is not None and (now or time.time()) - self._first_wall > self.max_age_s

    # ---------------------------------------------------------------- write

    def append(self, topic: str, payload: bytes, received_ts: float, dup: bool = False) -> None:
        t = topic.encode()
        body = _BODY.pack(received_ts, 1 if dup else 0, len(t)) + t + payload
        self._buf += _HEAD.pack(len(body), zlib.crc32(body)) + body
        self.records += 1
        if self._first_wall is None:
            self._first_wall = time.time()

    def commit(self) -> None:
        """Write what :meth:`append` buffered (one ``write``); fsync it under the ``always`` policy."""
        if not self._buf:
            return
        with self._lock:
            data, self._buf = bytes(self._buf), bytearray()
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self._sizes[self._seg] += len(data)
            self.commits += 1
            self._dirty = True
            if self.fsync == "always":
                os.fsync(self._fd)
                self.fsyncs += 1
                self._dirty = False
        if self.full:
            self.full_events += 1
            if self.full_events == 1 or self.full_events % 100 == 0:
                log.warning("journal at its bound (%d bytes, TWIN_JOURNAL_MAX_MB): snapshotting now to truncate it",
                            self.max_bytes)

    def _sync_every_second(self) -> None:
        # fsync outside the lock, on a duplicate of the descriptor: commit() (on the event loop) must never
        # wait for a disk flush. Measured here (twin bench ingest --stock-only, 1 Hz): with the fsync under
        # the lock, p99 publish-to-state latency was 116 ms; the event loop blocked for each flush.
        while not self._stop.wait(1.0):
            with self._lock:
                if not self._dirty:
                    continue
                fd = os.dup(self._fd)
                self._dirty = False
            try:
                os.fsync(fd)
                self.fsyncs += 1
            finally:
                os.close(fd)

    def rotate(self) -> int:
        """Commit, then start a new segment; returns its number (a snapshot taken now holds everything before it)."""
        self.commit()
        with self._lock:
            # "1s": no flush here (it would block the loop); the snapshot that follows a rotation is fsync'd
            # and holds everything in the segment closed now. "always" flushed at every commit already.
            self._dirty = False
            os.close(self._fd)
            self._seg += 1
            self._fd = self._open(self._seg)
        self._first_wall = None
        return self._seg

    def drop_before(self, seg: int) -> None:
        """Delete the segments before ``seg`` (a snapshot on disk holds their records)."""
        for s in [s for s in self._sizes if s < seg]:
            (self.directory / self._name(s)).unlink(missing_ok=True)
            del self._sizes[s]

    def close(self) -> None:
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join(timeout=2)
        self.commit()
        with self._lock:
            if self._dirty and self.fsync != "never":
                os.fsync(self._fd)
            os.close(self._fd)

    # ---------------------------------------------------------------- read

    def replay(self, from_segment: int = 0) -> Iterator[JournalRecord]:
        """The records of the segments from ``from_segment`` on, in order; bad tails skipped and counted."""
        for seg in self.segments():
            if seg < from_segment or seg == self._seg:
                continue
            yield from self._read_segment(seg)

    def _read_segment(self, seg: int) -> Iterator[JournalRecord]:
        path = self.directory / self._name(seg)
        data = path.read_bytes()
        pos, n = 0, len(data)
        while pos < n:
            why = ""
            if n - pos < _HEAD.size:
                why = "torn record header"
            else:
                length, crc = _HEAD.unpack_from(data, pos)
                body = data[pos + _HEAD.size: pos + _HEAD.size + length]
                if len(body) < length:
                    why = "torn record"
                elif zlib.crc32(body) != crc or length < _BODY.size:
                    why = "checksum mismatch"
                else:
                    ts, flags, tlen = _BODY.unpack_from(body)
                    try:
                        topic = body[_BODY.size:_BODY.size + tlen].decode()
                    except UnicodeDecodeError:
                        why = "checksum mismatch"
                    else:
                        yield JournalRecord(topic, body[_BODY.size + tlen:], ts, bool(flags & 1))
                        pos += _HEAD.size + length
                        continue
            self.corrupt_bytes += n - pos
            self.corrupt_records += 1
            log.warning("journal %s: %s at byte %d; skipped the last %d bytes of the segment", path, why, pos, n - pos)
            return
