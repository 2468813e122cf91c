"""The compose deployment brought up for real by podman-compose: docker-compose.yml with deploy/compose-podman.yml
(the broker built from Debian's mosquitto package, the sink pointed at a VictoriaMetrics on the host, InfluxDB and
Grafana left out since their images cannot be pulled here), the twin's image from the ``twin_image`` fixture and
the secrets made by scripts/secrets in a temporary directory. One project, torn down (``down -v``, then its
containers and volumes by label) whatever happens."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.containers.conftest import BuiltImage
from tests.containers.podman import REPO, build, inspect, logs, podman, remove
from tests.servers import VictoriaMetricsServer, free_port

pytestmark = pytest.mark.integration

MOSQUITTO_TAG = "localhost/twin-mosquitto:tests"
FILES = ["-f", str(REPO / "docker-compose.yml"), "-f", str(REPO / "deploy" / "compose-podman.yml")]
# what the sim profile brings up here (mosquitto-init, InfluxDB, influx-tokens and Grafana are left out)
SERVICES = {"mosquitto", "state", "forecast", "sink", "sim"}
# podman's settings for this test's podman-compose (it runs podman without our flags): the runtime and the
# ulimits these machines allow (tests/containers/podman.py)
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
"""


def podman_compose_binary() -> str:
    found = shutil.which("podman-compose", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if found is None:
        raise RuntimeError("podman-compose not found: run the README's test command (scripts/test), which installs it")
    return found


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    secrets_dir: Path
    vm: VictoriaMetricsServer
    config: dict[str, Any]  # the compose files as podman-compose resolved them

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        env_file = self.env["TWIN_TEST_ENV_FILE"]
        r = subprocess.run([podman_compose_binary(), "--in-pod", "false", "--env-file", env_file, "-p", self.project,
                            *FILES, "--profile", "sim", *args], cwd=REPO, env=self.env, capture_output=True,
                           text=True, timeout=timeout, check=False)
        if check and r.returncode != 0:
            raise AssertionError(f"podman-compose {' '.join(args)} exited {r.returncode}:\n{r.stderr[-4000:]}")
        return r

    def containers(self) -> dict[str, str]:
        """service -> container name, every container of the project (running or not)."""
        out = podman("ps", "-a", "--filter", f"label=io.podman.compose.project={self.project}", "--format",
                     '{{.Names}} {{index .Labels "io.podman.compose.service"}}').stdout
        return {svc: name for name, svc in (line.split() for line in out.splitlines() if line.strip())}


def _env_file(path: Path, settings: dict[str, str]) -> Path:
    """.env.example with these settings changed: what a user's .env would be on this machine."""
    text = (REPO / ".env.example").read_text()
    for name, value in settings.items():
        text, n = re.subn(rf"(?m)^{name}=.*$", f"{name}={value}", text)
        assert n == 1, f".env.example has no {name}"
    path.write_text(text)
    return path


def _teardown(stack: Stack) -> None:
    stack.compose("down", "-v", "-t", "5", check=False, timeout=300)
    for name in stack.containers().values():  # whatever down left behind
        remove(name)
    vols = podman("volume", "ls", "-q", "--filter", f"label=io.podman.compose.project={stack.project}",
                  check=False).stdout.split()
    for vol in vols:
        podman("volume", "rm", "-f", vol, check=False)


@pytest.fixture(scope="module")
def stack(twin_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("compose-podman")
    build(REPO / "deploy" / "mosquitto", MOSQUITTO_TAG, containerfile=REPO / "deploy" / "mosquitto" / "Containerfile")
    secrets_dir = work / "secrets"
    r = subprocess.run([str(REPO / "scripts" / "secrets")], env={**os.environ, "SECRETS_DIR": str(secrets_dir),
                       "ENV_FILE": str(work / "no-env")}, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    (work / "containers.conf").write_text(CONTAINERS_CONF)
    vm = VictoriaMetricsServer(work / "vm").start()
    env_file = _env_file(work / "env", {
        "SECRETS_DIR": str(secrets_dir), "TWIN_IMAGE": twin_image.tag, "MOSQUITTO_LOCAL_IMAGE": MOSQUITTO_TAG,
        "MQTT_PORT": str(free_port()), "PODMAN_INFLUX_URL": vm.url})
    # the settings come from the env file only (none of .env.example's names from this process's environment)
    names = set(re.findall(r"(?m)^([A-Z0-9_]+)=", env_file.read_text()))
    env = {k: v for k, v in os.environ.items() if k not in names}
    env |= {"CONTAINERS_CONF": str(work / "containers.conf"), "TWIN_TEST_ENV_FILE": str(env_file)}
    s = Stack(f"twintest{uuid.uuid4().hex[:8]}", env, secrets_dir, vm, {})
    try:
        s.config = yaml.safe_load(s.compose("config").stdout)
        s.compose("up", "-d")
        yield s
    finally:
        try:
            _teardown(s)
        finally:
            vm.stop()


def _states_after(vm: VictoriaMetricsServer, after_ms: int, timeout: float = 240) -> list[tuple[int, float]]:
    """(timestamp ms, facility MW) of the PlantStates the sink wrote with a timestamp after ``after_ms``; waits
    until there is one (or the timeout: then the list is empty)."""
    def newer(series: list[dict[str, Any]]) -> list[tuple[int, float]]:
        return [(t, v) for s in series for t, v in zip(s["timestamps"], s["values"], strict=True) if t > after_ms]

    series = vm.export_until('{__name__="plant_state_facility_mw"}', lambda s: bool(newer(s)), timeout=timeout)
    return newer(series)


def _diagnose(stack: Stack) -> str:
    return "\n".join(f"--- {svc}\n{logs(name)[-1500:]}" for svc, name in sorted(stack.containers().items()))


def test_the_stack_runs_the_services_of_the_profile(stack: Stack) -> None:
    assert set(stack.containers()) == SERVICES
    assert {"influxdb", "influx-tokens", "grafana", "mosquitto-init"}.isdisjoint(stack.containers())


def test_plant_states_reach_the_database_through_the_sink(stack: Stack) -> None:
    states = _states_after(stack.vm, 0)
    assert states, f"no plant_state in VictoriaMetrics\n{_diagnose(stack)}"
    assert all(mw > 0 for _, mw in states)
    series = {s["metric"]["__name__"] for s in stack.vm.export('{__name__=~"plant_state_.*"}')}
    assert {"plant_state_facility_mw", "plant_state_it_mw", "plant_state_headroom_mw"} <= series


def test_the_broker_and_the_twin_services_pass_their_healthchecks(stack: Stack) -> None:
    names = stack.containers()
    for svc in ("mosquitto", "state", "sink"):
        # a service publishes `online` on its health topic once connected: wait for that (the check's own
        # retries), then the check must pass
        deadline = time.monotonic() + 120
        while (r := podman("healthcheck", "run", names[svc], check=False)).returncode != 0 \
                and time.monotonic() < deadline:
            time.sleep(2)
        assert r.returncode == 0, f"{svc}: {r.stdout}{r.stderr}\n{logs(names[svc])[-2000:]}"


def test_a_killed_service_is_restarted_by_its_policy_and_states_go_on(stack: Stack) -> None:
    name = stack.containers()["state"]
    before = inspect(name)
    assert before["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert before["State"]["Running"] and before["RestartCount"] == 0
    # SIGKILL to the service's process, as the kernel's OOM killer or a crash would end it. (`podman kill` counts
    # as the user stopping the container, which unless-stopped, like Docker's, does not undo.)
    killed_ms = int(time.time() * 1000)
    os.kill(before["State"]["Pid"], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        after = inspect(name)
        if after["RestartCount"] >= 1 and after["State"]["Running"]:
            break
        time.sleep(1)
    assert after["RestartCount"] >= 1 and after["State"]["Running"], after["State"]
    assert after["State"]["Pid"] != before["State"]["Pid"]
    # states stamped after the kill can only come from the restarted process
    assert _states_after(stack.vm, killed_ms), f"no PlantState after the restart\n{_diagnose(stack)}"


def _bytes(size: str) -> int:
    m = re.fullmatch(r"(\d+)([kmg]?)b?", size.lower())
    assert m, size
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)]


def test_every_container_has_the_cpu_and_memory_limits_of_its_service(stack: Stack) -> None:
    for svc, name in stack.containers().items():
        want = stack.config["services"][svc]
        host = inspect(name)["HostConfig"]
        assert host["NanoCpus"] == int(float(want["cpus"]) * 1e9), svc
        assert host["Memory"] == _bytes(str(want["mem_limit"])), svc
        assert host["NanoCpus"] > 0 and host["Memory"] > 0, svc


def test_no_secret_value_is_in_any_container_s_configuration(stack: Stack) -> None:
    values = {f.name: f.read_text() for f in stack.secrets_dir.iterdir() if f.read_text()}
    assert {"mqtt_password_state", "mqtt_password_viewer", "influx_admin_token"} <= set(values)
    for svc, name in stack.containers().items():
        data = inspect(name)
        text = json.dumps(data)
        leaked = sorted(k for k, v in values.items() if v in text)
        assert not leaked, f"{svc}: podman inspect shows the value of {leaked}"
        env = dict(e.split("=", 1) for e in data["Config"]["Env"])
        assert not {k for k in env if re.search(r"PASSWORD$|TOKEN$", k)}, f"{svc}: {sorted(env)}"
        if svc in ("state", "forecast", "sink", "sim"):
            assert env["TWIN_MQTT_PASSWORD_FILE"] == f"/run/secrets/mqtt_password_{svc}", svc
            mounts = {m["Destination"]: m for m in data["Mounts"]}
            assert f"/run/secrets/mqtt_password_{svc}" in mounts, svc
            # the file the service reads is the secret, and only its own
            secrets = {d for d in mounts if d.startswith("/run/secrets/")}
            assert secrets == {f"/run/secrets/mqtt_password_{svc}"}, svc


def test_a_missing_secret_file_stops_podman_compose_with_its_path(stack: Stack, tmp_path: Path) -> None:
    """A second project whose secrets directory lacks the sink's password: podman refuses to create the
    containers that mount it, naming the file, and nothing of that project runs."""
    partial = tmp_path / "secrets"
    shutil.copytree(stack.secrets_dir, partial)
    (partial / "mqtt_password_sink").unlink()
    env_file = Path(stack.env["TWIN_TEST_ENV_FILE"])
    other = tmp_path / "env"
    other.write_text(re.sub(r"(?m)^SECRETS_DIR=.*$", f"SECRETS_DIR={partial}", env_file.read_text()))
    s = Stack(f"twintest{uuid.uuid4().hex[:8]}", {**stack.env, "TWIN_TEST_ENV_FILE": str(other)}, partial, stack.vm,
              {})
    try:
        r = s.compose("up", "--no-start", check=False, timeout=300)
        assert r.returncode != 0
        assert f"{partial}/mqtt_password_sink: no such file or directory" in r.stdout + r.stderr
        states = [inspect(name)["State"] for name in s.containers().values()]
        assert not any(st["Running"] for st in states)
    finally:
        _teardown(s)
