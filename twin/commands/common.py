"""Options shared by several subcommands, and turning them into settings and buses."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from adapters.bus.mqtt import Bus, Protocol, StoppedConnecting, parse_broker_urls
from twin.errors import ConfigError
from twin.plant import Plant, load_plant
from twin.settings import Settings, load_settings
from twin.timespec import parse_duration

log = logging.getLogger("twin.commands")

__all__ = [
    "REPORT_EVERY_S",
    "add_broker_options",
    "add_data_dir_option",
    "add_influx_options",
    "add_plant_options",
    "add_state_options",
    "duration",
    "in_unit",
    "make_bus",
    "need_broker",
    "output_dir",
    "output_file",
    "positive_float",
    "run_service",
    "run_until_stopped",
    "settings_from_args",
    "whole_seconds",
]


def duration(unit: str = "s", allow_zero: bool = False) -> Callable[[str], float]:
    """The argparse type of every option that takes a duration or an interval: ``90``, ``90s``, ``10m``,
    ``1h30m``, ``14d`` (a bare number in ``unit``), as seconds."""
    def parse(text: str) -> float:
        try:
            return parse_duration(text, unit, allow_zero)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = "duration"  # argparse names the type in its error: "invalid duration value"
    return parse


def in_unit(unit: str, allow_zero: bool = False) -> Callable[[str], float]:
    """A duration option whose name carries its unit (``--train-days``, ``--hours``): the value in that unit."""
    inner = duration(unit, allow_zero)
    per = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}[unit]

    def parse(text: str) -> float:
        return inner(text) / per

    parse.__name__ = "duration"
    return parse


def whole_seconds(allow_zero: bool = True) -> Callable[[str], int]:
    """A duration option kept as whole seconds (an MQTT session expiry)."""
    inner = duration(allow_zero=allow_zero)

    def parse(text: str) -> int:
        return round(inner(text))

    parse.__name__ = "duration"
    return parse


def output_file(text: str) -> str:
    """A file the command will write: checked before any work (its folder exists and is writable; it is not
    a folder), so that a long run does not end in an error."""
    p = Path(text).expanduser()
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: give a file name in it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise argparse.ArgumentTypeError(f"cannot write {text}: permission denied")
    return text


def output_dir(text: str) -> str:
    """A folder the command will write into (created if missing): its nearest existing parent must be a
    writable folder."""
    p = Path(text).expanduser()
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    q = p
    while not q.exists():
        q = q.parent
    if not q.is_dir() or not os.access(q, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write into {text}: {q} is not a writable folder")
    return text


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def add_plant_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plant", help="plant file (.toml) or a name in plants/ (default: phase1; env TWIN_PLANT)")
    p.add_argument("--tick", dest="tick_s", type=duration(), help="state period, e.g. 1 or 0.5 (default 1 s)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="default INFO for services (a line a minute of what they did), else WARNING "
                        "(env TWIN_LOG_LEVEL)")


def add_broker_options(p: argparse.ArgumentParser, required: bool = False) -> None:
    extra = "" if required else "; none: start an embedded broker"
    p.add_argument("--broker", help=f"mqtt://host:port or mqtts://host:port (env TWIN_BROKER{extra})")
    p.add_argument("--mqtt-username", help="env TWIN_MQTT_USERNAME")
    p.add_argument("--mqtt-ca-file", help="CA bundle for mqtts:// (env TWIN_MQTT_CA_FILE)")
    p.add_argument("--client-id", dest="mqtt_client_id",
                   help="client id prefix of consuming services (default twin-SITE): persistent sessions")
    p.add_argument("--session-expiry", dest="mqtt_session_expiry_s", type=whole_seconds(),
                   help="how long the broker keeps the session while away, e.g. 3600 or 1h (needs --client-id)")


def add_state_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snapshot-every", dest="snapshot_every_s", type=duration(),
                   help="time between state snapshots under DATA_DIR/state, e.g. 10, 30s, 5m (default 10 s)")
    p.add_argument("--no-snapshot", dest="snapshot", action="store_const", const=False,
                   help="neither restore nor save state snapshots (cold start)")
    p.add_argument("--journal-fsync", dest="journal_fsync", choices=("always", "1s", "never", "off"),
                   help="the journal of received telemetry under DATA_DIR/state: fsync before each acknowledgement, "
                        "once a second (default), never (the OS decides), or off (env TWIN_JOURNAL_FSYNC)")


def add_data_dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=output_dir,
                   help="line-protocol files (without InfluxDB) and state snapshots (default ./data)")


def add_influx_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--influx-url", help="InfluxDB 2 URL, e.g. http://localhost:8086 (env TWIN_INFLUX_URL; the "
                                        "token from env TWIN_INFLUX_TOKEN or TWIN_INFLUX_TOKEN_FILE, never a flag)")
    p.add_argument("--influx-org", help="organisation (default stargate)")
    p.add_argument("--influx-bucket", help="bucket (default twin)")
    p.add_argument("--scenario-tag", metavar="NAME",
                   help="a what-if run: the sink tags every line scenario=NAME, apart from the live plant's series "
                        "(env TWIN_SCENARIO_TAG; default: the plant file's [site] scenario; '': the live plant)")


_SETTING_KEYS = ("plant", "tick_s", "log_level", "broker", "mqtt_username", "mqtt_ca_file", "mqtt_client_id",
                 "mqtt_session_expiry_s", "data_dir", "influx_url", "influx_org", "influx_bucket",
                 "sink_mirror_s", "snapshot_every_s", "snapshot", "journal_fsync", "scenario_tag")


def settings_from_args(args: argparse.Namespace) -> tuple[Settings, Plant]:
    overrides: dict[str, Any] = {k: getattr(args, k, None) for k in _SETTING_KEYS}
    settings = load_settings(**overrides)
    return settings, load_plant(settings.plant)


def make_bus(settings: Settings, url: str, service: str, site: str, subscriptions: Iterable[str] = (),
             persistent: bool = False, protocol: Protocol = "auto", manual_ack: bool = False, *,
             wait_for_broker: bool = False, stop: asyncio.Event | None = None,
             give_up_after_s: float | None = None, share_group: str | None = None) -> Bus:
    """The bus of one service or command. ``wait_for_broker``: a service next to the plant keeps trying an
    unreachable broker (and says so) until ``stop`` or ``give_up_after_s``; a command stops with one line."""
    return Bus(
        url,
        service=service,
        site=site,
        subscriptions=subscriptions,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        client_id=f"{settings.mqtt_client_id or 'twin-' + site}-{service}" if persistent else None,
        session_expiry_s=settings.mqtt_session_expiry_s if persistent else 0,
        queue_size=settings.mqtt_queue_size,
        ca_file=settings.mqtt_ca_file,
        cert_file=settings.mqtt_cert_file,
        key_file=settings.mqtt_key_file,
        protocol=protocol,
        manual_ack=manual_ack,
        wait_for_broker=wait_for_broker,
        share_group=share_group,
        shared_subscriptions=settings.mqtt_shared_subscriptions,
        redelivery_wait_s=settings.mqtt_redelivery_wait_s,
        stop=stop,
        give_up_after_s=give_up_after_s,
    )


STOP_GRACE_S = 10.0
#: a long-running service's line of what it did, once a minute (env TWIN_REPORT_EVERY_S: the tests shorten it)
REPORT_EVERY_S = float(os.environ.get("TWIN_REPORT_EVERY_S", "60"))


def run_until_stopped(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``main(stop)`` with SIGINT/SIGTERM setting ``stop``, so services shut down cleanly.

    ``main`` watches ``stop`` and returns; if it has not within ``STOP_GRACE_S`` (it may be
    waiting for a broker that does not answer), it is cancelled, so a signal always ends it.
    """

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        task = asyncio.ensure_future(main(stop))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_S)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return 130
        stopping.cancel()
        try:
            return task.result()
        except StoppedConnecting as e:  # a signal while still connecting: a clean stop
            log.warning("%s", e)
            return 0

    return asyncio.run(runner())


def need_broker(url: str | None) -> str:
    """The broker URL, or a one-line error saying how to give one."""
    if not url:
        raise ConfigError("no broker: pass --broker mqtt://host:port or set TWIN_BROKER")
    parse_broker_urls(url)  # a malformed URL (or one of a list): one line now, before any service is built
    return url


async def run_service(stop: asyncio.Event, task: asyncio.Task[None], duration: float | None,
                      report: object = None) -> int:
    """Run ``task`` until ``stop``, ``duration`` seconds or its end; ``report()`` once a minute. Exit code."""
    t0 = time.monotonic()
    last = t0
    while not stop.is_set() and not task.done():
        if duration is not None and time.monotonic() - t0 >= duration:
            break
        if callable(report) and time.monotonic() - last >= REPORT_EVERY_S:
            report()
            last = time.monotonic()
        with contextlib.suppress(TimeoutError):  # asyncio.timeout: wait_for can swallow a cancel on 3.11
            async with asyncio.timeout(0.5):
                await stop.wait()
    if task.done() and task.exception() is not None:
        log.error("service stopped: %r", task.exception())
        return 1
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return 0
