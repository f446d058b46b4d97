"""``sixpod tor-resilient``'s metrics: groups, members, fan-out per VIP, resyncs, errors by
kind; fed by the real loop (fake FRR and kernel) and scraped over HTTP."""

from __future__ import annotations

import json
import socket
import threading

import httpx
from prometheus_client.parser import text_string_to_metric_families

from resilientkit import V4, V6, FakeKernel, nodes
from sixpod.metricshttp import MetricsServer
from sixpod.routing.resilient.config import TorResilientConfig
from sixpod.routing.resilient.daemon import SyncResult, run
from sixpod.routing.resilient.errors import CommandError, NetlinkError, ResilientError
from sixpod.routing.resilient.frr import format_frr_routes
from sixpod.routing.resilient.metrics import ResilientMetrics


class ScriptedFrr:
    """FRR's answers, one per sync: route documents, or an error to raise."""

    def __init__(self, *answers: tuple[str, str] | ResilientError) -> None:
        self.answers = answers
        self.reads = 0

    def read(self) -> tuple[object, object]:
        answer = self.answers[min(self.reads, len(self.answers) - 1)]
        self.reads += 1
        if isinstance(answer, ResilientError):
            raise answer
        return json.loads(answer[0]), json.loads(answer[1])


class FlakyEvents:
    """The route-event socket fails once, then reports a change on every wait."""

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, timeout: float) -> bool:
        self.waits += 1
        if self.waits == 1:
            raise NetlinkError("route events: recv: No buffer space available")
        return True


def _scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://[::1]:{port}/metrics", timeout=5).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_the_loop_feeds_the_metrics_and_prometheus_reads_them() -> None:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    cfg = TorResilientConfig.model_validate(
        {"vips": ["203.0.113.10", "2001:db8:f::10"], "interval": 0.05, "settle": 0,
         "metrics": [f"[::1]:{port}"]}
    )  # fmt: skip
    frr = ScriptedFrr(
        format_frr_routes({V4: nodes(1, 2, 3), V6: nodes(1, 2, 3)}),
        CommandError("vtysh: exit 1: bgpd is not running"),
        format_frr_routes({V4: nodes(1, 2), V6: nodes(1, 2)}),
        format_frr_routes({V4: nodes(1, 2), V6: nodes(1, 2)}),
    )
    metrics = ResilientMetrics(cfg.vips, clock=lambda: 1_700_000_000.0)
    server = MetricsServer(metrics.registry, cfg.metrics)
    stop = threading.Event()
    seen: list[SyncResult | ResilientError] = []

    def on_result(r: SyncResult | ResilientError) -> None:
        metrics.observe(r)
        seen.append(r)
        if sum(isinstance(x, SyncResult) for x in seen) == 3:
            stop.set()

    server.start()
    try:
        run(cfg, frr=frr, kernel=FakeKernel(), stop=stop, events=FlakyEvents(), on_result=on_result)
        got = _scrape(port)
    finally:
        server.stop()
    assert got["sixpod_resilient_groups"] == 1  # both VIPs share the group of n1, n2
    assert got["sixpod_resilient_members"] == 2
    assert got["sixpod_resilient_routes"] == 2
    assert got["sixpod_resilient_unmirrored"] == 0
    assert got["sixpod_resilient_vip_members{vip=203.0.113.10}"] == 2
    assert got["sixpod_resilient_vip_members{vip=2001:db8:f::10}"] == 2
    assert got["sixpod_resilient_syncs_total"] == 4  # three that worked, one that failed
    assert got["sixpod_resilient_resyncs_total"] == 2  # built the group, then dropped n3
    assert got["sixpod_resilient_operations_total"] > 2
    assert got["sixpod_resilient_errors_total{kind=command}"] == 1
    assert got["sixpod_resilient_errors_total{kind=netlink}"] == 1
    assert got["sixpod_resilient_errors_total{kind=parse}"] == 0
    assert got["sixpod_resilient_last_sync_timestamp_seconds"] == 1_700_000_000


def test_before_the_first_sync_every_vip_shows_no_fanout() -> None:
    metrics = ResilientMetrics((V4, V6))
    reg = metrics.registry
    assert reg.get_sample_value("sixpod_resilient_vip_members", {"vip": "203.0.113.10"}) == 0
    assert reg.get_sample_value("sixpod_resilient_errors_total", {"kind": "parse"}) == 0
    assert reg.get_sample_value("sixpod_resilient_vip_members", {"vip": "2001:db8:f::10"}) == 0
