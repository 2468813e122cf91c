"""Servers the benchmarks start for themselves (outside pytest): Mosquitto and VictoriaMetrics on free ports."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MOSQUITTO", "VICTORIA", "free_port", "mosquitto_server", "stop_process", "victoria_metrics",
           "victoria_timestamps"]

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
VICTORIA = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 30.0) -> int | None:
    """SIGTERM (if still running), then SIGKILL after ``grace_s``; the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def victoria_timestamps(url: str, match: str, timeout: float = 120.0) -> list[int]:
    """Every stored timestamp (ms) of the series ``match`` selects, through VictoriaMetrics' export API."""
    data = urllib.parse.urlencode({"match[]": match}).encode()
    with urllib.request.urlopen(f"{url}/api/v1/export", data=data, timeout=timeout) as r:
        return [t for ln in r.read().decode().splitlines() if ln.strip() for t in json.loads(ln)["timestamps"]]


@contextlib.contextmanager
def mosquitto_server(workdir: Path, limits: str = "tuned") -> Iterator[int]:
    """A Mosquitto of the benchmark's own, loopback only; yields its port and stops it after.

    ``limits``: ``tuned`` (unlimited in flight, 1,000,000 queued: to hold a backlog for a drain), ``inflight``
    (the stock in-flight window of 20, the queue raised to hold the backlog), ``stock`` (no limit lines)."""
    if not Path(MOSQUITTO).exists():
        raise RuntimeError(f"mosquitto not found at {MOSQUITTO}: apt-get install mosquitto (scripts/test does it)")
    port = free_port()
    conf = workdir / f"mosquitto-{port}.conf"
    lines = {"tuned": "max_inflight_messages 0\nmax_queued_messages 1000000\n",
             "inflight": "max_queued_messages 1000000\n", "stock": ""}[limits]
    conf.write_text(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n{lines}"
                    "log_dest stderr\nlog_type error\n")
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
        stop_process(proc, 10)


@contextlib.contextmanager
def victoria_metrics(workdir: Path) -> Iterator[str]:
    """A VictoriaMetrics of the benchmark's own; yields its URL, stops it (SIGTERM) after."""
    if not Path(VICTORIA).exists():
        raise RuntimeError(f"victoria-metrics not found at {VICTORIA}: apt-get install victoria-metrics")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([VICTORIA, f"-storageDataPath={workdir / 'vm'}", f"-httpListenAddr=127.0.0.1:{port}",
                             "-search.latencyOffset=0s", "-loggerLevel=ERROR"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                    if r.read().strip() == b"OK":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("victoria-metrics did not start")
            time.sleep(0.1)
        yield url
    finally:
        stop_process(proc, 30)
