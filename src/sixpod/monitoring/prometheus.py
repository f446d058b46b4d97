"""``prometheus/``: a Prometheus config for the pod, with file_sd target files (pure).

From the rendered device documents: every node and ToR, scraped at its global IPv6 address
(a node's uplink address, a ToR's :attr:`~sixpod.devices.TorDevice.address`), each target
written by the address module (``[2001:db8::2]:9180``). Jobs: sixpod's daemons (announcer on
every node, edge agent on edge nodes, Razor on nodes running it, tor-resilient on ToRs, the
controller when the inventory names its host), Debian's node exporter on every device and
FRR exporter on every ToR, and the blackbox exporter probing every VIP over HTTP, IPv6 VIPs
with ``ip6`` only and IPv4 VIPs separately. The alert rules (:mod:`sixpod.monitoring`,
``alerts.yml``) are copied beside the config, which names them relatively: the directory is
copied as a whole (``prometheus --config.file=DIR/prometheus.yml``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from ipaddress import IPv6Address
from typing import Any

import yaml

from sixpod import addr
from sixpod.devices import Device, NodeDevice, TorDevice
from sixpod.monitoring import ports

__all__ = ["BLACKBOX", "JOBS", "blackbox_yml", "prometheus_files", "prometheus_yml"]

DIR = "prometheus"
SCRAPE_INTERVAL = "15s"
BLACKBOX = addr.Endpoint(IPv6Address("::1"), ports.BLACKBOX_EXPORTER)
"""Where Prometheus finds the blackbox exporter: on its own host (Debian's listens on :9115)."""
EDGE_ANSWER = "^sixpod: "
"""A probe of a VIP without an app's Host is answered by the edge itself: 404 ``sixpod: no
app serves this host`` (edge/lua): the VIP is routed, announced and served by sixpod."""


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    what: str


JOBS: tuple[Job, ...] = (
    Job("sixpod-announcer", "`sixpod announcer` on every node"),
    Job("sixpod-edge", "`sixpod edge-agent` on edge nodes"),
    Job("sixpod-razor", "`sixpod razor` on nodes that run it (metrics on port 9153)"),
    Job("sixpod-resilient", "`sixpod tor-resilient` on every ToR"),
    Job("sixpod-controller", "`sixpod controller` on the host of the floor's Redis primary"),
    Job("node", "prometheus-node-exporter on every node and ToR"),
    Job("frr", "prometheus-frr-exporter on every ToR"),
    Job("vips-ip6", "the blackbox exporter: every IPv6 VIP over HTTP, ip6 only"),
    Job("vips-ip4", "the blackbox exporter: every IPv4 VIP over HTTP, ip4 only"),
)


def _group(targets: Iterable[str], **labels: str) -> dict[str, Any]:
    return {"targets": list(targets), "labels": labels}


def _at(ip: IPv6Address, port: int) -> str:
    return addr.for_prometheus(addr.Endpoint(ip, port))


def _url(ip: addr.IPAddress) -> str:
    return addr.format_url(addr.URL("http", addr.Address(ip), None, "/"))


def _targets(
    docs: Mapping[str, Device], controller: IPv6Address | None
) -> dict[str, list[dict[str, Any]]]:
    nodes = sorted((d for d in docs.values() if isinstance(d, NodeDevice)), key=lambda d: d.name)
    tors = sorted((d for d in docs.values() if isinstance(d, TorDevice)), key=lambda d: d.name)
    reachable = [(t, t.address) for t in tors if t.address is not None]
    out: dict[str, list[dict[str, Any]]] = {job.name: [] for job in JOBS}

    def node(job: str, n: NodeDevice, port: int) -> None:
        out[job].append(
            _group([_at(n.uplink.address, port)], device=n.name, rack=n.rack, role=n.role)
        )

    def tor(job: str, t: TorDevice, ip: IPv6Address, port: int) -> None:
        out[job].append(_group([_at(ip, port)], device=t.name, rack=t.rack, role="tor"))

    for n in nodes:
        node("sixpod-announcer", n, ports.ANNOUNCER)
        if n.runs("edge-proxy"):
            node("sixpod-edge", n, ports.EDGE)
        if n.runs("razor"):
            node("sixpod-razor", n, ports.RAZOR)
        node("node", n, ports.NODE_EXPORTER)
    for t, ip in reachable:
        tor("sixpod-resilient", t, ip, ports.RESILIENT)
        tor("node", t, ip, ports.NODE_EXPORTER)
        tor("frr", t, ip, ports.FRR_EXPORTER)
    if controller is not None:
        out["sixpod-controller"].append(
            _group([_at(controller, ports.CONTROLLER)], device="controller", role="controller")
        )
    vips6 = sorted({v for t in tors for v in t.vips.ipv6})
    vips4 = sorted({v for t in tors for v in t.vips.ipv4})
    if vips6:
        out["vips-ip6"].append(_group(map(_url, vips6), family="ipv6"))
    if vips4:
        out["vips-ip4"].append(_group(map(_url, vips4), family="ipv4"))
    return out


def _probe(job: str, module: str) -> dict[str, Any]:
    return {
        "job_name": job,
        "metrics_path": "/probe",
        "params": {"module": [module]},
        "file_sd_configs": [{"files": [f"targets/{job}.json"]}],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": addr.for_prometheus(BLACKBOX)},
        ],
    }


def prometheus_yml(pod: str) -> str:
    jobs: list[dict[str, Any]] = []
    for job in JOBS:
        if job.name.startswith("vips-"):
            family = job.name.removeprefix("vips-")
            jobs.append(_probe(job.name, f"http_{family}"))
        else:
            sd = [{"files": [f"targets/{job.name}.json"]}]
            jobs.append({"job_name": job.name, "file_sd_configs": sd})
    doc = {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
            "external_labels": {"pod": pod},
        },
        "rule_files": ["alerts.yml"],
        "scrape_configs": jobs,
    }
    head = (
        f"# Prometheus for pod {pod}. Generated by `sixpod render`; do not edit.\n"
        "# Copy this directory whole; run prometheus --config.file=DIR/prometheus.yml.\n"
        "# Jobs and their targets (targets/JOB.json, file_sd; re-render to update):\n"
    )
    head += "".join(f"#   {job.name}: {job.what}\n" for job in JOBS)
    return head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def blackbox_yml(pod: str) -> str:
    def module(family: str) -> dict[str, Any]:
        return {
            "prober": "http",
            "timeout": "5s",
            "http": {
                "preferred_ip_protocol": family,
                "ip_protocol_fallback": False,
                "valid_status_codes": [404],
                "fail_if_body_not_matches_regexp": [EDGE_ANSWER],
                "no_follow_redirects": True,
            },
        }

    doc = {"modules": {"http_ip6": module("ip6"), "http_ip4": module("ip4")}}
    head = (
        f"# prometheus-blackbox-exporter modules for pod {pod}. Generated by `sixpod render`.\n"
        "# Run beside Prometheus: prometheus-blackbox-exporter --config.file=DIR/blackbox.yml\n"
        "# A VIP probed with its own address as Host is answered by sixpod's edge itself.\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def prometheus_files(
    docs: Mapping[str, Device], *, pod: str, controller: IPv6Address | None = None
) -> dict[str, str]:
    """``{relative path: text}`` under ``prometheus/``; ``controller`` is the controller's
    host (the pod's Redis primary, when the inventory's floor names it)."""
    rules = (resources.files("sixpod.monitoring") / "alerts.yml").read_text()
    files = {
        f"{DIR}/prometheus.yml": prometheus_yml(pod),
        f"{DIR}/blackbox.yml": blackbox_yml(pod),
        f"{DIR}/alerts.yml": rules,
    }
    for job, groups in _targets(docs, controller).items():
        files[f"{DIR}/targets/{job}.json"] = json.dumps(groups, indent=2) + "\n"
    return files
