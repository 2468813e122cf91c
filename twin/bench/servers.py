"""Servers the benchmarks start for themselves (outside pytest): Mosquitto on a free port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MOSQUITTO", "free_port", "mosquitto_server"]

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mosquitto_server(workdir: Path) -> Iterator[int]:
    """A Mosquitto of the benchmark's own, loopback only; yields its port and stops it after."""
    if not Path(MOSQUITTO).exists():
        raise RuntimeError(f"mosquitto not found at {MOSQUITTO}: apt-get install mosquitto (scripts/test does it)")
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\n"
                    "max_queued_messages 1000000\nlog_dest stderr\nlog_type error\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"mosquitto ({MOSQUITTO}) did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
