"""The builders behind ``twin run`` and ``twin up``: who acknowledges only when told (docs/delivery.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.plant import Plant, load_plant
from twin.services import build
from twin.settings import load_settings


@pytest.fixture(scope="module")
def phase1() -> Plant:
    return load_plant("phase1")


@pytest.mark.parametrize(("snapshot", "journal_fsync", "state_acks"), [
    (True, "1s", True),  # journal then ack
    (True, "off", False),  # snapshots without a journal: paho acks on receipt
    (False, "1s", False),  # no snapshot, so no journal
])
def test_ack_rule_per_service(phase1: Plant, tmp_path: Path, snapshot: bool, journal_fsync: str,
                              state_acks: bool) -> None:
    s = load_settings(data_dir=tmp_path, snapshot=snapshot, journal_fsync=journal_fsync)
    state = build.state_service(s, phase1)
    assert build.manual_ack(state) is state_acks
    assert build.manual_ack(build.sink_service(s, phase1)) is True
    assert build.manual_ack(build.forecast_service(s, phase1)) is False
    assert build.manual_ack(build.aggregate_service(s, phase1)) is False
    # the embedded broker (amqtt, a demo) gets acks on receipt from everyone
    assert build.manual_ack(state, embedded=True) is False
    assert build.manual_ack(build.sink_service(s, phase1), embedded=True) is False
