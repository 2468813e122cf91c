"""The forecast service: PlantState / HallState in from the bus, Forecasts out (retained).

Wiring only: the forecasting is :class:`twin.forecast.engine.Forecaster`, in event time.
Each quantity's topic ``stargate/{site}/twin/forecast/{quantity}`` carries every model's
forecast of every product as it is issued (``model`` = ``{model}-{product}``, ``step_s``
tells the product); the main model of each product is published last, so the retained
message is a main-model forecast. The sink writes them all to InfluxDB (tag ``model``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import ValidationError

from adapters.bus.mqtt import Bus
from twin.contract import Forecast, HallState, PlantState
from twin.forecast.engine import Forecaster
from twin.topics import Topics

__all__ = ["ForecastService"]

log = logging.getLogger("twin.forecast")


class ForecastService:
    name = "forecast"

    def __init__(self, site: str, forecaster: Forecaster | None = None) -> None:
        self.topics = Topics(site)
        self.forecaster = forecaster or Forecaster()
        self.halls: dict[str, HallState] = {}
        self.published = 0
        self.states_in = 0
        self.rejected = 0
        self.latest: dict[str, Forecast] = {}

    def progress_line(self, now: float) -> str:
        issued = max((f.issued_ts for f in self.latest.values()), default=None)
        last = f"; latest issued {now - issued:,.0f} s ago" if issued is not None else "; none issued yet"
        return (f"forecast: {self.states_in:,} states in ({self.rejected:,} refused), {self.published:,} "
                f"forecasts out{last}")

    @property
    def acks_when_durable(self) -> bool:
        """It keeps nothing a crash would lose that the retained states cannot give back: acks on receipt."""
        return False

    @property
    def subscriptions(self) -> list[str]:
        return [self.topics.state, self.topics.filter("hallState")]

    def warm(self, stream: Iterable[tuple[PlantState, list[HallState]]]) -> int:
        """Feed past states (e.g. a log of ``twin/state``) without publishing; returns how many."""
        n = 0
        for state, halls in stream:
            self.forecaster.on_state(state, halls, emit=False)
            n += 1
        return n

    def handle(self, topic: str, payload: bytes) -> list[Forecast]:
        """One state message in; the Forecasts it makes due out (usually none)."""
        if not payload:
            return []
        try:
            if topic == self.topics.state:
                state = PlantState.model_validate_json(payload)
                self.states_in += 1
                if state.heartbeat:  # no telemetry behind it: the models learn from measured ticks only
                    return []
                return self.forecaster.on_state(state, list(self.halls.values()))
            h = HallState.model_validate_json(payload)
            self.halls[h.hall] = h
        except ValidationError as e:
            self.rejected += 1
            log.warning("forecast: %s does not match the contract: %s", topic, e.errors()[0]["msg"])
        return []

    def publish(self, bus: Bus, forecasts: list[Forecast]) -> None:
        for f in forecasts:
            bus.publish_nowait(self.topics.forecast(f.quantity), f.model_dump_json().encode(), qos=1, retain=True)
            self.latest[f.model + "/" + f.quantity] = f
            self.published += 1

    async def run(self, bus: Bus) -> None:
        """Consume the bus until cancelled."""
        while True:
            msg = await bus.queue.get()
            payload = msg.payload if isinstance(msg.payload, bytes | bytearray) else str(msg.payload).encode()
            out = self.handle(msg.topic.value, bytes(payload))
            if out:
                self.publish(bus, out)
