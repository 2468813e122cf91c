"""Progress of a long command, in the units a person thinks in: a bar on a terminal, a line every 10 s else.

Every command whose work takes more than a few seconds (replay, import, sim --out, backtest, bench) shows
it through :class:`Progress`: what is done of what there is, formatted by the caller (messages, plant time
as ``hh:mm:ss``, bytes), the share, and the time left from the measured rate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["Progress", "clock", "eta", "human_bytes", "messages"]

Formatter = Callable[[float], str]


def messages(n: float) -> str:
    return f"{int(n):,} messages"


def clock(seconds: float) -> str:
    """Plant time as ``hh:mm:ss`` (``2d 03:04:05`` past a day)."""
    s = max(0, round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}d {h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def eta(done: float, total: float, elapsed_s: float) -> str | None:
    """Time left at the rate measured so far, ``None`` until there is a rate."""
    if done <= 0 or elapsed_s <= 0 or total <= done:
        return None if total > done else "0:00:00"
    return clock((total - done) / (done / elapsed_s))


class Progress:
    """``with Progress("replay", total, clock) as p: p.update(done)``; ``total`` None: no share, no ETA.

    ``show``: None decides by whether stderr is a terminal (a bar) or not (a line every ``every_s``);
    False shows nothing.
    """

    def __init__(self, label: str, total: float | None, fmt: Formatter | None = messages, *, show: bool | None = None,
                 every_s: float = 10.0, extra: Callable[[], str] | None = None) -> None:
        self.label = label
        self.total = total
        self.fmt = fmt
        self.every_s = every_s
        self.extra = extra
        self.enabled = show is not False
        self.tty = sys.stderr.isatty() if show is None else bool(show) and sys.stderr.isatty()
        self.done = 0.0
        self._t0 = time.monotonic()
        self._last_line = self._t0
        self._lines = 0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled and self.tty:
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.fields[tail]}"), transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, tail="")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._render()
            self._bar.__exit__(exc_type, exc, tb)
        elif self.enabled and exc is None and self._lines:  # work shorter than every_s says nothing
            self._line()

    def text(self) -> str:
        """``replay 13,056 messages of 29,322 (45 %), 0:01:02 left``."""
        elapsed = time.monotonic() - self._t0
        share = f"{min(self.done / self.total, 1.0):.0%}" if self.total else ""
        if self.fmt is None:  # a share only
            out = f"{self.label} {share}"
        else:
            out = f"{self.label} {self.fmt(self.done)}"
            if self.total:
                out += f" of {self.fmt(self.total)} ({share})"
        if self.total:
            left = eta(self.done, self.total, elapsed)
            if left is not None:
                out += f", {left} left"
        if self.extra is not None:
            out += f", {self.extra()}"
        return out

    def update(self, done: float, total: float | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        if self._bar is not None:
            self._render()
        elif time.monotonic() - self._last_line >= self.every_s:
            self._line()

    def _render(self) -> None:
        tail = self.text().removeprefix(f"{self.label} ")
        self._bar.update(self._task, completed=self.done, total=self.total, tail=tail)

    def _line(self) -> None:
        self._last_line = time.monotonic()
        self._lines += 1
        sys.stderr.write(f"twin {self.text()}\n")
        sys.stderr.flush()
