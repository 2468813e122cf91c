"""A simulated plant's telemetry log (contract, "Telemetry log"), written as fast as the machine goes.

``twin sim --out FILE`` runs here. A week of phase 1 at 10 s steps is 99 M messages (~120 GB of
JSON, ~35 GB gzipped); the simulation itself is ~2 ms a step, the cost is turning 350,000 floats a
step into JSON and deflating ~2 MB a step. So:

- the simulator steps in this process, in event time, one step after the other (it has state);
- the steps are cut into chunks of a fixed number of steps (:func:`steps_per_chunk`), and worker
  processes turn each chunk into log lines and deflate it, as one gzip member, in parallel;
- this process writes the members in step order. A gzip file may hold any number of members
  (RFC 1952 2.2); ``gzip``, ``zcat`` and :class:`adapters.logs.telemetry_log.LogReader` read them as one.

Each rack's and CDU's ``seq`` is a function of the step index (:meth:`sims.messages.FrameEncoder.seek`)
and a chunk's bytes depend only on its steps, so the file is byte-identical whatever the number of
workers. Deflate is ISA-L's (``isal``: Python bindings of the Intel library behind ``igzip``, kept by
the pycompression project; ~4x zlib's level 1 here at a smaller size, standard gzip output).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np
from isal import isal_zlib as _deflate

from adapters.logs.telemetry_log import ISAL_MAX_LEVEL
from sims.messages import FrameEncoder
from sims.plant_sim import PlantSim, SimFrame
from sims.scenario import Scenario
from twin.plant import Plant

__all__ = ["DEFLATE", "default_jobs", "steps_per_chunk", "write_log"]

DEFLATE = "isal"  # what compresses the members (reported by ``twin bench sim``)
#: Messages per chunk (one gzip member; a worker's unit of work): ~24 MB of JSON for phase 1.
CHUNK_MESSAGES = 20_000


def steps_per_chunk(plant: Plant, rack_every: int) -> int:
    """Steps per chunk: about :data:`CHUNK_MESSAGES` messages (fixed by the plant, not the machine)."""
    site = len(plant.feeder_ids) + len(plant.exchanger_ids) + 1
    per_step = site + (plant.n_racks + len(plant.cdu_ids)) / rack_every
    return max(1, int(CHUNK_MESSAGES // per_step))


class _ChunkEncoder:
    """Turns a chunk of frames into log bytes (deflated when ``level`` is not None)."""

    def __init__(self, plant: Plant, rack_every: int, level: int | None) -> None:
        self.encoder = FrameEncoder(plant)
        self.rack_every = rack_every
        self.level = level

    def __call__(self, k0: int, frames: list[SimFrame]) -> tuple[bytes, int]:
        enc = self.encoder
        enc.seek(k0, self.rack_every)
        lines = [line for j, f in enumerate(frames) for line in enc.step_lines(f, k0 + j, self.rack_every)]
        data = b"".join(lines)
        n = len(lines)
        if self.level is None:
            return data, n
        z = _deflate.compressobj(self.level, _deflate.DEFLATED, 31)  # 31: a gzip member, mtime 0, no name
        return z.compress(data) + z.flush(), n


_worker: _ChunkEncoder | None = None


def _init_worker(plant: Plant, rack_every: int, level: int | None) -> None:
    global _worker
    # Ctrl-C reaches the whole process group: the parent stops the run and shuts the pool down
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    _worker = _ChunkEncoder(plant, rack_every, level)


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGTERM to this worker when its parent dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return


def _encode_in_worker(k0: int, frames: list[SimFrame]) -> tuple[bytes, int]:
    assert _worker is not None
    return _worker(k0, frames)


def default_jobs() -> int:
    """Worker processes: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def write_log(plant: Plant, out: str | Path, *, start_ts: float, duration_s: float, step_s: float,
              seed: int = 0, scenario: Scenario | None = None, rack_every: int = 1, compresslevel: int = 1,
              jobs: int | None = None, progress: Callable[[float], None] | None = None,
              stop: threading.Event | None = None) -> int:
    """Simulate ``duration_s`` of event time from ``start_ts`` in steps of ``step_s`` into a telemetry log.

    Gzip when the name ends in ``.gz`` (``compresslevel`` 0-3 with isal). Deterministic: the same
    plant, scenario, seed, start and steps give a byte-identical file, whatever ``jobs`` (worker
    processes; default one per core, 1: all in this process). ``progress(simulated_s)`` is called
    after each chunk. ``stop`` set: the run ends after the chunk being written, the file complete up
    to there. Returns the number of messages written.
    """
    rack_every = max(1, rack_every)
    level = min(max(compresslevel, 0), ISAL_MAX_LEVEL) if str(out).endswith(".gz") else None
    jobs = default_jobs() if jobs is None else max(1, jobs)
    sim = PlantSim(plant, seed=seed, start_ts=start_ts, scenario=scenario)
    n_steps = int(np.ceil(duration_s / step_s - 1e-9))
    chunk = steps_per_chunk(plant, rack_every)
    written = 0

    def frames(k0: int) -> list[SimFrame]:
        return [sim.step(start_ts + k * step_s) for k in range(k0, min(k0 + chunk, n_steps))]

    with open(out, "wb") as fh:
        def put(data: bytes, n: int, done_steps: int) -> None:
            nonlocal written
            fh.write(data)
            written += n
            if progress is not None:
                progress(done_steps * step_s)

        if jobs == 1:
            encode = _ChunkEncoder(plant, rack_every, level)
            for k0 in range(0, n_steps, chunk):
                if stop is not None and stop.is_set():
                    break
                put(*encode(k0, frames(k0)), min(k0 + chunk, n_steps))
        else:
            # spawn: no fork of a process whose other threads (a progress bar's) may hold locks
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                     initargs=(plant, rack_every, level)) as pool:
                pending: deque[tuple[int, Future[tuple[bytes, int]]]] = deque()
                try:
                    for k0 in range(0, n_steps, chunk):
                        if stop is not None and stop.is_set():
                            break
                        pending.append((min(k0 + chunk, n_steps), pool.submit(_encode_in_worker, k0, frames(k0))))
                        while len(pending) > 2 * jobs or (pending and pending[0][1].done()):
                            end, fut = pending.popleft()
                            put(*fut.result(), end)
                    while pending:
                        end, fut = pending.popleft()
                        put(*fut.result(), end)
                except BaseException:
                    for _, fut in pending:
                        fut.cancel()
                    raise
    if progress is not None and not (stop is not None and stop.is_set()):
        progress(n_steps * step_s)
    return written

