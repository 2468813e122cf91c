"""The state model on a hand-built small plant: KPIs against hand-computed answers, data quality."""

from __future__ import annotations

import json

import pytest

from twin.live.decode import Decoded, Decoder, Rejected
from twin.live.state import Counters, SeqTracker, StateModel
from twin.plant import Plant

T0 = 1_795_300_000.0


def msg(topic: str, **fields: object) -> tuple[str, bytes]:
    return topic, json.dumps({"source": "sim", **fields}).encode()


def rack(rack_topic: str, ts: float, seq: int, power: list[float], aux: float, temp: float = 50.0,
         util: float = 0.5) -> tuple[str, bytes]:
    n = len(power)
    return msg(rack_topic, ts=ts, seq=seq, gpu_power_w=power, gpu_util=[util] * n, gpu_temp_c=[temp] * n,
               aux_power_w=aux)


def feed(model: StateModel, dec: Decoder, *msgs: tuple[str, bytes]) -> list[bool]:
    out = []
    for topic, payload in msgs:
        d = dec.decode(topic, payload)
        assert isinstance(d, Decoded), d
        out.append(model.apply(d))
    return out


@pytest.fixture
def tiny(small_plant: Plant) -> tuple[StateModel, Decoder]:
    return StateModel(small_plant), Decoder(small_plant)


def site_messages(ts: float, seq: int = 0) -> list[tuple[str, bytes]]:
    return [
        rack("stargate/tiny/gpu/h1/h1-r001", ts, seq, [100.0, 200.0, 300.0, 400.0], 500.0, temp=61.0),
        rack("stargate/tiny/gpu/h2/h2-a", ts, seq, [1000.0] * 4, 1000.0, temp=70.0, util=1.0),
        msg("stargate/tiny/hydro/fa", ts=ts, seq=seq, available_mw=0.5, import_mw=0.004, frequency_hz=50.0,
            price_eur_mwh=20.0),
        msg("stargate/tiny/hydro/fb", ts=ts, seq=seq, available_mw=0.6, import_mw=0.003, frequency_hz=50.0,
            price_eur_mwh=20.0),
        msg("stargate/tiny/coolant/h1-cdu01", ts=ts, seq=seq, supply_c=30.0, return_c=40.0, flow_lps=0.1,
            pump_kw=0.1),
        msg("stargate/tiny/heat/dh", ts=ts, seq=seq, delivered_kw=2.0, demand_kw=3.0, supply_c=75.0,
            return_c=45.0, heat_pump_kw=0.5),
        msg("stargate/tiny/ambient/ws1", ts=ts, seq=seq, temp_c=-3.5),
    ]


def test_plant_state_kpis_by_hand(tiny: tuple[StateModel, Decoder]) -> None:
    model, dec = tiny
    feed(model, dec, *site_messages(T0))
    s, halls = model.snapshot(T0)
    # racks: (100+200+300+400) + 500 = 1,500 W and 4 x 1,000 + 1,000 = 5,000 W
    assert s.it_mw == pytest.approx(0.0065)
    assert s.facility_mw == pytest.approx(0.007)
    assert s.pue == pytest.approx(0.007 / 0.0065)
    assert s.hydro_available_mw == pytest.approx(1.1)
    assert s.headroom_mw == pytest.approx(min(1.1, 1.0) - 0.007)  # contract 1 MW binds
    # CDU: 1000 kg/m3 * 4000 J/(kg K) * 0.1e-3 m3/s * 10 K = 4,000 W
    assert s.heat_to_liquid_mw == pytest.approx(0.004)
    assert s.liquid_capture_ratio == pytest.approx(0.004 / 0.0065)
    assert s.heat_reused_mw == pytest.approx(0.002) and s.heat_pump_mw == pytest.approx(0.0005)
    assert s.gpus_total == 32 and s.gpus_reporting == 8
    assert s.gpu_util_mean == pytest.approx(0.75) and s.gpu_temp_max_c == 70.0
    assert s.coolant_return_max_c == 40.0 and s.ambient_c == -3.5
    assert s.erf is None  # no energy integrated yet
    assert (s.msgs_in, s.msgs_rejected, s.msgs_duplicate, s.seq_gaps) == (7, 0, 0, 0)
    h1, h2 = halls
    assert (h1.hall, h1.it_mw, h1.gpus_reporting, h1.heat_to_liquid_mw) == ("h1", pytest.approx(0.0015), 4,
                                                                             pytest.approx(0.004))
    assert h1.liquid_capture_ratio == pytest.approx(0.004 / 0.0015)
    assert h1.coolant_return_max_c == 40.0 and h1.flow_lps == pytest.approx(0.1)
    assert h2.it_mw == pytest.approx(0.005) and h2.coolant_return_max_c is None and h2.gpu_temp_max_c == 70.0


def test_erf_integrates_energy_in_event_time(tiny: tuple[StateModel, Decoder]) -> None:
    model, dec = tiny
    feed(model, dec, *site_messages(T0))
    model.snapshot(T0)
    feed(model, dec, *site_messages(T0 + 3600, seq=1))
    s, _ = model.snapshot(T0 + 3600)
    # one hour at 0.007 MW facility and 0.002 MW reused
    assert model.energy_facility_mwh == pytest.approx(0.007)
    assert model.energy_reused_mwh == pytest.approx(0.002)
    assert s.erf == pytest.approx(0.002 / 0.007)


def test_a_rack_message_changes_it_power_by_exactly_its_power(tiny: tuple[StateModel, Decoder]) -> None:
    model, dec = tiny
    feed(model, dec, *site_messages(T0))
    before = model.snapshot(T0)[0].it_mw
    feed(model, dec, rack("stargate/tiny/gpu/h1/h1-r002", T0, 0, [250.0, 250.0, 250.0, 250.0], 700.0))
    assert model.snapshot(T0)[0].it_mw - before == pytest.approx(1700 / 1e6, abs=1e-12)


def test_newer_value_replaces_older_and_late_never_overwrites(tiny: tuple[StateModel, Decoder]) -> None:
    model, dec = tiny
    r = "stargate/tiny/gpu/h1/h1-r001"
    assert feed(model, dec, rack(r, T0 + 2, 2, [100.0] * 4, 0.0), rack(r, T0 + 1, 1, [999.0] * 4, 0.0)) == [
        True, False]
    s, _ = model.snapshot(T0 + 2)
    assert s.it_mw == pytest.approx(400 / 1e6)
    assert model.counters.msgs_late == 1 and s.seq_gaps == 0  # seq 1 arrived late, before the first seen


def test_duplicates_are_dropped_and_counted(tiny: tuple[StateModel, Decoder]) -> None:
    model, dec = tiny
    m = rack("stargate/tiny/gpu/h1/h1-r001", T0, 5, [100.0] * 4, 0.0)
    assert feed(model, dec, m, m, m) == [True, False, False]
    s, _ = model.snapshot(T0)
    assert s.msgs_duplicate == 2 and s.msgs_in == 3 and s.it_mw == pytest.approx(400 / 1e6)


def test_same_seq_from_another_source_is_not_a_duplicate(tiny: tuple[StateModel, Decoder]) -> None:
    model, dec = tiny
    topic, payload = rack("stargate/tiny/gpu/h1/h1-r001", T0, 0, [100.0] * 4, 0.0)
    other = payload.replace(b'"source": "sim"', b'"source": "replay"')
    assert feed(model, dec, (topic, payload), (topic, other)) == [True, True]


def test_seq_tracker_counts_gaps_late_fills_and_redeliveries() -> None:
    c = Counters()
    t = SeqTracker(c)
    k = ("gpu", 0, "sim")
    # ts follows seq (1 s a message), as a publisher sends them
    assert [t.accept(k, s, T0 + s) for s in (0, 1, 4, 2, 2, 3, 5)] == [True, True, True, True, False, True, True]
    assert c.seq_gaps == 0 and c.msgs_late == 2 and c.msgs_duplicate == 1
    assert t.accept(k, 10, T0 + 10) and c.seq_gaps == 4
    assert not t.accept(k, 0, T0)  # seq 0 within the window was seen: a redelivery
    assert t.accept(k, 200, T0 + 200) and c.seq_gaps == 4 + 189
    # a redelivery far below the window, seq near 0, older ts: a duplicate, not a publisher restart
    assert not t.accept(k, 0, T0) and not t.accept(k, 3, T0 + 3) and c.msgs_duplicate == 4
    assert t.restarts == 0 and c.seq_gaps == 4 + 189


def test_seq_tracker_redelivery_with_the_dup_flag_is_a_duplicate_at_any_distance() -> None:
    c = Counters()
    t = SeqTracker(c)
    k = ("gpu", 0, "sim")
    assert all(t.accept(k, s, T0 + s) for s in range(400))
    # the broker sends 1..400 again after its restart; even a newer ts with the dup flag is no restart
    assert not any(t.accept(k, s, T0 + s, dup=True) for s in range(400))
    assert not t.accept(k, 5, T0 + 999, dup=True)
    assert c.msgs_duplicate == 401 and c.msgs_late == 0 and t.restarts == 0
    assert t._streams[k][0] == 399  # the stream was not reset


@pytest.mark.parametrize("old_last", [3, 63, 64, 500, 10_000])
def test_seq_tracker_publisher_restart_is_recognised_by_ts_whatever_the_old_seq(old_last: int) -> None:
    c = Counters()
    t = SeqTracker(c)
    k = ("gpu", 0, "sim")
    assert all(t.accept(k, s, T0 + s) for s in range(old_last + 1))
    later = T0 + old_last + 60  # the restarted publisher numbers from 0 again, at a newer event time
    assert [t.accept(k, s, later + s) for s in range(5)] == [True] * 5
    assert t.restarts == 1 and c.msgs_duplicate == 0 and c.seq_gaps == 0 and c.msgs_late == 0
    assert t._streams[k][0] == 4


def test_stale_lists_silent_assets_after_stale_after_s(tiny: tuple[StateModel, Decoder]) -> None:
    model, dec = tiny
    feed(model, dec, *site_messages(T0))
    assert model.snapshot(T0 + 5)[0].stale == []  # not yet run for stale_after_s (10 s)
    feed(model, dec, rack("stargate/tiny/gpu/h2/h2-a", T0 + 11, 1, [1000.0] * 4, 1000.0))
    s, _ = model.snapshot(T0 + 11)
    assert "gpu/h2-a" not in s.stale
    assert {"gpu/h1-r001", "gpu/h1-r002", "coolant/h1-cdu01", "hydro/fa", "heat/dh", "ambient/ws1"} <= set(s.stale)
    assert s.gpus_reporting == 4  # h1-r001 went stale
    assert s.it_mw == pytest.approx(0.0065)  # it_mw stays over the latest valid message of each asset


def test_reject_counts(tiny: tuple[StateModel, Decoder]) -> None:
    model, _ = tiny
    model.reject()
    s, _ = model.snapshot(T0)
    assert (s.msgs_in, s.msgs_rejected) == (1, 1)


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("stargate/tiny/gpu/h1/h1-r999", None, "unknown gpu asset 'h1-r999'"),
    ("stargate/tiny/gpu/h2/h1-r001", None, "is in hall 'h1', not 'h2'"),
    ("stargate/other/gpu/h1/h1-r001", None, "site 'other' is not this twin's site 'tiny'"),
    ("stargate/tiny/water/x", None, "unknown telemetry domain 'water'"),
    ("stargate/tiny/gpu/h1-r001", None, "wrong number of levels"),
    ("factory/tiny/gpu/h1/h1-r001", None, "is not stargate/"),
    ("stargate/tiny/coolant/nope", None, "unknown coolant asset"),
    ("stargate/tiny/gpu/h1/h1-r001", b'{"ts": 1', "invalid payload: Input data was truncated"),
    ("stargate/tiny/gpu/h1/h1-r001", b"x" * 70_000, "exceeds the limit of 65536"),
])
def test_decoder_rejects_with_a_reason(small_plant: Plant, topic: str, payload: bytes | None, reason: str) -> None:
    if payload is None:
        payload = rack(topic, T0, 0, [1.0] * 4, 0.0)[1]
    r = Decoder(small_plant).decode(topic, payload)
    assert isinstance(r, Rejected) and reason in r.reason, r


def test_decoder_checks_list_length_against_the_plant(small_plant: Plant) -> None:
    topic, payload = rack("stargate/tiny/gpu/h1/h1-r001", T0, 0, [1.0] * 72, 0.0)
    r = Decoder(small_plant).decode(topic, payload)
    assert isinstance(r, Rejected) and "has 4 GPUs in the plant config, the message lists 72" in r.reason


def test_decoder_reason_names_the_field(small_plant: Plant) -> None:
    topic, payload = rack("stargate/tiny/gpu/h1/h1-r001", T0, 0, [1.0] * 4, 0.0, util=1.5)
    r = Decoder(small_plant).decode(topic, payload)
    assert isinstance(r, Rejected) and "Expected `float` <= 1.0 - at `$.gpu_util[0]`" in r.reason


def test_gpus_missing_from_a_message_do_not_count_as_reporting(tiny: tuple[StateModel, Decoder]) -> None:
    model, dec = tiny
    topic, payload = msg("stargate/tiny/gpu/h1/h1-r001", ts=T0, seq=0, gpu_power_w=[100.0, 200.0, 300.0, 0.0],
                         gpu_util=[0.2, 0.9, 0.4, 0.0], gpu_temp_c=[40.0, 99.0, 50.0, 20.0], aux_power_w=0.0,
                         gpu_missing=[1, 3])
    feed(model, dec, (topic, payload))
    s, halls = model.snapshot(T0)
    assert s.gpus_reporting == 2 and halls[0].gpus_reporting == 2
    assert s.it_mw == pytest.approx(600 / 1e6)  # held values still count in power
    assert s.gpu_util_mean == pytest.approx(0.3) and s.gpu_temp_max_c == 50.0  # over slots 0 and 2 only
    assert halls[0].gpu_util_mean == pytest.approx(0.3) and halls[0].gpu_temp_max_c == 50.0


@pytest.mark.parametrize(("missing", "reason"), [("[4]", "beyond the 4 GPUs"), ("[1, 1]", "a slot twice"),
                                                 ("[-1]", "gpu_missing")])
def test_bad_gpu_missing_is_rejected(small_plant: Plant, missing: str, reason: str) -> None:
    topic, payload = rack("stargate/tiny/gpu/h1/h1-r001", T0, 0, [100.0] * 4, 0.0)
    r = Decoder(small_plant).decode(topic, payload[:-1] + f', "gpu_missing": {missing}}}'.encode())
    assert isinstance(r, Rejected) and reason in r.reason, r
