"""The lab's monitoring: Debian's Prometheus in ctl with the rendered ``prometheus/``
directory, and Debian's exporters where that config scrapes them.

``sixpod render`` writes ``prometheus/`` (``prometheus.yml``, ``blackbox.yml``, ``alerts.yml``,
``targets/JOB.json``). The lab copies it whole into ``ctl-prometheus/`` and changes only what
a lab must: shorter scrape and evaluation intervals (:data:`LAB_INTERVAL`). Every exporter
listens at the address its target names: ``prometheus-node-exporter`` in each device's
namespace named in ``targets/node.json`` (its textfile collector reading
:func:`textfile_dir`, where ``sixpod probe mtu --textfile`` writes), ``prometheus-frr-exporter``
in each ToR's namespace named in ``targets/frr.json`` (reading that ToR's FRR run directory),
``prometheus-blackbox-exporter`` in ctl where the config's probe jobs send Prometheus. So the
blackbox exporter can probe the VIPs from ctl, ctl routes each VIP through a ToR that has it
(IPv6 as is, IPv4 from an address of its own over the IPv6 link, RFC 8950, as the nodes do),
and those ToRs route that IPv4 address back to ctl. Everything runs in the lab's sandbox:
``sixpod lab down`` stops it (never the distribution's systemd units).
"""

from __future__ import annotations

import json
import shutil
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_network,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sixpod import addr
from sixpod.lab.netns import LabError, Process, run, wait_for
from sixpod.monitoring import ports, prometheus

if TYPE_CHECKING:
    from sixpod.lab.pod import LabPod, LabTor

PROMETHEUS_PORT = 9090
PROMETHEUS_URL = f"http://[::1]:{PROMETHEUS_PORT}"
"""Where the lab's Prometheus answers, inside the ctl namespace."""
LAB_INTERVAL = "2s"
"""Scrape and rule evaluation interval in the lab (the rendered config says 15 s): an alert
fires and resolves within seconds of what causes it."""
CTL_V4_CANDIDATES = ("198.51.100.248/32", "203.0.113.248/32", "100.64.0.8/32")
"""ctl's IPv4 address (on ``lo``), the source of the blackbox exporter's IPv4 probes: the
first that overlaps no VIP and not the client's link."""
PROGRAMS = {
    "prometheus": "prometheus",
    "prometheus-node-exporter": "prometheus-node-exporter",
    "prometheus-frr-exporter": "prometheus-frr-exporter",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
}
"""The programs the lab's monitoring runs → the Debian package that installs each."""
NODE_COLLECTORS = (
    "cpu", "loadavg", "meminfo", "netdev", "netstat", "sockstat", "textfile", "time",
)  # fmt: skip
"""node-exporter's collectors in the lab: what the alert rules and an operator read, no more
(the defaults read every disk and hwmon of the machine, once per namespace)."""


def textfile_dir(pod: LabPod, device: str) -> Path:
    """The directory node-exporter's textfile collector reads on ``device`` (a node or a
    ToR), for ``sixpod probe mtu --textfile``."""
    return pod.workdir / "textfile" / device


def prometheus_dir(pod: LabPod) -> Path:
    return pod.workdir / "ctl-prometheus"


def _require() -> None:
    missing = [f"{p} (Debian package {pkg})" for p, pkg in PROGRAMS.items() if not shutil.which(p)]
    if missing:
        raise LabError(
            "the lab's monitoring needs " + ", ".join(missing) + ": run scripts/setup as root"
        )


def _targets(src: Path, job: str) -> list[tuple[str, str]]:
    """``(device, target)`` of every target of ``job`` in the rendered file_sd file."""
    path = src / "targets" / f"{job}.json"
    try:
        groups = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise LabError(f"{path}: {e}") from None
    return [(g["labels"]["device"], t) for g in groups for t in g["targets"]]


def _has_address(ns: str, ip: addr.IPAddress) -> bool:
    links = json.loads(run(["ip", "-j", "-n", ns, "addr", "show"]) or "[]")
    return any(
        addr.parse_ip(a["local"]) == ip
        for link in links
        for a in link.get("addr_info", [])
        if "tentative" not in a
    )


def _spawn_at(pod: LabPod, name: str, ns: str, target: str, argv: list[str]) -> Process:
    """Start an exporter listening at ``target`` (``[address]:port``) once ``ns`` holds the
    address (a ToR's interfaces get theirs from FRR)."""
    where = addr.parse_endpoint(target)
    wait_for(
        lambda: _has_address(ns, where.ip),
        timeout=60,
        interval=0.2,
        what=f"{addr.format_ip(where.ip)} in {ns} (where Prometheus scrapes {name})",
    )
    return pod.box.spawn(name, ns, [*argv, f"--web.listen-address={target}"])


def _namespaces(pod: LabPod) -> dict[str, str]:
    """Device name → its namespace (nodes and ToRs)."""
    out = {n.name: n.ns for n in pod.nodes.values()}
    out |= {t.name: t.ns for t in pod.tors.values()}
    return out


def start_exporters(pod: LabPod, devices: set[str] | None = None) -> list[Process]:
    """node-exporter and frr-exporter where ``targets/node.json`` and ``targets/frr.json``
    scrape them; the blackbox exporter in ctl. With ``devices``, only those devices'
    exporters that do not answer (after a drill killed a device's processes)."""
    src = pod.rendered / prometheus.DIR
    where = _namespaces(pod)
    tors = {t.name: t for t in pod.tors.values()}
    procs: list[Process] = []

    def wanted(device: str, ns: str, target: str) -> bool:
        if devices is None:
            return True
        at = addr.parse_endpoint(target)
        return device in devices and pod.reach(ns, addr.format_ip(at.ip), at.port) != "open"

    if devices is None:
        shutil.rmtree(pod.workdir / "textfile", ignore_errors=True)  # a previous lab's probes
    for device, target in _targets(src, "node"):
        if device not in where:
            raise LabError(f"{src}/targets/node.json: {device} is not in the lab")
        if not wanted(device, where[device], target):
            continue
        text = textfile_dir(pod, device)
        text.mkdir(parents=True, exist_ok=True)
        argv = [
            "prometheus-node-exporter",
            "--collector.disable-defaults",
            *(f"--collector.{c}" for c in NODE_COLLECTORS),
            f"--collector.textfile.directory={text}",
        ]
        procs.append(_spawn_at(pod, f"{device}-node-exporter", where[device], target, argv))
    for device, target in _targets(src, "frr"):
        if device not in tors:
            raise LabError(f"{src}/targets/frr.json: {device} is not a ToR of the lab")
        if not wanted(device, tors[device].ns, target):
            continue
        argv = [
            "prometheus-frr-exporter",
            f"--frr.socket.dir-path={tors[device].frr.rundir}",
            "--no-collector.ospf",
            "--collector.bgp6",
        ]
        procs.append(_spawn_at(pod, f"{device}-frr-exporter", tors[device].ns, target, argv))
    if devices is None:
        blackbox = addr.for_prometheus(prometheus.BLACKBOX)
        config = prometheus_dir(pod) / "blackbox.yml"
        argv = ["prometheus-blackbox-exporter", f"--config.file={config}"]
        procs.append(_spawn_at(pod, "ctl-blackbox-exporter", pod.ctl_ns, blackbox, argv))
    return procs


def restart_exporters(pod: LabPod, device: str) -> list[Process]:
    """A device's exporters again, after a drill killed every process of its namespace and
    started the device's own again (a lab without monitoring: none)."""
    if not pod.monitoring:
        return []
    return start_exporters(pod, {device})


def ctl_v4(pod: LabPod) -> IPv4Address:
    """ctl's IPv4 address: the first candidate clear of the VIPs and the client's link."""
    taken = [IPv4Network((v, 32)) for t in pod.tors.values() for v in t.doc.vips.ipv4]
    if pod.client_v4 is not None:
        taken.append(pod.client_v4.network)
    for cand in CTL_V4_CANDIDATES:
        net = IPv4Network(cand)
        if not any(net.overlaps(t) for t in taken):
            return net.network_address
    raise LabError("no IPv4 address left for ctl's probes: every candidate overlaps a VIP")


def route_vips(pod: LabPod) -> None:
    """ctl reaches every VIP through the first ToR (in the order ctl is cabled) that has it,
    and those ToRs reach ctl's IPv4 address back."""
    own4 = ctl_v4(pod)
    pod.box.addr(pod.ctl_ns, "lo", IPv4Interface((own4, 32)))
    routed: set[addr.IPAddress] = set()
    for k, (tor_end, ctl_end, tor) in enumerate(_ctl_links(pod)):
        vips = [v for v in tor.doc.vips.all if v not in routed]
        for v in vips:
            net = ip_network((v, v.max_prefixlen))
            src = own4 if v.version == 4 else None
            pod.box.route(pod.ctl_ns, net, via=tor_end, dev=f"tor{k}", src=src)
            routed.add(v)
        if any(v.version == 4 for v in vips):
            pod.box.route(tor.ns, IPv4Network((own4, 32)), via=ctl_end)


def _ctl_links(pod: LabPod) -> list[tuple[IPv6Address, IPv6Address, LabTor]]:
    """Each ToR's link to ctl: (ToR's end, ctl's end, the ToR), as ``LabPod._attach_ctl``
    cables them (link ``k`` is the ``(k+1)``-th /112 of the aggregate's first /64; ctl's
    end of it is ``tor{k}``)."""
    first = next(iter(pod.tors.values()))
    infra = int(first.doc.aggregate.network_address)
    out = []
    for k, tor in enumerate(pod.tors.values()):
        net = IPv6Network((infra + ((k + 1) << 16), 112))
        ctl_end = net.network_address + 2
        if not _has_address(pod.ctl_ns, ctl_end):
            raise LabError(f"ctl has no {ctl_end} on tor{k}: not cabled as monitoring expects")
        out.append((net.network_address + 1, ctl_end, tor))
    return out


def lab_config(text: str) -> str:
    """The rendered ``prometheus.yml`` as the lab runs it: :data:`LAB_INTERVAL`, but for
    the blackbox exporter's probes (a pod of 512 + 512 VIPs would be probed 512 times a
    second), which keep the rendered interval."""
    doc = yaml.safe_load(text)
    rendered = doc["global"].get("scrape_interval", prometheus.SCRAPE_INTERVAL)
    for job in doc["scrape_configs"]:
        if job.get("metrics_path") == "/probe":
            job.setdefault("scrape_interval", rendered)
    doc["global"].update(
        scrape_interval=LAB_INTERVAL,
        scrape_timeout=LAB_INTERVAL,
        evaluation_interval=LAB_INTERVAL,
    )
    head = "# The lab's copy of the rendered prometheus.yml: shorter intervals (not the probes').\n"
    return head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def _add_lab_daemons(pod: LabPod, d: Path) -> None:
    """The daemons the lab runs wherever the inventory says: the controller in ctl (when the
    lab runs one) and Razor on every node that runs it, in their jobs' targets (replacing what the
    inventory names for them: the lab's controller is in ctl, whatever pod.yaml says)."""
    from sixpod.lab.pod import CONTROLLER_PORT
    from sixpod.node.render import runs_razor

    def group(ip: IPv6Address, port: int, **labels: str) -> dict[str, Any]:
        return {"targets": [addr.for_prometheus(addr.Endpoint(ip, port))], "labels": labels}

    ctl = [group(IPv6Address(pod.ctl_address), CONTROLLER_PORT, device="controller")]
    ctl[0]["labels"]["role"] = "controller"
    controllers = ctl if pod.lock is not None else []  # a lab without one: nothing to scrape
    (d / "targets" / "sixpod-controller.json").write_text(json.dumps(controllers, indent=2) + "\n")
    razors = [
        group(n.doc.uplink.address, ports.RAZOR, device=n.name, rack=n.doc.rack, role=n.doc.role)
        for n in pod.nodes.values()
        if runs_razor(n.doc)  # where the bootstrap runs it
    ]
    (d / "targets" / "sixpod-razor.json").write_text(json.dumps(razors, indent=2) + "\n")


def start_prometheus(pod: LabPod) -> Process:
    src = pod.rendered / prometheus.DIR
    if not (src / "prometheus.yml").is_file():
        raise LabError(f"{src}: no rendered prometheus.yml (run `sixpod render` again)")
    d = prometheus_dir(pod)
    shutil.rmtree(d, ignore_errors=True)  # a previous lab's copy and its samples
    shutil.copytree(src, d)
    (d / "prometheus.yml").write_text(lab_config((src / "prometheus.yml").read_text()))
    _add_lab_daemons(pod, d)
    argv = [
        "prometheus",
        f"--config.file={d / 'prometheus.yml'}",
        f"--storage.tsdb.path={d / 'data'}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address=[::1]:{PROMETHEUS_PORT}",
    ]
    return pod.box.spawn("ctl-prometheus", pod.ctl_ns, argv)


def start_monitoring(pod: LabPod) -> None:
    """Prometheus and every exporter its config scrapes; returns when Prometheus is ready."""
    _require()
    proc = start_prometheus(pod)
    route_vips(pod)
    start_exporters(pod)
    wait_for(
        lambda: not proc.alive() or ready(pod),
        timeout=60,
        interval=0.2,
        what="the lab's Prometheus to be ready",
    )
    if not proc.alive():
        raise LabError(f"the lab's Prometheus exited; see {proc.log}")


def wait_all_up(pod: LabPod, *, timeout: float = 120) -> list[dict[str, Any]]:
    """Every target of the lab's Prometheus up (scraped once since it started, and healthy);
    the targets. On a timeout the error names each target not up, with its last error."""
    seen: list[dict[str, Any]] = []

    def all_up() -> bool:
        nonlocal seen
        try:
            seen = targets(pod)
        except LabError:
            return False
        return bool(seen) and all(t["health"] == "up" for t in seen)

    try:
        wait_for(all_up, timeout=timeout, interval=1, what="every Prometheus target up")
    except LabError as e:
        down = [
            f"{t['job']} {t['instance']}: {t['health']}"
            + (f" ({t['last_error']})" if t["last_error"] else "")
            for t in seen
            if t["health"] != "up"
        ]
        raise LabError(f"{e}: " + ("; ".join(down) or "Prometheus lists none")) from None
    return seen


def ready(pod: LabPod) -> bool:
    try:
        return query_raw(pod, "/-/ready", check=False).startswith("Prometheus")
    except LabError:
        return False


def query_raw(pod: LabPod, path: str, *, check: bool = True) -> str:
    """GET ``path`` from the lab's Prometheus (from ctl); its body."""
    return pod.exec(
        pod.ctl_ns,
        "curl", "-sg", "--max-time", "5", *(["--fail"] if check else []),
        PROMETHEUS_URL + path,
        timeout=15,
        check=check,
    )  # fmt: skip


def api(pod: LabPod, path: str) -> Any:
    """The ``data`` of a Prometheus HTTP API answer (``/api/v1/...``)."""
    text = query_raw(pod, path)
    try:
        doc = json.loads(text)
    except ValueError:
        raise LabError(f"Prometheus {path}: not JSON: {text[:200]!r}") from None
    if doc.get("status") != "success":
        raise LabError(f"Prometheus {path}: {doc.get('error', doc)}")
    return doc["data"]


def targets(pod: LabPod) -> list[dict[str, Any]]:
    """Every active target: job, instance, device, health (``up``/``down``/``unknown``),
    last error, last scrape."""
    out = [
        {
            "job": t["labels"].get("job", ""),
            "instance": t["labels"].get("instance", ""),
            "device": t["labels"].get("device", ""),
            "health": t.get("health", "unknown"),
            "last_error": t.get("lastError", ""),
            "last_scrape": t.get("lastScrape", ""),
        }
        for t in api(pod, "/api/v1/targets?state=active")["activeTargets"]
    ]
    return sorted(out, key=lambda t: (t["job"], t["instance"]))


def alerts(pod: LabPod) -> list[dict[str, Any]]:
    """Pending and firing alerts: name, state, labels, since (``activeAt``)."""
    return [
        {
            "alert": a["labels"].get("alertname", ""),
            "state": a.get("state", ""),
            "labels": a["labels"],
            "active_at": a.get("activeAt", ""),
        }
        for a in api(pod, "/api/v1/alerts")["alerts"]
    ]


def query(pod: LabPod, promql: str) -> list[dict[str, Any]]:
    """An instant query's vector: ``[{"metric": {...}, "value": [t, "v"]}, ...]``."""
    from urllib.parse import quote

    data = api(pod, f"/api/v1/query?query={quote(promql)}")
    result: list[dict[str, Any]] = data["result"]
    return result


__all__ = [
    "PROMETHEUS_URL",
    "alerts",
    "query",
    "start_monitoring",
    "targets",
    "textfile_dir",
]
