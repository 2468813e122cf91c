"""The repo's Mosquitto setup (deploy/mosquitto/) run for real: init.sh writes the password file, and
Mosquitto runs the repo's mosquitto.conf and acl with only the container paths and the port changed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.servers import MosquittoServer

REPO = Path(__file__).resolve().parents[2]
MOSQ_DIR = REPO / "deploy" / "mosquitto"

#: account -> password, as an operator would put them in .env (every optional account included).
PASSWORDS = {
    "state": "pw-state", "forecast": "pw-forecast", "sink": "pw-sink", "viewer": "pw-viewer", "sim": "pw-sim",
    "replay": "pw-replay", "adapter-dcgm-h1": "pw-dcgm", "adapter-cdu-h1": "pw-modbus",
    "adapter-meters": "pw-opcua", "grafana": "pw-grafana",
}
ENV_NAMES = {
    "state": "MQTT_PASSWORD_STATE", "forecast": "MQTT_PASSWORD_FORECAST", "sink": "MQTT_PASSWORD_SINK",
    "viewer": "MQTT_PASSWORD_VIEWER", "sim": "MQTT_PASSWORD_SIM", "replay": "MQTT_PASSWORD_REPLAY",
    "adapter-dcgm-h1": "MQTT_PASSWORD_ADAPTER_DCGM", "adapter-cdu-h1": "MQTT_PASSWORD_ADAPTER_MODBUS",
    "adapter-meters": "MQTT_PASSWORD_ADAPTER_OPCUA", "grafana": "MQTT_PASSWORD_GRAFANA",
}


def run_init(auth_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """deploy/mosquitto/init.sh with only ``env`` (plus PATH) and the auth directory moved."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MQTT_AUTH_DIR": str(auth_dir),
            "MQTT_ACL_SRC": str(MOSQ_DIR / "acl"), **env}
    return subprocess.run(["sh", str(MOSQ_DIR / "init.sh")], env=full, capture_output=True, text=True,
                          timeout=60, check=False)


def password_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {ENV_NAMES[u]: pw for u, pw in PASSWORDS.items()}
    env.update(extra or {})
    return env


def repo_config(auth_dir: Path, data_dir: Path) -> str:
    """The repo's mosquitto.conf with the container paths replaced; its listener comes from MosquittoServer.

    The ACL it loads is the copy init.sh made of deploy/mosquitto/acl in the auth directory."""
    text = (MOSQ_DIR / "mosquitto.conf").read_text()
    swaps = {"/mosquitto/auth": str(auth_dir), "/mosquitto/data/": f"{data_dir}/", "\nlistener 1883\n": "\n"}
    for old, new in swaps.items():
        if old not in text:
            raise AssertionError(f"deploy/mosquitto/mosquitto.conf no longer has {old.strip()!r}")
        text = text.replace(old, new)
    return text


def start_repo_broker(workdir: Path, env: dict[str, str]) -> MosquittoServer:
    auth, data = workdir / "auth", workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    r = run_init(auth, env)
    assert r.returncode == 0, r.stderr
    return MosquittoServer(workdir / "broker", allow_anonymous=False,
                           extra_config=repo_config(auth, data)).start()
