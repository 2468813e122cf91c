"""Scale-out: hall workers through one Mosquitto and through a 3-node NATS cluster, and the tenfold plant.

The full phase 1 plant's rack messages (``--ticks`` rounds) are published as a backlog; 1, 2 and 4 hall
workers (each a process with the state service's whole receive path, its halls' partition) then drain it. The
rate is the consumers' own, first to last message, over all of them. On the cluster the publishers write to
node 1 and the workers read from node 2, so every message crosses the cluster. Then the plant at 1 Hz into
1, 2 and 4 workers: publish-to-state latency, p50 and p99 (of the slowest worker: a tick is done when all
are). All in the same run, on the same machine.

The tenfold plant (``plants/tenfold.toml``) at 1 Hz is 16,263 messages/s; from the best per-worker rate
measured here, the workers it needs (planned at half their rate, so that each catches up after an outage at
twice real time) and the broker nodes, from the cluster's measured rate per node.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from twin.bench import ingest
from twin.bench.servers import MosquittoServer, NatsCluster
from twin.commands.common import whole_seconds

__all__ = ["TENFOLD_MSGS_PER_S", "register", "run"]

#: 13,920 racks + 2,320 CDUs + 20 feeders + 2 exchangers + 1 weather station, once a second
TENFOLD_MSGS_PER_S = 13_920 + 2_320 + 20 + 2 + 1


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ticks", type=int, default=20, help="full-plant rounds of rack messages (default 20: 27,840)")
    p.add_argument("--publishers", type=int, default=2, help="publisher processes (default 2)")
    p.add_argument("--workers", type=_counts, default=[1, 2, 4], help="hall-worker counts to measure (default 1,2,4)")
    p.add_argument("--latency-seconds", type=whole_seconds(allow_zero=False), default=15,
                   help="length of each 1 Hz latency run, e.g. 15 or 1m (default 15 s)")
    p.add_argument("--stream-replicas", type=int, choices=[1, 2, 3], default=3,
                   help="copies of the cluster's MQTT sessions and messages (mqtt { stream_replicas }; default 3, "
                        "as deploy/nats/nats.conf; 1 measures the cluster without JetStream's replication)")


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers {text!r}: give counts like 1,2,4") from None
    if not counts or any(c < 1 or 8 % c for c in counts):
        raise argparse.ArgumentTypeError(f"--workers {text!r}: each a divisor of the 8 halls (1, 2, 4, 8)")
    return counts


def _engine(pub_port: int, con_port: int, files: list[Path], total: int, counts: list[int],
            seconds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for w in counts:
        out[f"workers_{w}"] = ingest.measure(con_port, "twin", files, total, w, pub_port=pub_port)
    for w in counts:  # the plant at 1 Hz into w hall workers (one: the whole-plant state service, as before)
        consumers = [["consume", "latency", str(con_port), str(n), halls if w > 1 else "", "live"]
                     for halls, n in ingest.hall_shares(w, seconds * 1392)]
        out[f"latency_1hz_workers_{w}"] = ingest.latency(con_port, seconds, consumers[0], pub_port=pub_port,
                                                         more=consumers[1:])
    out["latency_1hz"] = out[f"latency_1hz_workers_{counts[0]}"]  # the first count's, as before
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    counts: list[int] = args.workers
    ticks = ingest.messages(args.ticks, 1_795_300_000.0)
    total = sum(len(t) for t in ticks)
    out: dict[str, Any] = {"plant": "phase1", "rack_messages": total, "publishers": args.publishers,
                           "stream_replicas": args.stream_replicas,
                           "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="twin-bench-scale-") as tmp:
        files = ingest.publisher_files(ticks, args.publishers, Path(tmp))
        m = MosquittoServer(Path(tmp) / "mosquitto", limits="tuned").start()
        try:
            out["mosquitto"] = _engine(m.port, m.port, files, total, counts, args.latency_seconds)
        finally:
            m.stop()
        # as deploy/nats/nats.conf: at the stock 1,024 a hall worker's subscriptions outgrow the session's 65,535;
        # and NATS 2.9 sends a resumed session's offline backlog, when the session has several subscriptions,
        # mostly as redeliveries after ack_wait: at the stock 30 s this benchmark drained 35-70 msgs/s, at 3 s
        # 1,850-3,069 (docs/benchmarks.md)
        cluster = NatsCluster(Path(tmp) / "nats", max_ack_pending=200, ack_wait_s=3,
                              replicas=args.stream_replicas).start()
        try:
            n1, n2 = cluster.nodes[0].port, cluster.nodes[1].port
            out["nats_cluster_3"] = _engine(n1, n2, files, total, counts, args.latency_seconds)
        finally:
            cluster.kill()
    for engine in ("mosquitto", "nats_cluster_3"):
        rates = {w: out[engine][f"workers_{w}"]["msgs_per_s"] for w in counts}
        out[engine]["scaling_vs_1_worker"] = {w: round(r / max(rates[counts[0]], 1), 2) for w, r in rates.items()}
    out["cluster_vs_mosquitto"] = {
        w: round(out["nats_cluster_3"][f"workers_{w}"]["msgs_per_s"]
                 / max(out["mosquitto"][f"workers_{w}"]["msgs_per_s"], 1), 2) for w in counts}
    out["tenfold"] = _tenfold(out, counts)
    return out


def _tenfold(out: dict[str, Any], counts: list[int]) -> dict[str, Any]:
    """The tenfold plant at 1 Hz from the measured rates: held on this machine, or the cores it needs."""
    per_worker = max(out["mosquitto"][f"workers_{w}"]["msgs_per_s"] / w for w in counts)
    best_total = max(out[e][f"workers_{w}"]["msgs_per_s"] for e in ("mosquitto", "nats_cluster_3") for w in counts)
    cluster_best = max(out["nats_cluster_3"][f"workers_{w}"]["msgs_per_s"] for w in counts)
    workers = math.ceil(TENFOLD_MSGS_PER_S / (per_worker / 2))
    # the cluster's best drain through 3 nodes: each node carried it in and out; per node, per core here
    per_node = cluster_best
    nodes = max(3, math.ceil(TENFOLD_MSGS_PER_S / (per_node / 2)))
    return {
        "msgs_per_s": TENFOLD_MSGS_PER_S,
        "held_here": best_total >= TENFOLD_MSGS_PER_S,
        "best_measured_msgs_per_s": best_total,
        "per_worker_msgs_per_s": round(per_worker),
        "workers_needed": workers,
        "arithmetic": (f"{TENFOLD_MSGS_PER_S:,} msgs/s / ({round(per_worker):,} per worker / 2) = {workers} "
                       f"worker processes (one core each); broker: {TENFOLD_MSGS_PER_S:,} / ({per_node:,} / 2) "
                       f"-> {nodes} cluster nodes"),
        "broker_nodes_needed": nodes,
        "cores_needed": workers + nodes + 1,  # + the aggregator
    }
