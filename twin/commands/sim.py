"""``twin sim``: the plant simulators, driven by a scenario.

Live, to a broker (``--speed`` times real time, event times accordingly; the run starts now
unless ``--start`` is given)::

    twin sim --scenario pump-failure --broker mqtt://localhost:1883 --speed 10

To a telemetry log, as fast as it goes, without a broker (JSON Lines, gzip when the name ends
in .gz; the start, step and duration default to the scenario's)::

    twin sim --scenario phase1 --start 2026-01-12 --duration 14d --step 10s --out week.jsonl.gz

Scenarios: the files in sims/scenarios/ (phase1, expansion-520, pump-failure,
hydro-curtailment, offtaker-outage, cold-snap, heatwave) or a path to your own .toml.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading

from adapters.bus.mqtt import parse_broker_urls
from adapters.bus.publisher import FastPublisher, PublisherError
from sims.scenario import Scenario, list_scenarios, load_scenario
from sims.timebase import parse_start
from twin.commands.common import (
    add_broker_options,
    add_plant_options,
    duration,
    make_bus,
    need_broker,
    output_file,
    positive_float,
    run_service,
    run_until_stopped,
    settings_from_args,
)
from twin.commands.progress import Progress, clock
from twin.errors import ConfigError
from twin.plant import Plant, load_plant
from twin.services.sim import SimService
from twin.services.sim_log import default_jobs, write_log
from twin.settings import Settings

__all__ = ["register"]

log = logging.getLogger("twin.sim")


def start_arg(text: str) -> float:
    try:
        return parse_start(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("sim", help="simulated plant telemetry, live to a broker or to a log file",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_plant_options(p)
    add_broker_options(p, required=True)
    p.add_argument("--scenario", help=f"a name ({', '.join(list_scenarios())}) or a .toml path "
                                      "(default: phase1 on --plant)")
    p.add_argument("--out", type=output_file, help="write a telemetry log here instead of publishing (.gz: gzip)")
    p.add_argument("--speed", type=positive_float, default=1.0, help="live: simulated seconds per wall second")
    p.add_argument("--step", type=duration(), help="simulated time per step, e.g. 1s, 10s "
                                                     "(default: 1s live, the scenario's with --out)")
    p.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    p.add_argument("--start", type=start_arg, help="event time of the first step: ISO 8601 or Unix seconds "
                                                   "(default: now live, the scenario's with --out)")
    p.add_argument("--rack-every", type=int, default=1, help="each rack and CDU reports every N steps")
    p.add_argument("--duration", type=duration(), help="simulated time to run, e.g. 14d, 6h, 30m "
                                                         "(default: forever live, the scenario's with --out)")
    p.add_argument("--jobs", type=int, help="--out: worker processes that encode and compress "
                                            f"(default: one per core, here {default_jobs()})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar with --out")
    p.set_defaults(func=_cmd, default_log_level="INFO")


def _scenario_and_plant(args: argparse.Namespace) -> tuple[Scenario, Plant]:
    """The scenario (default phase1) and its plant (``--plant`` or TWIN_PLANT win over the scenario's)."""
    if args.rack_every < 1:
        raise ConfigError("--rack-every must be >= 1")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    if args.scenario is None:
        _, plant = settings_from_args(args)
        scenario = load_scenario("phase1")
    else:
        scenario = load_scenario(args.scenario)
        plant = load_plant(args.plant) if args.plant else load_plant(scenario.plant)
    scenario.check_against(plant, f"scenario {scenario.name}")
    return scenario, plant


def _cmd(args: argparse.Namespace) -> int:
    scenario, plant = _scenario_and_plant(args)
    seed = scenario.seed if args.seed is None else args.seed
    if args.out:
        return _to_log(args, scenario, plant, seed)
    settings, _ = settings_from_args(args)
    url = need_broker(settings.broker)
    sim = SimService(plant, seed=seed, start_ts=args.start, step_s=args.step or 1.0, speed=args.speed,
                     rack_every=args.rack_every, scenario=scenario)
    if args.speed > 1.0:
        return _run_fast(sim, settings, url, args)

    async def main(stop: asyncio.Event) -> int:
        # a live simulator is a service (docker-compose runs it next to the broker): it waits for the broker
        async with make_bus(settings, url, "sim", plant.site.id, wait_for_broker=True, stop=stop) as bus:
            task = asyncio.create_task(sim.run(bus, duration_s=args.duration))

            def report() -> None:
                log.info("sim: %s messages out in %s steps, %.1f s behind real time", f"{sim.published:,}",
                         f"{sim.steps:,}", sim.behind_s)

            rc = await run_service(stop, task, None, report)
            await bus.drain(timeout=10)
            return rc

    return run_until_stopped(main)


def _stop_on_signals() -> threading.Event:
    """An event that SIGINT and SIGTERM set: a blocking loop checks it between steps and ends cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    return stop


def _run_fast(sim: SimService, settings: Settings, url: str, args: argparse.Namespace) -> int:
    """Faster than real time: the lean blocking publisher (the asyncio Bus carries ~1.7x the full plant)."""
    pub = FastPublisher(parse_broker_urls(url), username=settings.mqtt_username,
                        password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
                        ca_file=settings.mqtt_ca_file, cert_file=settings.mqtt_cert_file,
                        key_file=settings.mqtt_key_file)
    stop = _stop_on_signals()
    try:
        with pub:
            sim.run_blocking(pub, duration_s=args.duration, stop=stop)
    except PublisherError as e:
        raise ConfigError(f"broker {url}: {e}") from None
    return 0


def _to_log(args: argparse.Namespace, scenario: Scenario, plant: Plant, seed: int) -> int:
    start = scenario.start if args.start is None else args.start
    step = args.step or scenario.step
    duration = args.duration or scenario.duration
    stop = _stop_on_signals()
    done = [0.0]
    with Progress(f"sim {scenario.name} → {args.out}: plant time", duration, clock,
                  show=False if args.no_progress else None) as bar:
        def progress(done_s: float) -> None:
            done[0] = done_s
            bar.update(done_s)

        try:
            n = write_log(plant, args.out, start_ts=start, duration_s=duration, step_s=step, seed=seed,
                          scenario=scenario, rack_every=args.rack_every, jobs=args.jobs, progress=progress,
                          stop=stop)
        except OSError as e:
            raise ConfigError(f"cannot write {args.out}: {e.strerror or e}") from None
    if stop.is_set():
        print(f"twin sim: stopped by a signal after {done[0]:g} s of plant time; {args.out} holds {n:,} messages "
              f"up to t={start + done[0]:.0f} (complete to there)", file=sys.stderr)
        return 130
    print(f"twin sim: {n:,} messages, {duration / step:,.0f} steps of {step:g} s, to {args.out}", file=sys.stderr)
    return 0
