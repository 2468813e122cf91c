"""``twin health`` (and ``python -m twin.commands.health``, as the image runs it), the containers'
healthcheck, against the repo's broker setup (ACL, password file) and a real ``twin run state`` logged in
with the state account, as in docker-compose.yml."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.broker import PASSWORDS, password_env, start_repo_broker
from tests.servers import MosquittoServer, env_with_venv
from twin.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SMALL = str(Path(__file__).resolve().parents[1] / "data" / "small.toml")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    server = start_repo_broker(tmp_path_factory.mktemp("health-mosquitto"), password_env())
    yield server
    server.stop()


def _env(broker: MosquittoServer, user: str) -> dict[str, str]:
    env = env_with_venv()
    env.update(TWIN_BROKER=broker.url, TWIN_MQTT_USERNAME=user, TWIN_MQTT_PASSWORD=PASSWORDS[user])
    return env


def _health(broker: MosquittoServer, user: str, *args: str, service_env: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
    env = _env(broker, user)
    if service_env:
        env["TWIN_HEALTH_SERVICE"] = service_env
    return subprocess.run([sys.executable, "-m", "twin.commands.health", *args, "--timeout", "2"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def _pub(broker: MosquittoServer, user: str, topic: str, payload: str) -> None:
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", user, "-P", PASSWORDS[user],
                    "-t", topic, "-m", payload, "-q", "1", "-r"], check=True, timeout=10)


def _in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], broker: MosquittoServer,
                user: str, password: str, *args: str) -> tuple[int, str]:
    """``twin health`` through the CLI's ``main`` in this process (the subprocess case is tested below)."""
    monkeypatch.setenv("TWIN_BROKER", broker.url)
    monkeypatch.setenv("TWIN_MQTT_USERNAME", user)
    monkeypatch.setenv("TWIN_MQTT_PASSWORD", password)
    monkeypatch.delenv("TWIN_HEALTH_SERVICE", raising=False)
    capsys.readouterr()
    rc = main(["health", *args, "--timeout", "2"])
    return rc, capsys.readouterr().err


def test_online_offline_and_never_seen(broker: MosquittoServer, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    topic = "stargate/hc-site/twin/health/sink"
    pw = PASSWORDS["sink"]
    _pub(broker, "sink", topic, "online")
    rc, err = _in_process(monkeypatch, capsys, broker, "sink", pw, "sink", "--site", "hc-site")
    assert rc == 0, err
    _pub(broker, "sink", topic, "offline")
    rc, err = _in_process(monkeypatch, capsys, broker, "sink", pw, "sink", "--site", "hc-site")
    assert (rc, "'offline'" in err) == (1, True), err
    rc, err = _in_process(monkeypatch, capsys, broker, "sink", pw, "forecast", "--site", "hc-site")
    assert (rc, "nothing retained" in err) == (1, True), err
    rc, err = _in_process(monkeypatch, capsys, broker, "sink", "wrong", "sink", "--site", "hc-site")
    assert (rc, "refused the connection" in err and "TWIN_MQTT_PASSWORD" in err) == (1, True), err
    rc, err = _in_process(monkeypatch, capsys, broker, "sink", pw)
    assert rc == 2
    assert err.strip().count("\n") == 0
    assert "TWIN_HEALTH_SERVICE" in err


def test_a_real_state_service_is_healthy_while_it_runs(broker: MosquittoServer, tmp_path: Path) -> None:
    env = _env(broker, "state")
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "run", "state", "--plant", SMALL, "--no-snapshot",
                             "--data-dir", str(tmp_path), "--duration", "120"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        r = _health(broker, "state", "--plant", SMALL, service_env="state")
        while r.returncode == 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            r = _health(broker, "state", "--plant", SMALL, service_env="state")
        assert r.returncode == 0, (r.stderr, proc.poll())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    after = _health(broker, "state", "--plant", SMALL, service_env="state")
    assert after.returncode == 1
    assert "'offline'" in after.stderr
