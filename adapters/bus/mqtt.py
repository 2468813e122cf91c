"""The MQTT bus: one reconnecting aiomqtt connection per service.

- MQTT 5 first, falling back to 3.1.1 when the broker refuses the protocol (the
  embedded amqtt broker speaks 3.1.1 only);
- reconnect with exponential backoff and jitter, resubscribe after every reconnect;
- an optional persistent session (fixed client id, clean start off, session expiry);
- the ``twin/health/{service}`` will (``offline``), and ``online`` on every connect;
- a bounded incoming queue: when it is full the newest message is dropped and counted
  (``Bus.dropped``), never an unbounded growth;
- ``mqtt://`` and ``mqtts://`` URLs, username and password from settings (a
  ``SecretStr``, never logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import SecretStr

from adapters.bus.reach import BrokerUnreachable, StoppedConnecting, unreachable_line, unreachable_reason
from adapters.bus.tls import tls_context
from twin.errors import ConfigError
from twin.topics import Topics

__all__ = [
    "BrokerAddress",
    "BrokerUnreachable",
    "Bus",
    "Message",
    "Protocol",
    "StoppedConnecting",
    "describe_brokers",
    "is_redelivery",
    "parse_broker_url",
    "parse_broker_urls",
]

log = logging.getLogger("twin.bus")

Message = aiomqtt.Message
Protocol = Literal["auto", "5", "3.1.1"]


def is_redelivery(msg: aiomqtt.Message) -> bool:
    """The MQTT dup flag: the broker (or a publisher) sends this message again."""
    return bool(getattr(msg, "dup", False))


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: SecretStr | None = None

    def __str__(self) -> str:  # never shows the password
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://[user[:pass]@]host[:port]`` or ``mqtts://...`` (ports default to 1883 / 8883)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"broker URL {url!r} is not valid ({e}); use mqtt://host:port or mqtts://host:port") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"broker URL must look like mqtt://host:port or mqtts://host:port, got {url!r}")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=SecretStr(unquote(parts.password)) if parts.password else None,
    )


def parse_broker_urls(text: str) -> list[BrokerAddress]:
    """A broker or a cluster's nodes: ``mqtt://a:1883,mqtt://b:1883,mqtt://c:1883`` (tried in turn)."""
    urls = [u.strip() for u in text.split(",") if u.strip()]
    if not urls:
        raise ConfigError("no broker: pass --broker mqtt://host:port or set TWIN_BROKER")
    return [parse_broker_url(u) for u in urls]


def describe_brokers(addresses: list[BrokerAddress]) -> str:
    return ",".join(str(a) for a in addresses)


class _Client(aiomqtt.Client):
    """aiomqtt's client, reading every packet the socket holds per wake-up.

    paho's ``loop_read`` handles one packet per call (it ignores ``max_packets`` for
    QoS 0/1), so aiomqtt's reader callback costs one event-loop round trip per message.
    Draining the socket in one callback measured about 2x the message rate here. Uses
    paho 2.x internals (``_packet_read``, ``_loop_rc_handle``); paho is pinned ``<3``.
    """

    session_present = False
    shared_available: bool | None = None  # MQTT 5 CONNACK: the broker takes $share subscriptions (None: unsaid)
    generation = 0  # the Bus' connection counter for this client: tags every message it receives

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any = None) -> None:
        self.session_present = bool(getattr(flags, "session_present", False))
        said = getattr(properties, "SharedSubscriptionAvailable", None) if properties is not None else None
        self.shared_available = None if said is None else bool(said)
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # aiomqtt's message, plus the MQTT dup flag (the broker sends it again): read by :func:`is_redelivery`
        m = aiomqtt.Message._from_paho_message(message)
        m.dup = bool(message.dup)  # type: ignore[attr-defined]
        m.generation = self.generation  # type: ignore[attr-defined]
        with contextlib.suppress(asyncio.QueueFull):  # counted by _CountingQueue
            self._queue.put_nowait(m)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # aiomqtt's own _on_socket_open, with a reader that drains the socket (not one packet per wake-up)
        # and pauses reading while the consumer is behind (back-pressure onto TCP and the broker's queue)
        queue = self._queue
        fd = sock.fileno()

        def drain() -> None:
            try:
                for _ in range(10_000):
                    if client._sock is None:
                        return
                    if isinstance(queue, _CountingQueue) and queue.armed and queue.qsize() >= queue.pause_at:
                        self._loop.remove_reader(fd)
                        queue.resume = lambda: self._loop.add_reader(fd, drain) if client._sock is not None else None
                        return
                    rc = client._packet_read()
                    if rc == mqtt.MQTT_ERR_AGAIN:
                        return
                    if rc > 0:
                        client._loop_rc_handle(rc)
                        return
            except Exception as exc:
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def create_misc_task() -> None:
            self._misc_task = self._loop.create_task(self._misc_loop())

        # paho calls this from the executor thread that runs connect(): schedule onto the loop
        self._loop.call_soon_threadsafe(self._loop.add_reader, fd, drain)
        self._loop.call_soon_threadsafe(create_misc_task)


class _CountingQueue(asyncio.Queue):  # type: ignore[type-arg]
    """The bounded incoming queue.

    At ``pause_at`` messages the reader stops taking packets off the socket (TCP back-pressure;
    the broker queues for the session) until the consumer has taken the queue down to
    ``pause_at // 2``; should it still fill up (``maxsize``), the newest message is dropped and counted.
    """

    dropped = 0
    pause_at = 20_000
    resume: Callable[[], object] | None = None
    armed = False  # pausing only once the connection is set up (its SUBACKs must still be read)

    def get_nowait(self) -> aiomqtt.Message:
        item = super().get_nowait()
        if self.resume is not None and self.qsize() <= self.pause_at // 2:
            resume, self.resume = self.resume, None
            resume()
        return item

    def put_nowait(self, item: aiomqtt.Message) -> None:
        try:
            super().put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("incoming queue full (%d messages); %d dropped so far", self.maxsize, self.dropped)
            raise


class Bus:
    """One service's MQTT connection, kept alive across broker restarts.

    Use as ``async with Bus(...) as bus``; read with ``async for msg in bus.messages()``;
    write with ``await bus.publish(...)``, which waits through a reconnect rather than fail.
    """

    def __init__(
        self,
        url: str,
        *,
        service: str,
        site: str,
        subscriptions: Iterable[str] = (),
        username: str | None = None,
        password: SecretStr | None = None,
        client_id: str | None = None,
        session_expiry_s: int = 0,
        queue_size: int = 100_000,
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        protocol: Protocol = "auto",
        max_inflight: int = 1000,
        health: bool = True,
        manual_ack: bool = False,
        wait_for_broker: bool = True,
        stop: asyncio.Event | None = None,
        give_up_after_s: float | None = None,
        share_group: str | None = None,
        shared_subscriptions: Literal["auto", "on", "off"] = "auto",
        redelivery_wait_s: float = 0.0,
    ) -> None:
        # a cluster's nodes, tried in turn: on a lost or refused connection the next node is tried at once,
        # and the backoff grows only once every node has failed in a row
        self.addresses = parse_broker_urls(url)
        self._node = 0
        # the first connection: a service keeps trying (``wait_for_broker``) and says so; a one-shot command
        # stops at the first unreachable broker with one line. ``stop`` (a signal) and ``give_up_after_s``
        # (the command's --duration) end the wait either way.
        self.share_group = share_group
        self.shared_subscriptions = shared_subscriptions
        # how long after a session resumes the broker may still resend what it had delivered to the lost
        # connection (0 on Mosquitto, which resends them first; NATS: after its mqtt ack_wait, so 15 s for 3 s).
        # A consumer holds its windows open that long after ``resumed_at`` (the wall time of the latest connect
        # to a kept session).
        self.redelivery_wait_s = redelivery_wait_s
        self.resumed_at: float | None = None
        self.refused: list[str] = []  # filters the broker refused when a resumed session subscribed again
        self._resub_check: asyncio.Task[None] | None = None
        self.wait_for_broker = wait_for_broker
        self.stop = stop
        self.give_up_after_s = give_up_after_s
        self.last_error: str | None = None
        self._not_yet_since: float | None = None
        self._not_yet_logged = 0.0
        self.service = service
        self.site = site
        self.subscriptions = list(subscriptions)
        self.username = username or self.address.username
        self.password = password or self.address.password
        self.client_id = client_id
        self.session_expiry_s = session_expiry_s
        self.persistent = bool(client_id) and session_expiry_s > 0
        self.ca_file, self.cert_file, self.key_file = ca_file, cert_file, key_file
        self._tls_context()  # unreadable TLS files: a ConfigError now, not a retry loop later
        self.protocol: Protocol = protocol
        self.max_inflight = max_inflight
        self.health = health
        # manual_ack: received QoS 1 messages are acknowledged only by ack() (after the consumer made them
        # durable), so the broker redelivers them to the persistent session after a crash
        self.manual_ack = manual_ack
        self.generation = 0  # connection counter: message ids are only valid on the connection they came on
        self.health_topic = Topics(site).health(service)
        # aiomqtt puts incoming messages straight into this one queue, across reconnects
        self.queue: asyncio.Queue[aiomqtt.Message] = _CountingQueue(maxsize=queue_size)
        self.queue.pause_at = min(_CountingQueue.pause_at, max(queue_size // 2, 1))  # type: ignore[attr-defined]
        self.connects = 0
        self.protocol_in_use: str | None = None
        self._client: aiomqtt.Client | None = None
        self._latest: aiomqtt.Client | None = None  # the newest client, connected or connecting (for acks)
        self._connected = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self.outbox: asyncio.Queue[tuple[str, bytes, int, bool]] = asyncio.Queue(maxsize=queue_size)
        self.outbox_dropped = 0
        self._sender: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- lifecycle

    @property
    def address(self) -> BrokerAddress:
        """The node this bus is connected or connecting to."""
        return self.addresses[self._node]

    @property
    def brokers(self) -> str:
        return describe_brokers(self.addresses)

    def _next_node(self) -> bool:
        """Move to the next node of the list; True when that starts another round of all of them."""
        self._node = (self._node + 1) % len(self.addresses)
        return self._node == 0

    async def __aenter__(self) -> Bus:
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._supervise(), name=f"bus-{self.service}")
        self._sender = asyncio.create_task(self._send_outbox(), name=f"bus-{self.service}-out")
        try:
            await self._first_connection()
        except BaseException:
            await self.close()
            raise
        return self

    async def _first_connection(self) -> None:
        """Until the first connection is up; :class:`StoppedConnecting` on ``stop``, :class:`BrokerUnreachable`
        after ``give_up_after_s``, the first connection's error if it is one no retry can mend."""
        assert self._first is not None
        waits: set[asyncio.Future[Any]] = {self._first}  # asyncio.wait cancels nothing it waits on
        stopping = asyncio.ensure_future(self.stop.wait()) if self.stop is not None else None
        if stopping is not None:
            waits.add(stopping)
        try:
            done, _ = await asyncio.wait(waits, timeout=self.give_up_after_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if stopping is not None:
                stopping.cancel()
        if self._first.done():
            self._first.result()
            return
        if stopping is not None and stopping in done:
            raise StoppedConnecting(f"{self.service}: stopped before the broker at {self.brokers} answered")
        raise BrokerUnreachable(unreachable_line(self.brokers, self.last_error or "no answer",
                                                 within_s=self.give_up_after_s))

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._closing:
            return
        await self.drain(timeout=5.0)
        self._closing = True
        client = self._client
        if client is not None and self._connected.is_set() and self.health:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.publish(self.health_topic, b"offline", qos=1, retain=True), 2)
        for task in (self._sender, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def wait_connected(self, first: bool = False, timeout: float | None = None) -> None:
        if first and self._first is not None:
            await asyncio.wait_for(asyncio.shield(self._first), timeout)
            return
        await asyncio.wait_for(self._connected.wait(), timeout)

    # ---------------------------------------------------------------- connection

    def _tls_context(self) -> ssl.SSLContext | None:
        return tls_context(self.address.tls, self.ca_file, self.cert_file, self.key_file, str(self.address))

    async def _check_resubscribed(self, subacks: list[tuple[str, asyncio.Future[Any]]]) -> None:
        """The SUBACKs of a resumed session's subscriptions, read aside (its backlog comes first), so that a
        refusal is said, not silently run with: the session's earlier ones stand, these do not."""
        done, _ = await asyncio.wait([f for _, f in subacks], timeout=60) if subacks else (set(), set())
        refused = [t for t, f in subacks if f in done and not f.cancelled() and f.exception() is None
                   and _refused(f.result())]
        if refused:
            self.refused = refused
            log.error("%s: %s", self.service, refused_line(str(self.address), refused, len(subacks)))

    def _tls_refused_first(self, exc: BaseException | None) -> bool:
        """A TLS failure on the first connection (certificate not verified, handshake refused) is a config error."""
        if not isinstance(exc, ssl.SSLError) or self._first is None or self._first.done():
            return False
        why = (f"certificate verify failed ({exc.verify_message})" if isinstance(exc, ssl.SSLCertVerificationError)
               else exc.reason or str(exc))
        self._first.set_exception(ConfigError(
            f"TLS to broker {self.address} failed: {why}; check the CA file (TWIN_MQTT_CA_FILE, --mqtt-ca-file) "
            "and the client certificate (TWIN_MQTT_CERT_FILE, TWIN_MQTT_KEY_FILE)"))
        return True

    def _make_client(self, v5: bool) -> aiomqtt.Client:
        props = None
        kwargs: dict[str, object] = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)
            if self.persistent:
                props.SessionExpiryInterval = self.session_expiry_s
            kwargs["clean_start"] = not self.persistent
        else:
            kwargs["clean_session"] = not self.persistent
        return _Client(
            self.address.host,
            self.address.port,
            queue_type=lambda maxsize=0: self.queue,  # type: ignore[arg-type]
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            will=aiomqtt.Will(self.health_topic, b"offline", qos=1, retain=True) if self.health else None,
            properties=props,
            tls_context=self._tls_context(),
            max_inflight_messages=self.max_inflight,
            keepalive=30,
            timeout=10,
            **kwargs,  # type: ignore[arg-type]
        )

    async def _supervise(self) -> None:
        backoff = 0.2
        v5 = self.protocol != "3.1.1"
        while not self._closing:
            try:
                client = self._make_client(v5)
                # message ids are only valid on the connection they came on: tag this client's messages now,
                # before a broker's redelivery right after CONNACK can reach the queue (acked with a stale
                # tag it would never be acknowledged, and hold one of the broker's in-flight slots for good)
                self.generation += 1
                client.generation = self.generation  # type: ignore[attr-defined]
                self._latest = client
                self.queue.armed = False  # type: ignore[attr-defined]
                if self.manual_ack:
                    client._client.manual_ack_set(True)
                async with client:
                    client.pending_calls_threshold = self.max_inflight * 4
                    self._client = client
                    self.protocol_in_use = "5" if v5 else "3.1.1"
                    resumed = self.persistent and bool(getattr(client, "session_present", False))
                    if resumed:
                        self.resumed_at = time.time()
                        # the broker kept the session: it sends the backlog before any SUBACK, so subscribe
                        # again without waiting (back-pressure may pause reading before the SUBACKs arrive)
                        self.queue.armed = True  # type: ignore[attr-defined]
                        subacks: list[tuple[str, asyncio.Future[Any]]] = []
                        for topic in self.filters(client, v5):
                            _rc, mid = client._client.subscribe(topic, qos=1)
                            if mid is not None:  # a future for aiomqtt's SUBACK callback, checked aside
                                fut = asyncio.get_running_loop().create_future()
                                client._pending_subscribes[mid] = fut
                                subacks.append((topic, fut))
                        self._resub_check = asyncio.create_task(self._check_resubscribed(subacks))
                    else:
                        wanted = self.filters(client, v5)
                        refused = [t for t in wanted if _refused(await client.subscribe(t, qos=1))]
                        if refused:
                            line = refused_line(str(self.address), refused, len(wanted))
                            if self._first is not None and not self._first.done():
                                self._first.set_exception(ConfigError(line))
                                return
                            log.error("%s: %s", self.service, line)
                    if self.health and resumed:
                        # not awaited: the broker sends the kept session's backlog first, and its PUBACK after
                        # all of it, which this service only reads once it consumes, i.e. after this connect
                        # returns (awaited, a backlog larger than the queue held every reconnect at its 10 s
                        # timeout, for good while the backlog grew)
                        client._client.publish(self.health_topic, b"online", qos=1, retain=True)
                    elif self.health:
                        await client.publish(self.health_topic, b"online", qos=1, retain=True)
                    self.connects += 1
                    backoff = 0.2
                    self._connected.set()
                    self.queue.armed = True  # type: ignore[attr-defined]
                    if self._first is not None and not self._first.done():
                        self._first.set_result(None)
                    log.info("%s connected to %s (MQTT %s%s)", self.service, self.address, self.protocol_in_use,
                             ", its session resumed" if self.persistent and getattr(client, "session_present", False)
                             else "")
                    # Messages go straight into self.queue; here we only wait for the connection to end.
                    # aiomqtt 2.x has no public "disconnected" awaitable besides iterating the messages.
                    # shielded: cancelling us must not cancel aiomqtt's future, or its __aexit__ would think the
                    # connection gone and skip the DISCONNECT, leaving a zombie connection on the broker
                    await asyncio.shield(client._disconnected)
                    raise aiomqtt.MqttError("disconnected")
            except aiomqtt.MqttCodeError as e:
                self._connected.clear()
                rc = getattr(e.rc, "value", e.rc)
                if v5 and self.protocol == "auto" and refuses_mqtt5(e):
                    log.info("%s: broker refused MQTT 5 (%s); falling back to 3.1.1", self.service, e)
                    v5 = False
                    continue
                if rc in (4, 5, 134, 135) and self._first is not None and not self._first.done():
                    self._first.set_exception(ConfigError(f"broker {self.address} refused the login: {e}"))
                    return
                self.last_error = str(e)
                log.warning("%s: MQTT error from %s: %s; reconnecting in %.1fs", self.service,
                            self.address, e, backoff)
            except aiomqtt.MqttError as e:
                self._connected.clear()
                if self._tls_refused_first(e.__cause__ or e.__context__):  # aiomqtt wraps the SSLError
                    return
                if self.connects == 0:
                    self.last_error = unreachable_reason(e)
                    if len(self.addresses) > 1:
                        self.last_error = f"{self.address}: {self.last_error}"
                    if (not self.wait_for_broker and self._first is not None and not self._first.done()
                            and self._node == len(self.addresses) - 1):  # every node tried once
                        self._first.set_exception(BrokerUnreachable(unreachable_line(self.brokers, self.last_error)))
                        return
                    self._log_not_yet(backoff)
                else:
                    log.warning("%s: lost %s (%s); reconnecting%s", self.service, self.address, e,
                                " to the next node" if len(self.addresses) > 1 else f" in {backoff:.1f}s")
            except ssl.SSLError as e:
                self._connected.clear()
                if self._tls_refused_first(e):
                    return
                log.warning("%s: TLS to %s failed (%s); reconnecting in %.1fs", self.service,
                            self.address, e, backoff)
            finally:
                self._client = None
            if self._closing:
                break
            if len(self.addresses) > 1 and not self._next_node():
                await asyncio.sleep(0.05)  # another node of the cluster, at once
                continue
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 15.0)

    def filters(self, client: aiomqtt.Client | None = None, v5: bool = True) -> list[str]:
        """What to subscribe to on this connection. With ``share_group`` (a hall worker's partition): each
        filter as ``$share/GROUP/filter`` where the broker has shared subscriptions (MQTT 5, and its CONNACK
        does not say it lacks them: Mosquitto, EMQX, HiveMQ), else the plain filters, the partition held by the
        worker's fixed session (NATS' MQTT 3.1.1 gateway, RabbitMQ): a replacement worker started with the same
        halls has the same client id and takes the session over."""
        shared = (self.share_group is not None and self.shared_subscriptions != "off"
                  and (self.shared_subscriptions == "on"
                       or (v5 and getattr(client, "shared_available", None) is not False)))
        return [f"$share/{self.share_group}/{f}" for f in self.subscriptions] if shared else list(self.subscriptions)

    def _log_not_yet(self, backoff: float) -> None:
        """Say plainly that the first connection has not happened: at once, then at most every 30 s."""
        now = time.monotonic()
        if self._not_yet_since is None:
            self._not_yet_since = now
        elif now - self._not_yet_logged < 30.0:
            return
        self._not_yet_logged = now
        waited = f" after {now - self._not_yet_since:.0f} s" if now > self._not_yet_since else ""
        log.warning("%s: not connected yet%s: %s; retrying every %.0f s or less", self.service, waited,
                    unreachable_line(self.brokers, self.last_error or "no answer"), 15.0)

    # ---------------------------------------------------------------- use

    async def messages(self) -> AsyncIterator[aiomqtt.Message]:
        while True:
            yield await self.queue.get()

    @staticmethod
    def ack_key(msg: aiomqtt.Message) -> tuple[int, int, int]:
        """What :meth:`ack` takes for a received message: (its connection, its mid, its QoS)."""
        return int(getattr(msg, "generation", 0)), msg.mid, msg.qos

    def ack(self, items: list[tuple[int, int, int]]) -> int:
        """Acknowledge received messages given as (generation, mid, qos); returns how many were sent.

        Those from an earlier connection are skipped: the broker redelivers them to the session anyway.
        """
        client = self._latest  # set before the connection is: a message can come before _supervise resumes
        if client is None:
            return 0
        sent = 0
        current = getattr(client, "generation", -1)
        for gen, mid, qos in items:
            if gen == current and qos > 0:
                client._client.ack(mid, qos)
                sent += 1
        return sent

    @property
    def dropped(self) -> int:
        """Incoming messages dropped because the bounded queue was full."""
        return int(getattr(self.queue, "dropped", 0))

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        """Publish, waiting through disconnects: at least once for QoS 1.

        A publish cut by a lost connection (aiomqtt raises, or times out waiting for the PUBACK) is sent
        again on the next connection; the consumer drops the duplicate by ``seq``. Only the supervisor
        sets or clears the connected state.
        """
        while True:
            await self._connected.wait()
            client = self._client
            if client is None:
                await asyncio.sleep(0.05)
                continue
            try:
                await client.publish(topic, payload, qos=qos, retain=retain)
                return
            except aiomqtt.MqttError:
                if self._closing:
                    raise
                if client is self._client:  # the connection is being torn down: let the supervisor see it
                    await asyncio.sleep(0.1)

    async def publish_many(self, items: Iterable[tuple[str, bytes]], qos: int = 1, retain: bool = False,
                           window: int = 500) -> int:
        """Publish many messages with up to ``window`` unacknowledged at once; returns the count."""
        sem = asyncio.Semaphore(window)
        tasks: list[asyncio.Task[None]] = []

        async def one(topic: str, payload: bytes) -> None:
            try:
                await self.publish(topic, payload, qos, retain)
            finally:
                sem.release()

        for topic, payload in items:
            await sem.acquire()
            tasks.append(asyncio.create_task(one(topic, payload)))
        if tasks:
            await asyncio.gather(*tasks)
        return len(tasks)

    # ---------------------------------------------------------------- outbox

    def publish_nowait(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> bool:
        """Queue a message for the background sender; never blocks the caller.

        Returns False (and counts ``outbox_dropped``) when the bounded outbox is full.
        """
        data = payload.encode() if isinstance(payload, str) else payload
        try:
            self.outbox.put_nowait((topic, data, qos, retain))
            return True
        except asyncio.QueueFull:
            self.outbox_dropped += 1
            return False

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until everything queued with :meth:`publish_nowait` has been published."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.outbox.join(), timeout)

    async def _send_outbox(self) -> None:
        sem = asyncio.Semaphore(self.max_inflight // 2 or 1)

        async def one(topic: str, payload: bytes, qos: int, retain: bool) -> None:
            try:
                await self.publish(topic, payload, qos, retain)
            finally:
                sem.release()
                self.outbox.task_done()

        pending: set[asyncio.Task[None]] = set()
        while True:
            item = await self.outbox.get()
            await sem.acquire()
            t = asyncio.create_task(one(*item))
            pending.add(t)
            t.add_done_callback(pending.discard)


def refuses_mqtt5(e: aiomqtt.MqttCodeError) -> bool:
    """The broker's CONNACK says it does not speak this protocol version (3.1.1's 1, MQTT 5's 0x84): connect
    again in 3.1.1 (NATS' gateway, older brokers)."""
    return getattr(e.rc, "value", e.rc) in (1, 132)


def _refused(granted: Any) -> bool:
    """A SUBACK that refuses the subscription: 0x80 (MQTT 3.1.1) or any reason code >= 0x80 (MQTT 5)."""
    codes = granted if isinstance(granted, list | tuple) else [granted]
    return any(int(getattr(c, "value", c) or 0) >= 0x80 for c in codes)


def refused_line(broker: str, refused: list[str], wanted: int) -> str:
    """What to say when the broker refuses subscriptions (a service missing some of its telemetry must not
    run as if it had it)."""
    more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
    return (f"the broker at {broker} refused {len(refused)} of {wanted} subscriptions ({refused[0]}{more}): "
            "on NATS' MQTT gateway the subscriptions of one session share at most 65,535 unacknowledged messages "
            "(each takes mqtt max_ack_pending, 1,024 unless set; a filter ending in # twice), so lower "
            "max_ack_pending (deploy/nats/nats.conf) or give each hall worker fewer halls; elsewhere check the "
            "account's ACL")

