"""Why a broker could not be reached, in the words a user acts on, and the errors that carry it."""

from __future__ import annotations

import socket
import ssl

from twin.errors import TwinError

__all__ = ["BrokerUnreachable", "StoppedConnecting", "unreachable_line", "unreachable_reason"]

HOW_TO_FIX = "is it running? --broker or TWIN_BROKER"


class BrokerUnreachable(TwinError):
    """The broker did not answer (refused, no such host, no answer) and the command does not wait for it."""


class StoppedConnecting(TwinError):
    """A signal (or the end of --duration) came before the first connection: a clean stop, not a failure."""


def unreachable_reason(exc: BaseException) -> str:
    """``connection refused``, ``no such host nohost (Name or service not known)``, ``no answer in 10 s`` ..."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:  # aiomqtt raises MqttError from the socket's OSError
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return f"no such host ({e.strerror or e})"
        if isinstance(e, TimeoutError):
            return "no answer (timed out)"
        if isinstance(e, ssl.SSLError):
            return f"TLS failed ({e.reason or e})"
        if isinstance(e, OSError) and e.strerror:
            return e.strerror[0].lower() + e.strerror[1:]
        e = e.__cause__ or e.__context__
    text = str(exc)
    return text or type(exc).__name__


def unreachable_line(address: object, reason: str, within_s: float | None = None) -> str:
    """The one line a user sees: ``cannot reach the broker at mqtt://X: connection refused; is it running? ...``."""
    within = f" within {within_s:g} s" if within_s is not None else ""
    return f"cannot reach the broker at {address}{within}: {reason}; {HOW_TO_FIX}"
