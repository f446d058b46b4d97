"""The edge proxy at 100k apps / 1M endpoints, against plain nginx and a reloaded config.

One run, on the real publishing path: the SQLite store is bulk-loaded (100k apps with 10
endpoints each over the node /64s of examples/pod.lock, one domain each, plus 64
one-endpoint apps), ``sixpod controller`` on ``[::1]`` rebuilds the Redis primary from it,
a Redis replica follows, and ``sixpod edge-agent`` (reader on the replica) fills nginx.

A network namespace created (and always deleted) by the benchmark holds the backend, the
proxies and wrk; every node /64 is local there (AnyIP), so one backend, Debian nginx
answering ``200`` with the address it was reached on, serves all 1M endpoint addresses and
nothing leaves the machine. The proxies listen on pod VIPs on the namespace's lo. The
control plane (Redis, controller, agent) runs on the root namespace's loopback; the agent
reaches nginx through its admin unix socket. CPU 0: the proxy under test (master and
worker, ``taskset``); CPU 1: wrk (``-t1``) and the backend.

- **Throughput and CPU per request**: sixpod's nginx (``workers: 1``) against plain nginx
  ``proxy_pass`` to one ``upstream`` with ``keepalive`` to the same backend, with the same
  JSON access log, forwarding headers and keep-alive limits (``bench/_edge_nginx.py``).
  wrk ``-t1 -c50``, 10 s, Host cycled over 1,000 of the loaded apps by a wrk Lua script
  (plain nginx ignores Host); runs alternate, ``RUNS`` each. req/s is the best run; CPU per
  request is the worker's utime+stime (/proc/PID/stat) over the run's requests, median of
  the runs. The backend's ``stub_status`` gives upstream connections opened per request.
- **p99 at half load**: half of plain's best req/s, offered by wrk on a *fixed schedule*
  (wrk has no rate mode): a wrk Lua ``delay()`` gives each request the next slot of a
  1/rate timetable (LuaJIT ffi ``clock_gettime``; whole milliseconds, so requests leave in
  1 ms bunches) over 100 connections; a late slot is sent at once, so a stall is caught up
  rather than dropped (coordinated omission is bounded by the 100 connections). wrk's
  latency runs from the send. Median p99 of ``RUNS`` runs; the achieved rates are reported.
  The worker's CPU per request in these runs is reported too
  (``cpu_per_request_at_half_load_vs_plain``, not a target): at the same offered rate both
  proxies batch alike, while at peak a slower proxy leaves wrk and the backend idle more
  often and pays more for waking them.
- **Change to live**: 120 changes through the controller's HTTP API, alternately a new
  domain attached to a loaded app and the endpoint of a one-endpoint app moved to a new
  address, under load: wrk on sixpod's nginx meanwhile, closed loop (``_peak``, the target)
  and then at the half-load rate (``_half``). Each is timed from the API call until an HTTP
  request through sixpod's nginx answers from the new place. In the same loop (one round
  about every millisecond) the replica's revision (``sixpod:meta``) and nginx's admin
  ``/state`` revision are polled: replica -> nginx is the time between the two being seen
  at the change's revision; ``api`` is the API call alone. The same, 60 changes with no
  load (``_idle``), shows what the control plane itself takes.
- **Anchor, the reference design** (``bench/_edge_anchor.py``): one nginx config with an
  ``upstream`` block per app (all its endpoints) and a ``map`` Host -> upstream. nginx takes
  minutes to parse it, so it is started first and parses while the control plane loads (the
  workers=1 start figures are contended by it; the throughput runs wait for it to be done).
  After sixpod's changes, one change (a new app, domain and endpoint) is rendered into the
  whole config again, written, nginx HUPed, and timed until an HTTP request answers from
  the new endpoint, with no other load (favouring the anchor).
- **Memory and start**: a fresh agent with ``workers: 2`` (nginx not running, the replica
  full) timed until nginx's ``/state`` is ready and the last apps answer; then nginx's PSS
  (master + workers, shared dicts included once) plus the agent's RSS, idle and after 5 s
  of traffic cycling Host over all apps (the per-worker caches fill).

``SIXPOD_BENCH_EDGE_APPS`` (default 100000) sets the size (``SIXPOD_BENCH_EDGE_KEEP=1``
keeps the work directory and its logs). About 15 minutes at 100k, most of it the anchor's
two parses; run ``flock /tmp/sixpod-bench.lock bench/run edge`` (root).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import random
import re
import signal
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from bench import _edge_nginx as ng
from bench._edge_anchor import Anchor
from bench._edge_ns import HttpProbe, Netns, Proc, namespace
from bench._edge_pod import (
    PORT,
    ROOT,
    Controller,
    EdgeAgent,
    Tenants,
    host_of,
    load_store,
    log,
    replica_ready,
    replica_revision,
    wait_for,
)
from bench._stats import percentile
from bench.publish import PER_APP, REDIS
from sixpod import addr
from sixpod.inventory.lock import parse_lock
from sixpod.lab.redisproc import RedisServer, redis_server

APPS = int(os.environ.get("SIXPOD_BENCH_EDGE_APPS", "100000"))
HOT = 1000  # apps the load cycles Host over
MOVERS = 64
CHANGES = 120
IDLE_CHANGES = 60  # the same with no load: what the control plane itself takes
RUNS = 3
PEAK_SECONDS = 10
HALF_SECONDS = 6
CONNECTIONS = 50
HALF_CONNECTIONS = 100
FILL_SECONDS = 5
PROXY_CPU, CLIENT_CPU = 0, 1
STATUS_PORT = 8099
POLL = 0.0005  # seconds between rounds of the change test's polls
TARGETS = {
    "rps_vs_plain": ">= 0.85",
    "cpu_per_request_vs_plain": "<= 1.3",
    "p99_at_half_load_vs_plain": "<= 1.5",
    "change_live_p99_ms": "< 50",
    "memory_mib_100k_apps": "<= 1024",
}


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def mib(n: float) -> float:
    return round(n / 2**20, 1)


def size(text: str) -> int:
    """nginx size text (``64m``) in bytes."""
    unit = {"k": 2**10, "m": 2**20}.get(text[-1].lower(), 1)
    return int(text.rstrip("kKmM")) * unit


def same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.strip()) == ipaddress.ip_address(b.strip())
    except ValueError:
        return False


@dataclass
class Change:
    kind: str
    host: str
    call: Callable[[], httpx.Response]
    live: Callable[[int, str], bool]


class Bench:
    def __init__(self, work: Path, stack: contextlib.ExitStack) -> None:
        self.work = work
        self.stack = stack
        self.lock = parse_lock((ROOT / "examples" / "pod.lock").read_text(), "pod.lock")[0]
        self.t = Tenants(self.lock, APPS, MOVERS)
        vips = [addr.format_ip(v) for v in self.lock.vips6[:3]]
        self.vip_sixpod, self.vip_plain, self.vip_anchor = vips
        self.figures: dict[str, Any] = {"apps": APPS, "endpoints": APPS * PER_APP}
        step = max(1, APPS // HOT)
        self.hot = [f"app{a}" for a in range(0, APPS, step)][:HOT]
        self.hot_file = work / "hot-hosts.txt"
        self.hot_file.write_text("".join(host_of(a) + "\n" for a in self.hot))
        self.one_file = work / "one-host.txt"  # diagnostic: 10 endpoints, pools reused
        self.one_file.write_text(host_of(self.hot[0]) + "\n")
        self.all_file = work / "all-hosts.txt"
        names = self.t.names()
        random.Random(3).shuffle(names)
        self.all_file.write_text("".join(host_of(a) + "\n" for a in names))
        self.wrk_lua = work / "hosts.lua"
        self.wrk_lua.write_text(ng.WRK_LUA)
        self.ns: Netns
        self.replica: RedisServer
        self.controller: Controller
        self.backend_probe: HttpProbe

    # -- setup --------------------------------------------------------------------------

    def setup(self) -> None:
        prefixes = [addr.format_prefix(a.prefix) for a in self.lock.nodes.values()]
        self.ns = self.stack.enter_context(
            namespace([self.vip_sixpod, self.vip_plain, self.vip_anchor], prefixes)
        )
        run = self.work / "backend"
        run.mkdir()
        conf = run / "nginx.conf"
        conf.write_text(ng.backend_conf(run, PORT, STATUS_PORT))
        self.backend = self.proc(CLIENT_CPU, conf, run)
        self.backend_probe = HttpProbe(self.ns, "::1", STATUS_PORT)
        wait_for(lambda: self.backend_probe.get("status")[0] == 200, 20, "the backend")
        # the anchor parses its 100k upstreams (minutes) while the control plane loads
        self.anchor = Anchor(self.work, self.ns, self.vip_anchor, self.t, self.proc, same_ip)
        db = self.work / "tenants.db"
        self.db_url = f"sqlite:///{db}"
        t0 = time.monotonic()
        self.head = load_store(self.db_url, self.lock, self.t)
        self.figures["store_load_seconds"] = round(time.monotonic() - t0, 1)
        log(f"store loaded: {APPS} apps in {self.figures['store_load_seconds']} s")
        primary = self.stack.enter_context(redis_server(self.work, host="::1", config=REDIS))
        self.replica = self.stack.enter_context(
            redis_server(self.work, host="::1", replica_of=primary, config=REDIS)
        )
        t0 = time.monotonic()
        self.controller = Controller(self.work, self.db_url, primary)
        self.stack.callback(self.controller.stop)
        wait_for(self.controller.up, 120, "the controller's /healthz", 0.1)
        wait_for(lambda: replica_ready(self.replica, self.head), 900, "the replica", 0.1)
        self.figures["store_to_replica_rebuild_seconds"] = round(time.monotonic() - t0, 1)
        took = self.figures["store_to_replica_rebuild_seconds"]
        log(f"controller rebuilt Redis from the store; replica full after {took} s")

    def proc(self, cpu: int | None, conf: Path, run: Path) -> Proc:
        """nginx on ``conf`` in the namespace, pinned to ``cpu``; stopped at exit."""
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        p = Proc([*pin, *self.ns.exec_argv(ng.NGINX, "-c", str(conf))], run / "stdout.log")
        self.stack.callback(p.stop)
        return p

    def accepts(self) -> int:
        status, body = self.backend_probe.get("status")
        if status != 200:
            raise RuntimeError(f"backend stub_status: {status} {body}")
        return ng.stub_accepts(body)

    def wrk(self, vip: str, hosts: Path, seconds: float, conns: int) -> list[str]:
        return ng.wrk_argv(
            self.ns.exec_argv(),
            CLIENT_CPU,
            f"http://[{vip}]:80/",
            self.wrk_lua,
            hosts,
            seconds=seconds,
            connections=conns,
        )

    # -- the proxies --------------------------------------------------------------------

    def start_plain(self) -> tuple[Proc, int, Path]:
        run = self.work / "plain"
        run.mkdir()
        access = run / "access.log"
        conf = run / "nginx.conf"
        upstream = f"[{self.t.endpoints(0)[0]}]:{PORT}"
        conf.write_text(ng.plain_conf(run, f"[{self.vip_plain}]:80", upstream, access))
        p = self.proc(PROXY_CPU, conf, run)
        probe = HttpProbe(self.ns, self.vip_plain, 80)
        wait_for(lambda: probe.get(host_of(self.hot[0]))[0] == 200, 20, "plain nginx")
        probe.close()
        w = ng.workers(p.pid, 1)
        return p, w[0], access

    def start_agent(self, name: str, workers: int, pin: bool) -> tuple[EdgeAgent, dict[str, float]]:
        """A fresh agent (nginx not running, the replica full), timed until every app is
        served: nginx's /state ready at the head revision and the last apps answering.
        Phases: nginx's admin socket up, the full push begun (the reader has bootstrapped:
        a pending generation shows in /state), state committed, last apps answering."""
        prefix = ["taskset", "-c", str(PROXY_CPU)] if pin else []
        agent = EdgeAgent(
            self.work,
            name,
            self.replica,
            f"[{self.vip_sixpod}]:80",
            [*prefix, *self.ns.exec_argv()],
            workers,
        )
        self.stack.callback(agent.stop)
        probe = HttpProbe(self.ns, self.vip_sixpod, 80)
        last = sorted(self.t.names())[-3:]
        t0 = time.monotonic()
        agent.start()

        seen: dict[str, float] = {}

        def ready() -> bool:
            agent.check_alive()
            st = agent.state()
            if st is None:
                return False
            agent.nginx_pid()  # remembered, so it is stopped even if run_dir goes
            now = time.monotonic() - t0
            seen.setdefault("nginx_up", now)
            if st.get("pending"):
                seen.setdefault("push_begun", now)
            return bool(st.get("ready") and int(st.get("revision", -1)) >= self.head)

        try:
            wait_for(ready, 900, f"{name}: nginx ready", 0.01)
        except RuntimeError as e:
            raise RuntimeError(f"{e}; last /state {agent.state()}\n{agent.logs()}") from None
        seen["state_ready"] = time.monotonic() - t0
        seen.setdefault("push_begun", seen["state_ready"])
        for app in last:
            wait_for(functools.partial(self.answers, probe, host_of(app)), 60, f"{app} served")
        seen["served"] = time.monotonic() - t0
        probe.close()
        master = agent.nginx_pid()
        assert agent.proc is not None
        assert master is not None
        seen["agent_cpu"] = ng.cpu_seconds(agent.proc.pid)
        seen["nginx_cpu"] = sum(ng.cpu_seconds(p) for p in [master, *ng.workers(master, workers)])
        log(f"{name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in seen.items()))
        agent.nginx_pid()
        return agent, {k: round(v, 2) for k, v in seen.items()}

    @staticmethod
    def answers(probe: HttpProbe, host: str) -> bool:
        return probe.get(host)[0] == 200

    # -- throughput -----------------------------------------------------------------------

    def peak_run(
        self, vip: str, worker: int, logs: list[Path], hosts: Path | None = None
    ) -> dict[str, float]:
        for f in logs:
            with contextlib.suppress(FileNotFoundError):
                os.truncate(f, 0)
        a0, c0 = self.accepts(), ng.cpu_seconds(worker)
        argv = self.wrk(vip, hosts or self.hot_file, PEAK_SECONDS, CONNECTIONS)
        r = ng.run_wrk(argv, None, PEAK_SECONDS)
        c1, a1 = ng.cpu_seconds(worker), self.accepts()
        if r.errors or r.status_errors:
            log(f"wrk on {vip}: {r.errors} socket errors, {r.status_errors} HTTP errors")
        return {
            "rps": r.rps,
            "cpu_us": (c1 - c0) / max(1, r.requests) * 1e6,
            "conns_per_1k": (a1 - a0) / max(1, r.requests) * 1000,
            "errors": r.errors + r.status_errors,
            "p99_ms": r.p99_ms,
        }

    def half_run(
        self, vip: str, worker: int, rate: float, seconds: float
    ) -> tuple[ng.WrkResult, float]:
        """wrk on a fixed schedule; and the worker's CPU per request (us) at that rate."""
        argv = self.wrk(vip, self.hot_file, seconds, HALF_CONNECTIONS)
        c0 = ng.cpu_seconds(worker)
        r = ng.run_wrk(argv, rate, seconds)
        return r, (ng.cpu_seconds(worker) - c0) / max(1, r.requests) * 1e6

    @staticmethod
    def error_lines(path: Path) -> int:
        """Lines at [error] or worse in an nginx error log."""
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return sum(1 for x in text.splitlines() if re.search(r"\[(error|crit|alert|emerg)\]", x))

    # -- changes under load ---------------------------------------------------------------

    def make_change(self, api: httpx.Client, tag: str, i: int, rng: random.Random) -> Change:
        """Even ``i``: a new domain on a loaded app; odd: a mover's endpoint to a new address."""
        if i % 2 == 0:
            a = rng.randrange(APPS)
            host = host_of(f"new-{tag}-{i}")
            want = set(self.t.endpoints(a))
            self.t.extra_domains.setdefault(f"app{a}", []).append(host)
            return Change(
                "domain",
                host,
                functools.partial(api.put, f"/v1/domains/{host}", json={"app": f"app{a}"}),
                lambda st, body: st == 200 and any(same_ip(body, x) for x in want),
            )
        m = self.t.movers[(i // 2) % len(self.t.movers)]
        old, new = self.t.mover_addr[m], self.t.new_address()
        self.t.mover_addr[m] = new
        body = {"endpoints": [{"address": new, "port": PORT}], "remove": [f"[{old}]:{PORT}"]}
        return Change(
            "move",
            host_of(m),
            functools.partial(api.post, f"/v1/apps/{m}/endpoints", json=body),
            lambda st, text: st == 200 and same_ip(text, new),
        )

    def changes(self, agent: EdgeAgent, tag: str, rate: float | None, *, load: bool = True) -> None:
        """CHANGES changes through the API, under wrk load on sixpod's nginx if ``load``
        (closed loop, or ``rate`` req/s)."""
        rev_of_replica = replica_revision(self.replica)
        probe = HttpProbe(self.ns, self.vip_sixpod, 80)
        conns = HALF_CONNECTIONS if rate is not None else CONNECTIONS
        bg = None
        if load:
            argv = self.wrk(self.vip_sixpod, self.hot_file, 180, conns)
            bg = ng.Background(argv, rate, self.work / f"wrk-changes-{tag}.log")
        rng = random.Random(11)
        rows: list[dict[str, float]] = []
        kinds: list[str] = []
        try:
            time.sleep(1.0)
            with self.controller.client() as api:
                for i in range(CHANGES if load else IDLE_CHANGES):
                    if bg is not None and bg.popen.poll() is not None:
                        raise RuntimeError("wrk stopped during the change test")
                    change = self.make_change(api, tag, i, rng)
                    kinds.append(change.kind)
                    rows.append(self.one_change(agent, change, rev_of_replica, probe))
                    time.sleep(0.02)
        finally:
            result = bg.finish() if bg is not None else None
            probe.close()
        self.report_changes(tag, rows, kinds, result)

    def one_change(
        self,
        agent: EdgeAgent,
        change: Change,
        replica_rev: Callable[[], int],
        probe: HttpProbe,
    ) -> dict[str, float]:
        t0 = time.perf_counter()
        r = change.call()
        t_api = time.perf_counter()
        if r.status_code >= 300:
            raise RuntimeError(f"API refused a change: {r.status_code} {r.text}")
        rev = int(r.headers["X-Sixpod-Revision"])
        self.head = max(self.head, rev)
        t_rep = t_ngx = t_live = None
        deadline = t0 + 10
        while time.perf_counter() < deadline:
            if t_rep is None and replica_rev() >= rev:
                t_rep = time.perf_counter()
            if t_ngx is None:
                st = agent.state()
                if st is not None and int(st.get("revision", -1)) >= rev:
                    t_ngx = time.perf_counter()
            if t_live is None:
                status, body = probe.get(change.host)
                if change.live(status, body):
                    t_live = time.perf_counter()
            if t_live is not None and t_ngx is not None and t_rep is not None:
                break
            time.sleep(POLL)  # do not spin: the control plane needs the CPUs too
        if t_live is None or t_ngx is None or t_rep is None:
            raise RuntimeError(f"change at revision {rev} ({change.host}) not live within 10 s")
        return {
            "api": t_api - t0,
            "replica": t_rep - t0,
            "nginx": t_ngx - t0,
            "live": t_live - t0,
            "replica_to_nginx": max(0.0, t_ngx - t_rep),
        }

    def report_changes(
        self, tag: str, rows: list[dict[str, float]], kinds: list[str], load: ng.WrkResult | None
    ) -> None:
        f = self.figures
        live = [r["live"] for r in rows]
        f[f"change_live_p50_ms_{tag}"] = ms(percentile(live, 0.5))
        f[f"change_live_p99_ms_{tag}"] = ms(percentile(live, 0.99))
        f[f"change_live_max_ms_{tag}"] = ms(max(live))
        for kind in ("domain", "move"):
            xs = [r["live"] for r, k in zip(rows, kinds, strict=True) if k == kind]
            f[f"change_live_p99_ms_{kind}_{tag}"] = ms(percentile(xs, 0.99))
        for key in ("api", "replica", "replica_to_nginx"):
            xs = [r[key] for r in rows]
            f[f"change_{key}_p50_ms_{tag}"] = ms(percentile(xs, 0.5))
            f[f"change_{key}_p99_ms_{tag}"] = ms(percentile(xs, 0.99))
        f[f"changes_{tag}"] = len(rows)
        if load is not None:
            f[f"load_rps_during_changes_{tag}"] = round(load.rps)
            f[f"load_errors_during_changes_{tag}"] = load.errors + load.status_errors
        log(
            f"changes ({tag}): live p50 {f[f'change_live_p50_ms_{tag}']} ms, "
            f"p99 {f[f'change_live_p99_ms_{tag}']} ms; replica->nginx p99 "
            f"{f[f'change_replica_to_nginx_p99_ms_{tag}']} ms"
        )

    # -- memory -------------------------------------------------------------------------

    def memory(self, agent: EdgeAgent, workers: int) -> dict[str, float]:
        master = agent.nginx_pid()
        assert master is not None
        assert agent.proc is not None
        pids = [master, *ng.workers(master, workers)]
        mem = [ng.memory(p) for p in pids]
        st = agent.state() or {}
        cap = {"hosts": size(agent.cfg.hosts_dict), "apps": size(agent.cfg.apps_dict)}
        used = sum(cap[k] - int(st.get(f"{k}_free", cap[k])) for k in cap)
        agent_rss = ng.memory(agent.proc.pid)["rss"]
        pss = sum(m["pss"] for m in mem)
        return {
            "nginx_pss_mib": mib(pss),
            "nginx_rss_mib": mib(sum(m["rss"] for m in mem)),
            "shared_dicts_used_mib": mib(used),
            "agent_rss_mib": mib(agent_rss),
            "total_mib": mib(pss + agent_rss),
        }


def _term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    old = signal.signal(signal.SIGTERM, _term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def measure(b: Bench) -> dict[str, Any]:
    """Every phase, in order; the anchor's figures are returned (the rest are in b)."""
    b.setup()
    f = b.figures
    plain, plain_worker, plain_log = b.start_plain()
    agent, phases = b.start_agent("sixpod-w1", 1, pin=True)
    for k, v in phases.items():
        f[f"start_{k}_seconds_workers1"] = v
    master = agent.nginx_pid()
    assert master is not None
    sixpod_worker = ng.workers(master, 1)[0]
    b.anchor.wait_serving()  # nothing may parse on the CPUs while the proxies are measured
    # warm up both (the per-worker cache of the hot apps, connection pools)
    b.peak_run(b.vip_sixpod, sixpod_worker, [agent.access_log])
    b.peak_run(b.vip_plain, plain_worker, [plain_log])
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "sixpod": [], "sixpod_1app": []}
    for _ in range(RUNS):
        runs["plain"].append(b.peak_run(b.vip_plain, plain_worker, [plain_log]))
        runs["sixpod"].append(b.peak_run(b.vip_sixpod, sixpod_worker, [agent.access_log]))
        runs["sixpod_1app"].append(
            b.peak_run(b.vip_sixpod, sixpod_worker, [agent.access_log], b.one_file)
        )
        log(
            f"peak: plain {runs['plain'][-1]['rps']:.0f} req/s "
            f"{runs['plain'][-1]['cpu_us']:.2f} us/req; sixpod "
            f"{runs['sixpod'][-1]['rps']:.0f} req/s {runs['sixpod'][-1]['cpu_us']:.2f} us/req"
        )
    for name, rs in runs.items():
        f[f"{name}_rps"] = round(max(r["rps"] for r in rs))
        f[f"{name}_rps_each_run"] = [round(r["rps"]) for r in rs]
        f[f"{name}_cpu_us_per_request"] = round(statistics.median(r["cpu_us"] for r in rs), 2)
        f[f"{name}_cpu_us_per_request_each_run"] = [round(r["cpu_us"], 2) for r in rs]
        f[f"{name}_backend_connections_per_1k_requests"] = round(
            statistics.median(r["conns_per_1k"] for r in rs), 1
        )
        f[f"{name}_errors"] = int(sum(r["errors"] for r in rs))
        f[f"{name}_p99_ms_at_peak"] = round(statistics.median(r["p99_ms"] for r in rs), 3)
    rate = f["plain_rps"] / 2
    halves: dict[str, list[ng.WrkResult]] = {"plain": [], "sixpod": []}
    half_cpu: dict[str, list[float]] = {"plain": [], "sixpod": []}
    vip = {"plain": b.vip_plain, "sixpod": b.vip_sixpod}
    worker = {"plain": plain_worker, "sixpod": sixpod_worker}
    for _ in range(RUNS):
        for name in ("plain", "sixpod"):
            r, cpu = b.half_run(vip[name], worker[name], rate, HALF_SECONDS)
            halves[name].append(r)
            half_cpu[name].append(cpu)
    f["half_load_target_rps"] = round(rate)
    for name, hs in halves.items():
        # at the same offered rate both proxies batch alike: CPU per request like for like
        f[f"{name}_cpu_us_per_request_at_half_load"] = round(statistics.median(half_cpu[name]), 2)
        hs.sort(key=lambda h: h.p99_ms)
        mid = hs[len(hs) // 2]
        f[f"{name}_half_load_rps"] = round(mid.rps)
        f[f"{name}_p50_ms_at_half_load"] = round(mid.p50_ms, 3)
        f[f"{name}_p99_ms_at_half_load"] = round(mid.p99_ms, 3)
        f[f"{name}_p99_ms_at_half_load_each_run"] = [round(h.p99_ms, 3) for h in hs]
        f[f"{name}_reached_half_load"] = abs(mid.rps / rate - 1) < 0.05
    log(
        f"half load {rate:.0f} req/s: p99 plain {f['plain_p99_ms_at_half_load']} ms, "
        f"sixpod {f['sixpod_p99_ms_at_half_load']} ms"
    )
    b.changes(agent, "idle", None, load=False)
    b.changes(agent, "peak", None)
    b.changes(agent, "half", rate)
    f["sixpod_error_log_lines"] = b.error_lines(agent.dir / "error.log")
    agent.stop()
    plain.stop()
    anchor = b.anchor.reload_change()
    agent2, phases = b.start_agent("sixpod-w2", 2, pin=False)
    for k, v in phases.items():
        f[f"start_{k}_seconds"] = v
    idle = b.memory(agent2, 2)
    fill = ng.run_wrk(
        b.wrk(b.vip_sixpod, b.all_file, FILL_SECONDS, CONNECTIONS), None, FILL_SECONDS
    )
    busy = b.memory(agent2, 2)
    for k, v in idle.items():
        f[f"{k}_idle"] = v
    for k, v in busy.items():
        f[k] = v
    f["fill_rps_all_apps"] = round(fill.rps)
    f["fill_errors"] = fill.errors + fill.status_errors
    agent2.stop()
    for k, v in anchor.items():
        f[f"anchor_{k}"] = v
    return anchor


def run() -> dict[str, Any]:
    if os.geteuid() != 0:
        raise SystemExit("bench edge needs root (network namespace)")
    load = os.getloadavg()[0]
    t_start = time.monotonic()
    keep = os.environ.get("SIXPOD_BENCH_EDGE_KEEP")  # keep the work directory (logs)
    with (
        _sigterm_interrupts(),
        contextlib.nullcontext(tempfile.mkdtemp(prefix="sixpod-bench-edge-"))
        if keep
        else tempfile.TemporaryDirectory(prefix="sixpod-bench-edge-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        os.chmod(tmp, 0o755)  # nginx workers (user nobody) read the Lua module below it
        b = Bench(Path(tmp), stack)
        b.figures["loadavg_1m_at_start"] = round(load, 2)
        try:
            anchor = measure(b)
        except BaseException:
            log("failed; figures so far: " + json.dumps(b.figures))
            raise
        f = b.figures
    f["bench_seconds"] = round(time.monotonic() - t_start)
    ratios = {
        "rps_vs_plain": round(f["sixpod_rps"] / f["plain_rps"], 3),
        "cpu_per_request_vs_plain": round(
            f["sixpod_cpu_us_per_request"] / f["plain_cpu_us_per_request"], 3
        ),
        "p99_at_half_load_vs_plain": round(
            f["sixpod_p99_ms_at_half_load"] / f["plain_p99_ms_at_half_load"], 3
        ),
        "cpu_per_request_at_half_load_vs_plain": round(
            f["sixpod_cpu_us_per_request_at_half_load"]
            / f["plain_cpu_us_per_request_at_half_load"],
            3,
        ),
        "anchor_reload_over_change_live_p50": round(
            anchor["reload_live_ms"] / f["change_live_p50_ms_peak"], 1
        ),
        "anchor_reload_over_change_live_p99": round(
            anchor["reload_live_ms"] / f["change_live_p99_ms_peak"], 1
        ),
    }
    values = {
        **ratios,
        "change_live_p99_ms": f["change_live_p99_ms_peak"],
        "memory_mib_100k_apps": f["total_mib"],
    }
    anchors = {
        "plain_rps": f["plain_rps"],
        "plain_cpu_us_per_request": f["plain_cpu_us_per_request"],
        "plain_p99_ms_at_half_load": f["plain_p99_ms_at_half_load"],
        "reload_live_ms": anchor["reload_live_ms"],
        "reload_start_seconds": anchor["start_seconds"],
    }
    return {
        "figures": f,
        "anchors": anchors,
        "ratios": ratios,
        "targets": {k: {"value": values[k], "target": t} for k, t in TARGETS.items()},
    }


if __name__ == "__main__":
    print(json.dumps(run()))
