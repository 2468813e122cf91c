"""Real servers for integration tests: Mosquitto, NATS (JetStream + MQTT) and VictoriaMetrics, each its own process.

Each server runs on a port the OS hands out, with its own config and data directory
under the test's tmp dir, so a test can kill (SIGKILL) and restart it. Only the
processes started here are ever signalled, by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from twin.lineproto import ts_ns

__all__ = ["MosquittoServer", "NatsServer", "VictoriaMetricsServer", "free_port", "wait_port"]

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
VICTORIA = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
HINT = "run the README's test command (scripts/test), which installs it from Debian's packages"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class MosquittoServer:
    """A Mosquitto broker of the test's own: ``start()``, ``kill()``, ``restart()``, ``url``.

    ``stock``: Mosquitto's own limits (no ``max_inflight_messages`` / ``max_queued_messages`` lines: 20 in
    flight to a client, 1,000 queued), as a user who never tuned it has; else the limits of ``deploy/mosquitto``.
    """

    def __init__(self, workdir: Path, *, port: int | None = None, persistence: bool = False,
                 extra_config: str = "", allow_anonymous: bool = True, stock: bool = False) -> None:
        if not Path(MOSQUITTO).exists():
            raise RuntimeError(f"mosquitto not found at {MOSQUITTO}: {HINT}")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.extra_config = extra_config
        self.allow_anonymous = allow_anonymous
        self.stock = stock
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        lines = [
            "user root",
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
        ]
        if not self.stock:
            lines += ["max_queued_messages 1000000", "max_inflight_messages 0",
                      "log_dest stderr", "log_type error", "log_type warning"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/", "autosave_interval 1"]
        return "\n".join(lines) + "\n" + self.extra_config

    def start(self) -> MosquittoServer:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text())
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
        try:
            wait_port(self.port)
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"mosquitto did not start: {self.log_path.read_text()[-2000:]}") from None
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()


class NatsServer:
    """A single NATS server with JetStream and its MQTT gateway (MQTT 3.1.1, sessions in JetStream), stock
    limits (``max_ack_pending`` 1,024 per session): ``start()``, ``kill()``, ``url`` (the MQTT listener)."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        if not Path(NATS).exists():
            raise RuntimeError(f"nats-server not found at {NATS}: {HINT}")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.client_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "nats.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        return (f'server_name: "twin-test-{self.port}"\n'
                f"listen: 127.0.0.1:{self.client_port}\n"
                f'jetstream {{ store_dir: "{self.workdir / "js"}" }}\n'
                f"mqtt {{ listen: 127.0.0.1:{self.port} }}\n")

    def start(self) -> NatsServer:
        conf = self.workdir / "nats.conf"
        conf.write_text(self.config_text())
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen([NATS, "-c", str(conf)], stdout=log, stderr=log)
        try:
            wait_port(self.port, timeout=30)
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"nats-server did not start: {self.log_path.read_text()[-2000:]}") from None
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()


class VictoriaMetricsServer:
    """VictoriaMetrics: accepts influxdb-client's ``/api/v2/write``; read back with ``export()``."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        if not Path(VICTORIA).exists():
            raise RuntimeError(f"victoria-metrics not found at {VICTORIA}: {HINT}")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "victoria-metrics.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VictoriaMetricsServer:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [VICTORIA, f"-storageDataPath={self.workdir / 'data'}", f"-httpListenAddr=127.0.0.1:{self.port}",
             "-search.latencyOffset=0s", "-loggerLevel=ERROR"],
            stdout=log, stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, urllib.error.URLError), \
                    urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                if r.read().strip() == b"OK":
                    return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"victoria-metrics did not start: {self.log_path.read_text()[-2000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def restart(self) -> None:
        self.stop()
        self.start()

    def outage(self, after_s: float, for_s: float) -> None:
        """Wait ``after_s``, then be down (SIGTERM) for ``for_s`` and come back on the same port and data."""
        time.sleep(after_s)
        self.stop()
        time.sleep(for_s)
        self.start()

    @staticmethod
    def stored_ms(ts: float) -> int:
        """The millisecond timestamp VictoriaMetrics keeps for a point the sink wrote at ``ts``: the line's
        nanoseconds truncated, not rounded (a fractional heartbeat ``ts`` such as .1236 s differs)."""
        return ts_ns(ts) // 1_000_000

    def export(self, match: str) -> list[dict[str, object]]:
        """``/api/v1/export`` for a series selector, e.g. ``{__name__=~"plant_state.*"}``."""
        data = urllib.parse.urlencode({"match[]": match}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/export", data=data, timeout=30) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line.strip()]

    def export_until(self, match: str, predicate: object, timeout: float = 30.0) -> list[dict[str, object]]:
        """Poll the export until ``predicate(series)`` holds (new series take a few seconds to appear)."""
        deadline = time.monotonic() + timeout
        series: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            series = self.export(match)
            if callable(predicate) and predicate(series):
                return series
            time.sleep(0.5)
        return series


def env_with_venv() -> dict[str, str]:
    """The environment for CLI subprocesses: the test's Python first on PATH, /usr/sbin too."""
    import sys

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}:/usr/sbin"
    env.pop("TWIN_BROKER", None)
    # persistent sessions of finished CLI processes must not make the shared test broker queue for them for
    # an hour (the default): a minute covers every restart a test makes
    env.setdefault("TWIN_MQTT_SESSION_EXPIRY_S", "60")
    return env
