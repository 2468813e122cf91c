"""Servers of the twin's own, each its own process on a free loopback port: Mosquitto, NATS (JetStream and its
MQTT gateway), VictoriaMetrics and InfluxDB 1.x (a real InfluxQL engine, for the dashboards' queries).

The benchmarks (``twin bench ...``) and the test suite start them from here. Each server has its own config
and data directory under a work directory, so that a caller can kill it (SIGKILL) and restart it on the same
port and data; only the processes started here are ever signalled, by PID.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from twin.lineproto import ts_ns

__all__ = ["INFLUXD", "MOSQUITTO", "NATS", "VICTORIA", "InfluxDB1Server", "MosquittoServer", "NatsCluster",
           "NatsServer", "VictoriaMetricsServer", "free_port", "mosquitto_server",
           "stop_process", "victoria_metrics", "victoria_timestamps", "wait_port"]

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
VICTORIA = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"
HINT = "install it from Debian's packages (the README's test command, scripts/test, does it)"

#: Mosquitto's queue limits: ``tuned`` as deploy/mosquitto (unlimited in flight, 1,000,000 queued),
#: ``inflight`` (the stock in-flight window of 20, the queue raised to hold a benchmark's backlog),
#: ``stock`` (no limit lines: 20 in flight to a client, 1,000 queued, as a user who never tuned it has).
Limits = Literal["tuned", "inflight", "stock"]
_LIMIT_LINES: dict[str, list[str]] = {"tuned": ["max_queued_messages 1000000", "max_inflight_messages 0"],
                                      "inflight": ["max_queued_messages 1000000"], "stock": []}


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


def _need(binary: str, name: str) -> None:
    if not Path(binary).exists():
        raise RuntimeError(f"{name} not found at {binary}: {HINT}")


class _ServerProcess:
    """A server as its own process: ``kill()`` (SIGKILL by default), ``stop()`` (SIGTERM), ``restart()``."""

    proc: subprocess.Popen[bytes] | None = None
    log_path: Path
    kill_timeout = 10.0
    env: dict[str, str] | None = None  # added to the environment the server starts with

    def __init__(self, workdir: Path, port: int | None, log_name: str) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc = None
        self.log_path = self.workdir / log_name

    def start(self) -> _ServerProcess:
        raise NotImplementedError

    def _spawn(self, argv: list[str]) -> None:
        """Start ``argv`` with its output in ``log_path``, without waiting."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it
        env = None if self.env is None else os.environ | self.env
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)

    def _launch(self, argv: list[str], name: str, timeout: float = 10.0) -> None:
        """:meth:`_spawn`, then wait until it listens, else one error with its log."""
        self._spawn(argv)
        try:
            self._wait_ready(timeout)
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"{name} did not start: {self.log_path.read_text()[-2000:]}") from None

    def _wait_ready(self, timeout: float) -> None:
        wait_port(self.port, timeout=timeout)

    def _wait_http(self, url: str, ready: Callable[[Any], bool], what: str, timeout: float) -> None:
        """Poll ``url`` until ``ready(response)``; TimeoutError after ``timeout`` s, or at once if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, urllib.error.URLError), urllib.request.urlopen(url, timeout=1) as r:
                if ready(r):
                    return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise TimeoutError(what)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=self.kill_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()


class MosquittoServer(_ServerProcess):
    """A Mosquitto broker of its own: ``start()``, ``kill()``, ``restart()``, ``url``; ``limits`` as
    :data:`Limits` (``stock=True`` is ``limits="stock"``)."""

    def __init__(self, workdir: Path, *, port: int | None = None, persistence: bool = False,
                 extra_config: str = "", allow_anonymous: bool = True, stock: bool = False,
                 limits: Limits | None = None) -> None:
        _need(MOSQUITTO, "mosquitto")
        super().__init__(workdir, port, "mosquitto.log")
        self.persistence = persistence
        self.extra_config = extra_config
        self.allow_anonymous = allow_anonymous
        self.limits: Limits = limits or ("stock" if stock else "tuned")

    @property
    def stock(self) -> bool:
        return self.limits == "stock"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        lines = [
            "user root",
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            *_LIMIT_LINES[self.limits],
            "log_dest stderr", "log_type error", "log_type warning",
        ]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/", "autosave_interval 1"]
        return "\n".join(lines) + "\n" + self.extra_config

    def start(self) -> MosquittoServer:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text())
        self._launch([MOSQUITTO, "-c", str(conf)], "mosquitto")
        return self


class NatsServer(_ServerProcess):
    """A single NATS server with JetStream and its MQTT gateway (MQTT 3.1.1, sessions in JetStream), stock
    limits (``max_ack_pending`` 1,024 per session): ``start()``, ``kill()``, ``url`` (the MQTT listener).

    ``max_ack_pending``: unacknowledged deliveries per subscription (1,024 when None); one session's
    subscriptions may hold 65,535 together (a filter ending in # counts twice), and the gateway refuses the
    subscriptions beyond that (a phase 1 hall worker of four halls has 124: at most 528 each).

    ``ack_wait``: how long the gateway waits for a QoS 1 delivery's PUBACK before it resends it (NATS' default
    30 s when None); a session moved from a dead node gets the dead connection's unacknowledged messages again
    only after it."""

    def __init__(self, workdir: Path, *, port: int | None = None, route_port: int | None = None,
                 routes: list[int] | None = None, replicas: int = 1, ack_wait_s: float | None = None,
                 max_ack_pending: int | None = None) -> None:
        _need(NATS, "nats-server")
        super().__init__(workdir, port, "nats.log")
        self.client_port = free_port()
        self.route_port = route_port  # a cluster node: its route listener and the other nodes' routes
        self.routes = routes or []
        self.replicas = replicas
        self.ack_wait_s = ack_wait_s
        self.max_ack_pending = max_ack_pending

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        cluster = ""
        if self.route_port is not None:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
            cluster = f"cluster {{ name: twin, listen: 127.0.0.1:{self.route_port}, routes: [{routes}] }}\n"
        replicas = f", stream_replicas: {self.replicas}" if self.replicas > 1 else ""
        if self.ack_wait_s is not None:
            replicas += f', ack_wait: "{self.ack_wait_s:g}s"'
        if self.max_ack_pending is not None:
            replicas += f", max_ack_pending: {self.max_ack_pending}"
        return (f'server_name: "twin-{self.port}"\n'
                f"listen: 127.0.0.1:{self.client_port}\n"
                f'jetstream {{ store_dir: "{self.workdir / "js"}" }}\n'
                f"{cluster}"
                f"mqtt {{ listen: 127.0.0.1:{self.port}{replicas} }}\n")

    def start(self) -> NatsServer:
        self._launch(self._argv(), "nats-server", timeout=30)
        return self

    def _argv(self) -> list[str]:
        conf = self.workdir / "nats.conf"
        conf.write_text(self.config_text())
        return [NATS, "-c", str(conf)]


class NatsCluster:
    """Three (``n``) NATS servers clustered on loopback, JetStream on each, their MQTT gateways replicating
    sessions and retained messages ``n`` times (or ``replicas``): ``start()``, ``nodes``, ``url`` (every node,
    comma-separated, as ``TWIN_BROKER`` takes it), ``node_of(port)``."""

    def __init__(self, workdir: Path, n: int = 3, ack_wait_s: float | None = None,
                 max_ack_pending: int | None = None, node: type[NatsServer] | None = None,
                 replicas: int | None = None) -> None:
        routes = [free_port() for _ in range(n)]
        self.ack_wait_s = ack_wait_s
        make = node or NatsServer  # a subclass may write another config (the repo's deploy/nats, in its tests)
        # the account and topic of the ready-wait's session (a config with accounts has no anonymous login)
        self.login: tuple[str, str] | None = None
        self.ready_topic = "twin/ready"
        self.nodes = [make(Path(workdir) / f"n{i + 1}", route_port=routes[i],
                                 routes=[p for j, p in enumerate(routes) if j != i], replicas=replicas or n,
                                 ack_wait_s=ack_wait_s, max_ack_pending=max_ack_pending)
                      for i in range(n)]

    @property
    def url(self) -> str:
        return ",".join(s.url for s in self.nodes)

    def start(self, timeout: float = 60.0) -> NatsCluster:
        for s in self.nodes:  # each waits for its routes: start them all, then wait for the MQTT listeners
            s._spawn(s._argv())
        for s in self.nodes:
            wait_port(s.port, timeout)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until an MQTT session can be made on every running node (JetStream needs its meta leader first)."""
        import paho.mqtt.client as mqtt

        deadline = time.monotonic() + timeout
        for s in self.nodes:
            if s.proc is None:
                continue
            while True:
                c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ready-{s.port}", clean_session=False,
                                protocol=mqtt.MQTTv311)
                if self.login is not None:
                    c.username_pw_set(*self.login)
                try:
                    c.connect("127.0.0.1", s.port, keepalive=10)
                    c.loop_start()
                    info = c.subscribe(self.ready_topic, qos=1)
                    ok = info[0] == 0 and _wait(c.is_connected, 5.0)
                    c.disconnect()
                    c.loop_stop()
                    if ok:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"NATS cluster node {s.port} not ready: {s.log_path.read_text()[-2000:]}")
                time.sleep(0.5)

    def node_of(self, port: int) -> NatsServer:
        return next(s for s in self.nodes if s.port == port)

    def kill(self) -> None:
        for s in self.nodes:
            s.kill()


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


class VictoriaMetricsServer(_ServerProcess):
    """VictoriaMetrics: accepts influxdb-client's ``/api/v2/write``; read back with ``export()``. ``restart()``
    is a SIGTERM: what it acknowledged is on its disk."""

    kill_timeout = 30.0

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        _need(VICTORIA, "victoria-metrics")
        super().__init__(workdir, port, "victoria-metrics.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VictoriaMetricsServer:
        self._launch([VICTORIA, f"-storageDataPath={self.workdir / 'data'}", f"-httpListenAddr=127.0.0.1:{self.port}",
                      "-search.latencyOffset=0s", "-loggerLevel=ERROR"], "victoria-metrics", timeout=30)
        return self

    def _wait_ready(self, timeout: float) -> None:
        self._wait_http(f"{self.url}/health", lambda r: r.read().strip() == b"OK",
                        f"victoria-metrics not healthy on {self.url}", timeout)

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

    def export(self, match: str) -> list[dict[str, object]]:
        """``/api/v1/export`` for a series selector, e.g. ``{__name__=~"plant_state.*"}``."""
        data = urllib.parse.urlencode({"match[]": match}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/export", data=data, timeout=120) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line.strip()]


class InfluxDB1Server(_ServerProcess):
    """InfluxDB 1.x (``influxd``, Debian's ``influxdb``): InfluxQL over ``/query``, line protocol over ``/write``.

    Its own config with meta, data and WAL directories under the work directory, HTTP on a free loopback port,
    the RPC (backup) service on another, no usage reporting; ready once ``/ping`` answers 204.
    """

    kill_timeout = 30.0

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        if not Path(INFLUXD).exists():
            raise RuntimeError(f"influxd not found at {INFLUXD}: run scripts/test (it installs Debian's influxdb)")
        super().__init__(workdir, port, "influxd.log")
        self.rpc_port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        w = self.workdir
        return (f'reporting-disabled = true\nbind-address = "127.0.0.1:{self.rpc_port}"\n'
                f'[meta]\n  dir = "{w / "meta"}"\n'
                f'[data]\n  dir = "{w / "data"}"\n  wal-dir = "{w / "wal"}"\n  query-log-enabled = false\n'
                f"[monitor]\n  store-enabled = false\n"
                f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
                f"  max-body-size = 0\n")

    def start(self) -> InfluxDB1Server:
        conf = self.workdir / "influxdb.conf"
        conf.write_text(self.config_text())
        self._launch([INFLUXD, "-config", str(conf)], "influxd", timeout=30)
        return self

    def _wait_ready(self, timeout: float) -> None:
        self._wait_http(f"{self.url}/ping", lambda r: r.status == 204, f"influxd not answering /ping on {self.url}",
                        timeout)

    def query(self, q: str, db: str | None = None, epoch: str = "ms") -> dict[str, object]:
        """One InfluxQL statement over ``/query``; the JSON answer (a failed statement raises, with its error)."""
        params = {"q": q, "epoch": epoch, **({"db": db} if db else {})}
        data = urllib.parse.urlencode(params).encode()
        try:
            with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=60) as r:
                answer: dict[str, object] = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"influxd refused {q!r}: {e.read().decode(errors='replace').strip()}") from None
        results = answer.get("results", [])
        for res in results if isinstance(results, list) else []:
            if isinstance(res, dict) and "error" in res:
                raise RuntimeError(f"influxd: {res['error']}: {q}")
        return answer

    def write(self, db: str, body: bytes, precision: str = "ns") -> None:
        """POST line protocol to ``/write?db=...&precision=...`` (204 expected)."""
        url = f"{self.url}/write?{urllib.parse.urlencode({'db': db, 'precision': precision})}"
        req = urllib.request.Request(url, data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                if r.status != 204:
                    raise RuntimeError(f"influxd /write answered {r.status}")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"influxd /write refused: {e.read().decode(errors='replace').strip()}") from None


def victoria_timestamps(url: str, match: str, timeout: float = 120.0) -> list[int]:
    """Every stored timestamp (ms) of the series ``match`` selects, through VictoriaMetrics' export API."""
    data = urllib.parse.urlencode({"match[]": match}).encode()
    with urllib.request.urlopen(f"{url}/api/v1/export", data=data, timeout=timeout) as r:
        return [t for ln in r.read().decode().splitlines() if ln.strip() for t in json.loads(ln)["timestamps"]]


@contextlib.contextmanager
def mosquitto_server(workdir: Path, limits: Limits = "tuned") -> Iterator[int]:
    """A benchmark's own Mosquitto (:class:`MosquittoServer`, no persistence); yields its port, stops it after."""
    server = MosquittoServer(Path(workdir) / f"mosquitto-{free_port()}", limits=limits).start()
    try:
        yield server.port
    finally:
        server.stop()


@contextlib.contextmanager
def victoria_metrics(workdir: Path) -> Iterator[str]:
    """A benchmark's own VictoriaMetrics; yields its URL, stops it (SIGTERM) after."""
    server = VictoriaMetricsServer(Path(workdir) / "vm").start()
    try:
        yield server.url
    finally:
        server.stop()
