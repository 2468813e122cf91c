"""``twin record`` as a user runs it: rotation, --count, Ctrl-C leaves a complete gzip file."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.bus.mqtt import parse_broker_url
from adapters.bus.publisher import FastPublisher
from adapters.logs.telemetry_log import LogError, LogReader, iter_log
from tests.conftest import REPO
from tests.servers import MosquittoServer, env_with_venv

pytestmark = pytest.mark.e2e

TWIN = [sys.executable, "-m", "twin.cli"]


def _publish_until_exit(url: str, site: str, proc: subprocess.Popen[str], stop_after: int | None = None,
                        timeout: float = 60.0) -> int:
    """Publish numbered messages every 20 ms until the recorder exits (or, with stop_after, SIGINT it)."""
    deadline = time.monotonic() + timeout
    seq = 0
    with FastPublisher(parse_broker_url(url)) as pub:
        while proc.poll() is None and time.monotonic() < deadline:
            payload = {"ts": 1_795_300_000.0 + seq, "seq": seq, "source": "sim", "temp_c": 1.0}
            pub.publish(f"stargate/{site}/ambient/ws1", json.dumps(payload).encode())
            pub.publish(f"stargate/{site}/twin/health/x", b"online")  # not JSON: payload_b64
            seq += 1
            if stop_after is not None and seq == stop_after:
                proc.send_signal(signal.SIGINT)
            pub.idle(0.02)
    return seq


def _wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 120.0) -> str:
    """Wait until ``text`` is on the process' stderr; the line that holds it.

    Reads the pipe's file descriptor itself: ``select`` on the descriptor with ``readline()`` on the
    buffered text stream stalls when two lines arrive in one read (the second waits in the stream's
    buffer, the descriptor never becomes readable again), as on a loaded machine.
    """
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, f"no {text!r} on stderr: {seen!r}"
        if select.select([fd], [], [], 1.0)[0]:
            seen += os.read(fd, 65536)
    return next(line for line in seen.decode().splitlines() if text in line)


def test_record_rotates_and_stops_after_count(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl"
    proc = subprocess.Popen([*TWIN, "record", "--broker", mosquitto.url, "--topic", f"stargate/{site}/#",
                             "--out", str(out), "--count", "200", "--rotate-time", "1s"],
                            env=env_with_venv(), cwd=REPO, stderr=subprocess.PIPE, text=True)
    _publish_until_exit(mosquitto.url, site, proc)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    files = sorted(tmp_path.glob("rec.*.jsonl"))
    assert len(files) >= 2 and files[0].name == "rec.00000.jsonl"
    lines = [d for f in files for d in iter_log(f)]
    assert len(lines) == 200 and "200 messages" in err
    seqs = [d["payload"]["seq"] for d in lines if "payload" in d]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # none lost once subscribed
    assert {d["payload_b64"] for d in lines if "payload_b64" in d} == {"b25saW5l"}
    ts = [d["t"] for d in lines]
    assert ts == sorted(ts)
    for f in files:  # each part spans less than the rotation period
        part = [d["t"] for d in iter_log(f)]
        assert part[-1] - part[0] < 1.0


def test_ctrl_c_leaves_a_complete_gzip_log(mosquitto: MosquittoServer, site: str, tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl.gz"
    proc = subprocess.Popen([*TWIN, "record", "--broker", mosquitto.url, "--topic", f"stargate/{site}/ambient/#",
                             "--out", str(out), "--log-level", "INFO"], env=env_with_venv(), cwd=REPO,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_line(proc, "twin record: recording")  # subscribed: a SIGINT now reaches its handler
    sent = _publish_until_exit(mosquitto.url, site, proc, stop_after=100)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    recs = list(LogReader(out))
    assert recs and not any(isinstance(r, LogError) for r in recs)  # closed properly: no truncated stream
    assert 0 < len(recs) <= sent and f"{len(recs):,} messages" in err


def test_ctrl_c_stops_a_recorder_still_waiting_for_the_broker(tmp_path: Path) -> None:
    from tests.servers import free_port

    proc = subprocess.Popen([*TWIN, "record", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--out",
                             str(tmp_path / "x.jsonl")], env=env_with_venv(), cwd=REPO, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = _wait_for_line(proc, "not connected yet")  # it is up, waiting, and says why
        assert "connection refused; is it running? --broker or TWIN_BROKER" in line
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "stopped before the broker" in err, err
    assert "Traceback" not in err and "lost" not in err
    assert not (tmp_path / "x.jsonl").exists()
