"""Line protocol to rotated files under the data directory, when no InfluxDB is configured.

Files are ``{dir}/twin-YYYYmmddTHH.lp`` (UTC, by write time), rotated hourly and when
one reaches ``max_bytes`` (``twin-YYYYmmddTHH.1.lp``, ``.2.lp``, ...); each holds plain
line protocol with nanosecond timestamps, one line per point, importable with
``influx write --bucket twin --precision ns --file FILE``. Lines are flushed to the
OS after every batch. A failed write (disk full) is reported as
:class:`~twin.sink_delivery.Unavailable`, so the sink keeps the batch and retries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from twin.sink_delivery import Unavailable

__all__ = ["LineFileWriter"]


class LineFileWriter:
    def __init__(self, directory: Path, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._path: Path | None = None
        self._fh: TextIO | None = None
        self._part = 0
        self.lines_written = 0
        self._lock = threading.Lock()  # one batch at a time, whole lines, even from several threads

    def _target(self) -> Path:
        hour = time.strftime("%Y%m%dT%H", time.gmtime())
        base = self.directory / f"twin-{hour}.lp"
        if self._path is not None and self._path.name.startswith(f"twin-{hour}"):
            if self._path.stat().st_size < self.max_bytes:
                return self._path
            self._part += 1
            return self.directory / f"twin-{hour}.{self._part}.lp"
        self._part = 0
        while base.exists() and base.stat().st_size >= self.max_bytes:  # a restart within the hour
            self._part += 1
            base = self.directory / f"twin-{hour}.{self._part}.lp"
        return base

    def write_sync(self, lines: Iterable[str]) -> None:
        data = "".join(f"{ln}\n" for ln in lines)
        if not data:
            return
        with self._lock:
            self._write(data)

    def _write(self, data: str) -> None:
        try:
            path = self._target()
            if path != self._path:
                self.close()
                self._path = path
                self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open between writes
            assert self._fh is not None
            self._fh.write(data)
            self._fh.flush()
        except OSError as e:
            self.close()
            self._path = None
            raise Unavailable(f"cannot write {self.directory}: {e}") from None
        self.lines_written += data.count("\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def describe(self) -> str:
        return f"files in {self.directory}"
