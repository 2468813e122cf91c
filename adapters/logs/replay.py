"""Replay telemetry logs through a broker: original timing scaled by ``speed``, or as fast as acked.

Reading is :mod:`adapters.logs.telemetry_log`, sending is :class:`adapters.bus.publisher.FastPublisher`
(a bounded QoS 1 in-flight window, so nothing is dropped at ``speed=None`` = max). What a
replayed message becomes is :meth:`Replayer.transform`, pure: ``source`` set to ``replay``
(unless kept), ``ts`` shifted by ``rebase``, the site of the topic replaced, ``seq``
continued across loops. Messages under ``stargate/+/twin/...`` (the twin's own outputs)
are never published. A bad line is reported with its file and line number, and skipped
or stops the replay (``on_error``); a message is published whole or not at all.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from paho.mqtt.client import topic_matches_sub

from adapters.bus.publisher import FastPublisher, PublisherError
from adapters.logs.telemetry_log import LogError, LogReader, LogRecord
from twin.topics import is_twin_output, with_site

__all__ = ["ReplayOptions", "ReplayStats", "Replayer", "first_t"]

log = logging.getLogger("twin.replay")

_NUMBER_END = re.compile(rb"[,}\]]")

OnError = Literal["skip", "stop"]


def first_t(paths: Sequence[str | Path]) -> float | None:
    """``t`` of the first readable message of the logs (for relative ``--start`` and ``--rebase``)."""
    for p in paths:
        for rec in LogReader(p):
            if isinstance(rec, LogRecord):
                return rec.t
    return None


@dataclass
class ReplayOptions:
    speed: float | None = 1.0  # None: as fast as the broker acknowledges
    start: float | None = None  # only messages with t >= start
    end: float | None = None  # ... and t < end
    loop: bool = False
    rebase_to: float | None = None  # the first replayed message's t maps to this time; ts shifted alike
    site: str | None = None
    topics: list[str] = field(default_factory=list)  # MQTT filters; empty: all
    keep_source: bool = False
    on_error: OnError = "stop"
    max_loops: int | None = None  # with loop: stop after this many passes (None: until stopped)


@dataclass
class ReplayStats:
    published: int = 0
    filtered: int = 0  # outside --start/--end or --topic
    twin_outputs: int = 0  # refused: under stargate/+/twin/
    bad: list[LogError] = field(default_factory=list)
    bad_count: int = 0
    loops: int = 0
    first_t: float | None = None
    t: float | None = None  # t (in the log) of the latest published message
    wall_start: float = 0.0
    wall_end: float = 0.0
    stopped: str = ""  # "end", "interrupted", "error" (a bad line), "broker" (lost for good)
    error: str = ""
    bytes_done: int = 0
    bytes_total: int = 0

    @property
    def elapsed_s(self) -> float:
        return (self.wall_end or time.monotonic()) - self.wall_start

    @property
    def rate(self) -> float:
        return self.published / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _replace_value(text: bytes | None, key: bytes, new: bytes) -> bytes | None:
    """``text`` with the value of ``"key":`` (a number, or a string without escapes) replaced by ``new``.

    None when ``text`` is None or the key does not occur exactly once, so that the caller
    encodes the value again instead.
    """
    if text is None:
        return None
    pat = b'"' + key + b'":'
    i = text.find(pat)
    if i < 0 or text.find(pat, i + 1) >= 0:
        return None
    j = i + len(pat)
    if text[j:j + 1] == b'"':
        k = text.find(b'"', j + 1)
        if k < 0 or b"\\" in text[j:k]:
            return None
        k += 1
    else:
        m = _NUMBER_END.search(text, j)
        k = m.start() if m else len(text)
    return text[:j] + new + text[k:]


class Replayer:
    """Replays ``paths`` (in the given order) with ``options`` through a publisher."""

    def __init__(self, paths: Sequence[str | Path], options: ReplayOptions) -> None:
        self.paths = [Path(p) for p in paths]
        self.options = options
        self.shift = 0.0  # rebase shift for t and ts, set at the first message
        self._loop_offset = 0.0  # added to t (and ts) in later loops
        self._seq_max: dict[str, int] = {}
        self._seq_offset: dict[str, int] = {}
        self._warned_twin = False
        self._twin_cache: dict[str, bool] = {}
        self._topic_cache: dict[str, str] = {}
        self._match_cache: dict[str, bool] = {}

    # ------------------------------------------------------------ pure parts

    def selected(self, rec: LogRecord) -> bool:
        o = self.options
        if o.start is not None and rec.t < o.start:
            return False
        if o.end is not None and rec.t >= o.end:
            return False
        if not o.topics:
            return True
        v = self._match_cache.get(rec.topic)
        if v is None:
            v = any(topic_matches_sub(f, rec.topic) for f in o.topics)
            if len(self._match_cache) < 100_000:
                self._match_cache[rec.topic] = v
        return v

    def _is_twin(self, topic: str) -> bool:
        v = self._twin_cache.get(topic)
        if v is None:
            v = is_twin_output(self.topic_for(topic))
            if len(self._twin_cache) < 100_000:
                self._twin_cache[topic] = v
        return v

    def topic_for(self, topic: str) -> str:
        site = self.options.site
        if not site:
            return topic
        out = self._topic_cache.get(topic)
        if out is None:
            out = with_site(topic, site)
            if len(self._topic_cache) < 100_000:
                self._topic_cache[topic] = out
        return out

    def event_time(self, rec: LogRecord) -> float:
        """The message's event time as it will be published: the payload's ``ts`` (rebased, looped).

        The twin labels its states by the payloads' ``ts``; a log's ``t`` is when the recorder
        received the message, which is event time only for the simulator's own logs (a recording
        of a run faster than real time, or of history replayed, has ``t`` far from ``ts``). A
        payload without a numeric ``ts`` falls back to ``t``.
        """
        p = rec.payload
        ts = p.get("ts") if isinstance(p, dict) else None
        base = ts if isinstance(ts, int | float) and not isinstance(ts, bool) else rec.t
        return float(base) + self.shift + self._loop_offset

    def transform(self, rec: LogRecord) -> tuple[str, bytes]:
        """The topic and payload bytes to publish for one record.

        The payload's bytes from the log are edited in place where they can be (a key
        that occurs once); otherwise the changed JSON value is encoded again.
        """
        topic = self.topic_for(rec.topic)
        if rec.raw is not None:
            return topic, rec.raw
        payload: Any = rec.payload
        text = rec.text
        if isinstance(payload, dict):
            if not self.options.keep_source and "source" in payload and payload["source"] != "replay":
                payload["source"] = "replay"
                text = _replace_value(text, b"source", b'"replay"')
            shift = self.shift + self._loop_offset
            ts = payload.get("ts")
            if shift and isinstance(ts, int | float) and not isinstance(ts, bool):
                payload["ts"] = round(ts + shift, 6)
                text = _replace_value(text, b"ts", orjson.dumps(payload["ts"]))
            seq = payload.get("seq")
            if isinstance(seq, int) and not isinstance(seq, bool):
                if seq > self._seq_max.get(topic, -1):
                    self._seq_max[topic] = seq
                off = self._seq_offset.get(topic)
                if off:
                    payload["seq"] = seq + off
                    text = _replace_value(text, b"seq", str(seq + off).encode())
        if text is not None:
            return topic, text
        try:
            return topic, orjson.dumps(payload)
        except TypeError:  # too deep to encode again: send the logged bytes unchanged
            return topic, rec.payload_bytes()

    def _next_loop(self, span: float) -> None:
        """Later passes continue event time and ``seq`` where the previous pass ended."""
        self._loop_offset += span
        for topic, m in self._seq_max.items():
            self._seq_offset[topic] = self._seq_offset.get(topic, 0) + m + 1
        self._seq_max.clear()

    # ------------------------------------------------------------ running

    def run(self, pub: FastPublisher, stop: threading.Event | None = None,
            progress: Callable[[ReplayStats], None] | None = None,
            report_error: Callable[[LogError], None] | None = None,
            pace: Callable[[float], bool] | None = None) -> ReplayStats:
        """Publish until the logs end (or forever with ``loop``), ``stop`` is set, or a bad line stops it.

        ``pace(ts)`` (e.g. :meth:`adapters.logs.replay_pace.StatePacer.allows`), when given, is
        asked before each message with its (rebased) event time (:meth:`event_time`: the payload's
        ``ts``); the replay waits while it says no. Returns once every published QoS 1 message
        is acknowledged (or 30 s passed).
        """
        o = self.options
        stop = stop or threading.Event()
        st = ReplayStats(wall_start=time.monotonic())
        sizes = [p.stat().st_size for p in self.paths]
        st.bytes_total = sum(sizes)
        speed = o.speed
        wall0: float | None = None
        t0: float | None = None  # log time that maps to wall0
        last_progress = 0.0
        pass_first: float | None = None
        pass_last: float | None = None
        pass_count = 0
        try:
            while not stop.is_set():
                done_bytes = 0
                for path, size in zip(self.paths, sizes, strict=True):
                    reader = LogReader(path)
                    for rec in reader:
                        if stop.is_set():
                            break
                        if isinstance(rec, LogError):
                            st.bad_count += 1
                            if len(st.bad) < 1000:
                                st.bad.append(rec)
                            if report_error is not None:
                                report_error(rec)
                            if o.on_error == "stop":
                                st.stopped = "error"
                                stop.set()
                                break
                            continue
                        if not self.selected(rec):
                            st.filtered += 1
                            continue
                        if self._is_twin(rec.topic):
                            st.twin_outputs += 1
                            if not self._warned_twin:
                                log.warning("not replaying the twin's own outputs (%s ...)", rec.topic)
                                self._warned_twin = True
                            continue
                        if st.first_t is None:
                            st.first_t = rec.t
                            if o.rebase_to is not None:
                                self.shift = o.rebase_to - rec.t
                        if pass_first is None:
                            pass_first = rec.t
                        pass_last = rec.t
                        pass_count += 1
                        t = rec.t + self._loop_offset
                        if speed is not None:
                            if wall0 is None or t0 is None:
                                wall0, t0 = time.monotonic(), t
                            due = wall0 + (t - t0) / speed
                            while not stop.is_set():
                                left = due - time.monotonic()
                                if left <= 0:
                                    break
                                pub.idle(min(left, 0.2))
                            if stop.is_set():
                                break
                        if pace is not None:
                            ets = self.event_time(rec)
                            while not pace(ets) and not stop.is_set():
                                pub.idle(0.02)
                            if stop.is_set():
                                break
                        topic, payload = self.transform(rec)
                        pub.publish(topic, payload, min(rec.qos, 1), rec.retain, batch=True)
                        st.published += 1
                        st.t = rec.t
                        if progress is not None and st.published % 256 == 0:
                            now = time.monotonic()
                            if now - last_progress >= 0.2:
                                st.bytes_done = done_bytes + reader.position
                                progress(st)
                                last_progress = now
                    done_bytes += size
                    if stop.is_set():
                        break
                st.loops += 1
                if not o.loop or stop.is_set() or pass_first is None or pass_last is None:
                    break
                if o.max_loops is not None and st.loops >= o.max_loops:
                    break
                gap = (pass_last - pass_first) / max(pass_count - 1, 1)
                self._next_loop(pass_last - pass_first + (gap if math.isfinite(gap) else 0.0))
                pass_first = pass_last = None
                pass_count = 0
            if not st.stopped:
                st.stopped = "interrupted" if stop.is_set() else "end"
        except PublisherError as e:
            st.stopped, st.error = ("interrupted", "") if stop.is_set() else ("broker", str(e))
        finally:
            try:
                if not pub.flush(30.0):
                    log.warning("%d messages still unacknowledged after 30 s", pub.unacked)
            except PublisherError as e:
                if st.stopped != "interrupted":
                    st.stopped, st.error = "broker", st.error or str(e)
            st.wall_end = time.monotonic()
            st.bytes_done = st.bytes_total if st.stopped == "end" else st.bytes_done
            if progress is not None:
                progress(st)
        return st
