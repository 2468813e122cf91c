"""Delivering a batch of lines by error class, as Telegraf's InfluxDB v2 output does.

Pure logic, no network: a writer is any ``write(lines)`` that returns on success or
raises one of the :class:`WriteError` classes below (the adapters translate HTTP
statuses and transport errors into them at the boundary).

- :class:`Rejected` (HTTP 400, 422): split the batch in halves until the bad lines are
  alone; dead-letter only those.
- :class:`TooLarge` (HTTP 413): split the batch in halves and send each; a single line
  still too large is dead-lettered.
- :class:`Throttled` (HTTP 429, 503): stop; the caller waits ``Retry-After`` (or backs
  off) and retries the rest.
- :class:`Unavailable` (other 5xx and 4xx, timeouts, refused connections): stop; the
  caller backs off exponentially with jitter.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from twin.errors import TwinError

__all__ = [
    "Backoff",
    "Delivery",
    "Rejected",
    "Throttled",
    "TooLarge",
    "Unavailable",
    "WriteError",
    "deliver",
    "error_for_status",
    "parse_retry_after",
]


class WriteError(TwinError):
    """A write that did not succeed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Rejected(WriteError):
    """The server refused the data itself (400, 422): retrying the same lines cannot help."""


class TooLarge(WriteError):
    """The request body is too large (413): send smaller batches."""


class Throttled(WriteError):
    """The server asks to come back later (429, 503), after ``retry_after`` seconds when it said."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class Unavailable(WriteError):
    """Transient: other 5xx, timeouts, refused connections (and 401/403/404, a setup error we wait out)."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_status(status: int, body: str = "", retry_after: str | None = None) -> WriteError:
    """The error class for a non-2xx HTTP status."""
    msg = f"HTTP {status}: {body.strip()[:300]}" if body.strip() else f"HTTP {status}"
    if status in (400, 422):
        return Rejected(msg, status)
    if status == 413:
        return TooLarge(msg, status)
    if status in (429, 503):
        return Throttled(msg, status, parse_retry_after(retry_after))
    return Unavailable(msg, status)


@dataclass
class Delivery:
    """What happened to a batch: lines written, lines dead-lettered (with the reason), and what is left."""

    written: int = 0
    resent: int = 0
    dead: list[tuple[str, str]] = field(default_factory=list)
    error: WriteError | None = None
    remaining: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.error is None


def deliver(write: Callable[[list[str]], None], lines: Sequence[str]) -> Delivery:
    """Write ``lines`` in order, splitting on 400/413/422; stop at the first transient error.

    On a transient error, ``remaining`` holds every line neither written nor
    dead-lettered, in their original order, and ``error`` says why.
    """
    result = Delivery()
    todo: deque[list[str]] = deque([list(lines)] if lines else [])
    while todo:
        chunk = todo.popleft()
        try:
            write(chunk)
        except (Rejected, TooLarge) as e:
            if len(chunk) == 1:
                result.dead.append((chunk[0], str(e)))
                continue
            half = len(chunk) // 2
            todo.appendleft(chunk[half:])
            todo.appendleft(chunk[:half])
            result.resent += len(chunk)
            continue
        except (Throttled, Unavailable) as e:
            result.error = e
            result.remaining = [ln for c in (chunk, *todo) for ln in c]
            return result
        result.written += len(chunk)
    return result


class Backoff:
    """Exponential backoff with jitter: ``base * 2**n`` capped at ``cap``, times a factor in [0.5, 1]."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next(self, retry_after: float | None = None) -> float:
        """Seconds to wait before the next try; a server's ``Retry-After`` wins (capped at 10 x cap)."""
        self.failures += 1
        if retry_after is not None:
            return min(retry_after, 10 * self.cap)
        raw = min(self.cap, self.base * 2 ** (self.failures - 1))
        return raw * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        self.failures = 0
