"""``twin bench ingest --stock-only`` as shipped: the state worker's own loop through Mosquitto's stock in-flight
window, journal on and off, and the 1 Hz latency on a Mosquitto with no limit lines (no timed assertions: the
figures are the benchmark's; what is checked holds on any machine: every message was taken, none lost)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.servers import env_with_venv

pytestmark = pytest.mark.e2e


def test_bench_ingest_on_a_stock_broker_reports_journal_on_and_off() -> None:
    r = subprocess.run([sys.executable, "-m", "twin.cli", "bench", "ingest", "--json", "--stock-only",
                        "--ticks", "3", "--latency-seconds", "3"],
                       capture_output=True, text=True, timeout=600, env=env_with_venv(), cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["rack_messages"] == 3 * 1392
    for key in ("stock_journal_on", "stock_journal_off"):
        run = out[key]
        # the backlog drained through the stock in-flight window: every message, no gap
        assert run["msgs_per_s"] > 0 and run["received"] == run["expected"] == 3 * 1392 and run["seq_gaps"] == 0
    assert len(out["stock_journal_off_runs"]) == 3 and len(out["stock_journal_on_runs"]) == 2
    assert out["journal_on_vs_off"] > 0
    lat = out["stock_latency_1hz"]
    assert lat["received"] == lat["expected"] == 3 * 1392 and lat["seq_gaps"] == 0  # 1 Hz fits the stock limits
    assert 0 <= lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
