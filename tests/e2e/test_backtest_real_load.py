"""Forecast skill on real load, not the simulator's: Taylor's half-hourly electricity demand of England and Wales
(12 weeks from Monday 5 June 2000, shipped by pmdarima's datasets), scaled linearly to the phase 1 plant's
120-210 MW of facility power over its two feeders, brought in with `twin import csv` as a user would, then
backtested with `twin backtest LOG --json`. The figures are asserted loosely (they are reported in
docs/forecasting.md); the issue's targets for the main model (x0.85 of the best baseline) are not met yet, and these
tests say where it stands, so that a change that makes it worse fails."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.servers import env_with_venv

pytestmark = pytest.mark.e2e

TWIN = [str(Path(env_with_venv()["PATH"].split(":")[0]) / "twin")]
LO, HI = 18_640.0, 38_777.0  # the series' own minimum and maximum, MW


@pytest.fixture(scope="module")
def taylor_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pmdarima.datasets import load_taylor

    y = load_taylor()
    assert len(y) == 4032 and y.min() == LO and y.max() == HI
    d = tmp_path_factory.mktemp("taylor")
    t0 = dt.datetime(2000, 6, 5, tzinfo=dt.UTC)
    rows = ["time,feeder,import_mw,available_mw,frequency_hz,price_eur_mwh"]
    for i, v in enumerate(y):
        t = (t0 + dt.timedelta(minutes=30 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        facility = 120.0 + (float(v) - LO) / (HI - LO) * 90.0
        rows += [f"{t},{feeder},{facility / 2:.4f},240,50.0,40.0" for feeder in ("feeder-a", "feeder-b")]
    (d / "taylor.csv").write_text("\n".join(rows) + "\n")
    log = d / "taylor.jsonl.gz"
    r = subprocess.run([*TWIN, "import", "csv", str(d / "taylor.csv"), "--mapping",
                        str(REPO / "tests" / "data" / "import" / "taylor.toml"), "--out", str(log), "--no-progress"],
                       env=env_with_venv(), capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "8,064 messages from 8,064 rows" in r.stderr + r.stdout
    return log


def _backtest(log: Path, product: str) -> dict[str, Any]:
    r = subprocess.run([*TWIN, "backtest", str(log), "--quantity", "facility_mw", "--product", product,
                        "--train-days", "28", "--json"], env=env_with_venv(), capture_output=True, text=True,
                       timeout=600, check=False)
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    assert out["states"] == 4032 and out["test_days"] > 50
    metrics: dict[str, Any] = out["metrics"]["facility_mw"]
    assert set(metrics) == {"persistence", "seasonal-naive", "physics"}
    for m in metrics.values():
        assert {"mase", "mae", "coverage"} <= set(m)
    return metrics


def test_day_ahead_on_real_load(taylor_log: Path) -> None:
    m = _backtest(taylor_log, "day-ahead")
    # real demand repeats day by day: yesterday's profile is a strong baseline (MASE 0.33 measured)
    assert 0.2 < m["seasonal-naive"]["mase"] < 0.45
    # the main model is far behind it on this load (0.74 measured): not yet the x0.85
    assert m["physics"]["mase"] < 1.0
    for name in ("seasonal-naive", "physics"):
        assert 0.7 <= m[name]["coverage"] <= 0.9, (name, m[name]["coverage"])


def test_intraday_on_real_load(taylor_log: Path) -> None:
    m = _backtest(taylor_log, "intraday")
    assert m["persistence"]["mase"] == pytest.approx(1.0)
    assert m["physics"]["mase"] < 1.15  # 1.02 measured: no better than persistence on half-hourly real load
    assert 0.65 <= m["physics"]["coverage"] <= 0.9
