"""Publishing tenant changes to the edges, against consul-template's model, in one run.

For each pod size (10k, 100k and 1M endpoints, 10 per app, on the 12 nodes of
examples/pod.lock): bulk-load the store (SQLite, WAL), start a publisher on an empty Redis
primary (it rebuilds Redis from the store) with a replica, and a reader on the replica in its
own process (an edge). Then drive changes through the store at a fixed rate, each
transaction one app's container churn (a deploy step): two endpoints removed, two added,
six re-weighted (10 changes), from a process of its own (the API's side; the publisher
polls the outbox every 2 ms). Propagation is from the commit returning to the reader on the
replica having applied it. CPU per change is the publisher's thread plus the reader process
(the store's own cost, which the anchor does not pay either, is reported apart).

Anchor (consul-template's model): on each change, render every upstream of the pod into one
nginx ``upstream`` file and write it (no reload is counted). At 1M endpoints: the replica's
full resync time, Redis memory, and the reader's memory.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench._stats import percentile
from sixpod import addr
from sixpod.inventory.lock import Lock, parse_lock
from sixpod.lab.redisproc import RedisServer, redis_server, wait_until
from sixpod.tenants.guard import GuardLimits
from sixpod.tenants.model import EndpointRef, EndpointSpec
from sixpod.tenants.publisher import Publisher, PublisherSettings
from sixpod.tenants.schema import apps_t, endpoints_t, revision_t
from sixpod.tenants.store import Store

ROOT = Path(__file__).resolve().parents[1]
PER_APP = 10
RATE = 5000  # changes per second
CHANGES_PER_TX = 10  # per transaction: 2 removed, 2 added, 6 re-weighted
SIZES = (10_000, 100_000, 1_000_000)
DRIVE = {10_000: 8.0, 100_000: 8.0, 1_000_000: 30.0}
POLL = 0.002  # seconds between looks at the outbox
REDIS = {"repl-ping-replica-period": "1", "hash-max-listpack-entries": "128"}


def log(msg: str) -> None:
    print(f"[publish] {msg}", file=sys.stderr, flush=True)


class Pod:
    """Endpoint addresses spread over the nodes' /64s, by index."""

    def __init__(self, lock: Lock) -> None:
        self.prefixes = [a.prefix for a in lock.nodes.values()]

    def address(self, i: int) -> str:
        prefix = self.prefixes[i % len(self.prefixes)]
        return addr.format_ip(prefix[1 + i // len(self.prefixes)])


def guard_limits() -> GuardLimits:
    """The churn guard runs (its cost is counted) with limits this churn never reaches."""
    return GuardLimits(app_share=0.9, pod_share=0.2, window=1.0)


def bulk_load(store: Store, pod: Pod, endpoints: int) -> None:
    apps = endpoints // PER_APP
    with store.engine.begin() as conn:
        conn.execute(
            apps_t.insert(),
            [
                {"name": f"app{a}", "owner": "", "shard_seed": 0, "settings": "{}", "revision": 1}
                for a in range(apps)
            ],
        )
        step = 100_000
        for start in range(0, endpoints, step):
            conn.execute(
                endpoints_t.insert(),
                [
                    {
                        "app": f"app{i // PER_APP}",
                        "address": pod.address(i),
                        "port": 8080,
                        "node": "",
                        "weight": 100,
                        "state": "up",
                        "revision": 1,
                    }
                    for i in range(start, min(endpoints, start + step))
                ],
            )
        conn.execute(revision_t.update().values(value=revision_t.c.value + 1))


class Edge:
    """The reader process on the replica."""

    def __init__(self, replica: RedisServer, out: Path) -> None:
        self.out = out
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench._publish_reader",
                replica.address,
                str(replica.password_file),
                str(out),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def wait_ready(self, timeout: float = 300) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("READY"):
            self.kill()
            raise RuntimeError(f"reader did not start: {line!r}")
        return line

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def finish(self) -> dict[str, Any]:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        result: dict[str, Any] = json.loads(self.out.read_text())
        return result


def redis_cpu(*servers: RedisServer) -> float:
    total = 0.0
    for s in servers:
        fields = Path(f"/proc/{s.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def drive(store: Store, pod: Pod, endpoints: int, seconds: float) -> list[tuple[int, float]]:
    """Commit app churn at RATE changes/s for ``seconds``; (revision, wall time) per commit."""
    rng = random.Random(7)
    apps = endpoints // PER_APP
    members: dict[int, list[int]] = {}
    fresh = endpoints
    commits: list[tuple[int, float]] = []
    tx_rate = RATE / CHANGES_PER_TX
    start = time.monotonic()
    n = 0
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        due = start + n / tx_rate
        if due > now:
            time.sleep(due - now)
        a = rng.randrange(apps)
        current = members.get(a)
        if current is None:
            current = members[a] = list(range(a * PER_APP, (a + 1) * PER_APP))
        gone = [current.pop(rng.randrange(len(current))) for _ in range(2)]
        kept = rng.sample(current, 6)
        current += [fresh, fresh + 1]
        items = [EndpointSpec.parse(pod.address(i), 8080) for i in (fresh, fresh + 1)]
        items += [
            EndpointSpec.parse(pod.address(i), 8080, weight=rng.randrange(1, 1000)) for i in kept
        ]
        fresh += 2
        remove = [EndpointRef.parse(f"[{pod.address(i)}]:8080") for i in gone]
        w = store.set_endpoints(f"app{a}", items, remove=remove)
        commits.append((w.revision, time.time()))
        n += 1
    return commits


def anchor_render(state: dict[str, list[tuple[str, int]]], path: Path) -> float:
    """consul-template's model: every upstream of the pod rendered and written, once."""
    t0 = time.perf_counter()
    parts = []
    for app, eps in state.items():
        parts.append(f"upstream {app} {{\n")
        parts.extend(f"    server {e} weight={w};\n" for e, w in eps)
        parts.append("}\n")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(parts))
    tmp.replace(path)
    return time.perf_counter() - t0


def latencies(commits: list[tuple[int, float]], applied: list[tuple[int, float]]) -> list[float]:
    applied.sort()
    out = []
    j = 0
    for rev, t in sorted(commits):
        while j < len(applied) and applied[j][0] < rev:
            j += 1
        if j == len(applied):
            break
        out.append(applied[j][1] - t)
    return out


def thread_cpu(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def measure(
    url: str,
    work: Path,
    endpoints: int,
    publisher: Publisher,
    thread: threading.Thread,
    edge: Edge,
    primary: RedisServer,
    replica: RedisServer,
) -> dict[str, Any]:
    """Drive churn from another process (the API's side) while the publisher follows."""
    redis0 = redis_cpu(primary, replica)
    publisher0 = thread_cpu(thread)
    out = work / "driver.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench._publish_driver",
            url,
            str(endpoints),
            str(DRIVE[endpoints]),
            str(out),
        ],
        check=True,
        cwd=ROOT,
        timeout=DRIVE[endpoints] + 120,
    )
    driver = json.loads(out.read_text())
    head = driver["commits"][-1][0]
    wait_until(lambda: publisher.published >= head, timeout=60, what="publisher caught up")
    time.sleep(0.5)
    reader = edge.finish()
    return {
        "reader": reader,
        "commits": driver["commits"],
        "wall": driver["seconds"],
        "store_cpu": driver["cpu_seconds"],
        "publisher_cpu": thread_cpu(thread) - publisher0,
        "redis_cpu": redis_cpu(primary, replica) - redis0,
    }


def one_size(work: Path, lock: Lock, endpoints: int) -> dict[str, Any]:
    pod = Pod(lock)
    figures: dict[str, Any] = {}
    d = work / f"n{endpoints}"
    d.mkdir()
    url = f"sqlite:///{d / 'tenants.db'}"
    store = Store(url, lock=lock, guard=guard_limits())
    store.migrate()
    store.sync_pool()
    t0 = time.monotonic()
    bulk_load(store, pod, endpoints)
    log(f"{endpoints}: store loaded in {time.monotonic() - t0:.1f} s")
    with (
        redis_server(d, config=REDIS) as primary,
        redis_server(d, replica_of=primary, config=REDIS) as replica,
    ):
        wait_until(lambda: replica.info("replication")["master_link_status"] == "up")
        base_mem = int(primary.info("memory")["used_memory"])
        client = primary.client(decode_responses=False)
        # Commits come from another process: no local wake-up, so the outbox is polled.
        settings = PublisherSettings(guard=store.guard, poll=POLL)
        publisher = Publisher(store, client, settings)
        stop = threading.Event()
        t0 = time.monotonic()
        thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
        thread.start()
        wait_until(
            lambda: publisher.published >= store.head() and publisher.epoch,
            timeout=600,
            interval=0.05,
            what="the publisher's rebuild",
        )
        figures["rebuild_seconds"] = round(time.monotonic() - t0, 2)
        log(f"{endpoints}: Redis rebuilt in {figures['rebuild_seconds']} s")
        edge = Edge(replica, d / "reader.json")
        try:
            edge.wait_ready()
            m = measure(url, d, endpoints, publisher, thread, edge, primary, replica)
        finally:
            edge.kill()
            stop.set()
            publisher.wake.set()
            thread.join(timeout=30)
        reader = m["reader"]
        changes = len(m["commits"]) * CHANGES_PER_TX
        lat = latencies(m["commits"], reader["applied"])
        figures.update(
            {
                "endpoints": endpoints,
                "changes": changes,
                "changes_per_second": round(changes / m["wall"]),
                "p50_ms": round(percentile(lat, 0.50) * 1000, 2),
                "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
                "max_ms": round(max(lat) * 1000, 2),
                "publisher_us_per_change": round(m["publisher_cpu"] / changes * 1e6, 2),
                "reader_us_per_change": round(reader["cpu_seconds"] / changes * 1e6, 2),
                "redis_us_per_change": round(m["redis_cpu"] / changes * 1e6, 2),
                "store_us_per_change": round(m["store_cpu"] / changes * 1e6, 2),
                "reader_bootstrap_seconds": round(reader["bootstrap_seconds"], 2),
                "reader_state_mib": round(reader["state_bytes"] / 2**20, 1),
                "redis_used_mib": round(
                    (int(primary.info("memory")["used_memory"]) - base_mem) / 2**20, 1
                ),
                "reader_resyncs": reader["resyncs"],
            }
        )
        figures["sixpod_us_per_change"] = round(
            figures["publisher_us_per_change"] + figures["reader_us_per_change"], 2
        )
        state: dict[str, list[tuple[str, int]]] = {}
        with store.engine.connect() as conn:
            for r in conn.execute(
                sa.select(
                    endpoints_t.c.app,
                    endpoints_t.c.address,
                    endpoints_t.c.port,
                    endpoints_t.c.weight,
                )
            ):
                state.setdefault(r.app, []).append((f"[{r.address}]:{r.port}", r.weight))
        runs = [anchor_render(state, d / "upstreams.conf") for _ in range(3)]
        figures["anchor_ms_per_change"] = round(statistics.median(runs) * 1000, 2)
        if endpoints == SIZES[-1]:
            t0 = time.monotonic()
            with redis_server(d, replica_of=primary, config=REDIS) as fresh:
                wait_until(
                    lambda: fresh.info("replication")["master_link_status"] == "up",
                    timeout=120,
                    interval=0.01,
                )
                figures["replica_full_resync_seconds"] = round(time.monotonic() - t0, 2)
        client.close()
    store.close()
    log(f"{endpoints}: {json.dumps(figures)}")
    return figures


def run() -> dict[str, Any]:
    lock = parse_lock((ROOT / "examples" / "pod.lock").read_text(), "pod.lock")[0]
    with tempfile.TemporaryDirectory(prefix="sixpod-bench-publish-") as tmp:
        per_size = {n: one_size(Path(tmp), lock, n) for n in SIZES}
    big, small = per_size[SIZES[-1]], per_size[SIZES[0]]
    figures: dict[str, Any] = {}
    for n, f in per_size.items():
        tag = {10_000: "10k", 100_000: "100k", 1_000_000: "1m"}[n]
        for key in (
            "p50_ms",
            "p99_ms",
            "max_ms",
            "changes_per_second",
            "sixpod_us_per_change",
            "publisher_us_per_change",
            "reader_us_per_change",
            "redis_us_per_change",
            "store_us_per_change",
            "rebuild_seconds",
            "reader_bootstrap_seconds",
            "reader_state_mib",
            "redis_used_mib",
            "reader_resyncs",
        ):
            figures[f"{key}_{tag}"] = f[key]
    figures["replica_full_resync_seconds_1m"] = big["replica_full_resync_seconds"]
    anchors = {
        f"consul_template_ms_per_change_{t}": per_size[n]["anchor_ms_per_change"]
        for n, t in zip(SIZES, ("10k", "100k", "1m"), strict=True)
    }
    flat = big["sixpod_us_per_change"] / small["sixpod_us_per_change"]
    anchor_growth = big["anchor_ms_per_change"] / small["anchor_ms_per_change"]
    ratios = {
        "anchor_over_sixpod_cost_1m": round(
            big["anchor_ms_per_change"] * 1000 / big["sixpod_us_per_change"], 1
        ),
        "sixpod_cost_1m_over_10k": round(flat, 2),
        "anchor_cost_1m_over_10k": round(anchor_growth, 1),
    }
    targets = {
        "p99_ms_1m_at_5k_changes_per_second": {"value": big["p99_ms"], "target": "< 50"},
        "changes_per_second_1m": {"value": big["changes_per_second"], "target": ">= 4750"},
        "cost_per_change_flat_1m_over_10k": {"value": round(flat, 2), "target": "< 1.5"},
    }
    return {"figures": figures, "anchors": anchors, "ratios": ratios, "targets": targets}
