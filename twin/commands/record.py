"""``twin record --out FILE``: subscribe and write what the broker carries to a telemetry log.

JSON Lines (``.gz``: gzip), one message a line with its receive time, topic, QoS, retain
flag and payload; the format is the contract's "Telemetry log", which ``twin replay`` reads.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from adapters.bus.mqtt import Bus
from adapters.logs.record import RecordStats, record
from adapters.logs.telemetry_log import TelemetryLogWriter
from twin.commands.common import REPORT_EVERY_S, duration, make_bus, output_file, run_until_stopped, whole_seconds
from twin.errors import ConfigError
from twin.settings import load_settings
from twin.timespec import format_t, parse_size
from twin.topics import EVERY_SITE_FILTER

__all__ = ["register"]

log = logging.getLogger("twin.record")


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("record", help="record broker traffic to a telemetry log", description=__doc__)
    p.add_argument("--out", required=True, type=output_file, help="log file (.jsonl, or .jsonl.gz for gzip)")
    p.add_argument("--broker", help="mqtt://host:port or mqtts://host:port (env TWIN_BROKER)")
    p.add_argument("--mqtt-username", help="env TWIN_MQTT_USERNAME (password from TWIN_MQTT_PASSWORD)")
    p.add_argument("--mqtt-ca-file", help="CA bundle for mqtts:// (env TWIN_MQTT_CA_FILE)")
    p.add_argument("--client-id", dest="mqtt_client_id",
                   help="fixed client id: a persistent session, so nothing is lost while reconnecting")
    p.add_argument("--session-expiry", dest="mqtt_session_expiry_s", type=whole_seconds(),
                   help="how long the broker keeps the session while away, e.g. 3600 or 1h (with --client-id)")
    p.add_argument("--topic", action="append", metavar="FILTER",
                   help="MQTT filter to record (repeatable; default stargate/#)")
    p.add_argument("--rotate-size", type=_size, metavar="SIZE",
                   help="start a new file at this size on disk (500M, 1G); files become NAME.00000.jsonl.gz ...")
    p.add_argument("--rotate-time", type=duration(), metavar="DURATION",
                   help="start a new file after this much time (15m, 1h, 1d)")
    p.add_argument("--gzip-level", type=int, choices=range(1, 10), default=1, metavar="1-9",
                   help="gzip compression for .gz (default 1: a live recorder must keep up; 1-3 use ISA-L, "
                        "4-9 zlib: 6 writes files about 20 %% smaller at a seventeenth of the speed)")
    p.add_argument("--duration", type=duration(), help="stop after this long: 90, 90s, 10m, 1h30m, 14d")
    p.add_argument("--count", type=int, help="stop after this many messages")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="default INFO: a line a minute of what it did (env TWIN_LOG_LEVEL)")
    p.set_defaults(func=_cmd, default_log_level="INFO")


def _cmd(args: argparse.Namespace) -> int:
    settings = load_settings(broker=args.broker, mqtt_username=args.mqtt_username, mqtt_ca_file=args.mqtt_ca_file,
                             mqtt_client_id=args.mqtt_client_id, mqtt_session_expiry_s=args.mqtt_session_expiry_s,
                             log_level=args.log_level)
    if not settings.broker:
        raise ConfigError("no broker: pass --broker mqtt://host:port or set TWIN_BROKER")
    if args.count is not None and args.count < 1:
        raise ConfigError("--count must be at least 1")
    filters = args.topic or [EVERY_SITE_FILTER]
    url = settings.broker
    stats = RecordStats()
    writer = TelemetryLogWriter(args.out, rotate_bytes=args.rotate_size, rotate_s=args.rotate_time,
                                compresslevel=args.gzip_level)

    async def main(stop: asyncio.Event) -> int:
        # a persistent session only when asked for with --client-id: a recorder that has exited must not
        # leave the broker queueing everything for it. Without one, MQTT 3.1.1: nothing MQTT 5 adds is
        # recorded, and paho decoding every message's MQTT 5 properties cut the recorder's rate by half
        persistent = bool(args.mqtt_client_id)
        bus: Bus = make_bus(settings, url, "record", "record", filters, persistent=persistent,
                            protocol="auto" if persistent else "3.1.1", wait_for_broker=True,
                            stop=stop, give_up_after_s=args.duration)
        bus.health = False  # the recorder must not record its own health messages
        # a recorder is a service: it waits for an unreachable broker (and says so) until a signal or --duration
        await bus.__aenter__()
        try:
            if args.log_level in ("DEBUG", "INFO"):
                sys.stderr.write(f"twin record: recording {', '.join(filters)} from {bus.address}\n")
            def report(st: RecordStats) -> None:
                files = ", ".join(str(p) for p in writer.paths) or "no file yet"
                log.info("record: %s messages to %s, the last at %s", f"{st.messages:,}", files, format_t(st.last_t))

            await record(bus, writer, stop, count=args.count, duration_s=args.duration, stats=stats, report=report,
                         report_every_s=REPORT_EVERY_S)
            if bus.dropped:
                sys.stderr.write(f"twin record: warning: {bus.dropped} messages dropped (incoming queue full)\n")
        finally:
            await bus.close()
        return 0

    try:
        rc = run_until_stopped(main)
    finally:
        writer.close()
    files = ", ".join(str(p) for p in writer.paths) or "(no file: nothing received)"
    sys.stderr.write(f"twin record: {stats.messages:,} messages ({format_t(stats.first_t)} .. "
                     f"{format_t(stats.last_t)}) to {files}\n")
    return rc
