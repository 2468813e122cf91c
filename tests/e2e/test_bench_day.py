"""``twin bench day`` at a small scale: half an hour of the full phase-1 plant recorded live, replayed at max
through the twin (state, sink into VictoriaMetrics, forecast), nothing lost. No timed assertions: the figures
are the benchmark's, the checks are what must hold on any machine."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from twin.bench import day

pytestmark = pytest.mark.e2e


def test_half_an_hour_of_the_plant_recorded_and_replayed_through_the_twin_loses_nothing(tmp_path: Path) -> None:
    p = argparse.ArgumentParser()
    day.register(p)
    args = p.parse_args(["--hours", "0.5", "--rack-every", "6", "--sim-speed", "150", "--workdir", str(tmp_path)])
    r = day.run(args)
    steps = 180  # 30 min in 10 s steps
    assert r["steps"] == steps
    rec = r["record"]
    # every message the simulator published, by its own schedule: racks and CDUs every 6th step, the rest each step
    assert rec["messages"] == rec["expected"] > steps * 250, r
    assert rec["topics"] == 1392 + 232 + 5 and rec["topics_with_wrong_count"] == 0, r
    assert rec["seq_breaks"] == 0 and rec["bad_lines"] == 0 and rec["recorder_exit"] == 0, r
    assert r["replay"]["messages"] == rec["messages"], r
    s = r["state"]
    assert s["msgs_in"] == rec["messages"], r
    assert s["seq_gaps"] == 0 and s["msgs_duplicate"] == 0 and s["msgs_rejected"] == 0 and s["msgs_dropped"] == 0, r
    assert r["victoriametrics"]["plant_states"] == steps, r
    assert r["forecasts_issued"] > 0 and r["victoriametrics"]["forecast_points"] > 0, r
    assert all(r["checks"].values()) and r["nothing_lost"], r["checks"]
    assert (tmp_path / "day.jsonl.gz").stat().st_size > 1_000_000
