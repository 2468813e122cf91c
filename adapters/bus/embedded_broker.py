"""An MQTT broker inside the twin's process (amqtt), for ``twin up`` with no ``--broker``.

amqtt 0.12 speaks MQTT 3.1.1 only (the bus falls back to it) and carries a few
thousand messages per second: enough for a demo of the whole plant at a slower
publish rate, not for the full plant at 1 Hz (use Mosquitto for that).
"""

from __future__ import annotations

import logging
import socket
from types import TracebackType

from amqtt.broker import Broker

__all__ = ["EmbeddedBroker", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """``async with EmbeddedBroker() as b: ... b.url``: anonymous, loopback only by default."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def __aenter__(self) -> EmbeddedBroker:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._broker = Broker(config)
        await self._broker.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
