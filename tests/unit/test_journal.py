"""The journal: records round-trip, torn and corrupt tails are skipped and counted, snapshots truncate it,
and a state service killed between snapshots restarts equal to an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.journal import Journal
from twin.errors import ConfigError
from twin.plant import Plant
from twin.services.sim import SimService
from twin.services.state import StateService

T0 = 1_795_300_000.0


def _records(n: int) -> list[tuple[str, bytes, float, bool]]:
    return [(f"stargate/tiny/gpu/h1/r{i}", f'{{"seq": {i}}}'.encode() * (1 + i % 5), T0 + i, i % 7 == 0)
            for i in range(n)]


@pytest.mark.parametrize("policy", ["always", "1s", "never"])
def test_records_round_trip_with_their_dup_flag(tmp_path: Path, policy: str) -> None:
    j = Journal(tmp_path / "j", fsync=policy)  # type: ignore[arg-type]
    recs = _records(300)
    for r in recs[:100]:
        j.append(*r)
    j.commit()
    for r in recs[100:]:
        j.append(*r)
    j.close()  # commits the rest
    again = Journal(tmp_path / "j", fsync=policy)  # type: ignore[arg-type]
    got = [(r.topic, r.payload, r.received_ts, r.dup) for r in again.replay()]
    assert got == recs
    assert again.corrupt_records == 0
    if policy == "always":
        assert j.fsyncs == j.commits == 2


def test_a_torn_tail_is_cut_at_the_last_whole_record_and_counted(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    for r in _records(50):
        j.append(*r)
    j.close()
    seg = tmp_path / "j" / "000000000000.wal"
    data = seg.read_bytes()
    seg.write_bytes(data[:-7])  # a crash in the middle of the last write
    again = Journal(tmp_path / "j")
    assert len(list(again.replay())) == 49
    assert again.corrupt_records == 1 and 0 < again.corrupt_bytes < len(data) // 10


def test_a_corrupt_record_ends_its_segment_and_replay_goes_on_with_the_next(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    recs = _records(40)
    for r in recs[:20]:
        j.append(*r)
    j.rotate()
    for r in recs[20:]:
        j.append(*r)
    j.close()
    seg = tmp_path / "j" / "000000000000.wal"
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped bit in the middle of the first segment
    seg.write_bytes(bytes(data))
    again = Journal(tmp_path / "j")
    got = [r.topic for r in again.replay()]
    assert got[-20:] == [r[0] for r in recs[20:]]  # the second segment whole
    assert 5 <= len(got) - 20 < 20  # the first up to the bad record
    assert again.corrupt_records == 1


def test_rotate_and_drop_before_truncate_it(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j", max_bytes=4096)
    for r in _records(10):
        j.append(*r)
    seg = j.rotate()
    assert j.segment == seg == 1
    j.append(*_records(1)[0])
    j.commit()
    j.drop_before(seg)
    assert j.segments() == [1]
    assert [r.topic for r in Journal(tmp_path / "j").replay(seg)] == [_records(1)[0][0]]
    assert not j.full
    for r in _records(200):
        j.append(*r)
    j.commit()
    assert j.full and j.full_events == 1  # the service answers with a snapshot


def test_a_bad_fsync_policy_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="always, 1s, never"):
        Journal(tmp_path / "j", fsync="sometimes")  # type: ignore[arg-type]


def _telemetry(plant: Plant, steps: int) -> list[tuple[str, bytes]]:
    sim = SimService(plant, seed=3, start_ts=T0)
    return [m for k in range(steps) for m in sim.messages_for_step(k, T0 + k)]


@pytest.mark.parametrize("policy", ["always", "1s", "never"])
def test_killed_between_snapshots_the_restart_equals_an_uninterrupted_run(small_plant: Plant, tmp_path: Path,
                                                                          policy: str) -> None:
    msgs = _telemetry(small_plant, 40)
    crash_at, snap_at = 2 * len(msgs) // 3, len(msgs) // 3
    whole = StateService(small_plant)
    for topic, payload in msgs:
        whole.handle(topic, payload, T0)
    expected = whole.emit(T0 + 60)

    path = tmp_path / "state" / "tiny.npz"
    first = StateService(small_plant, snapshot_path=path, journal_fsync=policy)  # type: ignore[arg-type]
    for i, (topic, payload) in enumerate(msgs[:crash_at]):
        first.ingest(topic, payload, T0)
        if i % 50 == 49:
            first._commit()  # a batch: journaled, then acknowledged
        if i == snap_at:
            first.save()
            held = len(first.clock.held)  # messages of a later window, waiting for the window to close
    first._commit()
    # kill -9 here: no save, no close. The broker redelivers what was not acknowledged: nothing here.
    second = StateService(small_plant, snapshot_path=path, journal_fsync=policy)  # type: ignore[arg-type]
    # the held messages were not in the snapshot: journaled again after it
    assert second.restored is None and second.replayed == crash_at - snap_at - 1 + held
    for topic, payload in msgs[crash_at:]:
        second.ingest(topic, payload, T0)
    got = second.emit(T0 + 60)
    assert got.model_dump(exclude={"alarms_active"}) == expected.model_dump(exclude={"alarms_active"})
    assert got.msgs_in == len(msgs) and got.msgs_duplicate == 0 and got.seq_gaps == 0


def test_a_redelivery_after_the_restart_counts_as_duplicate_and_changes_nothing(small_plant: Plant,
                                                                                tmp_path: Path) -> None:
    msgs = _telemetry(small_plant, 20)
    path = tmp_path / "state" / "tiny.npz"
    first = StateService(small_plant, snapshot_path=path)
    for topic, payload in msgs:
        first.ingest(topic, payload, T0)
    first._commit()  # journaled, but the acks never reached the broker: it sends the last 30 again, dup set
    before = first.emit(T0 + 30)
    second = StateService(small_plant, snapshot_path=path)
    for topic, payload in msgs[-30:]:
        second.ingest(topic, payload, T0, dup=True)
    after = second.emit(T0 + 30)
    assert after.msgs_duplicate == 30 and after.msgs_in == len(msgs) + 30
    assert after.model_dump(exclude={"msgs_in", "msgs_duplicate", "alarms_active"}) == \
        before.model_dump(exclude={"msgs_in", "msgs_duplicate", "alarms_active"})
