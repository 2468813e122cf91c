"""deploy/influxdb/tokens.sh, the logic of the influx-tokens service: make the sink's write-only and
Grafana's read-only tokens once, keep them across restarts, make them again when InfluxDB lost them,
and rotate them on request.

No InfluxDB 2 runs here (Debian ships 1.6, without /api/v2), so a stub stands in for the ``influx``
CLI: it answers the four commands the script uses, in the formats of influx CLI 2.7 (``--hide-headers``
tab-separated rows, ``--json`` objects), and keeps its authorizations in a JSON file. This tests the
script's own logic; the commands and flags it uses are the documented ones of ``influx`` 2.7.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "influxdb" / "tokens.sh"

STUB = r'''#!/usr/bin/env python3
import json, os, sys
state_path = os.environ["STUB_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {"auths": {}, "n": 0, "calls": []}
args = sys.argv[1:]
state["calls"].append(args)
def opt(name):
    return args[args.index(name) + 1] if name in args else None
def save():
    json.dump(state, open(state_path, "w"))
assert os.environ.get("INFLUX_TOKEN") == "admin-token", "the admin token is passed in the environment"
if args[:2] == ["bucket", "list"]:
    if opt("--name") == "twin":
        print("0000bucket1\ttwin\t2160h0m0s\tn/a\t0000org1")
elif args[:2] == ["auth", "create"]:
    state["n"] += 1
    n = state["n"]
    perm = "write" if "--write-bucket" in args else "read"
    bucket = opt("--write-bucket") or opt("--read-bucket")
    auth = {"id": f"auth{n}", "description": opt("--description"), "token": f"token-{n}==", "status": "active",
            "userName": "admin", "userID": "user1",
            "permissions": [f"{perm}:orgs/0000org1/buckets/{bucket}"]}
    state["auths"][auth["id"]] = auth
    print(json.dumps(auth, indent=2))
elif args[:2] == ["auth", "list"]:
    a = state["auths"].get(opt("--id"))
    if a is None:
        save(); print("Error: authorization not found", file=sys.stderr); sys.exit(1)
    print(f"{a['id']}\t{a['description']}\t{a['token']}\tadmin\tuser1\t{a['permissions']}")
elif args[:2] == ["auth", "delete"]:
    state["auths"].pop(opt("--id"), None)
elif args[:3] == ["v1", "dbrp", "list"]:  # ID, Database, Bucket ID, Retention Policy, Default, Organization ID
    for i, d in enumerate(state.get("dbrps", [])):
        if d["db"] == opt("--db"):
            print(f"dbrp{i}\t{d['db']}\t{d['bucket']}\t{d['rp']}\t{str(d['default']).lower()}\t0000org1")
elif args[:3] == ["v1", "dbrp", "create"]:
    state.setdefault("dbrps", []).append({"db": opt("--db"), "rp": opt("--rp"), "bucket": opt("--bucket-id"),
                                          "default": "--default" in args})
else:
    save(); print("stub: unexpected command", args, file=sys.stderr); sys.exit(2)
save()
'''


def _setup(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "influx").write_text(STUB)
    (bin_dir / "influx").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_STATE": str(tmp_path / "state.json"),
            "TOKENS_DIR": str(tmp_path / "tokens"), "INFLUX_HOST": "http://influxdb:8086",
            "INFLUX_TOKEN": "admin-token", "INFLUX_ORG": "stargate", "INFLUX_BUCKET": "twin"}


def _run(env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(SCRIPT)], env={**env, **extra}, capture_output=True, text=True, timeout=60,
                          check=False)


def _state(env: dict[str, str]) -> dict[str, object]:
    return json.loads(Path(env["STUB_STATE"]).read_text())  # type: ignore[no-any-return]


def test_makes_a_write_only_and_a_read_only_token_once(tmp_path: Path) -> None:
    env = _setup(tmp_path)
    r = _run(env)
    assert r.returncode == 0, r.stderr
    tokens = Path(env["TOKENS_DIR"])
    auths = _state(env)["auths"]
    assert isinstance(auths, dict)
    sink = auths[(tokens / "sink.id").read_text()]
    grafana = auths[(tokens / "grafana.id").read_text()]
    assert (tokens / "sink.token").read_text() == sink["token"]
    assert (tokens / "grafana.token").read_text() == grafana["token"]
    assert sink["permissions"] == ["write:orgs/0000org1/buckets/0000bucket1"]
    assert grafana["permissions"] == ["read:orgs/0000org1/buckets/0000bucket1"]
    assert oct((tokens / "sink.token").stat().st_mode & 0o777) == "0o400"
    assert oct(tokens.stat().st_mode & 0o777) == "0o711"  # uid 10001 and 472 reach their own file

    again = _run(env)
    assert again.returncode == 0, again.stderr
    assert "sink token auth1 kept" in again.stdout
    assert len(_state(env)["auths"]) == 2  # type: ignore[arg-type]
    assert (tokens / "sink.token").read_text() == sink["token"]


def test_a_token_lost_in_influxdb_is_made_again_and_rotation_replaces_both(tmp_path: Path) -> None:
    env = _setup(tmp_path)
    assert _run(env).returncode == 0
    tokens = Path(env["TOKENS_DIR"])
    state = _state(env)
    del state["auths"]["auth1"]  # type: ignore[attr-defined]
    Path(env["STUB_STATE"]).write_text(json.dumps(state))
    r = _run(env)
    assert r.returncode == 0, r.stderr
    assert (tokens / "sink.token").read_text() == "token-3=="
    assert (tokens / "grafana.token").read_text() == "token-2=="

    rot = _run(env, ROTATE="1")
    assert rot.returncode == 0, rot.stderr
    auths = _state(env)["auths"]
    assert sorted(auths) == ["auth4", "auth5"]  # type: ignore[arg-type]
    assert (tokens / "sink.token").read_text() == "token-4=="


def test_a_missing_bucket_is_a_clear_error(tmp_path: Path) -> None:
    env = _setup(tmp_path)
    r = _run(env, INFLUX_BUCKET="nope")
    assert r.returncode == 1
    assert "bucket nope not found" in r.stderr
    assert not (Path(env["TOKENS_DIR"]) / "sink.token").exists()


def test_the_influxql_mapping_of_the_bucket_is_made_once(tmp_path: Path) -> None:
    """Grafana's InfluxQL queries reach the bucket through the v1 API's DBRP mapping: database twin, policy
    autogen, made on the first run and kept after."""
    env = _setup(tmp_path)
    for _ in range(2):
        r = _run(env)
        assert r.returncode == 0, r.stderr
    dbrps = _state(env)["dbrps"]
    assert dbrps == [{"db": "twin", "rp": "autogen", "bucket": "0000bucket1", "default": True}]
    assert "DBRP mapping twin/autogen kept" in r.stdout
