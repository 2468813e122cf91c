"""``twin up``: simulators, state service and sink together in one process.

With no ``--broker`` an embedded broker (amqtt) runs in process; with no InfluxDB the
contract's line protocol goes to files under ``--data-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from contextlib import AsyncExitStack

from rich.console import Console
from rich.live import Live

from adapters.bus.embedded_broker import EmbeddedBroker
from adapters.bus.mqtt import Protocol
from twin.commands.common import (
    add_broker_options,
    add_data_dir_option,
    add_influx_options,
    add_plant_options,
    add_state_options,
    duration,
    make_bus,
    positive_float,
    run_until_stopped,
    settings_from_args,
)
from twin.live_view import render, summary_line
from twin.plant import Plant
from twin.services import build
from twin.services.sim import SimService
from twin.services.sink import LineWriter
from twin.settings import Settings
from twin.sinks import make_writer

__all__ = ["register"]

log = logging.getLogger("twin.up")

#: The embedded broker carries ~1,100 msg/s here; the full phase1 plant is ~1,630 msg/s at 1 Hz.
EMBEDDED_RACK_EVERY = 5


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("up", help="run simulators, state service and sink together (the all-in-one)",
                       description=__doc__)
    add_plant_options(p)
    add_broker_options(p)
    add_data_dir_option(p)
    add_state_options(p)
    add_influx_options(p)
    p.add_argument("--duration", type=duration(), help="stop by itself after this long: 90, 90s, 10m, 1h30m, 14d")
    p.add_argument("--speed", type=positive_float, default=1.0, help="simulated seconds per wall second")
    p.add_argument("--plant-time", dest="plant_time_s", type=duration(),
                   help="stop once the simulator has run this much plant time, e.g. 1h with --speed 200 (a "
                        "what-if of fixed length, however fast the machine)")
    p.add_argument("--seed", type=int, default=0, help="simulator seed")
    p.add_argument("--rack-every", type=int,
                   help=f"each rack reports every N steps (default 1 with --broker, {EMBEDDED_RACK_EVERY} embedded)")
    p.add_argument("--no-view", action="store_true", help="plain log lines instead of the live view")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    settings, plant = settings_from_args(args)
    if args.rack_every is not None and args.rack_every < 1:
        raise SystemExit("twin up: error: --rack-every must be >= 1")

    async def main(stop: asyncio.Event) -> int:
        async with AsyncExitStack() as stack:
            notes: list[str] = []
            url = settings.broker
            rack_every = args.rack_every
            protocol: Protocol = "auto"
            if url is None:
                broker = await stack.enter_async_context(EmbeddedBroker())
                url = broker.url
                protocol = "3.1.1"  # amqtt speaks 3.1.1 only
                rack_every = rack_every or EMBEDDED_RACK_EVERY
                notes.append(f"Embedded broker (amqtt, MQTT 3.1.1) at {url}: each rack and CDU reports every "
                             f"{rack_every} s so that it keeps up; use --broker with Mosquitto for the full "
                             f"plant at 1 Hz.")
            rack_every = rack_every or 1
            writer = make_writer(settings)
            notes.append(f"Writing state to {writer.describe()}.")
            return await _run(stack, settings, plant, url, protocol, writer, rack_every, args, notes, stop)
        return 0

    return run_until_stopped(main)


async def _run(stack: AsyncExitStack, settings: Settings, plant: Plant, url: str, protocol: Protocol,
               writer: LineWriter, rack_every: int, args: argparse.Namespace, notes: list[str],
               stop: asyncio.Event) -> int:
    site = plant.site.id
    # the in-process simulator runs ahead of the wall clock at --speed > 1
    state = build.state_service(settings, plant, check_future=args.speed <= 1)
    sink = build.sink_service(settings, plant, writer)
    sim = SimService(plant, seed=args.seed, speed=args.speed, rack_every=rack_every)
    forecast = build.forecast_service(settings, plant)
    enter = stack.enter_async_context
    embedded = protocol == "3.1.1"  # amqtt, the demo default
    state_bus = await enter(make_bus(settings, url, "state", site, state.subscriptions, True, protocol,
                                     manual_ack=build.manual_ack(state, embedded)))
    sink_bus = await enter(make_bus(settings, url, "sink", site, sink.subscriptions, True, protocol,
                                    manual_ack=build.manual_ack(sink, embedded)))
    sim_bus = await enter(make_bus(settings, url, "sim", site, protocol=protocol))
    forecast_bus = await enter(make_bus(settings, url, "forecast", site, forecast.subscriptions, True, protocol,
                                        manual_ack=build.manual_ack(forecast, embedded)))
    tasks = [
        asyncio.create_task(state.run(state_bus), name="state"),
        asyncio.create_task(sink.run(sink_bus), name="sink"),
        asyncio.create_task(sim.run(sim_bus, args.plant_time_s), name="sim"),
        asyncio.create_task(forecast.run(forecast_bus), name="forecast"),
    ]
    header = f"Stargate twin · {plant.site.name} · {plant.gpus_total:,} GPUs · {url}"
    t0 = time.monotonic()
    interactive = sys.stdout.isatty() and not args.no_view
    live = Live(render(None, [], header, notes), refresh_per_second=1, console=Console(), transient=False) \
        if interactive else None
    if not interactive:
        for n in notes:
            print(n, flush=True)
    rc = 0
    with live or contextlib.nullcontext():
        last_line = 0.0
        while not stop.is_set():
            if args.duration is not None and time.monotonic() - t0 >= args.duration:
                break
            if args.plant_time_s is not None and tasks[2].done() and not tasks[2].cancelled() \
                    and tasks[2].exception() is None:
                break  # the simulator ran its plant time: stop as at --duration
            failed = [t for t in tasks if t.done()]
            if failed:
                exc = failed[0].exception()
                print(f"twin up: service {failed[0].get_name()} stopped: {exc!r}", file=sys.stderr)
                rc = 1
                break
            behind = f"  (simulator {sim.behind_s:.1f} s behind real time)" if sim.behind_s > 2 else ""
            if live is not None:
                live.update(render(state.latest, state.latest_halls, header, [*notes, behind] if behind else notes))
            elif state.latest is not None and time.monotonic() - last_line >= 5:
                print(summary_line(state.latest) + behind, flush=True)
                last_line = time.monotonic()
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: wait_for can swallow a cancel on 3.11
                async with asyncio.timeout(1.0):
                    await stop.wait()
    # clean stop: the simulator first, then let state and sink drain what is in flight
    tasks[2].cancel()
    await asyncio.sleep(1.5 * min(settings.tick_s, 1.0) + 1.5)
    for t in (*tasks[:2], *tasks[3:]):
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    if state.latest is not None:
        print("final: " + summary_line(state.latest), flush=True)
    print(f"sink: {writer.lines_written:,} lines to {writer.describe()}", flush=True)
    return rc
