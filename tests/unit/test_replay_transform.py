"""What a replayed message becomes (pure): source, rebased ts, site, seq across loops, twin outputs refused."""

from __future__ import annotations

import orjson

from adapters.logs.replay import Replayer, ReplayOptions
from adapters.logs.telemetry_log import LogRecord
from twin.topics import is_twin_output


def rec(topic: str = "stargate/narvik/hydro/feeder-a", ts: float = 100.0, seq: int = 0, t: float = 100.5) -> LogRecord:
    return LogRecord(t, topic, 1, False, {"ts": ts, "seq": seq, "source": "sim", "import_mw": 1.0})


def test_source_becomes_replay_unless_kept() -> None:
    topic, payload = Replayer([], ReplayOptions()).transform(rec())
    assert topic == "stargate/narvik/hydro/feeder-a"
    assert orjson.loads(payload) == {"ts": 100.0, "seq": 0, "source": "replay", "import_mw": 1.0}
    _, payload = Replayer([], ReplayOptions(keep_source=True)).transform(rec())
    assert orjson.loads(payload)["source"] == "sim"


def test_rebase_shifts_ts_and_site_rewrites_the_topic() -> None:
    r = Replayer([], ReplayOptions(site="oslo"))
    r.shift = 1000.25
    topic, payload = r.transform(rec(ts=100.5))
    assert topic == "stargate/oslo/hydro/feeder-a"
    assert orjson.loads(payload)["ts"] == 1100.75


def test_later_loops_continue_ts_and_seq() -> None:
    r = Replayer([], ReplayOptions(loop=True))
    for s in range(3):
        r.transform(rec(seq=s, ts=100.0 + s))
    r._next_loop(3.0)
    d = orjson.loads(r.transform(rec(seq=0, ts=100.0))[1])
    assert (d["seq"], d["ts"]) == (3, 103.0)


def test_raw_payloads_go_out_unchanged_and_twin_outputs_are_recognised() -> None:
    raw = LogRecord(1.0, "stargate/narvik/gpu/h1/r1", 1, False, None, b"\xff not json")
    assert Replayer([], ReplayOptions()).transform(raw)[1] == b"\xff not json"
    assert is_twin_output("stargate/narvik/twin/state")
    assert is_twin_output("stargate/x/twin/alarm/a")
    assert not is_twin_output("stargate/narvik/gpu/h1/twin")
    assert not is_twin_output("other/narvik/twin/state")


def test_time_and_topic_filters() -> None:
    r = Replayer([], ReplayOptions(start=100.0, end=200.0, topics=["stargate/+/hydro/#"]))
    assert r.selected(rec(t=100.0)) and not r.selected(rec(t=99.9)) and not r.selected(rec(t=200.0))
    assert not r.selected(rec(topic="stargate/narvik/ambient/ws1", t=150.0))


def test_edited_log_bytes_equal_the_re_encoded_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The fast path (editing the payload bytes of the line) gives exactly what encoding the changed value gives."""
    from adapters.logs.telemetry_log import LogReader, TelemetryLogWriter

    path = tmp_path / "x.jsonl"
    payloads = [
        {"ts": 1795300000.1, "seq": 7, "source": "sim", "gpu_power_w": [1.5, 2e-05, 3.0], "aux_power_w": 10.0},
        {"ts": 1795300001, "seq": 8, "source": "adapter/dcgm", "nested": {"ts": 5, "source": "x"}},
        {"seq": 9, "source": "replay", "v": "a \"quoted\" text"},
        [1, 2, 3],
    ]
    with TelemetryLogWriter(path) as w:
        for i, p in enumerate(payloads):
            w.write(100.0 + i, "stargate/narvik/hydro/fa", orjson.dumps(p))
    recs = [r for r in LogReader(path) if isinstance(r, LogRecord)]
    assert all(r.text is not None for r in recs)
    r = Replayer([], ReplayOptions())
    r.shift = 1000.0
    r._seq_offset["stargate/narvik/hydro/fa"] = 100
    for rec in recs:
        want = rec.payload
        if isinstance(want, dict):
            want = dict(want, source="replay")
            if "ts" in want:
                want["ts"] = round(want["ts"] + 1000.0, 6)
            want["seq"] += 100
        assert r.transform(rec)[1] == orjson.dumps(want)
    foreign = LogRecord(1.0, "a/b", 1, False, {"ts": 1.0, "source": "sim"}, text=None)
    assert orjson.loads(r.transform(foreign)[1]) == {"ts": 1001.0, "source": "replay"}


def test_pacing_by_the_twins_state() -> None:
    from adapters.bus.mqtt import parse_broker_url
    from adapters.logs.replay_pace import StatePacer

    p = StatePacer(parse_broker_url("mqtt://127.0.0.1:1"), "narvik", lag_s=5.0)  # not connected: logic only
    assert p.allows(1000.0) and p.allows(1005.0) and not p.allows(1005.5)  # no state yet: lag from the first
    p.state_ts = 1003.0
    assert p.allows(1008.0) and not p.allows(1008.5)
    assert p.waits == 2


def test_pacing_asks_with_the_payloads_event_time_not_the_receive_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A recording of a run faster than real time: t (receive time) is far from ts (event time, the twin's clock)."""
    from adapters.logs.telemetry_log import TelemetryLogWriter

    log = tmp_path / "rec.jsonl"
    with TelemetryLogWriter(log) as w:
        for i in range(5):  # 10 s of event time per message, received 10 ms apart, a day after
            w.write(1_800_000_000.0 + 0.01 * i, "stargate/narvik/hydro/feeder-a",
                    orjson.dumps({"ts": 1_799_900_000.0 + 10 * i, "seq": i, "source": "sim"}))
        w.write(1_800_000_001.0, "stargate/narvik/twin/health/x", b"online")  # no ts: falls back to t

    class Pub:
        unacked = 0

        def publish(self, *a: object, **k: object) -> None: ...

        def idle(self, s: float) -> None: ...

        def flush(self, timeout: float) -> bool:
            return True

    asked: list[float] = []
    r = Replayer([log], ReplayOptions(speed=None))
    r.run(Pub(), pace=lambda ts: asked.append(ts) or True)  # type: ignore[arg-type]
    assert asked == [1_799_900_000.0 + 10 * i for i in range(5)]  # the twin output is not replayed, not asked
    rebased = Replayer([log], ReplayOptions(speed=None, rebase_to=1_900_000_000.0))
    asked.clear()
    rebased.run(Pub(), pace=lambda ts: asked.append(ts) or True)  # type: ignore[arg-type]
    shift = 1_900_000_000.0 - 1_800_000_000.0
    assert asked == [1_799_900_000.0 + 10 * i + shift for i in range(5)]
    assert r.event_time(LogRecord(5.0, "a/b", 1, False, None, raw=b"x")) == 5.0
