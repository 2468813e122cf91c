"""The MQTT bus against real brokers: protocol fallback, reconnect and resubscribe, will, persistent sessions."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.bus.embedded_broker import EmbeddedBroker
from adapters.bus.mqtt import Bus, parse_broker_url
from tests.conftest import REPO, collect, mosquitto_pub
from tests.servers import MosquittoServer, env_with_venv
from twin.errors import ConfigError

pytestmark = pytest.mark.integration


async def _next(bus: Bus, timeout: float = 10.0) -> tuple[str, bytes]:
    m = await asyncio.wait_for(bus.queue.get(), timeout)
    return m.topic.value, bytes(m.payload)  # type: ignore[arg-type]


def test_mqtt5_on_mosquitto_and_fallback_to_311_on_the_embedded_broker(mosquitto: MosquittoServer,
                                                                        site: str) -> None:
    async def main() -> tuple[str | None, str | None, tuple[str, bytes]]:
        async with Bus(mosquitto.url, service="t", site=site) as b5:
            p5 = b5.protocol_in_use
        async with EmbeddedBroker() as broker, \
                Bus(broker.url, service="sub", site=site, subscriptions=[f"stargate/{site}/x"]) as sub, \
                Bus(broker.url, service="pub", site=site) as pub:
            await pub.publish(f"stargate/{site}/x", b"hello")
            return p5, sub.protocol_in_use, await _next(sub)

    p5, p3, got = asyncio.run(main())
    assert (p5, p3) == ("5", "3.1.1")
    assert got == (f"stargate/{site}/x", b"hello")


def test_reconnects_and_resubscribes_after_a_broker_restart(own_mosquitto: MosquittoServer, site: str) -> None:
    topic = f"stargate/{site}/gpu/h1/r1"

    async def main() -> list[bytes]:
        got = []
        async with Bus(own_mosquitto.url, service="sub", site=site, subscriptions=[topic]) as sub:
            await asyncio.to_thread(mosquitto_pub, own_mosquitto.port, topic, "before")
            got.append((await _next(sub))[1])
            own_mosquitto.kill()  # SIGKILL: no clean disconnect
            await asyncio.sleep(1.0)
            assert not sub.connected
            own_mosquitto.start()
            await asyncio.wait_for(sub.wait_connected(), 20)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(mosquitto_pub, own_mosquitto.port, topic, "after")
            got.append((await _next(sub, 20))[1])
            assert sub.connects == 2
        return got

    assert asyncio.run(main()) == [b"before", b"after"]


def test_publish_waits_through_a_broker_restart(own_mosquitto: MosquittoServer, site: str) -> None:
    topic = f"stargate/{site}/t"

    async def main() -> list[tuple[str, bytes]]:
        async with Bus(own_mosquitto.url, service="pub", site=site) as pub:
            own_mosquitto.kill()
            await asyncio.sleep(0.5)
            sending = asyncio.create_task(pub.publish(topic, b"kept", qos=1, retain=True))
            await asyncio.sleep(1.0)
            assert not sending.done()
            own_mosquitto.start()
            await asyncio.wait_for(sending, 20)
        return await collect(own_mosquitto.port, topic, lambda ms: bool(ms), 10)

    assert asyncio.run(main()) == [(topic, b"kept")]


def test_persistent_session_delivers_what_was_published_while_away(own_mosquitto: MosquittoServer,
                                                                    site: str) -> None:
    topic = f"stargate/{site}/gpu/h1/r1"

    def bus() -> Bus:
        return Bus(own_mosquitto.url, service="state", site=site, subscriptions=[topic],
                   client_id=f"{site}-state", session_expiry_s=300)

    async def main() -> list[bytes]:
        async with bus():
            pass  # subscribed; the session stays on the broker
        for i in range(5):
            await asyncio.to_thread(mosquitto_pub, own_mosquitto.port, topic, f"m{i}")
        async with bus() as b:
            return [(await _next(b))[1] for _ in range(5)]

    assert asyncio.run(main()) == [f"m{i}".encode() for i in range(5)]


def test_a_session_resumed_with_a_backlog_past_the_pause_mark_connects_at_once(own_mosquitto: MosquittoServer,
                                                                                 site: str) -> None:
    """The broker sends a kept session's backlog before the PUBACK of the service's `online`: waiting for that
    PUBACK inside the connect, while back-pressure had stopped reading the socket (the queue at its pause mark,
    nobody consuming yet), held every reconnect at its 10 s timeout, for good while the backlog grew. Now the
    first attempt connects and the whole backlog follows, in order."""
    topic = f"stargate/{site}/gpu/h1/r1"
    n = 3000

    def bus() -> Bus:
        return Bus(own_mosquitto.url, service="state", site=site, subscriptions=[topic],
                   client_id=f"{site}-state", session_expiry_s=300)

    async def main() -> tuple[int, list[bytes]]:
        async with bus():
            pass  # subscribed; the session stays on the broker
        lines = "".join(f"m{i:05d}-{'x' * 1000}\n" for i in range(n))
        await asyncio.to_thread(subprocess.run, ["mosquitto_pub", "-p", str(own_mosquitto.port), "-q", "1",
                                                 "-t", topic, "-l"], input=lines.encode(), check=True)
        b = bus()
        b.queue.pause_at = 1000  # type: ignore[attr-defined]  # back-pressure (20,000 by default) at a third of it
        await asyncio.wait_for(b.__aenter__(), 120)  # a bound for a hang, not a timing
        try:
            got = [(await _next(b, 60))[1][:6] for _ in range(n)]
            return b.connects, got
        finally:
            await b.__aexit__(None, None, None)

    connects, got = asyncio.run(main())
    assert connects == 1
    assert got == [f"m{i:05d}".encode() for i in range(n)]


def test_will_says_offline_when_a_service_dies(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    plant = tmp_path / "plant.toml"
    plant.write_text((REPO / "tests" / "data" / "small.toml").read_text().replace('id = "tiny"', f'id = "{site}"'))
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "run", "state", "--broker", mosquitto.url,
                             "--plant", str(plant), "--no-snapshot"], env=env_with_venv())
    health = f"stargate/{site}/twin/health/state"
    try:
        online = asyncio.run(collect(mosquitto.port, health, lambda ms: ms[-1][1] == b"online", 30))
        assert online[-1][1] == b"online"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    # keepalive is 30 s: the broker notices the dead socket at once since the process is gone
    offline = asyncio.run(collect(mosquitto.port, health, lambda ms: ms[-1][1] == b"offline", 30))
    assert offline[-1] == (health, b"offline")


@pytest.mark.parametrize(("url", "expect"), [
    ("mqtt://localhost", ("localhost", 1883, False)),
    ("mqtts://broker.example:8884", ("broker.example", 8884, True)),
    ("mqtts://host", ("host", 8883, True)),
])
def test_broker_urls(url: str, expect: tuple[str, int, bool]) -> None:
    a = parse_broker_url(url)
    assert (a.host, a.port, a.tls) == expect


def test_credentials_in_the_url_never_show_in_its_text() -> None:
    a = parse_broker_url("mqtt://svc:s3cret@host:1883")
    assert a.username == "svc" and a.password is not None and a.password.get_secret_value() == "s3cret"
    assert "s3cret" not in str(a) and "s3cret" not in repr(a)


@pytest.mark.parametrize("url", ["http://host:1883", "mqtt://", "host:1883", "mqtt://host:notaport"])
def test_bad_broker_url_is_one_clear_line(url: str) -> None:
    with pytest.raises(ConfigError, match="mqtt://host:port"):
        parse_broker_url(url)
