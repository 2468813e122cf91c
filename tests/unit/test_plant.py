"""The plant config: the shipped plants match the design, a bad file stops with one line naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from twin.errors import ConfigError
from twin.plant import Plant, load_plant

PHASE1 = Path(__file__).resolve().parents[2] / "plants" / "phase1.toml"


def test_phase1_is_the_default_plant_of_the_design(phase1: Plant) -> None:
    assert phase1.site.id == "narvik" and phase1.site.contract_mw == 230.0
    assert phase1.hall_ids == [f"h{i}" for i in range(1, 9)]
    assert phase1.n_racks == 1392 and phase1.rack.gpus == 72 and phase1.gpus_total == 100_224
    assert len(phase1.cdu_ids) == 232
    assert phase1.feeder_ids == ["feeder-a", "feeder-b"]
    assert phase1.exchanger_ids == ["dh-narvik", "industry-park"]
    assert phase1.weather.station == "kvandal"
    assert (phase1.coolant.density_kg_m3, phase1.coolant.cp_j_kgk) == (1012.0, 3957.0)
    assert phase1.rack_ids[0] == "h1-r001" and phase1.rack_ids[-1] == "h8-r174"


@pytest.mark.parametrize(("hall", "k"), [(1, 1), (3, 7), (8, 29)])
def test_cdu_k_serves_racks_6k_minus_5_to_6k(phase1: Plant, hall: int, k: int) -> None:
    cdu = next(c for c in phase1.cdus if c.id == f"h{hall}-cdu{k:02d}")
    assert cdu.racks == [f"h{hall}-r{n:03d}" for n in range(6 * k - 5, 6 * k + 1)]
    ci = phase1.cdu_index[cdu.id]
    assert [phase1.rack_ids[i] for i in (phase1.rack_cdu == ci).nonzero()[0]] == cdu.racks


def test_expansion_is_about_2_3_times_phase1(phase1: Plant) -> None:
    big = load_plant("expansion-520")
    assert big.site.contract_mw == 520.0
    assert 2.2 <= big.gpus_total / phase1.gpus_total <= 2.4
    assert 2.2 <= big.site.contract_mw / phase1.site.contract_mw <= 2.3


def test_small_plant_with_explicit_cdus(small_plant: Plant) -> None:
    assert small_plant.rack_ids == ["h1-r001", "h1-r002", "h1-r003", "h1-r004", "h2-a", "h2-b", "h2-c", "h2-d"]
    assert small_plant.cdu_ids == ["h1-cdu01", "h1-cdu02", "h2-c1", "h2-c2"]
    assert small_plant.rack_cdu.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert small_plant.rack_hall.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = PHASE1.read_text()
    assert old in text
    p = tmp_path / "broken.toml"
    p.write_text(text.replace(old, new, 1))
    return p


@pytest.mark.parametrize(("old", "new", "expect"), [
    ("contract_mw = 230.0", "contract_mw = -5.0", "site.contract_mw: Input should be greater than 0"),
    ('racks = 174\n\n[[halls]]\nid = "h2"', 'racks = 0\n\n[[halls]]\nid = "h2"', "halls[0].racks"),
    ('id = "h3"', 'id = "h2"', "hall id 'h2' is used twice"),
    ("gpus = 72", 'gpus = "many"', "rack.gpus: Input should be a valid integer"),
    ('id = "feeder-b"', 'id = "feeder b"', "feeders[1].id: String should match pattern"),
    ("p_idle_w = 200.0", "p_idle_w = 2000.0", "p_idle_w (2000.0) must be below p_max_w"),
    ("cp_j_kgk = 3957.0", "cp_j_kgk = 3957.0\nviscosity = 1", "coolant.viscosity: Extra inputs are not permitted"),
    ("monthly_mean_c = [", "monthly_mean_c = [1.0, ", "weather.monthly_mean_c"),
    ("[site]", "[site\n", "not valid TOML"),
    ("coolant_return_high_c = 50.0", "coolant_return_high_c = 45.0",
     "coolant_return_clear_c (48.0) must be at or below coolant_return_high_c (45.0)"),
    ("headroom_low_mw = 5.0", "headroom_low_mw = 9.0", "headroom_clear_mw (7.5) must be at or above headroom_low_mw"),
])
def test_bad_file_stops_with_one_line_naming_the_field(tmp_path: Path, old: str, new: str, expect: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_plant(_broken(tmp_path, old, new))
    msg = str(e.value)
    assert "\n" not in msg and expect in msg and "broken.toml" in msg


def test_missing_file_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="expansion-520, phase1"):
        load_plant("phase9")


def test_cli_reports_a_bad_plant_in_one_line(tmp_path: Path) -> None:
    bad = _broken(tmp_path, "contract_mw = 230.0", "contract_mw = -5.0")
    r = subprocess.run([sys.executable, "-m", "twin.cli", "run", "state", "--broker", "mqtt://127.0.0.1:1",
                        "--plant", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "site.contract_mw" in lines[0], r.stderr
