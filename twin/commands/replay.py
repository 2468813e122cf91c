"""``twin replay FILE...``: publish telemetry logs through a broker, at their own pace or as fast as acked.

Times for ``--start``/``--end``/``--rebase``: ``now``, Unix seconds, ISO 8601
(``2026-11-21T10:00:00Z``) or ``+15m`` after the log's first message.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from adapters.bus.mqtt import parse_broker_urls
from adapters.bus.publisher import FastPublisher, PublisherError
from adapters.logs.replay import Replayer, ReplayOptions, ReplayStats, first_t
from adapters.logs.replay_pace import StatePacer
from adapters.logs.telemetry_log import LogError, LogReader, LogRecord
from twin.commands.common import duration
from twin.commands.progress import Progress, clock, human_bytes
from twin.contract import SITE_PATTERN
from twin.errors import ConfigError
from twin.settings import load_settings
from twin.timespec import format_t, parse_time

__all__ = ["register"]


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        v = float(text.rstrip("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a speed: a number (1, 10, 0.5) or max") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"speed must be > 0, got {text}")
    return v


def _site(text: str) -> str:
    if not re.match(SITE_PATTERN, text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a site id ([a-z0-9-]{{1,32}})")
    return text


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("replay", help="publish telemetry logs through a broker", description=__doc__)
    p.add_argument("files", nargs="+", metavar="FILE", help="telemetry logs (.jsonl or .jsonl.gz), in this order")
    p.add_argument("--broker", help="mqtt://host:port or mqtts://host:port (env TWIN_BROKER)")
    p.add_argument("--mqtt-username", help="env TWIN_MQTT_USERNAME (password from TWIN_MQTT_PASSWORD)")
    p.add_argument("--mqtt-ca-file", help="CA bundle for mqtts:// (env TWIN_MQTT_CA_FILE)")
    p.add_argument("--speed", type=_speed, default=1.0, metavar="X|max",
                   help="log seconds per wall second (default 1); max: as fast as the broker acknowledges")
    p.add_argument("--start", metavar="T", help="first message time to replay")
    p.add_argument("--end", metavar="T", help="replay messages before this time")
    p.add_argument("--loop", action="store_true", help="start again at the end (ts and seq keep increasing)")
    p.add_argument("--rebase", metavar="now|T", help="shift t and every payload ts so the replay starts at T")
    p.add_argument("--site", type=_site, help="publish under stargate/SITE/... instead of the logged site")
    p.add_argument("--topic", action="append", default=[], metavar="FILTER",
                   help="replay only topics matching this MQTT filter (repeatable)")
    p.add_argument("--keep-source", action="store_true", help="keep the logged source (default: source=replay)")
    p.add_argument("--on-error", choices=["skip", "stop"], default="stop",
                   help="a bad log line: report it and skip it, or stop there (default stop)")
    p.add_argument("--pace-by-state", type=duration(), nargs="?", const=5.0, metavar="LAG",
                   help="stay at most LAG (default 5 s) of event time ahead of the twin's latest PlantState "
                        "(stargate/SITE/twin/state), so that a replay at max never outruns the state service")
    p.add_argument("--window", type=int, default=1000, help="QoS 1 messages in flight at most (default 1000)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress (a bar on a terminal, else a line every 10 s)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="default WARNING (env TWIN_LOG_LEVEL)")
    p.set_defaults(func=_cmd)


def _options(args: argparse.Namespace) -> ReplayOptions:
    for f in args.files:
        p = Path(f)
        if p.is_dir():
            raise ConfigError(f"{f} is a folder: give the log files in it (e.g. {f.rstrip('/')}/*.jsonl.gz)")
        if not p.is_file():
            raise ConfigError(f"{f}: no such file")
        if p.name.endswith(".gz"):
            with open(p, "rb") as fh:
                if fh.read(2) not in (b"\x1f\x8b", b""):
                    raise ConfigError(f"{f}: not a gzip file, though it is named .gz (rename it to .jsonl if it "
                                      "is a plain log)")
    now = time.time()
    needs_first = any(v and v.strip().startswith("+") for v in (args.start, args.end, args.rebase))
    t_first = first_t(args.files) if needs_first else None
    try:
        start = parse_time(args.start, now=now, first_t=t_first) if args.start else None
        end = parse_time(args.end, now=now, first_t=t_first) if args.end else None
        rebase = parse_time(args.rebase, now=now, first_t=t_first) if args.rebase else None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"--end ({args.end}) must be after --start ({args.start})")
    if args.window < 1 or args.window > 65535:
        raise ConfigError("--window must be between 1 and 65535")
    return ReplayOptions(speed=args.speed, start=start, end=end, loop=args.loop, rebase_to=rebase,
                         site=args.site, topics=args.topic, keep_source=args.keep_source, on_error=args.on_error)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _site_of(files: list[str]) -> str | None:
    for f in files:
        for rec in LogReader(f):
            if isinstance(rec, LogRecord):
                parts = rec.topic.split("/")
                return parts[1] if len(parts) > 2 and parts[0] == "stargate" else None
    return None


def _summary(st: ReplayStats, speed: float | None) -> str:
    span = (st.t - st.first_t) if st.t is not None and st.first_t is not None else 0.0
    x = span / st.elapsed_s if st.elapsed_s > 0 else 0.0
    parts = [f"replayed {st.published:,} messages ({format_t(st.first_t)} .. {format_t(st.t)}) in "
             f"{st.elapsed_s:.1f} s: {st.rate:,.0f} msg/s, {x:.1f}x real time"]
    if st.loops > 1:
        parts.append(f"{st.loops} passes")
    if st.twin_outputs:
        parts.append(f"{st.twin_outputs:,} twin outputs (stargate/+/twin/...) not replayed")
    if st.bad_count:
        parts.append(f"{st.bad_count} bad lines")
    return "; ".join(parts)


def _cmd(args: argparse.Namespace) -> int:
    settings = load_settings(broker=args.broker, mqtt_username=args.mqtt_username, mqtt_ca_file=args.mqtt_ca_file,
                             log_level=args.log_level)
    if not settings.broker:
        raise ConfigError("no broker: pass --broker mqtt://host:port or set TWIN_BROKER")
    options = _options(args)
    replayer = Replayer(args.files, options)
    pub = FastPublisher(parse_broker_urls(settings.broker), username=settings.mqtt_username,
                        password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
                        window=args.window, ca_file=settings.mqtt_ca_file, cert_file=settings.mqtt_cert_file,
                        key_file=settings.mqtt_key_file)
    try:
        pub.connect()
    except PublisherError as e:
        raise ConfigError(str(e)) from None
    stop = threading.Event()
    pub.abort = stop

    def report_error(e: LogError) -> None:
        action = "skipped" if options.on_error == "skip" else "stopping the replay here"
        sys.stderr.write(f"twin replay: {e} ({action})\n")

    pacer = None
    if args.pace_by_state is not None:
        site = options.site or _site_of(args.files)
        if site is None:
            pub.close()
            raise ConfigError("--pace-by-state needs the site: pass --site S (the log has no stargate/{site}/ topic)")
        pacer = StatePacer(parse_broker_urls(settings.broker)[0], site, args.pace_by_state,
                           username=settings.mqtt_username,
                           password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
                           ca_file=settings.mqtt_ca_file, cert_file=settings.mqtt_cert_file,
                           key_file=settings.mqtt_key_file)
        pacer.start()
    try:
        with _stop_on_signals(stop), _progress(False if args.no_progress else None) as progress:
            st = replayer.run(pub, stop, progress, report_error, pacer.allows if pacer else None)
    finally:
        pub.close()
        if pacer is not None:
            pacer.stop()
    sys.stderr.write(f"twin replay: {_summary(st, args.speed)}\n")
    if st.stopped == "broker":
        resume = f"; resume with --start {st.t!r}" if st.t is not None else ""
        sys.stderr.write(f"twin replay: error: {st.error}{resume}\n")
        return 1
    if st.stopped == "error":
        sys.stderr.write(f"twin replay: stopped at a bad line; {st.published:,} messages before it were published "
                         "and acknowledged; fix the file or pass --on-error skip\n")
        return 1
    if st.stopped == "interrupted":
        resume = f"; resume with --start {st.t!r}" if st.t is not None else ""
        sys.stderr.write(f"twin replay: stopped by a signal at t={format_t(st.t)}{resume}\n")
        return 130
    return 0


@contextlib.contextmanager
def _progress(show: bool | None) -> Iterator[Callable[[ReplayStats], None] | None]:
    """Progress in bytes of the logs (the share and the time left), messages, plant time replayed and speed."""
    if show is False:
        yield None
        return
    latest: list[ReplayStats] = []

    def extra() -> str:
        if not latest:
            return "starting"
        st = latest[0]
        span = (st.t - st.first_t) if st.t is not None and st.first_t is not None else 0.0
        x = span / st.elapsed_s if st.elapsed_s > 0 else 0.0
        return f"{st.published:,} messages ({st.rate:,.0f}/s), plant time +{clock(span)} at {x:,.1f}x"

    with Progress("replay", None, human_bytes, show=show, extra=extra) as bar:
        def update(st: ReplayStats) -> None:
            latest[:] = [st]
            bar.update(st.bytes_done, float(st.bytes_total) or None)

        yield update
