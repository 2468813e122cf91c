"""The twin's image, built once per test session from a copy of the repo in which secrets have been planted
where a careless build would pick them up (.env, a TLS key, a token file, data/): the image tests look for them
in every layer."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.containers.podman import REPO, build, ensure_base

TAG = "localhost/stargate-twin:tests"


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    canary: str  # the planted secret's value: never to be found in the image
    build_s: float
    build_log: str


def _copy_repo(dest: Path) -> None:
    """The repo's files as a clean checkout would have them, with this working tree's changes."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@pytest.fixture(scope="session")
def twin_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltImage]:
    ensure_base()
    context = tmp_path_factory.mktemp("image-context")
    _copy_repo(context)
    canary = f"canary-{uuid.uuid4().hex}"
    (context / ".env").write_text(f"MQTT_PASSWORD_STATE={canary}\nINFLUX_ADMIN_TOKEN={canary}\n")
    (context / "deploy" / "mosquitto" / "certs" / "server.key").write_text(f"-----BEGIN PRIVATE KEY-----\n{canary}\n")
    (context / "secrets").mkdir(exist_ok=True)
    (context / "secrets" / "mqtt_password_state").write_text(canary)
    (context / "data").mkdir(exist_ok=True)
    (context / "data" / "sink.token").write_text(canary)
    t0 = time.monotonic()
    r = build(context, TAG)
    yield BuiltImage(TAG, canary, time.monotonic() - t0, r.stdout + r.stderr)
