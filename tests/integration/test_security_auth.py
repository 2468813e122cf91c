"""Logins against a real password-protected Mosquitto, and secrets that never leak from a full run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from adapters.bus.mqtt import Bus
from tests.conftest import REPO
from tests.servers import MosquittoServer, VictoriaMetricsServer, env_with_venv
from twin.errors import ConfigError

pytestmark = pytest.mark.integration

TWIN = [sys.executable, "-m", "twin.cli"]
USER = "twin-svc"
PASSWORD = "pw-7Gq2-unlikely-Zx91"  # distinctive, so a leak anywhere is found by a plain search


@pytest.fixture(scope="module")
def locked_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    d = tmp_path_factory.mktemp("mosquitto-auth")
    pwfile = d / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), USER, PASSWORD], check=True,
                   env=env_with_venv(), capture_output=True, timeout=30)
    server = MosquittoServer(d, allow_anonymous=False, extra_config=f"password_file {pwfile}\n").start()
    yield server
    server.stop()


def _url(server: MosquittoServer, user: str | None = None, password: str | None = None) -> str:
    login = f"{user}:{password}@" if user and password else (f"{user}@" if user else "")
    return f"mqtt://{login}127.0.0.1:{server.port}"


async def _enter(url: str, site: str, **kw: object) -> None:
    async with Bus(url, service="probe", site=site, **kw):  # type: ignore[arg-type]
        pass


@pytest.mark.parametrize(("user", "password"), [(None, None), (USER, "wrong"), ("nobody", PASSWORD)],
                         ids=["anonymous", "wrong-password", "unknown-user"])
def test_anonymous_and_bad_logins_are_refused_at_once(locked_broker: MosquittoServer, site: str,
                                                      user: str | None, password: str | None) -> None:
    with pytest.raises(ConfigError) as e:
        asyncio.run(asyncio.wait_for(_enter(_url(locked_broker, user, password), site), 30))
    msg = str(e.value)
    assert "refused the login" in msg and "\n" not in msg and PASSWORD not in msg, msg


def test_the_right_login_exchanges_messages(locked_broker: MosquittoServer, site: str) -> None:
    topic = f"stargate/{site}/ambient/kvandal"

    async def main() -> bytes:
        kw = {"site": site, "username": USER, "password": SecretStr(PASSWORD)}
        async with Bus(locked_broker.url, service="sub", subscriptions=[topic], **kw) as sub, \
                Bus(locked_broker.url, service="pub", **kw) as pub:  # type: ignore[arg-type]
            await pub.publish(topic, b"logged in")
            m = await asyncio.wait_for(sub.queue.get(), 15)
            return bytes(m.payload)  # type: ignore[arg-type]

    assert asyncio.run(main()) == b"logged in"


def _run_state(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TWIN, "run", "state", *args, "--duration", "5", "--no-snapshot"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_with_a_wrong_password_exits_2_with_one_line(locked_broker: MosquittoServer, tmp_path: Path) -> None:
    env = env_with_venv()
    wrong = "wrong-Kd72-distinctive"
    r = _run_state(["--broker", _url(locked_broker, USER, wrong)], env, tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "refused the login" in r.stderr and wrong not in r.stderr, r.stderr
    # from the environment
    r = _run_state(["--broker", locked_broker.url], env | {"TWIN_MQTT_USERNAME": USER, "TWIN_MQTT_PASSWORD": wrong},
                   tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "refused the login" in r.stderr
    assert wrong not in r.stderr
    # from the environment, the password read from a file
    (tmp_path / "pw").write_text("also-wrong\n")
    r = _run_state(["--broker", locked_broker.url], env | {"TWIN_MQTT_USERNAME": USER,
                                                            "TWIN_MQTT_PASSWORD_FILE": str(tmp_path / "pw")},
                   tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "refused the login" in r.stderr
    # an unreadable secret file is one line too
    r = _run_state(["--broker", locked_broker.url], env | {"TWIN_MQTT_PASSWORD_FILE": str(tmp_path / "none")},
                   tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"twin: error: setting mqtt_password_file (env TWIN_MQTT_PASSWORD_FILE): cannot read {tmp_path / 'none'}: "
        "No such file or directory"], r.stderr


def test_cli_has_no_influx_token_flag(tmp_path: Path) -> None:
    r = subprocess.run([*TWIN, "run", "sink", "--influx-token", "x"], cwd=tmp_path, env=env_with_venv(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unrecognized arguments: --influx-token" in r.stderr, r.stderr


def test_a_full_debug_run_never_shows_the_token_or_the_password(locked_broker: MosquittoServer,
                                                                victoria: VictoriaMetricsServer,
                                                                tmp_path: Path) -> None:
    token = "tok-Hq83-distinctive-Vw51"
    site = "secrets"
    plant = tmp_path / "plant.toml"
    plant.write_text((REPO / "tests" / "data" / "small.toml").read_text().replace('id = "tiny"', f'id = "{site}"'))
    data = tmp_path / "data"
    env = env_with_venv() | {"TWIN_INFLUX_URL": victoria.url, "TWIN_INFLUX_TOKEN": token}
    r = subprocess.run([*TWIN, "up", "--broker", _url(locked_broker, USER, PASSWORD), "--plant", str(plant),
                        "--duration", "15", "--log-level", "DEBUG", "--no-view", "--data-dir", str(data)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    # the run did use both secrets: it logged in, and the state reached VictoriaMetrics with the token
    series = victoria.export_until('{__name__=~"plant_state_.*"}', lambda s: len(s) > 0, timeout=30)
    assert series and all(s["metric"]["site"] == site for s in series)  # type: ignore[index]
    assert "DEBUG" in r.stderr + r.stdout  # the debug log was on, so the search below means something
    for name, text in (("stdout", r.stdout), ("stderr", r.stderr)):
        for secret in (token, PASSWORD):
            assert not [ln for ln in text.splitlines() if secret in ln], f"{secret} in {name}"
    files = [p for p in data.rglob("*") if p.is_file()]
    assert files  # snapshots and spool at least
    for p in files:
        blob = p.read_bytes()
        assert token.encode() not in blob and PASSWORD.encode() not in blob, p


def test_the_asyncapi_document_holds_no_secret(tmp_path: Path) -> None:
    token = "tok-Hq83-distinctive-Vw51"
    env = env_with_venv() | {"TWIN_MQTT_PASSWORD": PASSWORD, "TWIN_INFLUX_TOKEN": token,
                             "TWIN_BROKER": f"mqtt://{USER}:{PASSWORD}@127.0.0.1:1883"}
    r = subprocess.run([*TWIN, "asyncapi"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "asyncapi" in r.stdout, r.stderr
    assert PASSWORD not in r.stdout + r.stderr and token not in r.stdout + r.stderr and USER not in r.stdout
    doc = yaml.safe_load(r.stdout)

    def keys(x: object) -> Iterator[str]:
        if isinstance(x, dict):
            for k, v in x.items():
                yield str(k)
                yield from keys(v)
        elif isinstance(x, list):
            for v in x:
                yield from keys(v)

    assert not [k for k in keys(doc) if any(w in k.lower() for w in ("password", "token", "secret"))]
