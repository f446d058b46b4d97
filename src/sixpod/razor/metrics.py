"""Prometheus metrics aggregated cheaply: each worker adds to plain Python integers on the
hot path and copies them once a second into its own slot of a shared anonymous mmap; the
parent's /metrics sums the slots. No locks, no per-query syscalls.

The same small HTTP server (the parent's, on ``metrics``) answers the attribution API:
``GET /v1/attribute?vip=ADDR&vip=ADDR[&limit=N]`` → the JSON of ``sixpod razor attribute``.
"""

from __future__ import annotations

import json
import mmap
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sixpod.razor import engine as E

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
# Worker slot layout, after the engine's counters (0 .. E.COUNTERS-1).
Q_UDP = E.COUNTERS
Q_TCP = E.COUNTERS + 1
REVISION = E.COUNTERS + 2
REBUILDS = E.COUNTERS + 3
REBUILD_SECONDS = E.COUNTERS + 4
APPS = E.COUNTERS + 5
STATE_ERRORS = E.COUNTERS + 6
VIPS = E.COUNTERS + 7  # 6 slots: (ipv4, ipv6) x (active, drained, blackholed)
INTERNAL_ERRORS = E.COUNTERS + 13
UP = E.COUNTERS + 14
TCP_OPEN = E.COUNTERS + 15
TCP_EVICTED = E.COUNTERS + 16  # a newcomer to a full worker closed the idlest connection
TCP_CLIENT_EVICTED = E.COUNTERS + 17  # ... to a prefix at tcp_max_per_client
TCP_IDLE_CLOSED = E.COUNTERS + 18
SLOTS = E.COUNTERS + 19
VIP_STATES = ("active", "drained", "blackholed")
COUNTER_SLOTS = (
    *range(E.COUNTERS), Q_UDP, Q_TCP, REBUILDS, STATE_ERRORS, INTERNAL_ERRORS, TCP_EVICTED,
    TCP_CLIENT_EVICTED, TCP_IDLE_CLOSED,
)  # fmt: skip
"""The slots that only grow (the rest are gauges): a restarted worker carries them on."""


class SharedCounters:
    """``workers`` rows of ``SLOTS`` doubles in memory shared across fork()."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._mem = mmap.mmap(-1, workers * SLOTS * 8)
        self.view = memoryview(self._mem).cast("d")

    def publish(
        self, worker: int, values: Sequence[float], carried: Sequence[float] | None = None
    ) -> None:
        """Write a worker's row; ``carried`` (from :meth:`carried`) is added slot by slot."""
        base = worker * SLOTS
        for i, v in enumerate(values):
            self.view[base + i] = v if carried is None else v + carried[i]

    def carried(self, worker: int) -> list[float]:
        """What a worker starting in slot ``worker`` counts on from: its predecessor's last
        published counters (0 in a fresh slot), gauges 0. Summed counters then never go
        backwards when a worker is restarted; the counts of its last second are lost."""
        row = self.row(worker)
        out = [0.0] * SLOTS
        for i in COUNTER_SLOTS:
            out[i] = row[i]
        return out

    def row(self, worker: int) -> list[float]:
        base = worker * SLOTS
        return list(self.view[base : base + SLOTS])

    def total(self, slot: int) -> float:
        return sum(self.view[w * SLOTS + slot] for w in range(self.workers))


class RazorCollector(Collector):
    def __init__(self, shared: SharedCounters) -> None:
        self.shared = shared

    def collect(self) -> Iterator[Any]:
        s = self.shared
        q = CounterMetricFamily("sixpod_razor_queries", "queries received", labels=["transport"])
        q.add_metric(["udp"], s.total(Q_UDP))
        q.add_metric(["tcp"], s.total(Q_TCP))
        yield q
        r = CounterMetricFamily("sixpod_razor_responses", "responses sent", labels=["rcode"])
        other = sum(s.total(i) for i in range(24) if i not in RCODES)
        for code, name in RCODES.items():
            r.add_metric([name], s.total(code))
        r.add_metric(["other"], other)
        yield r
        for name, slot, doc in (
            ("truncated", E.TRUNCATED, "responses sent truncated (too big for UDP)"),
            ("rrl_dropped", E.RRL_DROPPED, "responses dropped by rate limiting"),
            ("rrl_slipped", E.RRL_SLIPPED, "rate-limited responses sent truncated (slip)"),
            ("unanswered", E.UNANSWERED, "messages ignored (responses, shorter than a header)"),
            ("cookies_valid", E.COOKIES_VALID, "queries with a valid server cookie"),
            ("rebuilds", REBUILDS, "answer table rebuilds"),
            ("state_errors", STATE_ERRORS, "state updates refused (old state kept)"),
            ("internal_errors", INTERNAL_ERRORS, "queries that hit a bug (no answer sent)"),
        ):
            c = CounterMetricFamily(f"sixpod_razor_{name}", doc)
            c.add_metric([], s.total(slot))
            yield c
        c = CounterMetricFamily(
            "sixpod_razor_tcp_evicted",
            "idle TCP connections closed to admit a newcomer: the worker was at "
            "tcp_max_connections (worker) or its prefix at tcp_max_per_client (client)",
            labels=["limit"],
        )
        c.add_metric(["worker"], s.total(TCP_EVICTED))
        c.add_metric(["client"], s.total(TCP_CLIENT_EVICTED))
        yield c
        c = CounterMetricFamily(
            "sixpod_razor_tcp_idle_closed",
            "TCP connections closed after tcp_idle_timeout (tcp_busy_idle_timeout when busy)",
        )
        c.add_metric([], s.total(TCP_IDLE_CLOSED))
        yield c
        rows = [s.row(w) for w in range(s.workers)]
        live = [row for row in rows if row[UP]]
        g = GaugeMetricFamily("sixpod_razor_workers_up", "worker processes serving")
        g.add_metric([], len(live))
        yield g
        t = GaugeMetricFamily("sixpod_razor_tcp_connections", "open TCP connections")
        t.add_metric([], sum(row[TCP_OPEN] for row in live))
        yield t
        if not live:
            return
        rev = GaugeMetricFamily("sixpod_razor_state_revision", "lowest state revision served")
        rev.add_metric([], min(row[REVISION] for row in live))
        yield rev
        sec = GaugeMetricFamily("sixpod_razor_rebuild_seconds", "duration of the last rebuild")
        sec.add_metric([], max(row[REBUILD_SECONDS] for row in live))
        yield sec
        apps = GaugeMetricFamily("sixpod_razor_apps", "apps with a name in the zone")
        apps.add_metric([], live[0][APPS])
        yield apps
        v = GaugeMetricFamily("sixpod_razor_vips", "pool VIPs by state", labels=["family", "state"])
        for f, fam in enumerate(("ipv4", "ipv6")):
            for i, st in enumerate(VIP_STATES):
                v.add_metric([fam, st], live[0][VIPS + 3 * f + i])
        yield v


Attribute = Callable[[list[str], int], tuple[int, dict[str, object]]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    attribute: Attribute | None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # no access log
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
            return
        if url.path == "/v1/attribute" and self.server.attribute is not None:
            q = parse_qs(url.query)
            try:
                limit = int(q.get("limit", ["10"])[0])
            except ValueError:
                limit = 0
            doc: dict[str, object]
            if not q.get("vip") or limit < 1:
                status, doc = 400, {"error": "give vip=ADDR (one or more) and limit >= 1"}
            else:
                status, doc = self.server.attribute(q["vip"], limit)
            self._send(status, json.dumps(doc).encode() + b"\n", "application/json")
            return
        self._send(404, b"not found\n", "text/plain")


def serve_http(
    shared: SharedCounters, host: str, port: int, attribute: Attribute | None = None
) -> ThreadingHTTPServer:
    """/metrics and the attribution API on ``host``:``port``, in a daemon thread."""
    _Server.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = _Server((host, port), _Handler)
    server.registry = CollectorRegistry()
    server.registry.register(RazorCollector(shared))
    server.attribute = attribute
    threading.Thread(target=server.serve_forever, name="razor-http", daemon=True).start()
    return server
