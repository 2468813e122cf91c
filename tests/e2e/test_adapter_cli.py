"""``twin adapter`` as a user runs it: health online, telemetry, clean stop on SIGTERM, one-line errors."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adapter_servers import ExporterServer, Gpu, Listener
from tests.integration.test_adapter_dcgm import write_config
from tests.servers import MosquittoServer, env_with_venv

pytestmark = pytest.mark.e2e

TWIN = [sys.executable, "-m", "twin.cli"]


def test_dcgm_adapter_process_publishes_and_stops_cleanly(mosquitto: MosquittoServer, site: str,
                                                          tmp_path: Path) -> None:
    # the config pins n3's GPU 3 by its UUID GPU-c3
    hosts = {name: ExporterServer(name, {i: Gpu(f"GPU-{u}{i}", 300.0, 40.0, 50.0) for i in range(n)})
             for name, u, n in (("n1", "a", 2), ("n2", "b", 2), ("n3", "c", 4))}
    cfg = write_config(tmp_path / "dcgm.toml", site, hosts)
    try:
        asyncio.run(_scenario(mosquitto, site, cfg))
    finally:
        for h in hosts.values():
            h.stop()


async def _scenario(mosquitto: MosquittoServer, site: str, cfg: Path) -> None:
    health = f"stargate/{site}/twin/health/adapter-dcgm-test"
    rack = f"stargate/{site}/gpu/h1/h1-r002"
    async with Listener(mosquitto.port, f"stargate/{site}/#") as lis:
        proc = _start([*TWIN, "adapter", "dcgm", "--config", str(cfg), "--broker", mosquitto.url], cfg.parent)
        try:
            assert await lis.until(lambda g: len(lis.on(rack)) >= 2 and "online" in lis.on(health), timeout=30)
            assert lis.on(rack)[0]["gpu_power_w"] == [300.0] * 4 and "gpu_missing" not in lis.on(rack)[0]
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.to_thread(proc.wait, 20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert rc == 0, (cfg.parent / "adapter.log").read_text()[-2000:]
        assert await lis.until(lambda g: lis.on(health)[-1:] == ["offline"], timeout=10)


def _start(cmd: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    log = open(workdir / "adapter.log", "wb")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(cmd, env=env_with_venv(), stdout=subprocess.DEVNULL, stderr=log)


def test_bad_config_and_plant_mismatch_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text('site = "narvik"\n[[cdus]]\nid = "h1-cdu01"\nhost = "x"\nmodel = "m"\n')
    r = subprocess.run([*TWIN, "adapter", "modbus", "--config", str(bad), "--broker", "mqtt://127.0.0.1:1"],
                       env=env_with_venv(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"twin: error: {bad}: models: Field required")
    deploy = Path(__file__).resolve().parents[2] / "deploy" / "adapters" / "dcgm.toml"
    text = deploy.read_text().replace('rack = "h1-r001"', 'rack = "h1-r999"')
    wrong = tmp_path / "dcgm.toml"
    wrong.write_text(text)
    r = subprocess.run([*TWIN, "adapter", "dcgm", "--config", str(wrong), "--plant", "phase1",
                        "--broker", "mqtt://127.0.0.1:1"], env=env_with_venv(), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "does not fit plant phase1: rack h1-r999 is not in the plant config" in r.stderr
    json.dumps(r.stderr)  # printable
