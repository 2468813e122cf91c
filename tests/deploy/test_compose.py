"""docker-compose.yml, .env.example, scripts/secrets and the Dockerfile, checked without a Docker engine: Debian's
docker-compose validates and interpolates the file; every ``command`` is parsed by the real ``twin`` CLI;
the accounts, health names and adapter configs agree with the broker's ACL and init script; secrets reach the
services as files only. (tests/containers/test_compose_podman.py brings the stack up for real with podman.)"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.field.base import load_adapter_config, plant_mismatch
from adapters.field.dcgm import DcgmAdapter, DcgmConfig
from twin.cli import build_parser, main
from twin.plant import load_plant

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
CLUSTER = REPO / "deploy" / "compose-cluster.yml"
PODMAN = REPO / "deploy" / "compose-podman.yml"
SECRETS = REPO / "scripts" / "secrets"
DOCKER_COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"
TWIN_SERVICES = {"state", "forecast", "sink"}
PROFILES = {"sim": {"sim"}, "replay": {"replay"},
            "plant": {"adapter-dcgm-h1-h4", "adapter-dcgm-h5-h8", "adapter-modbus", "adapter-opcua"}}
#: secret files scripts/secrets leaves empty for the operator to fill in
EMPTY_SECRETS = {"mqtt_extra_users", "opcua_password"}


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
        # each password nats.conf reads from the environment comes from its secret file, through the entrypoint
        needed = set(re.findall(r"\$(MQTT_PASSWORD_[A-Z_]+)", (REPO / "deploy" / "nats" / "nats.conf").read_text()))
        assert {s["source"] for s in node["secrets"]} == {k.lower() for k in needed}
        assert not any("PASSWORD" in k for k in node["environment"])
        assert node["entrypoint"][:2] == ["/bin/sh", "-c"]
    users = _nats_users()
    halls = {"state-halls-a": env["SCALE_HALLS_A"], "state-halls-b": env["SCALE_HALLS_B"]}
    for name in ("state-halls-a", "state-halls-b", "aggregate", "forecast", "sink", "sim", "replay"):
        s = services[name]
        assert s["environment"]["TWIN_BROKER"] == "mqtt://nats-1:1883,mqtt://nats-2:1883,mqtt://nats-3:1883", name
        assert float(s["environment"]["TWIN_MQTT_REDELIVERY_WAIT_S"]) >= 5 * 3, name  # 5 x nats.conf's ack_wait
        assert s["environment"]["TWIN_MQTT_USERNAME"] in users, name
        secret = s["environment"]["TWIN_MQTT_PASSWORD_FILE"].removeprefix("/run/secrets/")
        assert secret == "mqtt_password_" + s["environment"]["TWIN_MQTT_USERNAME"], name
        assert secret in {x["source"] for x in s["secrets"]}, name
        assert {f"nats-{i}" for i in (1, 2, 3)} <= set(s["depends_on"]), name
        rc, err = _twin_parse(s["command"][1:])
        assert rc == 0, f"{name}: {err}"
        if name in halls:  # its health name is the one the worker publishes (state-halls-<halls joined by ->)
            assert s["command"][-2:] == ["--halls", halls[name]]
            assert s["environment"]["TWIN_HEALTH_SERVICE"] == "state-halls-" + halls[name].replace(",", "-")
    assert 'ack_wait: "3s"' in (REPO / "deploy" / "nats" / "nats.conf").read_text()


def _nats_entrypoint(tmp_path: Path) -> list[str]:
    r = _cluster_config(tmp_path)
    assert r.returncode == 0, r.stderr
    return [a.replace("$$", "$") for a in yaml.safe_load(r.stdout)["services"]["nats-1"]["entrypoint"]]


def test_the_cluster_nodes_get_the_passwords_from_their_files_and_refuse_an_empty_one(tmp_path: Path) -> None:
    """The nodes' entrypoint, run by sh with /run/secrets/ swapped for a directory of files and ``nats-server``
    for a script that prints the environment it was started with."""
    entry = _nats_entrypoint(tmp_path)
    bindir, secrets = tmp_path / "bin", tmp_path / "secrets"
    bindir.mkdir()
    secrets.mkdir()
    (bindir / "nats-server").write_text('#!/bin/sh\necho "args: $*"\nenv\n')
    (bindir / "nats-server").chmod(0o755)
    for name in ("state", "forecast", "sink", "viewer", "sim", "replay"):
        (secrets / f"mqtt_password_{name}").write_text(f"pw-{name}\n")
    script = entry[2].replace("/run/secrets/", f"{secrets}/")

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([entry[0], entry[1], script, entry[3], "-c", "/etc/nats/nats.conf"], env={
            "PATH": f"{bindir}:/usr/bin:/bin"}, capture_output=True, text=True, timeout=60, check=False)

    r = run()
    assert r.returncode == 0, r.stderr
    assert "args: -c /etc/nats/nats.conf" in r.stdout
    assert "MQTT_PASSWORD_REPLAY=pw-replay\n" in r.stdout and "MQTT_PASSWORD_STATE=pw-state\n" in r.stdout
    (secrets / "mqtt_password_replay").write_text("")
    r = run()
    assert r.returncode == 1 and "args:" not in r.stdout
    assert f"{secrets}/mqtt_password_replay is missing or empty: run scripts/secrets" in r.stderr


# ---------------------------------------------------------------- secrets


def _secret_files(resolved: dict[str, Any]) -> dict[str, Path]:
    return {name: Path(d["file"]) for name, d in resolved["secrets"].items()}


def _run_secrets(secrets_dir: Path, *args: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SECRETS_DIR": str(secrets_dir), "ENV_FILE": str(env_file or secrets_dir / "no-env")}
    return subprocess.run([str(SECRETS), *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_scripts_secrets_makes_every_secret_file_compose_mounts(tmp_path: Path, resolved: dict[str, Any]) -> None:
    names = set(_secret_files(resolved))
    assert all(Path(f).parent == REPO / "secrets" for f in _secret_files(resolved).values())
    d = tmp_path / "secrets"
    r = _run_secrets(d)
    assert r.returncode == 0, r.stderr
    assert {f.name for f in d.iterdir()} == names
    # the directory is its owner's only; each file readable by the containers' users (bind-mounted as it is)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    values = {}
    for f in d.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f.name
        values[f.name] = f.read_text()
        if f.name in EMPTY_SECRETS:
            assert values[f.name] == "", f.name
        else:
            assert re.fullmatch(r"[A-Za-z0-9]{32,}", values[f.name]), f.name
            assert values[f.name] not in r.stdout + r.stderr, f"scripts/secrets printed {f.name}"
    random = [v for v in values.values() if v]
    assert len(set(random)) == len(random)
    # a second run changes nothing; --check finds every file, then names the one missing
    (d / "opcua_password").write_text("the-operators-own")
    r = _run_secrets(d)
    assert r.returncode == 0 and "already" in r.stdout
    assert {f.name: f.read_text() for f in d.iterdir()} == values | {"opcua_password": "the-operators-own"}
    assert _run_secrets(d, "--check").returncode == 0
    (d / "mqtt_password_sink").unlink()
    r = _run_secrets(d, "--check")
    assert r.returncode == 1
    assert r.stderr.strip() == f"scripts/secrets: missing {d}/mqtt_password_sink: run scripts/secrets"
    assert not (d / "mqtt_password_sink").exists()


def test_scripts_secrets_carries_the_passwords_of_an_older_env_over(tmp_path: Path) -> None:
    """Moving from passwords in .env: the values still there become the files (InfluxDB keeps its admin token,
    the broker's accounts their passwords); example values do not."""
    old = tmp_path / "env"
    old.write_text("MQTT_PASSWORD_STATE=old-state-pw\nINFLUX_ADMIN_TOKEN=old-admin-token\n"
                   "MQTT_PASSWORD_SINK=change-me-sink\nMQTT_EXTRA_USERS=alice:pw\n")
    d = tmp_path / "secrets"
    r = _run_secrets(d, env_file=old)
    assert r.returncode == 0, r.stderr
    assert (d / "mqtt_password_state").read_text() == "old-state-pw"
    assert (d / "influx_admin_token").read_text() == "old-admin-token"
    assert (d / "mqtt_extra_users").read_text() == "alice:pw"
    assert (d / "mqtt_password_sink").read_text() not in ("", "change-me-sink")
    assert "copied from" in r.stdout and "old-state-pw" not in r.stdout


def test_a_missing_secret_file_is_named(tmp_path: Path) -> None:
    """docker-compose (v1 and v2) only finds a missing secret file when it creates the container (the engine
    refuses the bind mount), so `scripts/secrets --check` says which before anything starts, and init.sh names
    the variable whose file it cannot read (tests/deploy/test_mosquitto_acl.py)."""
    r = _run_secrets(tmp_path / "none", "--check")
    assert r.returncode == 1
    assert f"{tmp_path}/none/mqtt_password_state" in r.stderr and f"{tmp_path}/none/influx_admin_token" in r.stderr


def test_secrets_reach_every_service_as_files_only(resolved: dict[str, Any]) -> None:
    declared = set(resolved["secrets"])
    used: set[str] = set()
    for name, s in resolved["services"].items():
        env = s.get("environment") or {}
        mine = {x["source"] for x in s.get("secrets", [])}
        used |= mine
        for key, value in env.items():
            assert not re.search(r"PASSWORD$|TOKEN$|PASSWORD__?$", key), f"{name}: {key} is a secret in the environment"
            if key.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                assert str(value).removeprefix("/run/secrets/") in mine, f"{name}: {key} names a secret it lacks"
        # every secret a service gets is named by one of its settings (or read by its entrypoint or healthcheck)
        for secret in mine:
            assert f"/run/secrets/{secret}" in json.dumps([env, s.get("entrypoint"), s.get("healthcheck")]), \
                f"{name} gets {secret} but nothing reads it"
    assert used == declared
    assert resolved["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == \
        "/run/secrets/grafana_admin_password"
    influx = resolved["services"]["influxdb"]["environment"]
    assert influx["DOCKER_INFLUXDB_INIT_PASSWORD_FILE"] == "/run/secrets/influx_admin_password"
    assert influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"] == "/run/secrets/influx_admin_token"
    assert "cat /run/secrets/mqtt_password_viewer" in " ".join(resolved["services"]["mosquitto"]["healthcheck"]["test"])


# ---------------------------------------------------------------- safe by default


def test_plain_mqtt_influxdb_and_grafana_listen_on_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    for env_file in (ENV_EXAMPLE, tmp_path / "empty"):  # the example's values, and the file's own defaults
        (tmp_path / "empty").write_text("")
        r = compose_config(env_file)
        assert r.returncode == 0, r.stderr
        services = yaml.safe_load(r.stdout)["services"]
        ports = {p.split(":")[-1]: p for s in services.values() for p in s.get("ports", [])}
        assert ports["1883/tcp"].startswith("127.0.0.1:"), env_file
        assert ports["3000/tcp"].startswith("127.0.0.1:"), env_file
        assert ports["8086/tcp"].startswith("127.0.0.1:"), env_file
        assert ports["8883/tcp"].startswith("0.0.0.0:"), env_file  # TLS may face the network
    env = tmp_path / "env"
    env.write_text(ENV_EXAMPLE.read_text().replace("MQTT_BIND=127.0.0.1", "MQTT_BIND=0.0.0.0"))
    r = compose_config(env)
    assert "0.0.0.0:1883:1883/tcp" in yaml.safe_load(r.stdout)["services"]["mosquitto"]["ports"]


def _mem_bytes(size: str) -> int:
    m = re.fullmatch(r"(\d+)([kmg]?)b?", str(size).lower())
    assert m, size
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)]


@pytest.mark.parametrize("override", [None, CLUSTER])
def test_every_service_has_cpu_and_memory_limits(override: Path | None, tmp_path: Path) -> None:
    if override is None:
        r = compose_config(ENV_EXAMPLE, *(a for p in PROFILES for a in ("--profile", p)))
    else:
        r = _cluster_config(tmp_path)
    assert r.returncode == 0, r.stderr
    for name, s in yaml.safe_load(r.stdout)["services"].items():
        assert 0 < float(s["cpus"]) <= 8, name
        assert 64 * 1024**2 <= _mem_bytes(s["mem_limit"]) <= 16 * 1024**3, name


def test_every_image_is_pinned_to_an_exact_version(resolved: dict[str, Any], tmp_path: Path) -> None:
    r = _cluster_config(tmp_path)
    (tmp_path / "empty").write_text("")  # the compose files' own defaults too
    defaults = compose_config(tmp_path / "empty", *(a for p in PROFILES for a in ("--profile", p)))
    assert defaults.returncode == 0, defaults.stderr
    images = {s["image"] for s in [*resolved["services"].values(), *yaml.safe_load(r.stdout)["services"].values(),
                                   *yaml.safe_load(defaults.stdout)["services"].values()]}
    images.discard("stargate-twin:latest")
    images.discard(_env_example()["TWIN_IMAGE"])  # built from this repo
    assert images
    for image in images:
        assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+\.\d+(-[a-z0-9]+)?(@sha256:[0-9a-f]{64})?", image), image
    env = _env_example()
    for var in ("MOSQUITTO_IMAGE", "INFLUXDB_IMAGE", "GRAFANA_IMAGE", "NATS_IMAGE"):
        assert env[var] in images, var


def test_gitignore_keeps_the_secrets_directory_out(tmp_path: Path) -> None:
    assert "/secrets/" in (REPO / ".gitignore").read_text().split()
    r = subprocess.run(["git", "check-ignore", "-q", "secrets/mqtt_password_state"], cwd=REPO, check=False)
    assert r.returncode == 0
    tracked = subprocess.run(["git", "ls-files", "secrets"], capture_output=True, text=True, cwd=REPO, check=True)
    assert tracked.stdout == ""


# ---------------------------------------------------------------- .env.example


def test_env_example_documents_every_variable_and_holds_no_secret() -> None:
    env = _env_example()
    used = set()
    for f in (COMPOSE, REPO / "deploy" / "compose-tls.yml", CLUSTER, PODMAN):
        used |= set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", f.read_text()))  # not $${...}: the container's shell
    assert used - set(env) == set(), "variables the compose file uses but .env.example does not document"
    assert set(env) - used - {"COMPOSE_FILE"} == set(), "variables .env.example documents that nothing uses"
    text = ENV_EXAMPLE.read_text().splitlines()
    for name, value in env.items():
        assert not re.search(r"[\s#'\"]", value), f"{name}: docker-compose would keep this in the value"
        # secrets are files (scripts/secrets), never .env settings
        assert not re.search(r"PASSWORD|TOKEN$|USERS$|SECRET_?KEY", name), f"{name} looks like a secret"
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


def _init_accounts() -> dict[str, str]:
    """account -> the variable init.sh reads its password from (the file named by VARIABLE_FILE)."""
    init = (REPO / "deploy" / "mosquitto" / "init.sh").read_text()
    return dict(re.findall(r"(?m)^account (\S+) (MQTT_PASSWORD_[A-Z0-9_]+)", init))


def test_accounts_agree_with_the_acl_the_init_script_and_the_adapter_configs(resolved: dict[str, Any]) -> None:
    init_users = _init_accounts()
    acl = _acl_users()
    assert set(init_users) == acl
    init = resolved["services"]["mosquitto-init"]
    init_secrets = {x["source"] for x in init["secrets"]}
    for user, var in init_users.items():
        assert init["environment"][f"{var}_FILE"] == f"/run/secrets/{var.lower()}", f"{user}: {var}_FILE"
        assert var.lower() in init_secrets, user
    assert init["environment"]["MQTT_EXTRA_USERS_FILE"] == "/run/secrets/mqtt_extra_users"
    for name, s in resolved["services"].items():
        user = (s.get("environment") or {}).get("TWIN_MQTT_USERNAME")
        if user is None:
            continue
        assert user in acl, f"{name} logs in as {user}, which the ACL does not know"
        # the service reads the very file init.sh makes its account from
        assert s["environment"]["TWIN_MQTT_PASSWORD_FILE"] == f"/run/secrets/{init_users[user].lower()}", name
        if name.startswith("adapter-"):
            host_dir = Path(next(str(v) for v in s["volumes"] if str(v).endswith(":/config:ro")).split(":")[0])
            toml_name = s["command"][s["command"].index("--config") + 1].removeprefix("/config/")
            config = tomllib.loads((host_dir / toml_name).read_text())
            assert user == f"adapter-{config.get('name', s['command'][2])}", \
                f"{name}: its health topic is adapter-<name in {toml_name}>, so its account must be named so"


def _acl_topics(user: str) -> list[str]:
    text = (REPO / "deploy" / "mosquitto" / "acl").read_text()
    block = text.split(f"\nuser {user}\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"(?m)^topic (?:read|write|readwrite) (\S+)$", block)


def test_one_dcgm_adapter_per_hall_group_covers_the_plant(resolved: dict[str, Any]) -> None:
    """Each DCGM service has its own config, account and halls; its account may publish only its halls' racks;
    together the groups cover every hall of the plant once."""
    plant = load_plant(_env_example()["TWIN_PLANT"])
    dcgm = {n: s for n, s in resolved["services"].items() if s.get("command", [None])[1:3] == ["adapter", "dcgm"]}
    assert len(dcgm) >= 2
    groups: dict[str, set[str]] = {}
    for name, s in dcgm.items():
        user = s["environment"]["TWIN_MQTT_USERNAME"]
        halls = set(re.fullmatch(r"adapter-dcgm-(h\d+)-(h\d+)", user).groups())  # type: ignore[union-attr]
        first, last = sorted(int(h[1:]) for h in halls)
        groups[name] = {f"h{i}" for i in range(first, last + 1)}
        assert _acl_topics(user) == [f"stargate/+/gpu/{h}/#" for h in sorted(groups[name], key=lambda h: int(h[1:]))]
        toml_name = s["command"][s["command"].index("--config") + 1].removeprefix("/config/")
        cfg = load_adapter_config(REPO / "deploy" / "adapters" / toml_name, DcgmConfig)
        assert {h.hall for h in cfg.hosts} <= groups[name], f"{toml_name} maps trays outside {name}'s halls"
        assert plant_mismatch(DcgmAdapter(cfg).assets(), plant, cfg.gpus_per_rack) is None, toml_name
    assert len({s["command"][s["command"].index("--config") + 1] for s in dcgm.values()}) == len(dcgm)
    every = [h for g in groups.values() for h in g]
    assert sorted(every) == sorted(h.id for h in plant.halls), "each hall in exactly one group"


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


# ---------------------------------------------------------------- influx-tokens with the secret file


def test_influx_tokens_reads_the_admin_token_from_its_secret_file(tmp_path: Path, resolved: dict[str, Any]) -> None:
    """As compose runs it (INFLUX_TOKEN_FILE, no INFLUX_TOKEN), against test_influx_tokens.py's stub of ``influx``,
    which checks that it is handed the admin token."""
    from tests.deploy.test_influx_tokens import _run, _setup

    service = resolved["services"]["influx-tokens"]
    assert service["environment"]["INFLUX_TOKEN_FILE"] == "/run/secrets/influx_admin_token"
    assert "INFLUX_TOKEN" not in service["environment"]
    env = _setup(tmp_path)
    del env["INFLUX_TOKEN"]
    (tmp_path / "admin").write_text("admin-token")
    r = _run(env, INFLUX_TOKEN_FILE=str(tmp_path / "admin"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "tokens" / "sink.token").read_text()
    (tmp_path / "admin").write_text("")
    r = _run(env, INFLUX_TOKEN_FILE=str(tmp_path / "admin"))
    assert r.returncode == 1
    assert r.stderr.strip() == (f"influx-tokens: INFLUX_TOKEN_FILE: cannot read {tmp_path / 'admin'}, or it is "
                                "empty (run scripts/secrets)")
