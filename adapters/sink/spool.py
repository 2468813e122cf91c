"""A durable, bounded, in-order spool of line-protocol batches on disk.

Layout under the spool directory:

- ``{n:012d}.seg``: append-only segment files; each holds records
  ``<length u32><crc32 u32><lines u32>`` + ``length`` bytes of UTF-8 lines joined by
  ``\\n``. Every append is ``fsync``'d before :meth:`Spool.append` returns.
- ``committed``: ``"{segment} {offset}\\n"``, the first byte not yet delivered;
  replaced atomically (write, fsync, rename, fsync the directory).

On open, segments are scanned from the committed offset; a torn or corrupt tail
(a crash in the middle of an append) is cut off at the last whole record, so a
crash loses nothing that :meth:`append` acknowledged. Records are read back in the
order they were appended, and a record is delivered again after a crash unless its
offset was committed (at-least-once; the lines are idempotent).

Bound: ``max_bytes`` of segment data. When an append would exceed it, the oldest
whole segments are dropped (their undelivered lines counted in ``dropped``) until it
fits: the newest data is kept, as Telegraf's metric buffer does. A single record
larger than the bound is dropped instead.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Spool", "SpoolPosition"]

log = logging.getLogger("twin.spool")

_HEAD = struct.Struct("<III")


@dataclass(frozen=True, order=True, slots=True)
class SpoolPosition:
    segment: int
    offset: int


class Spool:
    def __init__(self, directory: Path, max_bytes: int = 512 * 1024 * 1024,
                 segment_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 * 1024, min(64 * 1024 * 1024, max_bytes // 8))
        self.dropped = 0  # lines dropped because the spool was full
        self._sizes: dict[int, int] = {}  # segment -> bytes of whole records
        self._lines: dict[int, int] = {}  # segment -> lines not yet committed
        self._committed = SpoolPosition(0, 0)
        self._fd: int | None = None
        self._fd_seg = -1
        self._lock = threading.RLock()  # callers use worker threads; one operation at a time
        self._recover()

    # ---------------------------------------------------------------- state

    @property
    def lines(self) -> int:
        """Lines spooled and not yet committed."""
        return sum(list(self._lines.values()))  # list(): one C-level copy, safe while a worker appends

    @property
    def bytes(self) -> int:
        """Bytes of segment data not yet committed (what counts against ``max_bytes``)."""
        sizes = list(self._sizes.values())
        return sum(sizes) - self._committed.offset if sizes else 0

    @property
    def empty(self) -> bool:
        return self.lines == 0

    @property
    def committed(self) -> SpoolPosition:
        return self._committed

    def _path(self, seg: int) -> Path:
        return self.directory / f"{seg:012d}.seg"

    # ---------------------------------------------------------------- recovery

    def _recover(self) -> None:
        cfile = self.directory / "committed"
        if cfile.exists():
            try:
                seg_s, off_s = cfile.read_text().split()
                self._committed = SpoolPosition(int(seg_s), int(off_s))
            except ValueError:
                log.warning("spool: %s is unreadable; delivering every segment again", cfile)
        segs = sorted(int(p.stem) for p in self.directory.glob("*.seg") if p.stem.isdigit())
        for seg in segs:
            if seg < self._committed.segment:
                self._path(seg).unlink(missing_ok=True)
                continue
            start = self._committed.offset if seg == self._committed.segment else 0
            size, lines = self._scan(seg, start)
            self._sizes[seg], self._lines[seg] = size, lines
        if self._sizes and self._committed.segment not in self._sizes:
            self._committed = SpoolPosition(min(self._sizes), 0)
        if not self._sizes:
            self._committed = SpoolPosition(self._committed.segment, 0)
        if self.lines:
            log.info("spool: %d lines (%d bytes) to deliver from %s", self.lines, self.bytes, self.directory)

    def _scan(self, seg: int, start: int) -> tuple[int, int]:
        """Validate a segment's records; cut a torn tail; return (size, lines from ``start``)."""
        path = self._path(seg)
        data = path.read_bytes()
        pos, lines = 0, 0
        while pos + _HEAD.size <= len(data):
            length, crc, n = _HEAD.unpack_from(data, pos)
            body = data[pos + _HEAD.size: pos + _HEAD.size + length]
            if len(body) < length or zlib.crc32(body) != crc:
                break
            if pos >= start:
                lines += n
            pos += _HEAD.size + length
        if pos < len(data):
            log.warning("spool: %s has a torn or corrupt tail after byte %d; cutting it off", path, pos)
            with open(path, "r+b") as fh:
                fh.truncate(pos)
                os.fsync(fh.fileno())
        return pos, lines

    # ---------------------------------------------------------------- append

    def append(self, lines: list[str]) -> int:
        """Append one record and fsync it; returns how many lines were dropped to make room."""
        with self._lock:
            return self._append(lines)

    def _append(self, lines: list[str]) -> int:
        if not lines:
            return 0
        body = "\n".join(lines).encode()
        record = _HEAD.pack(len(body), zlib.crc32(body), len(lines)) + body
        dropped = 0
        if len(record) > self.max_bytes:
            self.dropped += len(lines)
            return len(lines)
        while self._sizes and self.bytes + len(record) > self.max_bytes:
            dropped += self._drop_oldest()
        seg = max(self._sizes) if self._sizes else self._committed.segment
        if self._sizes and self._sizes[seg] + len(record) > self.segment_bytes and self._sizes[seg] > 0:
            seg += 1
        if seg not in self._sizes:
            self._close_fd()
            self._sizes[seg], self._lines[seg] = 0, 0
            if not any(s < seg for s in self._sizes):
                self._commit(SpoolPosition(seg, 0))
        if self._fd is None or self._fd_seg != seg:
            self._close_fd()
            self._fd = os.open(self._path(seg), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._fd_seg = seg
            self._fsync_dir()
        os.write(self._fd, record)
        os.fsync(self._fd)
        self._sizes[seg] += len(record)
        self._lines[seg] += len(lines)
        return dropped

    def _drop_oldest(self) -> int:
        seg = min(self._sizes)
        lost = self._lines.pop(seg)
        del self._sizes[seg]
        if self._fd is not None and self._fd_seg == seg:
            self._close_fd()
        self._path(seg).unlink(missing_ok=True)
        nxt = min(self._sizes) if self._sizes else seg + 1
        self._commit(SpoolPosition(nxt, 0))
        self.dropped += lost
        log.warning("spool: full (%d bytes max); dropped segment %d with %d lines", self.max_bytes, seg, lost)
        return lost

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # ---------------------------------------------------------------- read and commit

    def read(self, max_lines: int) -> tuple[list[str], SpoolPosition]:
        """Whole records from the committed position, up to about ``max_lines`` lines (at least one record).

        Returns the lines and the position to :meth:`commit` once they are delivered.
        """
        with self._lock:
            return self._read(max_lines)

    def _read(self, max_lines: int) -> tuple[list[str], SpoolPosition]:
        while self._sizes:
            seg = self._committed.segment
            if seg not in self._sizes:
                self._committed = SpoolPosition(min(self._sizes), 0)
                continue
            if self._committed.offset >= self._sizes[seg]:
                later = [s for s in self._sizes if s > seg]
                if not later:
                    return [], self._committed
                self._retire(seg, SpoolPosition(min(later), 0))
                continue
            out: list[str] = []
            with open(self._path(seg), "rb") as fh:
                fh.seek(self._committed.offset)
                pos = self._committed.offset
                while pos < self._sizes[seg] and (not out or len(out) < max_lines):
                    length, _crc, _n = _HEAD.unpack(fh.read(_HEAD.size))
                    out.extend(fh.read(length).decode().split("\n"))
                    pos += _HEAD.size + length
            return out, SpoolPosition(seg, pos)
        return [], self._committed

    def commit(self, pos: SpoolPosition, lines: int) -> None:
        """Mark everything before ``pos`` delivered (``lines`` of them); a position in a dropped segment is ignored."""
        with self._lock:
            self._commit_to(pos, lines)

    def _commit_to(self, pos: SpoolPosition, lines: int) -> None:
        if pos.segment not in self._sizes or pos <= self._committed:
            return
        self._lines[pos.segment] = max(0, self._lines[pos.segment] - lines)
        later = [s for s in self._sizes if s > pos.segment]
        if pos.offset >= self._sizes[pos.segment] and later:
            self._retire(pos.segment, SpoolPosition(min(later), 0))
        else:
            self._commit(pos)

    def _retire(self, seg: int, nxt: SpoolPosition) -> None:
        self._commit(nxt)
        self._sizes.pop(seg, None)
        self._lines.pop(seg, None)
        if self._fd is not None and self._fd_seg == seg:
            self._close_fd()
        self._path(seg).unlink(missing_ok=True)

    def _commit(self, pos: SpoolPosition) -> None:
        tmp = self.directory / "committed.tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{pos.segment} {pos.offset}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.directory / "committed")
        self._fsync_dir()
        self._committed = pos

    def close(self) -> None:
        with self._lock:
            self._close_fd()

