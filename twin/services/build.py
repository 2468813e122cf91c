"""One builder per service, from the settings and the plant: used by ``twin run NAME`` and ``twin up`` alike,
so that the wiring (snapshots, journal, limits) and the acknowledgement rule are written once."""

from __future__ import annotations

from twin.plant import Plant
from twin.services.aggregate import AggregatorService
from twin.services.base import Service
from twin.services.forecast import ForecastService
from twin.services.sink import LineWriter, SinkService
from twin.services.state import StateService
from twin.settings import Settings, journal_options, snapshot_path
from twin.sinks import make_writer, sink_options

__all__ = ["aggregate_service", "forecast_service", "manual_ack", "scenario_of", "sink_service", "state_service"]


def state_service(settings: Settings, plant: Plant, halls: list[str] | None = None,
                  check_future: bool = True) -> StateService:
    """``twin run state`` (or a hall worker with ``halls``); ``check_future`` False for an in-process simulator
    that runs ahead of the wall clock (``twin up --speed`` above 1)."""
    site = plant.site.id if not halls else f"{plant.site.id}-{'-'.join(halls)}"
    return StateService(plant, tick_s=settings.tick_s, max_payload_bytes=settings.max_payload_bytes,
                        max_future_s=(settings.max_future_s or None) if check_future else None,
                        snapshot_path=snapshot_path(settings, site), snapshot_every_s=settings.snapshot_every_s,
                        halls=halls, **journal_options(settings))


def sink_service(settings: Settings, plant: Plant, writer: LineWriter | None = None) -> SinkService:
    """``twin run sink``; its lines carry the tag ``scenario`` of :func:`scenario_of` (none for the live plant)."""
    return SinkService(plant.site.id, writer or make_writer(settings), scenario=scenario_of(settings, plant),
                       **sink_options(settings))


def scenario_of(settings: Settings, plant: Plant) -> str | None:
    """The what-if tag: ``--scenario-tag`` / TWIN_SCENARIO_TAG when given ('' for the live plant), else the plant
    file's ``[site] scenario``."""
    tag = settings.scenario_tag if settings.scenario_tag is not None else plant.site.scenario
    return tag or None


def aggregate_service(settings: Settings, plant: Plant) -> AggregatorService:
    return AggregatorService(plant, tick_s=settings.tick_s, max_payload_bytes=settings.max_payload_bytes,
                             max_future_s=settings.max_future_s or None,
                             snapshot_path=snapshot_path(settings, f"{plant.site.id}-aggregate"))


def forecast_service(settings: Settings, plant: Plant) -> ForecastService:
    return ForecastService(plant.site.id)


def manual_ack(service: Service, embedded: bool = False) -> bool:
    """Whether the service's bus acknowledges only when told (docs/delivery.md): what the service says
    (``acks_when_durable``: the state service with its journal, the sink); the others ack on receipt. On the
    embedded broker (amqtt, MQTT 3.1.1, a demo) every service acks on receipt.
    """
    return not embedded and service.acks_when_durable
