"""Podman for the container tests: the twin's image built from the repo's Dockerfile on the local Debian base
(``scripts/podman-base``), and containers run the way these machines allow (runc, host network, the ulimits the
sandbox grants). Only containers and images these tests name are ever touched, by name."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/twin-base:bookworm"
# runc: crun refuses this machine's hybrid cgroups; higher ulimits need CAP_SYS_RESOURCE, which the sandbox lacks
RUNTIME = ["--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
# podman logs an error for every healthcheck it cannot hand to systemd (there is none here); the checks are run
# by the tests with `podman healthcheck run` instead
_NOISE = "unable to get systemd connection"


def podman_binary() -> str:
    found = shutil.which("podman")
    if found is None:
        raise RuntimeError("podman not found: run the README's test command (scripts/test), which installs podman, "
                           "runc and debootstrap")
    return found


def podman(*args: str, timeout: float = 600, check: bool = True, input: str | None = None,
           ) -> subprocess.CompletedProcess[str]:
    """``podman --runtime runc ARGS``; its stderr without the systemd-healthcheck noise."""
    r = subprocess.run([podman_binary(), *RUNTIME, *args], capture_output=True, text=True, timeout=timeout,
                       check=False, input=input)
    r.stderr = "\n".join(line for line in r.stderr.splitlines() if _NOISE not in line)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {r.returncode}:\n{r.stderr[-3000:]}")
    return r


def ensure_base() -> None:
    """The Debian base in podman's store (made once per machine: a second call returns at once)."""
    r = subprocess.run([str(REPO / "scripts" / "podman-base")], capture_output=True, text=True, timeout=900,
                       check=False)
    if r.returncode != 0:
        raise AssertionError(f"scripts/podman-base failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def build(context: Path, tag: str, *, containerfile: Path | None = None, build_args: dict[str, str] | None = None,
          timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """``podman build`` in docker format (OCI images drop HEALTHCHECK) on the host network."""
    args = ["build", "--network", "host", *ULIMITS, "--format", "docker", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    for k, v in (build_args or {}).items():
        args += ["--build-arg", f"{k}={v}"]
    if containerfile is not None:
        args += ["-f", str(containerfile)]
    return podman(*args, "-t", tag, str(context), timeout=timeout)


def run(image: str, *argv: str, env: dict[str, str] | None = None, volumes: list[str] | None = None,
        extra: list[str] | None = None, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A container run to its end (``--rm``), on the host network."""
    return podman("run", "--rm", *_run_options(env, volumes, extra), image, *argv, timeout=timeout, check=check)


def start(image: str, *argv: str, name: str | None = None, env: dict[str, str] | None = None,
          volumes: list[str] | None = None, extra: list[str] | None = None) -> str:
    """A container started in the background; its name."""
    name = name or f"twin-test-{uuid.uuid4().hex[:10]}"
    podman("run", "-d", "--name", name, *_run_options(env, volumes, extra), image, *argv, timeout=120)
    return name


def remove(name: str) -> None:
    podman("rm", "-f", "-t", "5", name, check=False, timeout=120)


def inspect(name: str, kind: str = "container") -> dict[str, Any]:
    out = podman(kind, "inspect", name, timeout=60).stdout
    return json.loads(out)[0]  # type: ignore[no-any-return]


def logs(name: str) -> str:
    r = podman("logs", name, check=False, timeout=60)
    return r.stdout + r.stderr


def _run_options(env: dict[str, str] | None, volumes: list[str] | None, extra: list[str] | None) -> list[str]:
    args = ["--network", "host", *ULIMITS]
    for k, v in (env or {}).items():
        args += ["-e", f"{k}={v}"]
    for v in volumes or []:
        args += ["-v", v]
    return args + (extra or [])
