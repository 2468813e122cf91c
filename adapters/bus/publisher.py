"""A lean blocking MQTT publisher for bulk replay: QoS 0/1 with a bounded in-flight window.

Why not paho or the :class:`adapters.bus.mqtt.Bus`: measured here (2 cores, Mosquitto on the
same machine, 1.4 KB rack messages, QoS 1), paho 2.2's ``publish`` with its ack handling
tops out near 15,000-17,000 msg/s single-threaded (it walks its out-message table on every
PUBACK and builds a Properties object per packet), and fewer with its network thread.
This client builds PUBLISH packets directly, sends them in batches with one system call,
and parses PUBACKs in bulk, so one Python process can keep up with the broker.

It speaks just what a publisher needs: CONNECT (MQTT 5, or 3.1.1, or ``auto``: 5 first
and 3.1.1 when the broker refuses it), username/password, TLS (``mqtts://``), PUBLISH at
QoS 0 and 1 (QoS 2 is sent as 1), PUBACK, PINGREQ for keep-alive, DISCONNECT. At most
``window`` QoS 1 messages are unacknowledged (capped by the broker's Receive Maximum); a
lost connection is re-established and the unacknowledged messages are sent again with
the DUP flag (at least once, as QoS 1 promises).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import ssl
import struct
import threading
import time
from pathlib import Path

from adapters.bus.mqtt import BrokerAddress, Protocol
from adapters.bus.reach import unreachable_line, unreachable_reason
from adapters.bus.tls import tls_context
from twin.errors import ConfigError, TwinError

__all__ = ["FastPublisher", "PublisherError"]

log = logging.getLogger("twin.publisher")

_CONNACK, _PUBLISH, _PUBACK, _PINGRESP, _DISCONNECT = 0x20, 0x30, 0x40, 0xD0, 0xE0
_PINGREQ = b"\xc0\x00"
_MAX_BATCH = 64 * 1024


class PublisherError(TwinError):
    """The broker could not be reached or refused us."""


#: PUBLISH first byte by [qos][retain]
_FIXED = ((b"\x30", b"\x31"), (b"\x32", b"\x33"))


def _varint(n: int) -> bytes:
    if n < 128:
        return bytes((n,))
    if n < 16384:
        return bytes((n % 128 | 0x80, n // 128))
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _utf8(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _connack_receive_max(props: bytes) -> int | None:
    """Receive Maximum (0x21) from CONNACK properties; other properties are skipped by type."""
    sizes = {0x11: 4, 0x21: 2, 0x24: 1, 0x25: 1, 0x27: 4, 0x22: 2, 0x28: 1, 0x29: 1, 0x2A: 1, 0x13: 2}
    strings = {0x12, 0x1F, 0x1A, 0x1C, 0x15, 0x16}
    i, found = 0, None
    while i < len(props):
        pid = props[i]
        i += 1
        if pid == 0x21:
            found = struct.unpack_from("!H", props, i)[0]
        if pid in sizes:
            i += sizes[pid]
        elif pid in strings:
            i += 2 + struct.unpack_from("!H", props, i)[0]
        elif pid == 0x26:  # user property: two strings
            i += 2 + struct.unpack_from("!H", props, i)[0]
            i += 2 + struct.unpack_from("!H", props, i)[0]
        else:
            break
    return found


class FastPublisher:
    """Blocking publisher. ``connect()``, ``publish()`` many times, ``flush()``, ``close()``."""

    def __init__(self, address: BrokerAddress | list[BrokerAddress], *, username: str | None = None,
                 password: str | None = None,
                 client_id: str | None = None, protocol: Protocol = "auto", window: int = 1000,
                 keepalive: int = 30, ca_file: Path | None = None, cert_file: Path | None = None,
                 key_file: Path | None = None, timeout: float = 10.0) -> None:
        # a cluster's nodes: a failed or lost connection goes on with the next one
        self.addresses = list(address) if isinstance(address, list) else [address]
        self.address = self.addresses[0]
        address = self.address
        self.username = username if username is not None else address.username
        pw = password if password is not None else (address.password.get_secret_value() if address.password else None)
        self.password = pw
        self.client_id = client_id or f"twin-replay-{os.getpid()}-{os.urandom(3).hex()}"
        self.protocol: Protocol = protocol
        self.v5 = protocol != "3.1.1"
        self.window = max(1, window)
        self.keepalive = keepalive
        self.ca_file, self.cert_file, self.key_file = ca_file, cert_file, key_file
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.sent = 0  # PUBLISH packets handed to the socket (first sends)
        self.acked = 0  # QoS 1 messages acknowledged by the broker
        self.reconnects = 0
        #: set it to give up reconnecting (e.g. on Ctrl-C); PublisherError is raised then
        self.abort: threading.Event | None = None
        self._inflight: dict[int, bytes] = {}  # mid -> packet, in send order
        self._next_mid = 1
        self._out = bytearray()
        self._in = bytearray()
        self._topics: dict[str, bytes] = {}  # topic -> its length-prefixed UTF-8
        self._last_send = time.monotonic()

    # ------------------------------------------------------------ connection

    def __enter__(self) -> FastPublisher:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_socket(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.address.host, self.address.port), timeout=self.timeout)
        except OSError as e:
            raise PublisherError(unreachable_line(self.address, unreachable_reason(e))) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.address.tls:
            ctx = tls_context(True, self.ca_file, self.cert_file, self.key_file, str(self.address))
            assert ctx is not None
            try:
                sock = ctx.wrap_socket(sock, server_hostname=self.address.host)
            except (ssl.SSLError, OSError) as e:
                sock.close()
                raise PublisherError(f"TLS to {self.address} failed: {e}") from None
        return sock

    def _connect_packet(self) -> bytes:
        flags = 0x02  # clean start / clean session
        payload = _utf8(self.client_id)
        if self.username is not None:
            flags |= 0x80
            payload += _utf8(self.username)
        if self.password is not None:
            flags |= 0x40
            payload += _utf8(self.password.encode())
        var = _utf8("MQTT") + bytes([5 if self.v5 else 4, flags]) + struct.pack("!H", self.keepalive)
        if self.v5:
            var += b"\x00"  # no properties
        body = var + payload
        return b"\x10" + _varint(len(body)) + body

    def _handshake(self) -> None:
        """Connect to the current node; with a list, each node in turn until one answers."""
        for i, node in enumerate(self.addresses):
            self.address = node
            try:
                self._handshake_one()
                return
            except PublisherError:
                if i == len(self.addresses) - 1:
                    raise

    def _handshake_one(self) -> None:
        sock = self._open_socket()
        try:
            sock.sendall(self._connect_packet())
            sock.settimeout(self.timeout)
            self.sock = sock
            self._in.clear()
            pkt = self._read_packet()
        except (OSError, PublisherError) as e:
            sock.close()
            self.sock = None
            raise PublisherError(f"no CONNACK from {self.address}: {e}") from None
        if pkt is None or pkt[0] & 0xF0 != _CONNACK:
            self.close_socket()
            raise PublisherError(f"{self.address} closed the connection without a CONNACK")
        body = pkt[1]
        rc = body[1] if len(body) > 1 else 255
        if rc != 0:
            self.close_socket()
            if rc in (4, 5, 134, 135):
                raise ConfigError(f"broker {self.address} refused the login (code {rc})")
            raise PublisherError(f"broker {self.address} refused the connection (code {rc})")
        if self.v5 and len(body) > 2:
            n, i = self._decode_varint(body, 2)
            rmax = _connack_receive_max(bytes(body[i:i + n]))
            if rmax:
                self.window = min(self.window, rmax)
        sock.setblocking(False)

    def connect(self) -> None:
        """Connect (and fall back to MQTT 3.1.1 when the broker refuses 5 and ``protocol`` is ``auto``)."""
        try:
            self._handshake()
        except PublisherError:
            if not (self.v5 and self.protocol == "auto"):
                raise
            self.v5 = False
            self._handshake()
        self._last_send = time.monotonic()

    def close_socket(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None

    def close(self) -> None:
        """Send DISCONNECT and close (call :meth:`flush` first to wait for the acknowledgements)."""
        if self.sock is not None:
            with contextlib.suppress(OSError, PublisherError):
                self._send_out()
                self.sock.setblocking(True)
                self.sock.sendall(b"\xe0\x00")
        self.close_socket()

    def _reconnect(self, why: str) -> None:
        log.warning("lost the broker %s (%s); reconnecting", self.address, why)
        self.close_socket()
        backoff = 0.2
        deadline = time.monotonic() + 60
        while True:
            try:
                self._handshake()
                break
            except PublisherError as e:
                if time.monotonic() > deadline:
                    raise PublisherError(f"cannot reconnect to {self.address} for 60 s: {e}") from None
                if self.abort is not None and self.abort.wait(backoff):
                    raise PublisherError(f"stopped while reconnecting to {self.address}") from None
                if self.abort is None:
                    time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        self.reconnects += 1
        self._out.clear()
        for pkt in self._inflight.values():  # resend unacknowledged, DUP set
            self._out += bytes([pkt[0] | 0x08]) + pkt[1:]
        self._send_out()

    # ------------------------------------------------------------ I/O

    @staticmethod
    def _decode_varint(buf: bytes | bytearray, i: int) -> tuple[int, int]:
        n, mult = 0, 1
        while True:
            b = buf[i]
            i += 1
            n += (b & 0x7F) * mult
            if not b & 0x80:
                return n, i
            mult *= 128
            if mult > 128**4:
                raise PublisherError("malformed remaining length from the broker")

    def _read_packet(self) -> tuple[int, bytes] | None:
        """Blocking read of one packet (handshake only)."""
        assert self.sock is not None
        while True:
            pkt = self._take_packet()
            if pkt is not None:
                return pkt
            data = self.sock.recv(65536)
            if not data:
                return None
            self._in += data

    def _take_packet(self) -> tuple[int, bytes] | None:
        buf = self._in
        if len(buf) < 2:
            return None
        try:
            n, i = self._decode_varint(buf, 1)
        except IndexError:
            return None
        if len(buf) < i + n:
            return None
        pkt = (buf[0], bytes(buf[i:i + n]))
        del buf[:i + n]
        return pkt

    def _handle_incoming(self) -> None:
        buf = self._in
        inflight = self._inflight
        while len(buf) >= 2:
            first = buf[0]
            if first == _PUBACK and len(buf) >= 4 and buf[1] == 2:  # the common case, fast
                mid = (buf[2] << 8) | buf[3]
                del buf[:4]
                if inflight.pop(mid, None) is not None:
                    self.acked += 1
                continue
            pkt = self._take_packet()
            if pkt is None:
                return
            kind, body = pkt[0] & 0xF0, pkt[1]
            if kind == _PUBACK and len(body) >= 2:
                mid = (body[0] << 8) | body[1]
                if len(body) >= 3 and body[2] >= 0x80:
                    log.warning("broker refused message %d (reason %d)", mid, body[2])
                if inflight.pop(mid, None) is not None:
                    self.acked += 1
            elif kind == _DISCONNECT:
                raise ConnectionError(f"the broker disconnected us (reason {body[0] if body else 0})")

    def _pump(self, wait: float) -> None:
        """Send what is buffered and read acknowledgements, waiting up to ``wait`` seconds for input."""
        sock = self.sock
        if sock is None:
            self._reconnect("not connected")
            return
        try:
            self._send_out()
            if wait > 0 and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                want_w = [sock] if self._out else []
                select.select([sock], want_w, [], wait)
                self._send_out()
            while True:
                try:
                    data = sock.recv(262144)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not data:
                    raise ConnectionError("the broker closed the connection")
                self._in += data
                if len(data) < 262144:
                    break
            self._handle_incoming()
            if time.monotonic() - self._last_send > self.keepalive / 2:
                self._out += _PINGREQ
                self._send_out()
        except (OSError, ConnectionError) as e:
            self._reconnect(str(e))

    def _send_out(self) -> None:
        sock = self.sock
        out = self._out
        while out and sock is not None:
            try:
                n = sock.send(out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            del out[:n]
            self._last_send = time.monotonic()

    # ------------------------------------------------------------ use

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, batch: bool = False) -> None:
        """Queue one message; blocks while ``window`` QoS 1 messages are unacknowledged.

        With ``batch`` the packet may wait in a buffer (up to 64 KiB) for the next call;
        otherwise it is handed to the socket now.
        """
        if self.sock is None:
            raise PublisherError("not connected")
        while len(self._inflight) >= self.window:
            self._pump(0.5)
        t = self._topics.get(topic)
        if t is None:
            b = topic.encode()
            t = struct.pack("!H", len(b)) + b
            if len(self._topics) < 100_000:
                self._topics[topic] = t
        props = b"\x00" if self.v5 else b""
        if qos:
            mid = self._next_mid
            self._next_mid = mid % 65535 + 1
            while self._next_mid in self._inflight:  # only with a window near 65535
                self._next_mid = self._next_mid % 65535 + 1
            n = len(t) + 2 + len(props) + len(payload)
            pkt = b"".join((_FIXED[1][retain], _varint(n), t, mid.to_bytes(2, "big"), props, payload))
            self._inflight[mid] = pkt
        else:
            n = len(t) + len(props) + len(payload)
            pkt = b"".join((_FIXED[0][retain], _varint(n), t, props, payload))
        self._out += pkt
        self.sent += 1
        if not batch or len(self._out) >= _MAX_BATCH:
            self._pump(0)

    @property
    def unacked(self) -> int:
        return len(self._inflight)

    def idle(self, seconds: float) -> None:
        """Wait ``seconds``, sending buffered packets, reading acks and keeping the connection alive."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                self._pump(0)
                return
            self._pump(min(left, 1.0))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every QoS 1 message is acknowledged; False when ``timeout`` passes first."""
        end = time.monotonic() + timeout
        self._pump(0)
        while self._inflight or self._out:
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._pump(min(left, 0.5))
        return True
