"""Stand-ins for unit tests of pure logic (never for integration tests: those use real servers)."""

from __future__ import annotations

__all__ = ["RecordingBus"]


class RecordingBus:
    """Stands in for :class:`adapters.bus.mqtt.Bus` where a service only publishes: records every
    ``publish_nowait`` as ``(topic, payload bytes, qos, retain)`` and shows a healthy bus's
    counters (a test may set ``dropped`` to mimic an overflowing incoming queue)."""

    dropped = 0
    outbox_dropped = 0
    connected = True
    manual_ack = False
    generation = 1
    resumed_at: float | None = None  # never a resumed session
    redelivery_wait_s = 0.0

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, int, bool]] = []

    @staticmethod
    def ack_key(msg: object) -> tuple[int, int, int]:
        return 1, int(getattr(msg, "mid", 0)), int(getattr(msg, "qos", 1))

    def ack(self, items: list[tuple[int, int, int]]) -> int:
        return 0

    def publish_nowait(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> bool:
        self.sent.append((topic, payload.encode() if isinstance(payload, str) else payload, qos, retain))
        return True
