"""docker-compose.yml, .env.example and the Dockerfile, checked without a Docker engine: Debian's
docker-compose validates and interpolates the file; every ``command`` is parsed by the real ``twin`` CLI;
the accounts, health names and adapter configs agree with the broker's ACL and init script."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from twin.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
CLUSTER = REPO / "deploy" / "compose-cluster.yml"
DOCKER_COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"
TWIN_SERVICES = {"state", "forecast", "sink"}
PROFILES = {"sim": {"sim"}, "replay": {"replay"}, "plant": {"adapter-dcgm", "adapter-modbus", "adapter-opcua"}}


def compose_config(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not Path(DOCKER_COMPOSE).exists():
        raise RuntimeError("docker-compose not found: run the README's test command (scripts/test), which installs it")
    return subprocess.run([DOCKER_COMPOSE, "--project-directory", str(REPO), "-f", str(COMPOSE),
                           "--env-file", str(env_file), *args, "config"],
                          capture_output=True, text=True, timeout=120, check=False, cwd=REPO)


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The compose file as docker-compose interpolates it with the example env, every profile on."""
    args = [a for p in PROFILES for a in ("--profile", p)]
    r = compose_config(ENV_EXAMPLE, *args)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)  # type: ignore[no-any-return]


def _env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            out[name] = value
    return out


# ---------------------------------------------------------------- docker-compose config


@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_compose_accepts_the_example_env(profile: str | None) -> None:
    r = compose_config(ENV_EXAMPLE, *(["--profile", profile] if profile else []))
    assert r.returncode == 0, r.stderr
    services = yaml.safe_load(r.stdout)["services"]
    assert TWIN_SERVICES | {"mosquitto", "mosquitto-init", "influxdb", "influx-tokens", "grafana"} <= set(services)
    for name in PROFILES.get(profile or "", set()):
        assert services[name]["profiles"] == [profile]


def test_compose_accepts_the_tls_override(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text(ENV_EXAMPLE.read_text() + "COMPOSE_FILE=docker-compose.yml:deploy/compose-tls.yml\nMQTT_TLS=true\n")
    r = subprocess.run([DOCKER_COMPOSE, "--env-file", str(env), "--profile", "sim", "config"], capture_output=True,
                       text=True, timeout=120, check=False, cwd=REPO)
    assert r.returncode == 0, r.stderr
    services = yaml.safe_load(r.stdout)["services"]
    for name in ("state", "sink", "sim"):
        assert services[name]["environment"]["TWIN_BROKER"] == "mqtts://mosquitto:8883"
        assert services[name]["environment"]["TWIN_MQTT_CA_FILE"] == "/run/mqtt-ca/ca.crt"


def _cluster_config(tmp_path: Path, drop: str | None = None) -> subprocess.CompletedProcess[str]:
    env = tmp_path / "env"
    text = ENV_EXAMPLE.read_text() + "COMPOSE_FILE=docker-compose.yml:deploy/compose-cluster.yml\n"
    env.write_text(re.sub(rf"(?m)^{drop}=.*\n", "", text) if drop else text)
    return subprocess.run([DOCKER_COMPOSE, "--env-file", str(env), *(a for p in PROFILES for a in ("--profile", p)),
                           "config"], capture_output=True, text=True, timeout=120, check=False, cwd=REPO)


def _nats_users() -> set[str]:
    return set(re.findall(r"\{user: ([a-z-]+), password: \$", (REPO / "deploy" / "nats" / "nats.conf").read_text()))


def test_the_cluster_override_runs_the_twin_on_three_nats_nodes(tmp_path: Path) -> None:
    r = _cluster_config(tmp_path)
    assert r.returncode == 0, r.stderr
    services = yaml.safe_load(r.stdout)["services"]
    assert {"nats-1", "nats-2", "nats-3", "state-halls-a", "state-halls-b", "aggregate"} <= set(services)
    assert services["state"]["profiles"] == ["single-state"]  # the hall workers replace it
    env = _env_example()
    for i in (1, 2, 3):
        node = services[f"nats-{i}"]
        assert node["environment"]["NATS_NAME"] == f"nats-{i}"
        assert node["command"] == ["-c", "/etc/nats/nats.conf"]
        assert any(str(v).endswith("deploy/nats/nats.conf:/etc/nats/nats.conf:ro") for v in node["volumes"])
        needed = set(re.findall(r"\$(MQTT_PASSWORD_[A-Z_]+)", (REPO / "deploy" / "nats" / "nats.conf").read_text()))
        assert {k: node["environment"][k] for k in needed} == {k: env[k] for k in needed}
    users = _nats_users()
    halls = {"state-halls-a": env["SCALE_HALLS_A"], "state-halls-b": env["SCALE_HALLS_B"]}
    for name in ("state-halls-a", "state-halls-b", "aggregate", "forecast", "sink", "sim", "replay"):
        s = services[name]
        assert s["environment"]["TWIN_BROKER"] == "mqtt://nats-1:1883,mqtt://nats-2:1883,mqtt://nats-3:1883", name
        assert float(s["environment"]["TWIN_MQTT_REDELIVERY_WAIT_S"]) >= 5 * 3, name  # 5 x nats.conf's ack_wait
        assert s["environment"]["TWIN_MQTT_USERNAME"] in users, name
        assert {f"nats-{i}" for i in (1, 2, 3)} <= set(s["depends_on"]), name
        rc, err = _twin_parse(s["command"][1:])
        assert rc == 0, f"{name}: {err}"
        if name in halls:  # its health name is the one the worker publishes (state-halls-<halls joined by ->)
            assert s["command"][-2:] == ["--halls", halls[name]]
            assert s["environment"]["TWIN_HEALTH_SERVICE"] == "state-halls-" + halls[name].replace(",", "-")
    assert 'ack_wait: "3s"' in (REPO / "deploy" / "nats" / "nats.conf").read_text()


def test_the_cluster_override_refuses_a_missing_account_password(tmp_path: Path) -> None:
    r = _cluster_config(tmp_path, drop="MQTT_PASSWORD_REPLAY")
    assert r.returncode != 0 and "set MQTT_PASSWORD_REPLAY in .env" in r.stderr


def test_a_missing_secret_stops_compose_with_its_name(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text(re.sub(r"(?m)^MQTT_PASSWORD_SINK=.*\n", "", ENV_EXAMPLE.read_text()))
    r = compose_config(env)
    assert r.returncode != 0
    assert "set MQTT_PASSWORD_SINK in .env" in r.stderr


# ---------------------------------------------------------------- .env.example


def test_env_example_documents_every_variable_and_holds_no_secret() -> None:
    env = _env_example()
    used = set()
    for f in (COMPOSE, REPO / "deploy" / "compose-tls.yml", CLUSTER):
        used |= set(re.findall(r"\$\{([A-Z0-9_]+)", f.read_text()))
    assert used - set(env) == set(), "variables the compose file uses but .env.example does not document"
    assert set(env) - used - {"COMPOSE_FILE"} == set(), "variables .env.example documents that nothing uses"
    text = ENV_EXAMPLE.read_text().splitlines()
    for name, value in env.items():
        assert not re.search(r"[\s#'\"]", value), f"{name}: docker-compose would keep this in the value"
        if re.search(r"PASSWORD|_TOKEN$|USERS", name):
            assert value == "" or value.startswith("change-me"), f"{name} holds what looks like a real secret"
        i = next(k for k, line in enumerate(text) if line.startswith(f"{name}="))
        assert text[i - 1].startswith("#") or text[i - 1].split("=")[0] in env, f"{name} has no comment"


def test_gitignore_keeps_env_and_certificates_out() -> None:
    assert ".env" in (REPO / ".gitignore").read_text().split()
    tracked = subprocess.run(["git", "ls-files", "deploy/mosquitto/certs", ".env"], capture_output=True, text=True,
                             cwd=REPO, check=True).stdout.split()
    assert set(tracked) <= {"deploy/mosquitto/certs/.gitignore", "deploy/mosquitto/certs/README.md"}


# ---------------------------------------------------------------- the services


def _twin_commands(resolved: dict[str, Any]) -> dict[str, list[str]]:
    return {name: s["command"] for name, s in resolved["services"].items()
            if isinstance(s.get("command"), list) and s["command"][:1] == ["twin"]}


def test_every_twin_service_runs_a_command_and_is_looked_after(resolved: dict[str, Any]) -> None:
    commands = _twin_commands(resolved)
    assert set(commands) == TWIN_SERVICES | set().union(*PROFILES.values())
    assert commands["forecast"][:3] == ["twin", "run", "forecast"]
    for name in commands:
        s = resolved["services"][name]
        assert s["restart"] in ("unless-stopped", "always", "no"), name
        if name != "replay":
            assert s["healthcheck"]["test"] == ["CMD", "python", "-m", "twin.commands.health"], name
            assert s["environment"]["TWIN_HEALTH_SERVICE"] == s["environment"]["TWIN_MQTT_USERNAME"], name
        assert s["depends_on"]["mosquitto"]["condition"] == "service_healthy", name


def _twin_help(args: list[str]) -> tuple[int, str]:
    """``twin ARGS --help`` in this process: exit code and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([*args, "--help"])
        except SystemExit as e:
            rc = int(e.code or 0)
    return rc, err.getvalue()


def _twin_parse(args: list[str]) -> tuple[int, str]:
    """The CLI's parser on ARGS alone (nothing runs): --help stops before unknown options are reported."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(args)
        except SystemExit as e:
            return int(e.code or 0), err.getvalue()
    return 0, ""


@pytest.mark.parametrize("service", sorted(TWIN_SERVICES | set().union(*PROFILES.values())))
def test_every_compose_command_is_a_valid_twin_invocation(resolved: dict[str, Any], service: str) -> None:
    command = _twin_commands(resolved)[service]
    rc, err = _twin_help(command[1:])
    assert rc == 0, f"{service}: {' '.join(command)} --help: {err.strip()}"
    rc, err = _twin_parse(command[1:])
    assert rc == 0, f"{service}: {' '.join(command)}: {err.strip()}"


def test_the_command_checks_can_fail() -> None:
    assert _twin_help(["run", "statez"])[0] != 0
    assert _twin_help(["sim", "--speed", "fast"])[0] != 0
    assert _twin_parse(["sim", "--no-such-option"])[0] != 0
    assert _twin_parse(["run", "state", "--client-id"])[0] != 0


# ---------------------------------------------------------------- accounts agree with the broker's files


def _acl_users() -> set[str]:
    return set(re.findall(r"(?m)^user (\S+)$", (REPO / "deploy" / "mosquitto" / "acl").read_text()))


def test_accounts_agree_with_the_acl_the_init_script_and_the_adapter_configs(resolved: dict[str, Any]) -> None:
    init = (REPO / "deploy" / "mosquitto" / "init.sh").read_text()
    init_users = set(re.findall(r'(?m)^add (\S+) "\$\{(MQTT_PASSWORD_[A-Z_]+)', init))
    acl = _acl_users()
    assert {u for u, _ in init_users} == acl
    init_env = resolved["services"]["mosquitto-init"]["environment"]
    for user, var in init_users:
        assert var in init_env, f"mosquitto-init does not receive {var} ({user})"
    for name, s in resolved["services"].items():
        user = (s.get("environment") or {}).get("TWIN_MQTT_USERNAME")
        if user is None:
            continue
        assert user in acl, f"{name} logs in as {user}, which the ACL does not know"
        pw = str(s["environment"]["TWIN_MQTT_PASSWORD"])
        assert pw == _env_example()[dict((u, v) for u, v in init_users)[user]], name
        if name.startswith("adapter-"):
            host_dir = Path(next(str(v) for v in s["volumes"] if str(v).endswith(":/config:ro")).split(":")[0])
            toml_name = s["command"][s["command"].index("--config") + 1].removeprefix("/config/")
            config = tomllib.loads((host_dir / toml_name).read_text())
            assert user == f"adapter-{config.get('name', s['command'][2])}", \
                f"{name}: its health topic is adapter-<name in {toml_name}>, so its account must be named so"


# ---------------------------------------------------------------- the Dockerfile


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", text)[1:]
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    final = stages[-1]
    # both stages on the base given as a build argument, python:3.11-slim unless told (tests/containers builds on
    # a local Debian base)
    assert re.search(r"(?m)^ARG BASE_IMAGE=python:3\.11-slim$", text)
    assert all(stage.startswith("${BASE_IMAGE} AS ") for stage in stages)
    assert "--require-hashes" in text and "requirements.lock" in text
    assert "build-essential" not in final and "gcc" not in final
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    users = re.findall(r"(?m)^USER (\S+)", final)
    assert users and not users[-1].startswith(("root", "0")), "the runtime runs as a non-root user"
    assert re.search(r'(?m)^HEALTHCHECK .*CMD \["python", "-m", "twin.commands.health"\]', final)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "scenarios/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["sims"]
    assert "plants/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["twin"]  # plant files in the wheel
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".venv", "data", ".git"} <= set(ignored)
