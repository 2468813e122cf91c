"""Pace a replay by the twin: stay at most ``lag_s`` of event time ahead of the latest PlantState.

MQTT has no end-to-end flow control: at ``--speed max`` the broker acknowledges as fast
as it can queue, whatever the state service behind it can take, and a broker queue that
overflows (Mosquitto's ``max_queued_messages``, 1000 by default) drops messages. The
twin's own output is the signal: it publishes a PlantState on ``stargate/{site}/twin/state``
for each closed tick window, labelled with event time, so a replay that waits while its
next message is more than ``lag_s`` ahead of that label never outruns the twin.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt

from adapters.bus.mqtt import BrokerAddress
from adapters.bus.tls import tls_context
from twin.topics import Topics

__all__ = ["StatePacer"]

log = logging.getLogger("twin.replay")


class StatePacer:
    """Subscribes to one site's PlantState; ``allows(ts)`` says whether a message at event time ``ts`` may go."""

    def __init__(self, address: BrokerAddress, site: str, lag_s: float, *, username: str | None = None,
                 password: str | None = None, ca_file: Path | None = None, cert_file: Path | None = None,
                 key_file: Path | None = None) -> None:
        self.topic = Topics(site).state
        self.lag_s = lag_s
        self.state_ts: float | None = None
        self.first_ts: float | None = None
        self.updated = threading.Event()
        self.waits = 0
        self._warned = 0.0
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"twin-replay-pace-{time.monotonic_ns()}")
        if username or address.username:
            c.username_pw_set(username or address.username, password or (
                address.password.get_secret_value() if address.password else None))
        ctx = tls_context(address.tls, ca_file, cert_file, key_file, str(address))
        if ctx is not None:  # the same CA bundle and client certificate as the replay's publisher
            c.tls_set_context(ctx)
        c.on_connect = lambda cl, *a: cl.subscribe(self.topic, qos=0)
        c.on_message = self._on_message
        self.client = c
        self.address = address

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain or not msg.payload:  # a retained state is from an earlier run
            return
        try:
            ts = orjson.loads(msg.payload).get("ts")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if isinstance(ts, int | float) and (self.state_ts is None or ts > self.state_ts):
            self.state_ts = float(ts)
            self.updated.set()

    def start(self) -> StatePacer:
        self.client.connect(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def allows(self, ts: float) -> bool:
        if self.first_ts is None:
            self.first_ts = ts
        ref = self.first_ts if self.state_ts is None else max(self.state_ts, self.first_ts)
        if ts - ref <= self.lag_s:
            return True
        self.waits += 1
        now = time.monotonic()
        if self.state_ts is None and now - self._warned > 30:
            if self._warned:
                log.warning("waiting for the twin's state on %s (is `twin run state` running for this site?)",
                            self.topic)
            self._warned = now
        return False
