"""``twin run sink`` as its own service: its spool survives a SIGKILL of the sink; files without InfluxDB."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.bus.mqtt import Bus
from tests.conftest import REPO, collect
from tests.contract.test_models import VALID
from tests.servers import MosquittoServer, VictoriaMetricsServer, env_with_venv
from twin.contract import HallState, PlantState
from twin.lineproto import parse_line

pytestmark = pytest.mark.e2e

TWIN = [sys.executable, "-m", "twin.cli"]
T0 = float(int(time.time()) - 2 * 3600)


def plant_file(tmp_path: Path, site: str) -> Path:
    p = tmp_path / "plant.toml"
    p.write_text((REPO / "tests" / "data" / "small.toml").read_text().replace('id = "tiny"', f'id = "{site}"'))
    return p


async def _publish_states(url: str, site: str, n: int) -> None:
    async with Bus(url, service="pub", site=site) as pb:
        for i in range(n):
            s = PlantState.model_validate({**VALID[PlantState], "ts": T0 + i, "it_mw": float(i), "stale": []})
            await pb.publish(f"stargate/{site}/twin/state", s.model_dump_json())
            h = HallState.model_validate({**VALID[HallState], "ts": T0 + i, "hall": "h1"})
            await pb.publish(f"stargate/{site}/twin/state/h1", h.model_dump_json())


def _wait_online(port: int, site: str) -> None:
    got = asyncio.run(collect(port, f"stargate/{site}/twin/health/sink", lambda ms: ms[-1][1] == b"online", 30))
    assert got and got[-1][1] == b"online", "the sink never came online"


def _health(port: int, site: str, predicate, timeout: float = 30) -> dict:  # type: ignore[no-untyped-def,type-arg]
    got = asyncio.run(collect(port, f"stargate/{site}/twin/sink",
                              lambda ms: bool(ms[-1][1]) and predicate(json.loads(ms[-1][1])), timeout))
    assert got, "no sink health message"
    return json.loads(got[-1][1])  # type: ignore[no-any-return]


def test_the_spool_survives_a_sigkill_of_the_sink(mosquitto: MosquittoServer, victoria: VictoriaMetricsServer,
                                                  site: str, tmp_path: Path) -> None:
    n = 60
    victoria.kill()  # the database is down from the start
    args = [*TWIN, "run", "sink", "--broker", mosquitto.url, "--plant", str(plant_file(tmp_path, site)),
            "--influx-url", victoria.url, "--data-dir", str(tmp_path / "data"), "--log-level", "INFO"]
    # exact line counts below: no sink_stats lines of the sink's own (a minute's cadence by default)
    first = subprocess.Popen(args, env=env_with_venv() | {"TWIN_SINK_STATS_S": "0"}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait_online(mosquitto.port, site)
        asyncio.run(_publish_states(mosquitto.url, site, n))
        h = _health(mosquitto.port, site, lambda s: s["points_spooled"] >= 2 * n)
        assert h["spool_lines"] == 2 * n and h["points_written"] == 0 and h["last_error"]
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: no clean stop, nothing flushed on the way out
        out = first.communicate(timeout=30)[0].decode()
    assert "failed" in out and "Traceback" not in out
    assert list((tmp_path / "data" / "spool" / "influx").glob("*.seg"))

    victoria.start()
    second = subprocess.run([*args, "--duration", "12"], env=env_with_venv(), capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "spool: 120 lines" in second.stderr  # it found them on start
    ms = [int(T0 * 1000) + 1000 * i for i in range(n)]
    for name in ("plant_state_it_mw", "hall_state_it_mw"):
        got = victoria.export_until(f'{{__name__="{name}",site="{site}"}}',
                                    lambda s: bool(s) and len(s[0]["timestamps"]) >= n, 30)
        assert len(got) == 1 and sorted(got[0]["timestamps"]) == ms, name  # type: ignore[arg-type]
    assert (json.loads(asyncio.run(collect(mosquitto.port, f"stargate/{site}/twin/sink",
                                           lambda m: True, 10))[-1][1])["spool_lines"] == 0)


def test_without_influxdb_the_lines_go_to_files_that_parse_back(mosquitto: MosquittoServer, site: str,
                                                                 tmp_path: Path) -> None:
    n = 20
    proc = subprocess.Popen([*TWIN, "run", "sink", "--broker", mosquitto.url, "--plant",
                             str(plant_file(tmp_path, site)), "--data-dir", str(tmp_path / "data"),
                             "--duration", "20"],
                            env=env_with_venv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait_online(mosquitto.port, site)
        asyncio.run(_publish_states(mosquitto.url, site, n))
        _health(mosquitto.port, site, lambda s: s["points_written"] >= 2 * n)
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, out
    files = sorted((tmp_path / "data" / "lines").glob("twin-*.lp"))
    assert files
    parsed = [parse_line(ln) for f in files for ln in f.read_text().splitlines()]  # strict: raises on any bad line
    plant = [p for p in parsed if p.measurement == "plant_state"]
    halls = [p for p in parsed if p.measurement == "hall_state"]
    assert [p.t_ns for p in plant] == [int((T0 + i) * 1e9) for i in range(n)]
    assert [p.fields["it_mw"] for p in plant] == [float(i) for i in range(n)]
    assert all(p.tags == {"site": site} for p in plant)
    assert len(halls) == n and all(p.tags == {"site": site, "hall": "h1"} for p in halls)
    assert isinstance(plant[0].fields["gpus_total"], int)


def test_a_database_outage_in_the_middle_of_twin_up_loses_no_point(
        mosquitto: MosquittoServer, victoria: VictoriaMetricsServer, site: str, tmp_path: Path) -> None:
    """The issue's "done when": ``twin up`` writing to an InfluxDB-protocol server that goes away for 15 s.

    The server is stopped with SIGTERM here (VictoriaMetrics then keeps what it acknowledged;
    the SIGKILL case is tests/integration/test_sink_victoria.py). Ground truth is every
    PlantState seen on the bus by an independent subscriber.
    """
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-q", "1",
                            "-t", f"stargate/{site}/twin/state"], stdout=subprocess.PIPE, env=env_with_venv())
    up = subprocess.Popen([*TWIN, "up", "--broker", mosquitto.url, "--plant", str(plant_file(tmp_path, site)),
                           "--influx-url", victoria.url, "--data-dir", str(tmp_path / "data"), "--duration", "40",
                           "--no-view", "--log-level", "WARNING"],
                          env=env_with_venv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        victoria.outage(after_s=12, for_s=15)
        out = up.communicate(timeout=120)[0].decode()
    finally:
        if up.poll() is None:
            up.kill()
        time.sleep(1)
        sub.terminate()
        seen = sub.communicate(timeout=10)[0].decode().splitlines()
    assert up.returncode == 0, out
    assert "failed" in out  # the sink noticed the outage
    states = sorted(json.loads(ln)["ts"] for ln in seen if ln.strip())
    assert len(states) >= 30
    # the all-in-one stop cancels state and sink together: the last heartbeat may still be in flight
    want = [victoria.stored_ms(ts) for ts in states if ts <= states[-1] - 2]
    got = victoria.export_until(f'{{__name__="plant_state_it_mw",site="{site}"}}',
                                lambda s: bool(s) and set(want) <= set(s[0]["timestamps"]), 30)
    assert len(got) == 1
    stored = sorted(got[0]["timestamps"])  # type: ignore[arg-type]
    assert len(stored) == len(set(stored)), "a point arrived twice"
    assert [t for t in want if t not in set(stored)] == [], "points lost in the outage"


def test_messages_in_memory_at_a_crash_are_redelivered_to_the_persistent_session(
        mosquitto: MosquittoServer, victoria: VictoriaMetricsServer, site: str, tmp_path: Path) -> None:
    """The sink acknowledges an MQTT message only once its lines are written or spooled."""
    n = 4  # 8 messages (a state and a hall state each): under the sink's ack window (10), so they stay unacked
    args = [*TWIN, "run", "sink", "--broker", mosquitto.url, "--plant", str(plant_file(tmp_path, site)),
            "--influx-url", victoria.url, "--data-dir", str(tmp_path / "data"), "--client-id", f"{site}-t",
            "--session-expiry", "300"]
    env = {**env_with_venv(), "TWIN_SINK_FLUSH_S": "120",  # the lines stay in memory until the kill
           "TWIN_SINK_STATS_S": "0"}  # and exact counts: no sink_stats lines of the sink's own
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait_online(mosquitto.port, site)
        asyncio.run(_publish_states(mosquitto.url, site, n))
        h = _health(mosquitto.port, site, lambda s: s["points_in"] >= 2 * n)
        assert h["points_written"] == 0 and h["points_spooled"] == 0 and h["buffered"] == 2 * n
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    second = subprocess.run([*args, "--duration", "10"], env=env_with_venv(), capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    ms = [int(T0 * 1000) + 1000 * i for i in range(n)]
    got = victoria.export_until(f'{{__name__="plant_state_it_mw",site="{site}"}}',
                                lambda s: bool(s) and len(s[0]["timestamps"]) >= n, 30)
    assert len(got) == 1 and sorted(got[0]["timestamps"]) == ms  # type: ignore[arg-type]


def test_a_stock_broker_in_flight_window_is_never_held_until_the_next_flush(
        mosquitto: MosquittoServer, victoria: VictoriaMetricsServer, site: str, tmp_path: Path) -> None:
    """Mosquitto at its stock limits sends 20 messages and waits for their acks: with a flush every 120 s,
    the sink still writes (and acks) as soon as 10 messages wait, so 60 states all arrive within seconds."""
    n = 60
    args = [*TWIN, "run", "sink", "--broker", mosquitto.url, "--plant", str(plant_file(tmp_path, site)),
            "--influx-url", victoria.url, "--data-dir", str(tmp_path / "data"), "--client-id", f"{site}-w",
            "--session-expiry", "300"]
    env = {**env_with_venv(), "TWIN_SINK_FLUSH_S": "120", "TWIN_SINK_STATS_S": "0"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait_online(mosquitto.port, site)
        asyncio.run(_publish_states(mosquitto.url, site, n))
        got = victoria.export_until(f'{{__name__="plant_state_it_mw",site="{site}"}}',
                                    lambda s: bool(s) and len(s[0]["timestamps"]) >= n - 10, 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert got and len(got[0]["timestamps"]) >= n - 10  # type: ignore[arg-type]
