"""The customer's journey through a running lab (``sixpod lab test``).

An app (``journey``) with two domains (``journey.example`` and ``www.journey.example``) is
created through the tenants API; its containers start on nodes of several racks and are
registered as its endpoints, as an orchestrator would; the client resolves
``www.journey.example`` through Razor (anycast on the edge nodes' VIPs; it hosts the
customer's zone, whose ``www`` is a CNAME to the app's route name) and fetches each domain
over an IPv4 and an IPv6 VIP from the answers, with its Host header; then uploads a
certificate for both domains through the API (from a root made for the journey, the only one
the client trusts) and fetches them again over HTTPS. Every answer must come from
one of the app's containers with the Host it was asked for; the figures say over how many
edge nodes and containers the requests spread. Everything the journey creates is removed at
its end (the app, its endpoints, the containers).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sixpod import addr
from sixpod.lab import pki
from sixpod.lab.netns import LabError, Sandbox, wait_for
from sixpod.lab.pod import APP_PORT, JOURNEY_APP, JOURNEY_ZONE, LabContainer, LabNode, LabPod

REQUESTS = 40
"""Requests per VIP family (each on its own connection: a new ECMP hash)."""


@dataclass
class Spread:
    """Where one batch of requests went."""

    vip: str
    host: str
    url: str
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    edges: Counter[str] = field(default_factory=Counter)
    containers: Counter[str] = field(default_factory=Counter)


@dataclass
class Journey:
    app: str
    domains: tuple[str, str]
    containers: list[LabContainer] = field(default_factory=list)
    replicated_ms: float = 0.0
    resolved: dict[str, list[str]] = field(default_factory=dict)
    spreads: list[Spread] = field(default_factory=list)


def pick_hosts(pod: LabPod, nodes: int) -> list[LabNode]:
    """Up to ``nodes`` nodes that announce a /64, taken in turn from each rack (internal
    nodes first: they are where an orchestrator puts apps), so the edges reach containers
    in other racks through the spine."""
    by_rack: dict[str, list[LabNode]] = {}
    for n in sorted(pod.nodes.values(), key=lambda n: (n.edge, n.name)):
        if n.doc.prefixes:
            by_rack.setdefault(n.doc.rack, []).append(n)
    out: list[LabNode] = []
    while len(out) < nodes and any(by_rack.values()):
        for rack in sorted(by_rack):
            if by_rack[rack] and len(out) < nodes:
                out.append(by_rack[rack].pop(0))
    return out


def fetch(
    pod: LabPod, vip: str, host: str, count: int, cafile: Path | None = None
) -> list[dict[str, Any]]:
    """``count`` GETs from the client to ``vip`` with ``Host: host``: HTTP on port 80, or
    HTTPS on 443 (SNI ``host``, trusting only ``cafile``) when ``cafile`` is given."""
    port, ca = ("443", str(cafile)) if cafile else ("80", "")
    out = pod.exec(
        pod.client_ns,
        sys.executable, "-m", "sixpod.lab.whoami", "get", vip, port, host, str(count), ca,
        timeout=60,
    )  # fmt: skip
    answers: list[dict[str, Any]] = json.loads(out)
    return answers


def resolve(pod: LabPod, name: str, rdtype: str) -> dict[str, Any]:
    out = pod.exec(
        pod.client_ns,
        sys.executable, "-m", "sixpod.lab.whoami", "resolve", pod.nameserver(6), name, rdtype,
    )  # fmt: skip
    doc: dict[str, Any] = json.loads(out)
    return doc


def run_journey(
    pod: LabPod,
    echo: Callable[[str], None],
    *,
    nodes: int = 3,
    per_node: int = 2,
    requests: int = REQUESTS,
) -> Journey:
    """Run the journey; raise :class:`LabError` when the pod did not behave."""
    if pod.lock is None:
        raise LabError("the journey needs the tenants controller (a lab brought up from pod.yaml)")
    edges = [n for n in pod.nodes.values() if n.edge]
    if not edges:
        raise LabError("the pod has no edge nodes")
    j = Journey(app=JOURNEY_APP, domains=(JOURNEY_ZONE, f"www.{JOURNEY_ZONE}"))
    box = Sandbox(prefix=pod.prefix, workdir=pod.workdir / "journey")
    with contextlib.suppress(LabError):  # left by a journey that was killed
        pod.api("app", "delete", j.app, "--force")
    pod.api("app", "create", j.app)
    try:
        for d in j.domains:
            pod.api("domain", "attach", d, j.app)
        echo(f"app {j.app} created through the API, with domains {' and '.join(j.domains)}")
        hosts = pick_hosts(pod, nodes)
        if not hosts:
            raise LabError("no node announces a /64 to host containers")
        for n in hosts:
            for k in range(1, per_node + 1):
                j.containers.append(pod.start_container(n.name, k, box))
        where = ", ".join(
            sorted({f"{c.node} ({pod.nodes[c.node].doc.rack})" for c in j.containers})
        )
        echo(f"{len(j.containers)} containers started on {where}")
        pod.api("endpoint", "add", j.app, *(c.endpoint for c in j.containers))
        t0 = time.monotonic()
        key = f"sixpod:up:{j.app}"
        wanted = [addr.for_redis(addr.Endpoint(c.address, APP_PORT)) for c in j.containers]
        wait_for(
            lambda: all(all(pod.replica_field(n.name, key, e) for e in wanted) for n in edges),
            timeout=30,
            interval=0.05,
            what=f"{j.app}'s endpoints on every edge node's Redis replica",
        )
        j.replicated_ms = (time.monotonic() - t0) * 1000
        echo(
            f"tenant {j.app}: {len(wanted)} endpoints on {len(edges)} edge replicas within "
            f"{j.replicated_ms:.0f} ms of the API's answer"
        )
        route_name = f"{j.app}.{pod.route_zone()}"
        for rdtype in ("AAAA", "A"):
            answer = resolve(pod, j.domains[1], rdtype)
            if answer["rcode"] != "NOERROR" or not answer["addresses"]:
                raise LabError(f"Razor answered {j.domains[1]} {rdtype} with {answer}")
            if [c.rstrip(".") for c in answer["cnames"]] != [route_name]:
                raise LabError(f"{j.domains[1]} is not a CNAME to {route_name}: {answer}")
            j.resolved[rdtype] = answer["addresses"]
            echo(
                f"client -> Razor at {pod.nameserver(6)}: {j.domains[1]} {rdtype} -> CNAME "
                f"{route_name} -> {', '.join(answer['addresses'])}"
            )
        site = pki.site(*j.domains, now=datetime.now(UTC))
        tls = pod.workdir / "journey" / "tls"
        tls.mkdir(parents=True, exist_ok=True)
        for name, text in (("root.pem", site.root), ("chain.pem", site.chain)):
            (tls / name).write_text(text)
        key_file = tls / "key.pem"
        key_file.unlink(missing_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(site.key)
        for d in j.domains:
            pod.api("cert", "upload", d, "--chain", str(tls / "chain.pem"), "--key", str(key_file))
        echo(f"certificate for {' and '.join(j.domains)} uploaded through the API (lab CA)")
        by_own = {str(pod.own_address(n.doc)): n.name for n in pod.nodes.values()}  # peer -> edge
        ours = {c.name for c in j.containers}
        for cafile in (None, tls / "root.pem"):
            for rdtype, host in (("A", j.domains[0]), ("AAAA", j.domains[1])):
                vip = j.resolved[rdtype][0]
                spread = _batch(pod, vip, host, requests, cafile, ours, by_own)
                j.spreads.append(spread)
                echo(
                    f"client -> {spread.url}: {spread.ok}/{requests} answered, over "
                    f"{len(spread.edges)} edge nodes ({_counts(spread.edges)}) and "
                    f"{len(spread.containers)} containers ({_counts(spread.containers)})"
                )
                if spread.failed:
                    raise LabError(
                        f"{spread.url}: {len(spread.failed)} failed: {spread.failed[:3]}"
                    )
        want_edges = min(2, len(edges))
        want_containers = min(2, len(j.containers))
        for s in j.spreads:
            if len(s.edges) < want_edges or len(s.containers) < want_containers:
                raise LabError(
                    f"{s.vip}: requests went to {len(s.edges)} edge nodes and "
                    f"{len(s.containers)} containers; wanted at least {want_edges} and "
                    f"{want_containers}"
                )
        return j
    finally:
        try:
            pod.api("app", "delete", j.app, "--force")
        finally:
            problems = box.close()
            if problems:
                raise LabError(f"the journey's containers were not all removed: {problems}")


def _batch(
    pod: LabPod,
    vip: str,
    host: str,
    requests: int,
    cafile: Path | None,
    ours: set[str],
    by_own: dict[str, str],
) -> Spread:
    """``requests`` fetches of ``host`` over ``vip``, once the first one answers (the edges
    take the new endpoints, or the certificate, within moments of the API's answer)."""
    scheme = "https" if cafile else "http"
    spread = Spread(vip=vip, host=host, url=f"{scheme}://{host}/ via {vip}")
    wait_for(
        lambda: fetch(pod, vip, host, 1, cafile)[0]["status"] == 200,
        timeout=20,
        interval=0.2,
        what=f"{spread.url} to answer",
    )
    for a in fetch(pod, vip, host, requests, cafile):
        body = a.get("body")
        if a["status"] != 200 or not isinstance(body, dict):
            spread.failed.append(f"{a['status']} {a.get('error') or body}")
            continue
        sent = {k.lower(): v for k, v in body.get("headers", [])}
        if body.get("container") not in ours or sent.get("host") != host:
            spread.failed.append(f"answered by {body.get('container')} for {sent}")
            continue
        spread.ok += 1
        peer = str(body.get("peer", "?"))
        spread.edges[by_own.get(peer, peer)] += 1
        spread.containers[body["container"]] += 1
    return spread


def _counts(c: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
