"""``twin bench scale`` as shipped, at a small size: hall workers through one Mosquitto and through a 3-node
NATS cluster (publishers on node 1, workers on node 2), the 1 Hz latency, the tenfold projection. No timed
assertion: what is checked holds on any machine (every message taken on both engines, the arithmetic)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.servers import env_with_venv

pytestmark = pytest.mark.e2e


def test_bench_scale_on_mosquitto_and_a_nats_cluster() -> None:
    r = subprocess.run([sys.executable, "-m", "twin.cli", "bench", "scale", "--json", "--no-progress",
                        "--ticks", "1", "--workers", "2", "--latency-seconds", "2"],
                       capture_output=True, text=True, timeout=900, env=env_with_venv(), cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["rack_messages"] == 1392 and out["stream_replicas"] == 3
    for engine in ("mosquitto", "nats_cluster_3"):
        run = out[engine]["workers_2"]
        assert run["msgs_per_s"] > 0 and run["received"] == run["expected"] == 1392, (engine, run)
        lat = out[engine]["latency_1hz_workers_2"]  # the plant at 1 Hz into the two hall workers
        assert lat["received"] == lat["expected"] == 2 * 1392, (engine, lat)
        assert 0 <= lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert len(lat["per_worker_p99_ms"]) == 2 and max(lat["per_worker_p99_ms"]) == lat["p99_ms"], lat
    t = out["tenfold"]
    assert t["msgs_per_s"] == 13_920 + 2_320 + 23
    assert t["workers_needed"] == math.ceil(t["msgs_per_s"] / (out["mosquitto"]["workers_2"]["msgs_per_s"] / 2 / 2))
    assert t["held_here"] == (t["best_measured_msgs_per_s"] >= t["msgs_per_s"])


def test_bench_scale_refuses_a_worker_count_that_does_not_divide_the_halls() -> None:
    r = subprocess.run([sys.executable, "-m", "twin.cli", "bench", "scale", "--workers", "3"],
                       capture_output=True, text=True, timeout=60, env=env_with_venv(), cwd=REPO)
    assert r.returncode == 2 and "each a divisor of the 8 halls" in r.stderr and len(r.stderr.strip().splitlines()) == 1
