"""The broker's security, run by a real Mosquitto with the repo's config, ACL and generated password file.

How a denial is observed without timing: a ``viewer`` subscription on ``stargate/#`` sees everything
that gets through. Each publisher sends the message under test (QoS 1, acknowledged) and then one it is
allowed to send, on the same connection; Mosquitto handles one client's packets in order, so once the
allowed marker has arrived at the viewer, a forbidden message sent before it would have arrived too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.deploy.broker import PASSWORDS, password_env, reaches_viewer, run_init, start_repo_broker
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration

SITE = "narvik"
TELEMETRY = f"stargate/{SITE}/gpu/h1/h1-r001"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    server = start_repo_broker(tmp_path_factory.mktemp("repo-mosquitto"), password_env())
    yield server
    server.stop()


def _client(port: int, user: str | None, password: str | None = None, will: str | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", port, username=user, password=password if password is not None else PASSWORDS.get(user or ""),
        protocol=aiomqtt.ProtocolVersion.V5, timeout=10,
        will=aiomqtt.Will(will, b"offline", qos=1, retain=True) if will else None,
    )


async def _passes(port: int, user: str, topic: str, marker: str, *, health: str | None = None) -> bool:
    """Does ``user``'s message on ``topic`` reach a viewer? ``marker`` is a topic ``user`` may publish."""
    return await reaches_viewer(_client(port, "viewer"), _client(port, user, will=health), topic, marker, 20)


async def _login(port: int, user: str | None, password: str | None = None, will: str | None = None) -> str | None:
    """None when the broker accepts the login, else its refusal."""
    try:
        async with _client(port, user, password, will):
            return None
    except aiomqtt.MqttError as e:
        return str(e)


def test_anonymous_and_wrong_passwords_are_refused(broker: MosquittoServer) -> None:
    assert asyncio.run(_login(broker.port, None)) is not None
    assert asyncio.run(_login(broker.port, "state", "not-the-password")) is not None
    assert asyncio.run(_login(broker.port, "nobody", "pw-state")) is not None
    assert asyncio.run(_login(broker.port, "state")) is None


def test_the_simulator_publishes_telemetry_and_nothing_under_twin(broker: MosquittoServer) -> None:
    p = broker.port
    marker = f"stargate/{SITE}/hydro/feeder-a"
    assert asyncio.run(_passes(p, "sim", TELEMETRY, marker, health=f"stargate/{SITE}/twin/health/sim"))
    for topic in ("twin/state", "twin/state/h1", "twin/alarm/x", "twin/forecast/it_mw", "twin/deadletter",
                  "twin/health/state"):
        assert not asyncio.run(_passes(p, "sim", f"stargate/{SITE}/{topic}", marker)), topic


def test_the_sink_cannot_publish_telemetry_or_states(broker: MosquittoServer) -> None:
    p = broker.port
    marker = f"stargate/{SITE}/twin/sink"
    assert asyncio.run(_passes(p, "sink", f"stargate/{SITE}/twin/alarm/sink_spool_full", marker))
    for topic in (TELEMETRY, f"stargate/{SITE}/hydro/feeder-a", f"stargate/{SITE}/twin/state",
                  f"stargate/{SITE}/twin/forecast/it_mw", f"stargate/{SITE}/twin/alarm/coolant_hot"):
        assert not asyncio.run(_passes(p, "sink", topic, marker)), topic


def test_the_twin_accounts_do_their_jobs(broker: MosquittoServer) -> None:
    p = broker.port
    root = f"stargate/{SITE}"
    for topic in ("twin/state", "twin/state/h1", "twin/alarm/coolant_hot", "twin/deadletter",
                  # scale-out: a hall worker's state and health, the aggregator's health
                  "twin/worker/halls-h1-h2", "twin/health/state-halls-h1-h2", "twin/health/aggregate"):
        assert asyncio.run(_passes(p, "state", f"{root}/{topic}", f"{root}/twin/state",
                                   health=f"{root}/twin/health/state")), topic
    assert not asyncio.run(_passes(p, "state", TELEMETRY, f"{root}/twin/state"))
    assert asyncio.run(_passes(p, "forecast", f"{root}/twin/forecast/it_mw", f"{root}/twin/forecast/facility_mw",
                               health=f"{root}/twin/health/forecast"))
    assert not asyncio.run(_passes(p, "forecast", f"{root}/twin/state", f"{root}/twin/forecast/facility_mw"))
    assert asyncio.run(_passes(p, "sink", f"{root}/twin/deadletter", f"{root}/twin/sink",
                               health=f"{root}/twin/health/sink"))


def test_each_adapter_publishes_only_its_own_domain(broker: MosquittoServer) -> None:
    p = broker.port
    root = f"stargate/{SITE}"
    assert asyncio.run(_passes(p, "adapter-cdu-h1", f"{root}/twin/health/adapter-cdu-h1/status",
                               f"{root}/coolant/h1-cdu01", health=f"{root}/twin/health/adapter-cdu-h1"))
    assert not asyncio.run(_passes(p, "adapter-cdu-h1", TELEMETRY, f"{root}/coolant/h1-cdu01"))
    assert asyncio.run(_passes(p, "adapter-meters", f"{root}/heat/dh-narvik", f"{root}/hydro/feeder-a"))
    assert not asyncio.run(_passes(p, "adapter-meters", f"{root}/twin/health/adapter-dcgm-h1-h4",
                                   f"{root}/hydro/feeder-a"))


@pytest.mark.parametrize(("user", "own", "other"), [("adapter-dcgm-h1-h4", ["h1", "h4"], "h5"),
                                                    ("adapter-dcgm-h5-h8", ["h5", "h8"], "h4")])
def test_each_dcgm_adapter_publishes_only_its_halls_racks(broker: MosquittoServer, user: str, own: list[str],
                                                          other: str) -> None:
    p = broker.port
    root = f"stargate/{SITE}"
    marker = f"{root}/gpu/{own[0]}/{own[0]}-r001"
    assert asyncio.run(_passes(p, user, f"{root}/gpu/{own[-1]}/{own[-1]}-r174", marker,
                               health=f"{root}/twin/health/{user}"))
    assert asyncio.run(_passes(p, user, f"{root}/twin/health/{user}/status", marker))
    for topic in (f"gpu/{other}/{other}-r001", "coolant/h1-cdu01", "hydro/feeder-a", "twin/state"):
        assert not asyncio.run(_passes(p, user, f"{root}/{topic}", marker)), topic


@pytest.mark.parametrize("reader", ["grafana", "replay"])
def test_subscriptions_deliver_only_what_the_account_may_read(broker: MosquittoServer, reader: str) -> None:
    """grafana reads the twin's outputs; replay only the plant state (to pace itself), never telemetry."""
    async def main() -> list[str]:
        got: list[str] = []
        async with _client(broker.port, reader) as g:
            await g.subscribe("stargate/#", qos=1)
            async with _client(broker.port, "sim") as sim:
                await sim.publish(TELEMETRY, b"{}", qos=1)
            async with _client(broker.port, "state") as st:
                await st.publish(f"stargate/{SITE}/twin/state", b"{}", qos=1)

            async def gather() -> None:
                async for m in g.messages:
                    got.append(m.topic.value)
                    if m.topic.value.endswith("/twin/state"):
                        return

            await asyncio.wait_for(gather(), 20)
        return got

    assert asyncio.run(main()) == [f"stargate/{SITE}/twin/state"]


def test_init_refuses_a_missing_required_password(tmp_path: Path) -> None:
    env = password_env()
    del env["MQTT_PASSWORD_SINK"]
    r = run_init(tmp_path / "auth", env)
    assert r.returncode == 1
    assert "MQTT_PASSWORD_SINK is empty" in r.stderr
    assert not (tmp_path / "auth" / "passwd").exists()
    r = run_init(tmp_path / "auth", password_env({"MQTT_PASSWORD_SIM": "change-me-sim"}))
    assert r.returncode == 1
    assert "password of sim is still the example value" in r.stderr
    r = run_init(tmp_path / "auth", password_env({"MQTT_ACL_SRC": str(tmp_path / "no-acl")}))
    assert r.returncode == 1
    assert "no ACL at" in r.stderr


def test_init_reads_each_password_from_its_file(tmp_path: Path) -> None:
    """As compose runs it: MQTT_PASSWORD_<ACCOUNT>_FILE names the secret file (one trailing newline, as an editor
    leaves it, is not part of the password); an unreadable file stops init with its variable's name."""
    files = {}
    for var, pw in password_env().items():
        (tmp_path / var).write_text(f"{pw}-from-file\n")
        files[f"{var}_FILE"] = str(tmp_path / var)
    (tmp_path / "extra").write_text("alice:pw-alice bob:pw-bob")
    server = start_repo_broker(tmp_path / "broker", {**files, "MQTT_EXTRA_USERS_FILE": str(tmp_path / "extra")})
    try:
        assert asyncio.run(_login(server.port, "sink", "pw-sink-from-file")) is None
        assert asyncio.run(_login(server.port, "sink", "pw-sink")) is not None
        assert asyncio.run(_login(server.port, "adapter-dcgm-h5-h8", "pw-dcgm-b-from-file")) is None
        assert asyncio.run(_login(server.port, "bob", "pw-bob")) is None
    finally:
        server.stop()
    r = run_init(tmp_path / "auth", {**files, "MQTT_PASSWORD_SINK_FILE": str(tmp_path / "no-such-file")})
    assert r.returncode == 1
    assert f"MQTT_PASSWORD_SINK_FILE: cannot read {tmp_path / 'no-such-file'}" in r.stderr


def test_an_optional_account_left_empty_cannot_log_in(tmp_path: Path) -> None:
    env = password_env({"MQTT_PASSWORD_REPLAY": "", "MQTT_EXTRA_USERS": "alice:pw-alice"})
    server = start_repo_broker(tmp_path, env)
    try:
        assert asyncio.run(_login(server.port, "replay", "")) is not None
        assert asyncio.run(_login(server.port, "alice", "pw-alice")) is None
    finally:
        server.stop()
