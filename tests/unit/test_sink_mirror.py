"""The optional downsampled mirror of raw telemetry: off by default; one line per asset per window."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.sink.line_files import LineFileWriter
from twin.lineproto import parse_line
from twin.services.sink import SinkService


def _rack(ts: float, seq: int) -> bytes:
    return json.dumps({"ts": ts, "seq": seq, "source": "sim", "gpu_power_w": [1000.0, 900.0],
                       "gpu_util": [0.5, 0.7], "gpu_temp_c": [60.0, 61.0], "aux_power_w": 500.0}).encode()


def test_mirror_is_off_by_default(tmp_path: Path) -> None:
    sink = SinkService("narvik", LineFileWriter(tmp_path / "lines"), spool_dir=tmp_path / "spool")
    assert not any("/gpu/" in s or s.endswith("/#") for s in sink.subscriptions)
    assert sink.lines_for("stargate/narvik/gpu/h1/h1-r001", _rack(1795300000.0, 0)) == []


def test_mirror_keeps_the_first_message_of_each_window_per_asset(tmp_path: Path) -> None:
    sink = SinkService("narvik", LineFileWriter(tmp_path / "lines"), spool_dir=tmp_path / "spool", mirror_s=10.0)
    assert "stargate/narvik/gpu/#" in sink.subscriptions
    t0 = 1795300000.0
    lines = []
    for i in range(26):
        lines += sink.lines_for("stargate/narvik/gpu/h1/h1-r001", _rack(t0 + i, i))
        lines += sink.lines_for("stargate/narvik/gpu/h1/h1-r002", _rack(t0 + i + 0.5, i))
    parsed = [parse_line(ln) for ln in lines]
    assert [(p.tags["asset"], p.t_ns) for p in parsed] == [
        ("h1-r001", 1795300000000000000), ("h1-r002", 1795300000500000000),
        ("h1-r001", 1795300010000000000), ("h1-r002", 1795300010500000000),
        ("h1-r001", 1795300020000000000), ("h1-r002", 1795300020500000000)]
    assert parsed[0].measurement == "raw_gpu" and parsed[0].fields["gpu_power_w_sum"] == 1900.0
    # invalid telemetry is not mirrored (the state service dead-letters it)
    assert sink.lines_for("stargate/narvik/gpu/h1/h1-r003", b'{"ts": 1795300000.0, "seq": "x"}') == []
    assert sink.lines_for("stargate/narvik/hydro/feeder-a", b"not json") == []
