"""Backtest on a simulated 21-day phase1 history (train 14, test 7, both products), and ``twin backtest``.

The history is the simulator feeding the state model in process (twin.forecast.states): 60 s
steps from day 6 on, 900 s before. Every forecast scored (days 14-21) or calibrating the scored
ones' intervals (the week before for day-ahead, the day before for intraday) is issued from 1-min
data, as are the step means the day-ahead product is scored against: 15-min means of 15 samples
in the calibration week as in the test week. (With 900 s samples in the calibration week, one
sample per quarter hour carries the training jobs' swing unaveraged, the residuals are wider than
in the test week and the intervals over-cover: 0.93.) Days 0-6 only warm the 15-min history the
fits use. Seeded: the same figures every run. ~2.5 min here (the simulation about half of it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import env_with_venv
from twin.contract import PlantState
from twin.forecast.backtest import BacktestResult, run_backtests
from twin.forecast.states import simulate_states, write_states_log

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]  # the module's fixtures run within its first test

DAY = 86400.0

MAIN = {"facility_mw": "physics", "it_mw": "holt-winters", "headroom_mw": "physics",
        "heat_reusable_mw": "physics", "coolant_return_max_c": "physics"}


def _num(v: float | None) -> float:
    assert v is not None
    return v


@pytest.fixture(scope="module")
def history() -> list[tuple[PlantState, list]]:  # type: ignore[type-arg]
    return list(simulate_states("phase1", 21 * DAY, 900.0, fine_tail_s=15 * DAY, fine_step_s=60.0))


@pytest.fixture(scope="module")
def results(history: list) -> dict[str, BacktestResult]:  # type: ignore[type-arg]
    return run_backtests(iter(history), {"day-ahead": 14.0, "intraday": 14.0})


def test_day_ahead_facility_and_heat_beat_persistence(results: dict[str, BacktestResult]) -> None:
    t = results["day-ahead"].table()
    assert results["day-ahead"].as_json()["test_days"] == pytest.approx(7.0, abs=0.01)
    for q in ("facility_mw", "heat_reusable_mw"):
        m = t[q][MAIN[q]]
        assert _num(m["n"]) > 600 * 96  # a week of issues, 96 leads each
        assert _num(m["mase"]) < 0.8, (q, m)
        assert t[q]["persistence"]["mase"] == 1.0


def test_intraday_never_worse_than_persistence(results: dict[str, BacktestResult]) -> None:
    t = results["intraday"].table()
    assert results["intraday"].as_json()["test_days"] == pytest.approx(7.0, abs=0.01)
    for q, model in MAIN.items():
        assert _num(t[q][model]["n"]) > 7 * 1400 * 60  # a week of minute issues, 60 leads each
        assert _num(t[q][model]["mase"]) <= 1.0, (q, t[q][model])
        assert t[q]["persistence"]["mase"] == 1.0


@pytest.mark.parametrize("product", ["day-ahead", "intraday"])
def test_80_percent_intervals_cover_70_to_90_percent(results: dict[str, BacktestResult], product: str) -> None:
    t = results[product].table()
    for q in MAIN:
        cov = t[q][MAIN[q]]["coverage"]
        assert cov is not None and 0.70 <= cov <= 0.90, (product, q, cov)


def test_cli_backtest_of_a_state_log_prints_metrics_and_plots(history: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    log = tmp_path / "states.jsonl.gz"
    write_states_log(log, "narvik", iter(history[: 3 * 96]))  # three days at 900 s
    png = tmp_path / "bt.png"
    r = subprocess.run([sys.executable, "-m", "twin.cli", "backtest", str(log), "--quantity", "heat_reusable_mw",
                        "--product", "day-ahead", "--train-days", "1", "--json", "--plot", str(png)],
                       capture_output=True, text=True, env=env_with_venv(), timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    models = out["metrics"]["heat_reusable_mw"]
    assert set(models) == {"persistence", "seasonal-naive", "physics"}
    assert {"mae", "mape", "mase", "coverage", "n"} <= set(models["physics"])
    assert models["persistence"]["mase"] == 1.0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_cli_backtest_too_short_log_is_a_one_line_error(history: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    log = tmp_path / "short.jsonl"
    write_states_log(log, "narvik", iter(history[:10]))
    r = subprocess.run([sys.executable, "-m", "twin.cli", "backtest", str(log), "--json"],
                       capture_output=True, text=True, env=env_with_venv(), timeout=120)
    assert r.returncode != 0
    assert "nothing scored" in r.stderr and len(r.stderr.strip().splitlines()) == 1
