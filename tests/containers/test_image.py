"""The twin's image, built from the repo's Dockerfile with podman on the local Debian base, and run for real:
as its non-root user, with a mounted volume, against a Mosquitto on the host that needs a password (given as a
podman secret, read through TWIN_MQTT_PASSWORD_FILE), with the image's own HEALTHCHECK command; and searched,
layer by layer, for the secrets planted in its build context."""

from __future__ import annotations

import json
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.containers.conftest import BuiltImage
from tests.containers.podman import REPO, inspect, logs, podman, remove, run, start
from tests.servers import MosquittoServer, env_with_venv

pytestmark = pytest.mark.integration

TWIN_UID = 10001
LOCK = REPO / "deploy" / "requirements.lock"


def locked_pins() -> dict[str, str]:
    """name -> version of every lock entry whose marker holds for the image (CPython 3.11 on Linux)."""
    env = default_environment()
    env.update({"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
                "platform_system": "Linux", "implementation_name": "cpython", "os_name": "posix",
                "platform_python_implementation": "CPython"})
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if not line or line[0] in " #":
            continue
        req = Requirement(line.rstrip(" \\"))
        if req.marker is None or req.marker.evaluate(env):  # type: ignore[arg-type]
            (spec,) = req.specifier
            pins[canonicalize_name(req.name)] = spec.version
    return pins


# ---------------------------------------------------------------- what is in the image


def test_the_image_runs_the_twin_as_its_non_root_user(twin_image: BuiltImage) -> None:
    out = run(twin_image.tag, "twin", "--version").stdout.strip()
    assert out == f"twin {version('stargate-twin')}"
    ids = run(twin_image.tag, "sh", "-c", "id -u; id -g; test -w /data && echo data-writable").stdout.split()
    assert ids == [str(TWIN_UID), str(TWIN_UID), "data-writable"]
    config = inspect(twin_image.tag, "image")["Config"]
    assert config["User"] == "twin:twin"
    assert inspect(twin_image.tag, "image")["Healthcheck"]["Test"] == ["CMD", "python", "-m", "twin.commands.health"]


def test_the_image_holds_exactly_the_locked_packages_and_no_pip(twin_image: BuiltImage) -> None:
    script = ("import importlib.metadata as m, json; "
              "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    installed = json.loads(run(twin_image.tag, "/opt/venv/bin/python", "-c", script).stdout)
    got = {canonicalize_name(k): v for k, v in installed.items()}
    assert got.pop("stargate-twin") == version("stargate-twin")
    assert "pip" not in got and "setuptools" not in got
    assert got == locked_pins()


def test_twin_up_in_the_image_writes_the_plant_to_a_mounted_volume(twin_image: BuiltImage, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["chown", f"{TWIN_UID}:{TWIN_UID}", str(data)], check=True)
    r = run(twin_image.tag, "twin", "up", "--duration", "20", "--no-view", volumes=[f"{data}:/data"], timeout=240)
    assert "final:" in r.stdout + r.stderr, r.stderr[-2000:]
    lines = [ln for f in sorted((data / "lines").rglob("*")) if f.is_file() for ln in f.read_text().splitlines()]
    plant = [ln for ln in lines if ln.startswith("plant_state,")]
    assert len(plant) >= 10, f"{len(plant)} plant_state lines in {len(lines)}"
    assert all("facility_mw=" in ln for ln in plant)
    owners = {p.stat().st_uid for p in data.rglob("*")}
    assert owners == {TWIN_UID}


# ---------------------------------------------------------------- a service in a container, a broker on the host


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[tuple[MosquittoServer, str]]:
    """A Mosquitto on the host that lets only `state` (and a viewer) in, with passwords."""
    password = f"pw-{uuid.uuid4().hex}"
    passwd = tmp_path / "passwd"
    for i, (user, pw) in enumerate((("state", password), ("sim", "pw-sim"), ("viewer", "pw-viewer"))):
        subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(passwd), user, pw], check=True,
                       capture_output=True)
    server = MosquittoServer(tmp_path / "mosquitto", allow_anonymous=False,
                             extra_config=f"password_file {passwd}\n").start()
    yield server, password
    server.kill()


def _sub(server: MosquittoServer, topic: str, count: int, wait_s: int) -> list[str]:
    r = subprocess.run(["mosquitto_sub", "-p", str(server.port), "-u", "viewer", "-P", "pw-viewer", "-t", topic,
                        "-C", str(count), "-W", str(wait_s)], capture_output=True, text=True, timeout=wait_s + 30,
                       check=False)
    return r.stdout.splitlines()


def test_state_in_a_container_consumes_the_hosts_broker_and_its_healthcheck_follows_it(
        twin_image: BuiltImage, secured_broker: tuple[MosquittoServer, str], tmp_path: Path) -> None:
    server, password = secured_broker
    secret = f"twin-test-pw-{uuid.uuid4().hex[:8]}"
    podman("secret", "create", secret, "-", input=password, timeout=60)
    env = {"TWIN_BROKER": server.url, "TWIN_MQTT_USERNAME": "state",
           "TWIN_MQTT_PASSWORD_FILE": "/run/secrets/mqtt_password", "TWIN_HEALTH_SERVICE": "state"}
    secret_opt = ["--secret", f"{secret},target=mqtt_password,uid={TWIN_UID},mode=0400"]
    name = start(twin_image.tag, "twin", "run", "state", env=env, extra=secret_opt)
    sim = None
    try:
        sim = subprocess.Popen(
            [str(Path(env_with_venv()["PATH"].split(":")[0]) / "twin"), "sim", "--broker", server.url,
             "--mqtt-username", "sim", "--duration", "90"],
            env={**env_with_venv(), "TWIN_MQTT_PASSWORD": "pw-sim"},
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "sim.log").open("w"))
        states = _sub(server, "stargate/+/twin/state", 3, 90)
        assert len(states) == 3, logs(name)[-3000:]
        assert all(json.loads(s)["gpus_reporting"] > 0 for s in states)

        # the image's own healthcheck, as podman runs it: healthy while the service is online
        deadline = time.monotonic() + 60
        while (h := podman("healthcheck", "run", name, check=False)).returncode != 0 and time.monotonic() < deadline:
            time.sleep(2)
        assert h.returncode == 0, h.stdout + h.stderr + logs(name)[-2000:]

        # no secret in what podman shows of the container
        shown = podman("inspect", name).stdout + podman("inspect", twin_image.tag).stdout
        assert password not in shown and "TWIN_MQTT_PASSWORD_FILE" in shown

        # killed: the broker turns the retained health to offline (the will) and the same check, from a
        # fresh container with the same settings, says unhealthy
        podman("kill", "--signal", "KILL", name, timeout=60)
        test = inspect(twin_image.tag, "image")["Healthcheck"]["Test"][1:]
        after = run(twin_image.tag, *test, env=env, extra=secret_opt, check=False, timeout=60)
        assert after.returncode == 1, after.stdout + after.stderr
        assert "offline" in after.stdout + after.stderr
    finally:
        if sim is not None:
            sim.kill()
            sim.wait()
        remove(name)
        podman("secret", "rm", secret, check=False, timeout=60)


# ---------------------------------------------------------------- no secret in the layers


def test_no_planted_secret_reaches_the_image(twin_image: BuiltImage, tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    podman("save", "--format", "docker-archive", "-o", str(archive), twin_image.tag, timeout=600)
    canary = twin_image.canary.encode()
    names: list[str] = []
    with tarfile.open(archive) as outer:
        layers = [m for m in outer.getmembers() if m.isfile()]
        assert len(layers) >= 5
        for member in layers:
            blob = outer.extractfile(member)
            assert blob is not None
            data = blob.read()
            assert canary not in data, f"the planted secret is in {member.name}"
            if member.name.endswith(".tar"):
                with tarfile.open(fileobj=__import__("io").BytesIO(data)) as layer:
                    names += layer.getnames()
    assert any(n.endswith("twin/cli.py") for n in names)  # the search did look inside the layers
    leaked = [n for n in names if n.rsplit("/", 1)[-1] in {".env", "server.key", "sink.token", "mqtt_password_state"}]
    assert leaked == []
    history = podman("history", "--no-trunc", twin_image.tag).stdout
    assert twin_image.canary not in history
