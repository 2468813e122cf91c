"""Alarm hysteresis and debounce; virtual sensors and plant alarms on hand-built states; snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.unit.test_state import T0, feed, rack, site_messages
from twin.contract import HallState
from twin.live.alarms import AlarmBank, AlarmRule
from twin.live.decode import Decoder
from twin.live.plant_alarms import PlantAlarms
from twin.live.snapshot import load_snapshot, save_snapshot
from twin.live.state import StateModel
from twin.live.virtual_sensors import energy_residual, gpu_temp_excess_k
from twin.plant import Plant

RULE = AlarmRule("t_high", "warning", set=83.0, clear=80.0, debounce_s=3.0, what="GPU over temperature", unit=" C")


def run(bank: AlarmBank, series: list[float]) -> list[tuple[int, bool]]:
    out = []
    for t, v in enumerate(series):
        out += [(t, a.active) for a in bank.evaluate(np.array([v]), np.array([True]), float(t))]
    return out


def test_raises_only_after_the_debounce_and_clears_only_past_the_clear_threshold() -> None:
    bank = AlarmBank(RULE, ["gpu/r1"])
    #        0   1   2   3   4   5   6   7   8   9  10  11
    series = [70, 85, 85, 85, 85, 82, 81, 79, 79, 79, 79, 90]
    # above 83 from t=1: raised at t=4 (held 3 s); 82 and 81 lie in the band: stays;
    # below 80 from t=7: cleared at t=10
    assert run(bank, series) == [(4, True), (10, False)]


def test_a_blip_shorter_than_the_debounce_raises_nothing() -> None:
    bank = AlarmBank(RULE, ["gpu/r1"])
    assert run(bank, [70, 90, 90, 70, 90, 90, 70, 90]) == []


def test_the_band_between_clear_and_set_never_raises() -> None:
    bank = AlarmBank(RULE, ["gpu/r1"])
    assert run(bank, [82.9] * 20) == []


def test_below_rules_and_the_alarm_message() -> None:
    rule = AlarmRule("flow_low", "critical", set=0.5, clear=0.6, above=False, debounce_s=0.0, what="flow low")
    bank = AlarmBank(rule, ["coolant/h1-cdu01", "coolant/h1-cdu02"])
    (a,) = bank.evaluate(np.array([0.2, 0.9]), np.array([True, True]), T0)
    assert (a.alarm_id, a.active, a.asset, a.value, a.threshold) == ("flow_low-h1-cdu01", True,
                                                                     "coolant/h1-cdu01", 0.2, 0.5)
    assert a.severity == "critical" and "flow low at coolant/h1-cdu01" in a.message
    assert bank.evaluate(np.array([0.55, 0.9]), np.array([True, True]), T0 + 1) == []  # in the band
    (c,) = bank.evaluate(np.array([0.7, 0.9]), np.array([True, True]), T0 + 2)
    assert not c.active and c.threshold == 0.6 and c.message.startswith("cleared")


def test_invalid_values_change_nothing() -> None:
    bank = AlarmBank(RULE, ["gpu/r1"])
    for t in range(10):
        assert bank.evaluate(np.array([99.0]), np.array([False]), float(t)) == []


def test_clear_threshold_on_the_wrong_side_is_refused() -> None:
    with pytest.raises(ValueError, match="safe side"):
        AlarmRule("x", "info", set=80.0, clear=85.0)


def test_energy_residual_by_hand() -> None:
    measured = np.array([100.0, 80.0, 5.0])
    expected = np.array([100.0, 100.0, 5.0])
    r = energy_residual(measured, expected, min_expected_w=10.0)
    assert r[0] == 0.0 and r[1] == pytest.approx(-0.2) and np.isnan(r[2])


def test_gpu_temp_excess_by_hand() -> None:
    # T_expected = 30 C + 0.03 K/W * 1000 W = 60 C; reported 65 C -> +5 K
    ex = gpu_temp_excess_k(np.array([[65.0, 60.0]]), np.array([[1000.0, 1000.0]]), np.array([30.0]), 0.03)
    assert ex.tolist() == [[pytest.approx(5.0), pytest.approx(0.0)]]


def test_virtual_sensors_on_the_small_plant(small_plant: Plant) -> None:
    model, dec = StateModel(small_plant), Decoder(small_plant)

    def at(ts: float, seq: int) -> list[HallState]:
        feed(model, dec, *site_messages(ts, seq=seq))
        feed(model, dec, rack("stargate/tiny/gpu/h1/h1-r002", ts, seq, [600.0] * 4, 100.0, temp=60.0))
        return model.snapshot(ts)[1]

    # CDU h1-cdu01 serves h1-r001 (1,500 W) and h1-r002 (2,500 W): expected 0.9 * 4,000 = 3,600 W into the loop;
    # its meter: 0.1 L/s * 1000 kg/m3 * 4000 J/kgK = 400 W/K over a 10 K rise = 4,000 W.
    at(T0, 0)
    assert model.cdu_expected_w[0] == pytest.approx(3600.0)
    # the expectation starts from the loop as it is (40 C return): no residual yet
    assert model.cdu_residual[0] == pytest.approx(0.0)
    # one loop time constant later (V / V_dot = 0.8 m3 / 0.1 L/s = 8,000 s), by physics (3) with inertia:
    # T_r = 40 + (3600 / 3.2e6 - 1.25e-4 * 10) * (1 - e^-1) / 1.25e-4 = 40 - 0.632121 = 39.367879 C,
    # so the healthy loop's meter would show 400 * 9.367879 = 3,747.15 W
    at(T0 + 8000, 1)
    assert model.cdu_expected_return_c[0] == pytest.approx(39.367879, abs=1e-6)
    assert model.cdu_residual[0] == pytest.approx(4000 / 3747.1516 - 1, rel=1e-5)
    # in balance (20 time constants on): expected 3,600 W, measured 4,000 W -> residual +1/9
    halls = at(T0 + 8000 + 160_000, 2)
    assert model.cdu_residual[0] == pytest.approx(4000 / 3600 - 1)
    assert halls[0].energy_residual_cdu == "h1-cdu01"
    assert halls[0].energy_residual_max == pytest.approx(4000 / 3600 - 1)
    # h1-r002: 60 C reported, expected 30 C + 0.03 * 600 W = 48 C -> +12 K;
    # h1-r001: all at 61 C, its 100 W GPU expected at 30 + 0.03 * 100 = 33 C -> +28 K, the hall's largest
    assert model.rack_temp_excess_max_k[1] == pytest.approx(12.0)
    assert halls[0].gpu_temp_excess_max_k == pytest.approx(28.0)
    # expected flow at the 10 K design rise: 3,600 W / (1000 * 4000 * 10) m3/s = 0.09 L/s
    assert model.cdu_expected_flow_lps[0] == pytest.approx(0.09)


def test_plant_alarms_fire_for_the_right_assets(small_plant: Plant) -> None:
    model, dec, alarms = StateModel(small_plant), Decoder(small_plant), PlantAlarms(small_plant)
    fired: list[tuple[str, bool]] = []
    for k in range(65):
        # the loop's time constant here is 8,000 s (0.8 m3 at 0.1 L/s): the residual builds up over hours
        ts = T0 + 1000.0 * k
        msgs = site_messages(ts, seq=k)
        msgs[0] = rack("stargate/tiny/gpu/h1/h1-r001", ts, k, [100.0, 200.0, 300.0, 400.0], 500.0, temp=90.0)
        # the CDU's other rack, idle: a CDU's residual waits until every rack it serves has been heard
        msgs.append(rack("stargate/tiny/gpu/h1/h1-r002", ts, k, [0.0] * 4, 0.0, temp=30.0))
        feed(model, dec, *msgs)
        s, _ = model.snapshot(ts)
        fired += [(a.alarm_id, a.active) for a in alarms.evaluate(model, s)]
    ids = {i for i, active in fired if active}
    # h1-r001 at 90 C: over temperature and at throttle; the CDU carries 4,000 W against 1,350 W expected;
    # headroom is large; frequency 50 Hz is in band
    assert "gpu_temp_high-h1-r001" in ids and "gpu_throttle-h1-r001" in ids
    assert "energy_residual-h1-cdu01" in ids
    assert not any(i.startswith(("gpu_temp_high-h2", "headroom", "frequency", "curtailed", "stale")) for i in ids)
    assert alarms.active_count() == len(ids)


def test_headroom_and_stale_alarms(small_plant: Plant) -> None:
    model, dec, alarms = StateModel(small_plant), Decoder(small_plant), PlantAlarms(small_plant)
    fired: list[str] = []
    for k in range(7):  # the on-delay is 5 s
        msgs = [m for m in site_messages(T0 + k, seq=k) if "/hydro/fb" not in m[0] or k == 0]
        msgs = [(t, p.replace(b'"import_mw": 0.004', b'"import_mw": 0.997')) for t, p in msgs]
        feed(model, dec, *msgs)
        fired += [a.alarm_id for a in alarms.evaluate(model, model.snapshot(T0 + k)[0]) if a.active]
    assert "headroom_low-tiny" in fired  # 1 MW contract, 0.997 + 0.003 MW drawn
    feed(model, dec, *[m for m in site_messages(T0 + 15, seq=15) if "/hydro/fb" not in m[0]])
    stale = [a for a in alarms.evaluate(model, model.snapshot(T0 + 15)[0]) if a.alarm_id.startswith("stale")]
    assert [(a.alarm_id, a.asset, a.value) for a in stale] == [("stale_hydro-fb", "hydro/fb", 15.0)]


def test_snapshot_round_trip_restores_totals_and_alarms(small_plant: Plant, tmp_path: Path) -> None:
    model, dec, alarms = StateModel(small_plant), Decoder(small_plant), PlantAlarms(small_plant)
    for k in range(5):
        msgs = site_messages(T0 + 60 * k, seq=k)
        msgs[1] = rack("stargate/tiny/gpu/h2/h2-a", T0 + 60 * k, k, [1000.0] * 4, 1000.0, temp=95.0)
        feed(model, dec, *msgs)
        alarms.evaluate(model, model.snapshot(T0 + 60 * k)[0])
    before = model.snapshot(T0 + 240)[0]
    path = tmp_path / "state.npz"
    save_snapshot(path, model, alarms)
    model2, alarms2 = StateModel(small_plant), PlantAlarms(small_plant)
    assert load_snapshot(path, model2, alarms2) is None
    after = model2.snapshot(T0 + 240)[0]
    assert after.model_dump() == before.model_dump()
    assert after.erf is not None and after.erf > 0
    assert alarms2.active_count() == alarms.active_count() > 0
    # a duplicate of the last message is still recognised after the restart
    feed(model2, dec, site_messages(T0 + 240, seq=4)[0])
    assert model2.counters.msgs_duplicate == 1


def test_snapshot_of_another_plant_is_refused(small_plant: Plant, phase1: Plant, tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    save_snapshot(path, StateModel(small_plant))
    why = load_snapshot(path, StateModel(phase1))
    assert why is not None and "another plant" in why
    path.write_bytes(b"garbage")
    why = load_snapshot(path, StateModel(small_plant))
    assert why is not None and "could not be read" in why
    assert json.dumps(why)


def test_silent_racks_raise_one_alarm_per_hall_with_their_count(small_plant: Plant) -> None:
    model, dec, alarms = StateModel(small_plant), Decoder(small_plant), PlantAlarms(small_plant)
    racks = [("h1", r) for r in ("h1-r001", "h1-r002", "h1-r003")] + [("h2", "h2-a")]
    for k in range(3):
        feed(model, dec, *[rack(f"stargate/tiny/gpu/{h}/{r}", T0 + k, k, [100.0] * 4, 0.0) for h, r in racks])
        alarms.evaluate(model, model.snapshot(T0 + k)[0])
    # h1-r001 and h1-r002 fall silent; the others go on
    fired = []
    for k in range(3, 20):
        feed(model, dec, *[rack(f"stargate/tiny/gpu/{h}/{r}", T0 + k, k, [100.0] * 4, 0.0) for h, r in racks[2:]])
        fired += alarms.evaluate(model, model.snapshot(T0 + k)[0])
    stale = [a for a in fired if a.alarm_id.startswith("stale_racks")]
    assert [(a.alarm_id, a.asset, a.value, a.active) for a in stale] == [("stale_racks-h1", "hall/h1", 2.0, True)]
