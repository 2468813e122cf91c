"""``twin run SERVICE``: one microservice alone against a broker (``--broker`` or TWIN_BROKER)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from twin.commands.common import (
    add_broker_options,
    add_data_dir_option,
    add_influx_options,
    add_plant_options,
    add_state_options,
    duration,
    make_bus,
    need_broker,
    run_service,
    run_until_stopped,
    settings_from_args,
)
from twin.services import build
from twin.services.base import Service
from twin.settings import Settings

__all__ = ["register"]

log = logging.getLogger("twin.run")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("run", help="run one service alone against a broker", description=__doc__)
    services = p.add_subparsers(dest="service", metavar="SERVICE")
    services.required = True
    s = services.add_parser("state", help="the live state model: telemetry in, PlantState out")
    add_plant_options(s)
    add_broker_options(s, required=True)
    add_data_dir_option(s)
    add_state_options(s)
    s.add_argument("--duration", type=duration(), help="stop by itself after this long: 90, 90s, 10m, 1h30m, 14d")
    s.add_argument("--halls", type=_hall_list, metavar="H1,H2",
                   help="a hall worker: only these halls' racks and CDUs (pair with `twin run aggregate`)")
    s.set_defaults(func=_state, default_log_level="INFO")
    a = services.add_parser("aggregate", help="combine hall workers (--halls) into the PlantState")
    add_plant_options(a)
    add_broker_options(a, required=True)
    add_data_dir_option(a)
    add_state_options(a)
    a.add_argument("--duration", type=duration(), help="stop by itself after this long: 90, 90s, 10m, 1h30m, 14d")
    a.set_defaults(func=_aggregate, default_log_level="INFO")
    k = services.add_parser("sink", help="the twin's outputs from MQTT to InfluxDB or line-protocol files")
    add_plant_options(k)
    add_broker_options(k, required=True)
    add_data_dir_option(k)
    add_influx_options(k)
    k.add_argument("--duration", type=duration(), help="stop by itself after this long: 90, 90s, 10m, 1h30m, 14d")
    k.add_argument("--mirror-telemetry", dest="sink_mirror_s", type=duration(), metavar="INTERVAL",
                   help="also write raw telemetry, one line per asset every INTERVAL, e.g. 10 or 1m (default off)")
    k.set_defaults(func=_sink, default_log_level="INFO")
    f = services.add_parser("forecast", help="forecasts from the twin's state: intraday and day-ahead, retained")
    add_plant_options(f)
    add_broker_options(f, required=True)
    f.add_argument("--duration", type=duration(), help="stop by itself after this long: 90, 90s, 10m, 1h30m, 14d")
    f.add_argument("--warm-log", metavar="LOG", help="a log of twin/state (or raw telemetry) to learn from first")
    f.set_defaults(func=_forecast, default_log_level="INFO")


def _hall_list(text: str) -> list[str]:
    halls = [h.strip() for h in text.split(",") if h.strip()]
    if not halls:
        raise argparse.ArgumentTypeError("give hall ids separated by commas, e.g. h1,h2")
    return halls


async def _serve(stop: asyncio.Event, settings: Settings, url: str, site: str, service: Service,
                 bus_name: str, duration: float | None) -> int:
    """One service on its own persistent bus session until stopped or ``duration`` is over (connecting
    included: it keeps trying an unreachable broker, and says so, until then)."""
    t0 = time.monotonic()
    async with make_bus(settings, url, bus_name, site, service.subscriptions, True,
                        manual_ack=build.manual_ack(service), wait_for_broker=True, stop=stop,
                        give_up_after_s=duration, share_group=getattr(service, "share_group", None)) as bus:
        left = None if duration is None else max(duration - (time.monotonic() - t0), 0.0)
        line = getattr(service, "progress_line", None)  # the sink logs its own line a minute

        def say() -> None:
            if callable(line):
                log.info("%s", line(time.time()))

        return await run_service(stop, asyncio.create_task(service.run(bus)), left, say)


def _state(args: argparse.Namespace) -> int:
    settings, plant = settings_from_args(args)
    url = need_broker(settings.broker)

    async def main(stop: asyncio.Event) -> int:
        service = build.state_service(settings, plant, args.halls)

        name = "state" if not args.halls else f"state-{service.worker_id}"
        return await _serve(stop, settings, url, plant.site.id, service, name, args.duration)

    return run_until_stopped(main)


def _aggregate(args: argparse.Namespace) -> int:
    settings, plant = settings_from_args(args)
    url = need_broker(settings.broker)

    async def main(stop: asyncio.Event) -> int:
        service = build.aggregate_service(settings, plant)
        return await _serve(stop, settings, url, plant.site.id, service, "aggregate", args.duration)

    return run_until_stopped(main)


def _sink(args: argparse.Namespace) -> int:
    settings, plant = settings_from_args(args)
    url = need_broker(settings.broker)

    async def main(stop: asyncio.Event) -> int:
        service = build.sink_service(settings, plant)
        return await _serve(stop, settings, url, plant.site.id, service, "sink", args.duration)

    return run_until_stopped(main)


def _forecast(args: argparse.Namespace) -> int:
    settings, plant = settings_from_args(args)
    url = need_broker(settings.broker)

    async def main(stop: asyncio.Event) -> int:
        service = build.forecast_service(settings, plant)
        if args.warm_log:
            from twin.forecast.states import states_from_log

            log.info("forecast: warmed with %d states from %s", service.warm(states_from_log(args.warm_log, plant)),
                     args.warm_log)
        return await _serve(stop, settings, url, plant.site.id, service, "forecast", args.duration)

    return run_until_stopped(main)
