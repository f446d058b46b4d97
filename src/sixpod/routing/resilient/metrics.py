"""Prometheus metrics of ``sixpod tor-resilient``: groups, members, syncs, errors.

The loop hands every :class:`~.daemon.SyncResult` or error to :meth:`ResilientMetrics.observe`
(its ``on_result``); the gauges keep the last planned state while a sync fails, so a scrape
shows both what the kernel should hold and that the helper cannot currently reach it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from sixpod import addr
from sixpod.routing.resilient.daemon import SyncResult
from sixpod.routing.resilient.errors import NetlinkError, ParseError, ResilientError
from sixpod.routing.resilient.model import VIP

__all__ = ["ERROR_KINDS", "ResilientMetrics", "error_kind"]

ERROR_KINDS = ("netlink", "command", "parse")


def error_kind(e: ResilientError) -> str:
    """``netlink`` (route events), ``parse`` (FRR's or iproute2's output), or ``command``
    (``vtysh`` or ``ip`` failed or timed out)."""
    if isinstance(e, NetlinkError):
        return "netlink"
    return "parse" if isinstance(e, ParseError) else "command"


class ResilientMetrics:
    def __init__(self, vips: Iterable[VIP], *, clock: Callable[[], float] = time.time) -> None:
        self.vips = tuple(vips)
        self.clock = clock
        self.registry = r = CollectorRegistry()
        self.groups = Gauge(
            "sixpod_resilient_groups", "resilient nexthop groups the helper keeps", registry=r
        )
        self.members = Gauge(
            "sixpod_resilient_members", "member nexthops (distinct paths) in use", registry=r
        )
        self.routes = Gauge(
            "sixpod_resilient_routes", "VIPs routed through a resilient group", registry=r
        )
        self.unmirrored = Gauge(
            "sixpod_resilient_unmirrored",
            "VIPs FRR routes through something a group cannot hold (left on FRR's route)",
            registry=r,
        )
        self.vip_members = Gauge(
            "sixpod_resilient_vip_members",
            "members of each VIP's resilient group (its ECMP fan-out; 0: no helper route)",
            ["vip"],
            registry=r,
        )
        self.syncs = Counter(
            "sixpod_resilient_syncs", "full syncs of FRR and the kernel, failed too", registry=r
        )
        self.resyncs = Counter(
            "sixpod_resilient_resyncs",
            "syncs that found the kernel behind FRR and changed it",
            registry=r,
        )
        self.operations = Counter(
            "sixpod_resilient_operations", "kernel operations applied", registry=r
        )
        self.errors = Counter(
            "sixpod_resilient_errors",
            "failures by kind: netlink (route events), command (vtysh, ip), parse",
            ["kind"],
            registry=r,
        )
        self.last_sync = Gauge(
            "sixpod_resilient_last_sync_timestamp_seconds",
            "Unix time of the last sync that succeeded",
            registry=r,
        )
        for kind in ERROR_KINDS:
            self.errors.labels(kind=kind)
        for vip in self.vips:
            self.vip_members.labels(vip=_label(vip)).set(0)

    def observe(self, result: SyncResult | ResilientError) -> None:
        if isinstance(result, ResilientError):
            if not isinstance(result, NetlinkError):  # route events fail outside a sync
                self.syncs.inc()
            self.errors.labels(kind=error_kind(result)).inc()
            return
        self.syncs.inc()
        plan = result.plan
        if result.changed:
            self.resyncs.inc()
            self.operations.inc(len(plan.ops))
        self.groups.set(len(plan.groups))
        self.members.set(len(plan.members))
        self.routes.set(len(plan.routes))
        self.unmirrored.set(len(result.view.unmirrored))
        for vip in self.vips:
            gid = plan.routes.get(vip)
            fanout = 0 if gid is None else len(plan.groups.get(gid, ()))
            self.vip_members.labels(vip=_label(vip)).set(fanout)
        self.last_sync.set(self.clock())


def _label(vip: VIP) -> str:
    return addr.format_ip(vip.network_address)
