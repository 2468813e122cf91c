"""Real servers for integration tests: Mosquitto, NATS (JetStream + MQTT), VictoriaMetrics and InfluxDB 1.x, each its
own process.

The launchers are the ones ``twin bench`` uses (:mod:`twin.bench.servers`): each server runs on a port the OS
hands out, with its own config and data directory under the test's tmp dir, so a test can kill (SIGKILL) and
restart it. Only the processes started there are ever signalled, by PID.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from twin.bench.servers import (
    InfluxDB1Server,
    MosquittoServer,
    NatsCluster,
    NatsServer,
    VictoriaMetricsServer,
    free_port,
    wait_port,
)

__all__ = ["InfluxDB1Server", "MosquittoServer", "NatsCluster", "NatsServer", "VictoriaMetricsServer", "env_with_venv",
           "free_port", "wait_port"]


def env_with_venv() -> dict[str, str]:
    """The environment for CLI subprocesses: the test's Python first on PATH, /usr/sbin too."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}:/usr/sbin"
    env.pop("TWIN_BROKER", None)
    # persistent sessions of finished CLI processes must not make the shared test broker queue for them for
    # an hour (the default): a minute covers every restart a test makes
    env.setdefault("TWIN_MQTT_SESSION_EXPIRY_S", "60")
    return env
