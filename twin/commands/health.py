"""``twin health [SERVICE]``: the containers' healthcheck. Is SERVICE online on the broker?

Every service publishes ``online`` on its retained ``stargate/{site}/twin/health/{service}`` when
it connects, and its MQTT will makes the broker replace that with ``offline`` when the connection
is lost, including when the process hangs and misses its keep-alive. This command logs in with
the container's own account (``TWIN_BROKER``, ``TWIN_MQTT_USERNAME``, ``TWIN_MQTT_PASSWORD``,
TLS settings), reads that retained message and exits 0 for ``online``, 1 otherwise (``offline``,
nothing retained yet, broker unreachable), with one line saying why. It publishes nothing and
sets no will. SERVICE defaults to env ``TWIN_HEALTH_SERVICE`` (set per service in compose).

The image's healthcheck runs it as ``python -m twin.commands.health``: the same command without
importing every other subcommand (a third of the CPU time of ``twin health``, every 30 s per container).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys

import aiomqtt

from adapters.bus.mqtt import BrokerAddress, describe_brokers, parse_broker_urls, refuses_mqtt5
from adapters.bus.reach import unreachable_line, unreachable_reason
from adapters.bus.tls import tls_context
from twin.commands.common import add_broker_options, duration
from twin.errors import ConfigError
from twin.plant import load_plant
from twin.settings import load_settings
from twin.topics import Topics

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("health", help="healthcheck: exit 0 when SERVICE is online on the broker",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(p)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("service", nargs="?", metavar="SERVICE",
                   help="state, sink, forecast, sim, adapter-<name> (default: env TWIN_HEALTH_SERVICE)")
    add_broker_options(p)
    p.add_argument("--site", help="site id (default: the plant's, env TWIN_PLANT)")
    p.add_argument("--plant", help="plant file or name whose site id to use (default phase1; env TWIN_PLANT)")
    p.add_argument("--timeout", type=duration(), default=5.0,
                   help="how long to wait for the answer, e.g. 5 or 1m (default 5 s)")
    p.set_defaults(func=_cmd)


async def read_retained(settings_broker: str, topic: str, *, username: str | None, password: str | None,
                        ca_file: str | None, cert_file: str | None, key_file: str | None,
                        timeout: float) -> bytes | None:
    """The retained payload on ``topic`` (None when nothing is retained there); with a list of nodes, from the
    first that answers."""
    nodes = parse_broker_urls(settings_broker)
    for i, addr in enumerate(nodes):
        try:
            return await _read_retained(addr, topic, username=username, password=password, ca_file=ca_file,
                                        cert_file=cert_file, key_file=key_file, timeout=timeout)
        except (aiomqtt.MqttError, OSError):
            if i == len(nodes) - 1:
                raise
    return None


async def _read_retained(addr: BrokerAddress, topic: str, *, username: str | None, password: str | None,
                         ca_file: str | None, cert_file: str | None, key_file: str | None,
                         timeout: float) -> bytes | None:
    settings_broker = str(addr)
    tls = tls_context(addr.tls, ca_file, cert_file, key_file, settings_broker)
    user = username if username is not None else addr.username
    pw = password if password is not None else (addr.password.get_secret_value() if addr.password else None)
    try:
        return await _read_with(aiomqtt.ProtocolVersion.V5, addr, topic, user, pw, tls, timeout)
    except aiomqtt.MqttCodeError as e:
        if not refuses_mqtt5(e):
            raise
    # a broker of MQTT 3.1.1 only (NATS' gateway): as the services do, again in 3.1.1
    return await _read_with(aiomqtt.ProtocolVersion.V311, addr, topic, user, pw, tls, timeout)


async def _read_with(protocol: aiomqtt.ProtocolVersion, addr: BrokerAddress, topic: str, user: str | None,
                     pw: str | None, tls: ssl.SSLContext | None, timeout: float) -> bytes | None:
    async with aiomqtt.Client(addr.host, addr.port, username=user, password=pw, tls_context=tls,
                              protocol=protocol, timeout=timeout) as client:
        await client.subscribe(topic, qos=1)

        async def first() -> bytes:
            async for m in client.messages:
                return bytes(m.payload) if isinstance(m.payload, bytes | bytearray) else str(m.payload).encode()
            return b""

        try:
            # Retained messages arrive right after the SUBACK; a short wait means "none retained".
            return await asyncio.wait_for(first(), timeout)
        except TimeoutError:
            return None


def _cmd(args: argparse.Namespace) -> int:
    service = args.service or os.environ.get("TWIN_HEALTH_SERVICE")
    if not service:
        raise ConfigError("no service to check: pass SERVICE or set TWIN_HEALTH_SERVICE")
    settings = load_settings(broker=args.broker, mqtt_username=args.mqtt_username, mqtt_ca_file=args.mqtt_ca_file)
    if not settings.broker:
        raise ConfigError("no broker: pass --broker mqtt://host:port or set TWIN_BROKER")
    site = args.site or load_plant(args.plant or settings.plant).site.id
    topic = Topics(site).health(service)
    pw = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    try:
        payload = asyncio.run(read_retained(
            settings.broker, topic, username=settings.mqtt_username, password=pw,
            ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
            cert_file=str(settings.mqtt_cert_file) if settings.mqtt_cert_file else None,
            key_file=str(settings.mqtt_key_file) if settings.mqtt_key_file else None, timeout=args.timeout))
    except aiomqtt.MqttCodeError as e:  # it answered, and refused us (the login, most often)
        brokers = describe_brokers(parse_broker_urls(settings.broker))
        sys.stderr.write(f"twin health: {service}: the broker at {brokers} refused the connection ({e}); check "
                         "TWIN_MQTT_USERNAME and TWIN_MQTT_PASSWORD (or _FILE)\n")
        return 1
    except (aiomqtt.MqttError, OSError, ssl.SSLError) as e:
        why = unreachable_line(describe_brokers(parse_broker_urls(settings.broker)), unreachable_reason(e))
        sys.stderr.write(f"twin health: {service}: {why}\n")
        return 1
    if payload is None:
        sys.stderr.write(f"twin health: {service}: nothing retained on {topic} yet (never connected)\n")
        return 1
    text = payload.decode(errors="replace").strip()
    if text != "online":
        sys.stderr.write(f"twin health: {service}: {topic} says {text or 'nothing'!r}\n")
        return 1
    sys.stdout.write(f"twin health: {service}: online\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m twin.commands.health [SERVICE]``: ``twin health`` alone."""
    from twin.cli import OneLineParser

    p = OneLineParser(prog="twin health", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(p)
    args = p.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as e:
        sys.stderr.write(f"twin: error: {e}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
