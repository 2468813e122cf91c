"""What every service on the bus is: a name, the filters it subscribes to, whether its bus may acknowledge a
message only once the service has made it durable, and ``run(bus)`` until cancelled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from adapters.bus.mqtt import Bus

__all__ = ["Service"]


class Service(Protocol):
    name: str

    @property
    def subscriptions(self) -> list[str]:
        """The MQTT filters its bus subscribes to."""
        ...

    @property
    def acks_when_durable(self) -> bool:
        """True: its bus acknowledges a message only when the service says it is safe (docs/delivery.md)."""
        ...

    async def run(self, bus: Bus) -> None:
        """Consume (and publish) until cancelled."""
        ...
