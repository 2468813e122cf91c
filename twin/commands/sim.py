"""``twin sim``: publish simulated plant telemetry to a broker, live (``--speed`` times real time)."""

from __future__ import annotations

import argparse
import asyncio

from twin.commands.common import (
    add_broker_options,
    add_plant_options,
    make_bus,
    positive_float,
    run_until_stopped,
    settings_from_args,
)
from twin.commands.run import _need_broker, _until
from twin.services.sim import SimService

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("sim", help="publish simulated telemetry to a broker", description=__doc__)
    add_plant_options(p)
    add_broker_options(p, required=True)
    p.add_argument("--speed", type=positive_float, default=1.0, help="simulated seconds per wall second")
    p.add_argument("--step", type=positive_float, default=1.0, help="simulated seconds per step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=float, help="event time of the first step, Unix seconds (default: now)")
    p.add_argument("--rack-every", type=int, default=1, help="each rack reports every N steps")
    p.add_argument("--duration", type=positive_float, help="simulated seconds to run (default: forever)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    settings, plant = settings_from_args(args)
    url = _need_broker(settings.broker)

    async def main(stop: asyncio.Event) -> int:
        sim = SimService(plant, seed=args.seed, start_ts=args.start, step_s=args.step, speed=args.speed,
                         rack_every=args.rack_every)
        async with make_bus(settings, url, "sim", plant.site.id) as bus:
            task = asyncio.create_task(sim.run(bus, duration_s=args.duration))
            rc = await _until(stop, task, None)
            await bus.drain(timeout=10)
            return rc

    return run_until_stopped(main)
