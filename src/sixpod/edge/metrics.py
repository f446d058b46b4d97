"""Prometheus metrics of the edge: the agent's own, and nginx's counters from its stats dict.

The agent fetches nginx's counters over the admin socket every `stats_interval`; the
collector only reads that snapshot, so a scrape never waits on nginx.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from sixpod import addr
from sixpod.metricshttp import MetricsServer

if TYPE_CHECKING:
    from sixpod.edge.agent import Agent


def _bound(text: str) -> float:
    return math.inf if text == "+Inf" else float(text)


class EdgeCollector(Collector):
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Any]:
        a = self.agent
        stats = a.nginx_stats
        status = a.nginx_status
        r = a.reader.metrics()
        requests = CounterMetricFamily(
            "sixpod_edge_requests",
            "Requests answered, by app and status class",
            labels=["app", "code"],
        )
        buckets: dict[float, float] = {}
        latency_sum = 0.0
        for key, value in stats.items():
            kind, _, rest = key.partition("\t")
            if kind == "r":
                app, _, code = rest.rpartition("\t")
                requests.add_metric([app, code], value)
            elif kind == "l" and rest == "sum_ms":
                latency_sum = value / 1000.0
            elif kind == "l":
                buckets[_bound(rest)] = value
        yield requests
        cumulative, total = [], 0.0
        for bound in sorted(buckets):
            total += buckets[bound]
            cumulative.append(("+Inf" if bound == math.inf else f"{bound:g}", total))
        if not cumulative or cumulative[-1][0] != "+Inf":
            cumulative.append(("+Inf", total))
        h = HistogramMetricFamily(
            "sixpod_edge_upstream_seconds", "Upstream response time (seconds)"
        )
        h.add_metric([], cumulative, latency_sum)
        yield h
        h = HistogramMetricFamily(
            "sixpod_edge_apply_seconds",
            "From the replica's reader having a change to nginx having it (seconds)",
        )
        h.add_metric([], a.apply_seconds.cumulative(), a.apply_seconds.total)
        yield h
        for name, doc, value in (
            ("ejections", "Endpoints ejected by passive health checks", status.get("ejections", 0)),
            ("retries", "Requests retried on another endpoint", status.get("retries", 0)),
            (
                "retries_refused",
                "Retries refused by the retry budget",
                status.get("retries_refused", 0),
            ),
            ("full_pushes", "Full state pushes into nginx", a.full_pushes),
            ("deltas", "Deltas applied to nginx", a.deltas),
            ("push_errors", "Batches nginx refused (507: a shared dict full)", a.push_errors),
            ("reloads", "nginx reloads after its config changed", a.reloads),
            ("reload_failures", "Changed configs refused by nginx -t", a.reload_failures),
            ("ticket_rotations", "Session ticket key rotations", a.ticket_rotations),
            (
                "tls_refused",
                "TLS handshakes refused: no certificate for the name, or none given",
                status.get("tls_refused", 0),
            ),
            (
                "tls_parse_errors",
                "Stored certificates nginx could not parse",
                status.get("tls_parse_errors", 0),
            ),
            ("tenant_malformed", "Malformed keys or entries met in Redis", r["malformed"]),
        ):
            yield CounterMetricFamily(f"sixpod_edge_{name}", doc, value=value)
        for name, doc, value in (
            ("revision", "Tenant state revision the reader holds", r["revision"]),
            ("nginx_revision", "Tenant state revision nginx holds", status.get("revision", -1)),
            (
                "lag_seconds",
                "Commit in the store to applied by the reader (last entry)",
                r["lag_seconds"],
            ),
            ("stale_seconds", "Since Redis last showed this state current", r["stale_seconds"]),
            ("ready", "1 while nginx holds tenant state", 1 if status.get("ready") else 0),
            (
                "behind_seconds",
                "Age of the oldest change the replica has and nginx lacks",
                a.behind_seconds(),
            ),
            ("pending_changes", "Changes queued for nginx", len(a.pending)),
            (
                "not_stored",
                "Apps and hosts nginx had no room for (shared dict full)",
                len(a.not_stored),
            ),
            ("last_full_push_seconds", "Duration of the last full push", a.last_full_seconds),
            ("connections", "Client connections open in nginx", status.get("connections", 0)),
            (
                "connections_waiting",
                "Idle keep-alive client connections in nginx",
                status.get("connections_waiting", 0),
            ),
            ("redis_connected", "1 while the replica answers", r["connected"]),
            ("certs", "Certificates nginx holds (this agent's sync)", len(a.pushed)),
            (
                "certs_not_stored",
                "Certificates nginx had no room for (raise tls.certs_dict)",
                len(a.certs_not_stored),
            ),
            (
                "certs_unopened",
                "Certificates whose key does not open with this node's sealing key or convert",
                len(a.unseal_failed),
            ),
        ):
            yield GaugeMetricFamily(f"sixpod_edge_{name}", doc, value=value)


def serve(agent: Agent, endpoints: Sequence[addr.Endpoint]) -> MetricsServer:
    """``/metrics`` of the agent on every endpoint (raises
    :class:`~sixpod.metricshttp.MetricsServerError` if one cannot be bound)."""
    registry = CollectorRegistry()
    registry.register(EdgeCollector(agent))
    server = MetricsServer(registry, endpoints)
    server.start()
    return server
