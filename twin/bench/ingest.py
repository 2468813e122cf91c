"""Ingest throughput and latency of the state service at plant scale, against a ceiling and a naive baseline.

Starts its own Mosquitto and feeds full-plant rack telemetry (phase 1: 1,392 racks x
72 GPUs, ~1.4 KB per message) from separate publisher processes as fast as the path
takes it. Measured in the same run, each consumer in its own process(es):

The publishers first fill the broker's queue for each consumer's persistent session (the
consumers subscribe, then disconnect); then the consumers reconnect and drain the backlog, so
the rate measured is the consumer's own, not the publishers' on these shared cores:

- ``ceiling``: ``mosquitto_sub`` (C, libmosquitto) counting the messages into /dev/null;
- ``ceiling_paho``: a paho subscriber (``loop_forever``) that only counts messages;
- ``naive``: a paho subscriber that validates each message with the pydantic model and
  updates per-GPU Python dicts, message by message;
- ``twin_w1`` / ``twin_wN``: the state service as ``twin run state`` runs it (the Bus,
  the fast decoder, the numpy state, event-time ticks with PlantState, alarms), with 1
  and N worker processes, each owning a share of the halls (``--halls``).

Then the latency: the plant at its real 1 Hz rate (every rack once per second, event
time = publish wall time) into one state worker, publish-to-state latency p50/p99.
GPU samples/s = rack messages/s x 72. Peak RSS is the largest worker's.

Then through ``twin run state``'s own loop (batches, journal commit, then acks) on a Mosquitto
with its stock in-flight window (20 messages unacknowledged per client; ``max_queued_messages``
raised only so that the broker can hold the backlog to drain): the same backlog drained with the
journal off (paho acks on receipt) and on, interleaved (off, on, off, on, off); ``journal_on_vs_off``
is the ratio of the median rates (bound: 0.9 or more). Then the 1 Hz latency with the journal on, on a Mosquitto with no
limit lines at all (20 in flight, 1,000 queued: the plant's 1 Hz fits).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twin.bench.servers import mosquitto_server
from twin.commands.common import whole_seconds
from twin.topics import Topics

__all__ = ["register", "run"]

SITE = "narvik"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ticks", type=int, default=40, help="full-plant rounds of rack messages (default 40: 55,680)")
    p.add_argument("--publishers", type=int, default=2, help="publisher processes (default 2)")
    p.add_argument("--workers", type=int, default=2, help="state workers for the scale-out run (default 2)")
    p.add_argument("--latency-seconds", type=whole_seconds(allow_zero=False), default=20,
                   help="length of the 1 Hz latency run, e.g. 20 or 1m (default 20 s)")
    p.add_argument("--stock-only", action="store_true",
                   help="only the runs on a stock-config Mosquitto (journal on and off, latency)")


# ----------------------------------------------------------------------------- the parent


def messages(ticks: int, start_ts: float, now_ts: bool = False) -> list[list[tuple[str, bytes]]]:
    """Rack messages per tick, from the simulator (one round per tick)."""
    from sims.messages import FrameEncoder
    from sims.plant_sim import PlantSim
    from twin.plant import load_plant

    plant = load_plant("phase1")
    sim, enc = PlantSim(plant, seed=1, start_ts=start_ts), FrameEncoder(plant)
    return [list(enc.racks(sim.step(start_ts + k))) for k in range(ticks)]


def publisher_files(ticks: list[list[tuple[str, bytes]]], publishers: int, tmp: Path) -> list[Path]:
    """The backlog split between publisher processes; each owns whole racks, so per-topic order holds."""
    files = []
    for k in range(publishers):
        part = [(t, pl) for tick in ticks for i, (t, pl) in enumerate(tick) if i % publishers == k]
        f = tmp / f"pub{k}.pickle"
        f.write_bytes(pickle.dumps(part))
        files.append(f)
    return files


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "twin.bench.ingest", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.PIPE, text=True)


def _ready(p: subprocess.Popen[str]) -> None:
    assert p.stdout is not None
    line = p.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"bench worker failed to start: {line}{p.stderr.read() if p.stderr else ''}")


def _result(p: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"bench worker failed: {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def drain(port: int, consumers: list[subprocess.Popen[str]], files: list[Path], expect: int,
          pub_port: int | None = None) -> dict[str, Any]:
    """The consumers subscribe with a persistent session and leave; the publishers fill the broker's queue for
    them; then they drain it as fast as their path takes it. Rate over all consumers, first to last message."""
    for c in consumers:
        _ready(c)
    for p in [_spawn("publish", str(pub_port or port), str(f)) for f in files]:
        _result(p, 600)
    for c in consumers:
        assert c.stdin is not None
        c.stdin.write("go\n")
        c.stdin.flush()
    res = [_result(c, 600) for c in consumers]
    got = sum(r["count"] for r in res)
    t0, t1 = min(r["first"] for r in res), max(r["last"] for r in res)
    rate = got / (t1 - t0) if t1 > t0 else 0.0
    out = {"msgs_per_s": round(rate), "gpu_samples_per_s": round(rate * 72), "received": got,
           "expected": expect, "peak_rss_mb": max(r["rss_mb"] for r in res)}
    if all("seq_gaps" in r for r in res):
        out["seq_gaps"] = sum(r["seq_gaps"] for r in res)
    return out


def hall_shares(workers: int, expect: int) -> list[tuple[str, int]]:
    """The phase 1 halls split between ``workers`` hall workers (one worker: a hall worker of all eight), with
    the messages each takes of ``expect``."""
    from twin.plant import load_plant

    halls = load_plant("phase1").hall_ids
    shares = [halls[w::workers] for w in range(workers)] if workers > 1 else [halls]
    return [(",".join(s), expect * len(s) // len(halls)) for s in shares]


def measure(port: int, mode: str, files: list[Path], expect: int, workers: int,
            pub_port: int | None = None) -> dict[str, Any]:
    """``workers`` state workers (hall partitions) draining the backlog; publishers on ``pub_port`` (another
    node of a cluster) or ``port``."""
    return drain(port, [_spawn("consume", mode, str(port), str(n), halls)
                        for halls, n in hall_shares(workers, expect)], files, expect, pub_port)


def _measure_c(port: int, files: list[Path], expect: int) -> dict[str, Any]:
    """mosquitto_sub with a persistent session drains the same backlog: the broker's own client speed."""
    sub = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    cid = f"bench-c-{os.getpid()}"
    base = [sub, "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-i", cid, "-c", "-x", "600", "-q", "1",
            "-t", Topics(SITE).telemetry_filter("gpu")]
    subprocess.run([*base, "-W", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    pubs = [_spawn("publish", str(port), str(f)) for f in files]
    for p in pubs:
        _result(p, 600)
    t0 = time.perf_counter()
    r = subprocess.run([*base, "-C", str(expect)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"mosquitto_sub failed: {r.stderr.decode()[-500:]}")
    rate = expect / dt
    return {"msgs_per_s": round(rate), "gpu_samples_per_s": round(rate * 72), "received": expect,
            "expected": expect, "client": "mosquitto_sub"}


def latency(port: int, seconds: int, consumer: list[str], pub_port: int | None = None,
            more: list[list[str]] | None = None) -> dict[str, Any]:
    """The plant at 1 Hz (``pace``) into the consumer worker started with ``consumer`` (and the hall workers of
    ``more``, started alongside): publish-to-state latency. With several workers a tick is done when its
    slowest worker is, so each figure is the largest of the workers' (and each worker's are kept)."""
    cs = [_spawn(*a) for a in [consumer, *(more or [])]]
    for c in cs:
        _ready(c)
    _result(_spawn("pace", str(pub_port or port), str(seconds)), seconds + 120)
    rs = [_result(c, 120) for c in cs]
    out: dict[str, Any] = {k: max(r[k] for r in rs) for k in ("p50_ms", "p99_ms", "max_ms")}
    out |= {"received": sum(r["count"] for r in rs), "expected": seconds * 1392,
            "peak_rss_mb": max(r["rss_mb"] for r in rs)}
    if len(rs) > 1:
        out["per_worker_p99_ms"] = [r["p99_ms"] for r in rs]
    return out | ({"seq_gaps": sum(r["seq_gaps"] for r in rs)} if all("seq_gaps" in r for r in rs) else {})


def _measure_stock(port: int, journal: bool, files: list[Path], expect: int, tmp: Path) -> dict[str, Any]:
    """`twin run state`'s loop draining the backlog through Mosquitto's stock in-flight window (20): the
    worker acknowledges per batch (journal on) or paho on receipt (off), so the window is what is measured."""
    mode = "journal" if journal else "off"
    return drain(port, [_spawn("run", str(port), mode, str(expect), tempfile.mkdtemp(dir=tmp))], files, expect)


def run(args: argparse.Namespace) -> dict[str, Any]:
    ticks = messages(args.ticks, 1_795_300_000.0)
    total = sum(len(t) for t in ticks)
    out: dict[str, Any] = {"plant": "phase1", "gpus": 100_224, "rack_messages": total,
                           "publishers": args.publishers, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="twin-bench-ingest-") as tmp:
        files = publisher_files(ticks, args.publishers, Path(tmp))
        if not args.stock_only:
            with mosquitto_server(Path(tmp)) as port:  # unlimited in flight, a queue to hold the whole backlog
                out["ceiling"] = _measure_c(port, files, total)
                out["ceiling_paho"] = measure(port, "count", files, total, 1)
                out["naive"] = measure(port, "naive", files, total, 1)
                out["twin_w1"] = measure(port, "twin", files, total, 1)
                if args.workers > 1:
                    out[f"twin_w{args.workers}"] = measure(port, "twin", files, total, args.workers)
                out["latency_1hz"] = latency(port, args.latency_seconds, [
                    "consume", "latency", str(port), str(args.latency_seconds * 1392), "", "live"])
        with mosquitto_server(Path(tmp), limits="inflight") as port:
            # `twin run state`'s loop through Mosquitto's stock in-flight window, journal off and on interleaved
            # (off, on, off, on, off: a shared machine drifts by 10-20 % between runs); medians compared
            runs = [_measure_stock(port, k % 2 == 1, files, total, Path(tmp)) for k in range(5)]
            on, off = runs[1::2], runs[0::2]
            out["stock_journal_on"] = sorted(on, key=lambda r: r["msgs_per_s"])[len(on) // 2]
            out["stock_journal_off"] = sorted(off, key=lambda r: r["msgs_per_s"])[len(off) // 2]
            out["stock_journal_on_runs"] = [r["msgs_per_s"] for r in on]
            out["stock_journal_off_runs"] = [r["msgs_per_s"] for r in off]
        with mosquitto_server(Path(tmp), limits="stock") as port:  # no limit lines at all
            # the run loop with the journal
            out["stock_latency_1hz"] = latency(port, args.latency_seconds, [
                "run", str(port), "journal", str(args.latency_seconds * 1392), tempfile.mkdtemp(dir=tmp), "pace"])
    out["journal_on_vs_off"] = round(out["stock_journal_on"]["msgs_per_s"]
                                     / max(out["stock_journal_off"]["msgs_per_s"], 1), 3)
    if args.stock_only:
        return out
    best = max(v["gpu_samples_per_s"] for k, v in out.items() if k.startswith("twin_w"))
    out["twin_best_gpu_samples_per_s"] = best
    out["vs_ceiling"] = round(best / out["ceiling"]["gpu_samples_per_s"], 2)
    out["vs_ceiling_paho"] = round(best / out["ceiling_paho"]["gpu_samples_per_s"], 2)
    out["vs_naive"] = round(best / max(out["naive"]["gpu_samples_per_s"], 1), 2)
    out["headroom_vs_plant_1hz"] = round(best / 100_224, 2)
    out["required"] = {"gpu_samples_per_s": 300_000, "p99_ms": 100, "rss_mb": 400}
    return out


# ----------------------------------------------------------------------------- the workers


def _rss_mb() -> float:
    """Peak resident memory of this process, MB (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _publish(port: int, path: Path) -> None:
    from adapters.bus.mqtt import parse_broker_url
    from adapters.bus.publisher import FastPublisher

    msgs: list[tuple[str, bytes]] = pickle.loads(path.read_bytes())
    with FastPublisher(parse_broker_url(f"mqtt://127.0.0.1:{port}"), window=2000) as pub:
        for topic, payload in msgs:
            pub.publish(topic, payload, 1, False, batch=True)
        pub.flush(600)
    print(json.dumps({"sent": len(msgs)}))


def _pace(port: int, seconds: int) -> None:
    """The plant at 1 Hz: every rack once a second, spread over the second, ts = publish time."""
    from adapters.bus.mqtt import parse_broker_url
    from adapters.bus.publisher import FastPublisher

    start = time.time() + 1.0
    rounds = messages(1, start)[0]
    with FastPublisher(parse_broker_url(f"mqtt://127.0.0.1:{port}"), window=2000) as pub:
        n = len(rounds)
        for k in range(seconds):
            for i, (topic, payload) in enumerate(rounds):
                due = start + k + i / n
                delay = due - time.time()
                if delay > 0.002:
                    pub.idle(delay)
                msg = json.loads(payload)
                msg["ts"], msg["seq"] = time.time(), k
                pub.publish(topic, json.dumps(msg).encode(), 1, False)
        pub.flush(60)
    print(json.dumps({"sent": seconds * len(rounds)}))


def _latency_figures(lat_s: list[float]) -> dict[str, float]:
    """p50 / p99 / max of publish-to-state latencies, ms ({} when there were none)."""
    import numpy as np

    if not lat_s:
        return {}
    a = np.array(lat_s) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "max_ms": round(float(a.max()), 2)}


def _consume_paho(port: int, mode: str, expect: int) -> None:
    import paho.mqtt.client as mqtt

    from twin.contract import GpuRackTelemetry

    state: dict[str, Any] = {"count": 0, "first": 0.0, "last": 0.0}
    gpus: dict[tuple[str, int], tuple[float, float, float]] = {}
    rack_power: dict[str, float] = {}
    total = [0.0]

    def on_message(client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        if state["count"] == 0:
            state["first"] = now
        if mode == "naive":
            msg = GpuRackTelemetry.model_validate_json(m.payload)
            rack = m.topic.rsplit("/", 1)[-1]
            for g, (p, u, t) in enumerate(zip(msg.gpu_power_w, msg.gpu_util, msg.gpu_temp_c, strict=True)):
                gpus[(rack, g)] = (p, u, t)
            power = sum(msg.gpu_power_w) + msg.aux_power_w
            total[0] += power - rack_power.get(rack, 0.0)
            rack_power[rack] = power
        state["count"] += 1
        state["last"] = now
        if state["count"] >= expect:
            client.disconnect()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        client.subscribe(Topics(SITE).telemetry_filter("gpu"), qos=1)

    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    cid = f"bench-{mode}-{os.getpid()}"
    # phase 1: subscribe with a persistent session, then leave
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.on_subscribe = lambda cl, *a: cl.disconnect()
    c.on_connect = on_connect
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_forever()
    print("ready", flush=True)
    sys.stdin.readline()
    # phase 2: drain the backlog
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_forever()
    print(json.dumps({**state, "rss_mb": _rss_mb()}))


def _consume_twin(port: int, mode: str, expect: int, halls: list[str], backlog: bool) -> None:
    import asyncio

    from adapters.bus.mqtt import Bus
    from twin.plant import load_plant
    from twin.services.state import StateService

    plant = load_plant("phase1")

    async def main() -> dict[str, Any]:
        service = StateService(plant, halls=halls or None)
        lat: list[float] = []
        first = last = 0.0

        def make_bus() -> Bus:
            return Bus(f"mqtt://127.0.0.1:{port}", service=f"bench-{os.getpid()}", site=SITE,
                       subscriptions=service.subscriptions, health=False, client_id=f"bench-twin-{os.getpid()}",
                       session_expiry_s=600)

        if backlog:
            async with make_bus():
                pass  # subscribed with a persistent session
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
        async with make_bus() as bus:
            if not backlog:
                print("ready", flush=True)
            q = bus.queue
            n = 0
            while n < expect:
                m = await q.get()
                now = time.perf_counter()
                if n == 0:
                    first = now
                payload = bytes(m.payload)  # type: ignore[arg-type]
                service.handle(m.topic.value, payload, time.time())
                if mode == "latency":
                    lat.append(time.time() - service.last_event_ts)  # type: ignore[operator]
                n += 1
                last = now
        out: dict[str, Any] = {"count": n, "first": first, "last": last, "rss_mb": _rss_mb(),
                               "states": service.model.counters.msgs_in}
        return out | _latency_figures(lat)

    print(json.dumps(asyncio.run(main())))


def _consume_run(port: int, journal: bool, expect: int, data_dir: str, pace: bool) -> None:
    """The state service's own run loop (batches, journal, acks) on a live stream; stops at ``expect``
    messages or after 3 s without one (what the broker dropped is then counted in ``seq_gaps``)."""
    import asyncio

    from adapters.bus.mqtt import Bus
    from twin.plant import load_plant
    from twin.services.state import StateService

    plant = load_plant("phase1")
    service = StateService(plant, snapshot_path=Path(data_dir) / "state" / "narvik.npz",
                           journal_fsync="1s" if journal else None)
    stamps: list[float] = []
    lat: list[float] = []
    handle = service.handle

    def timed(topic: str, payload: bytes, received_ts: float, dup: bool = False) -> None:
        handle(topic, payload, received_ts, dup)
        stamps.append(time.perf_counter())
        if pace:
            lat.append(time.time() - service.last_event_ts)  # type: ignore[operator]

    service.handle = timed  # type: ignore[method-assign]

    def make_bus() -> Bus:
        return Bus(f"mqtt://127.0.0.1:{port}", service=f"bench-{os.getpid()}", site=SITE,
                   subscriptions=service.subscriptions, health=False, client_id=f"bench-run-{os.getpid()}",
                   session_expiry_s=600, manual_ack=service.acks_when_durable)

    async def main() -> dict[str, Any]:
        if not pace:  # the backlog: subscribed with a persistent session, away while the publishers fill it
            async with make_bus():
                pass
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
        async with make_bus() as bus:
            task = asyncio.create_task(service.run(bus))
            if pace:
                print("ready", flush=True)
            seen, idle_since = 0, time.monotonic()
            while len(stamps) < expect and time.monotonic() - idle_since < (3.0 if stamps else 120.0):
                await asyncio.sleep(0.05)
                if len(stamps) != seen:
                    seen, idle_since = len(stamps), time.monotonic()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        c = service.model.counters
        out: dict[str, Any] = {"count": len(stamps), "first": stamps[0] if stamps else 0.0,
                               "last": stamps[-1] if stamps else 0.0, "rss_mb": _rss_mb(), "seq_gaps": c.seq_gaps,
                               "msgs_duplicate": c.msgs_duplicate}
        return out | _latency_figures(lat)

    print(json.dumps(asyncio.run(main())))


def _worker(argv: list[str]) -> None:
    role = argv[0]
    if role == "publish":
        _publish(int(argv[1]), Path(argv[2]))
    elif role == "pace":
        _pace(int(argv[1]), int(argv[2]))
    elif role == "run":
        _consume_run(int(argv[1]), argv[2] == "journal", int(argv[3]), argv[4], len(argv) > 5 and argv[5] == "pace")
    elif role == "consume":
        mode, port, expect, halls = argv[1], int(argv[2]), int(argv[3]), argv[4]
        backlog = len(argv) < 6 or argv[5] != "live"
        if mode in ("count", "naive"):
            _consume_paho(port, mode, expect)
        else:
            _consume_twin(port, mode, expect, [h for h in halls.split(",") if h], backlog)


if __name__ == "__main__":
    _worker(sys.argv[1:])
