"""What ``sixpod lab status`` shows beyond the routing: the lab's Prometheus targets and
firing alerts, node and VIP states and apps from the controller, and per edge node its Redis
replica (link, bytes and revisions behind) and nginx's state revision (the admin ``/state``).

Each part is read on its own: one that cannot be read (no controller in this lab, Prometheus
not answering, an edge down) says so in its ``error`` and the others are still shown.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from sixpod import addr
from sixpod.edge.nginxconf import ADMIN_SOCKET
from sixpod.lab import monitoring
from sixpod.lab.netns import LabError
from sixpod.lab.pod import CONTROLLER_PORT, REDIS_PORT, LabPod

KEY_PREFIX = "sixpod"
"""The tenants' key prefix in Redis (the rendered configs' default)."""

FETCH = """
import json, sys, urllib.parse, urllib.request
base, token = sys.argv[1], open(sys.argv[2]).read().strip()
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())
def pages(path):
    items, after = [], None
    while True:
        q = "?limit=1000" + ("&after=" + urllib.parse.quote(after, safe="") if after else "")
        page = get(path + q)
        items += page["items"]
        after = page.get("next")
        if not after:
            return items
out = {"status": get("/v1/status"), "nodes": get("/v1/nodes")["items"],
       "vips": get("/v1/vips")["items"], "apps": {}}
for a in pages("/v1/apps"):
    name = urllib.parse.quote(a["name"], safe="")
    out["apps"][a["name"]] = len(pages("/v1/apps/" + name + "/endpoints"))
print(json.dumps(out))
"""
"""Run in ctl: the controller's revision and publisher, node and VIP states, apps and their
endpoint counts (every page), as one JSON line."""


def controller(pod: LabPod) -> dict[str, Any]:
    if pod.lock is None:
        return {"error": "this lab runs no controller"}
    argv = [
        sys.executable, "-c", FETCH,
        f"http://[::1]:{CONTROLLER_PORT}", str(pod.controller_dir / "token"),
    ]  # fmt: skip
    try:
        data = json.loads(pod.exec(pod.ctl_ns, *argv, timeout=60))
    except (LabError, ValueError) as e:
        return {"error": f"the controller did not answer: {e}"}
    apps: dict[str, int] = data["apps"]
    publisher = data["status"].get("publisher") or {}
    # the store keeps a record only for a node or VIP whose state was set: the rest are active
    active = {"state": "active", "reason": ""}
    nodes = {n["name"]: {"state": n["state"], "reason": n["reason"]} for n in data["nodes"]}
    vips = {v["address"]: {"state": v["state"], "reason": v["reason"]} for v in data["vips"]}
    pod_vips = sorted({v for t in pod.tors.values() for v in t.doc.vips.all}, key=_vip_order)
    return {
        "revision": data["status"]["revision"],
        "publisher_active": bool(publisher.get("active")),
        "nodes": {n: nodes.get(n, active) for n in sorted(pod.nodes)}
        | {n: v for n, v in nodes.items() if n not in pod.nodes},
        "vips": {addr.format_ip(v): vips.get(addr.format_ip(v), active) for v in pod_vips},
        "apps": {"count": len(apps), "endpoints": sum(apps.values()), "per_app": apps},
    }


def _vip_order(ip: addr.IPAddress) -> tuple[int, int]:
    return ip.version, int(ip)


def _redis_info(pod: LabPod, ns: str) -> dict[str, str]:
    text = pod.exec(
        ns,
        "redis-cli", "-h", "::1", "-p", str(REDIS_PORT), "--no-auth-warning",
        "-a", pod.redis_password, "info", "replication",
        timeout=10,
    )  # fmt: skip
    return dict(
        line.strip().split(":", 1) for line in text.splitlines() if ":" in line and line[0] != "#"
    )


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def edges(pod: LabPod, head: int | None) -> dict[str, Any]:
    """Per edge node: its replica (link to the primary, bytes behind it, the tenants'
    revision it holds and how far behind ``head``, the store's) and nginx's ``/state``
    revision (how far behind the replica)."""
    try:
        primary = _int(_redis_info(pod, pod.ctl_ns).get("master_repl_offset"))
    except LabError:
        primary = None
    out: dict[str, Any] = {}
    for node in pod.nodes.values():
        if not node.edge:
            continue
        row: dict[str, Any] = {}
        try:
            info = _redis_info(pod, node.ns)
            row["link"] = info.get("master_link_status", "")
            offset = _int(info.get("slave_repl_offset"))
            behind = None if primary is None or offset is None else max(0, primary - offset)
            row["bytes_behind"] = behind
            revision = _int(pod.replica_field(node.name, f"{KEY_PREFIX}:meta", "revision"))
        except LabError as e:
            row.update(link="", bytes_behind=None, error=f"replica: {e}")
            revision = None
        row["replica_revision"] = revision
        row["revisions_behind"] = (
            None if head is None or revision is None else max(0, head - revision)
        )
        sock = (node.run or node.dir / "run") / "edge" / ADMIN_SOCKET  # the bootstrap's
        try:
            text = pod.exec(
                node.ns,
                "curl", "-s", "--fail", "--max-time", "2", "--unix-socket", str(sock),
                "http://edge/state",
                timeout=10,
            )  # fmt: skip
            state = json.loads(text)
            nginx = _int(str(state.get("revision")))
            row["nginx_revision"] = nginx
            row["nginx_ready"] = bool(state.get("ready"))
        except (LabError, ValueError) as e:
            row.update(nginx_revision=None, nginx_ready=False)
            row.setdefault("error", f"nginx /state: {e}")
        nginx = row["nginx_revision"]
        row["nginx_behind"] = None if nginx is None or revision is None else revision - nginx
        out[node.name] = row
    return out


def prometheus(pod: LabPod) -> dict[str, Any]:
    out: dict[str, Any] = {"url": monitoring.PROMETHEUS_URL, "namespace": pod.ctl_ns}
    if not pod.monitoring:
        return out | {"targets": [], "alerts": [], "error": "this lab runs no Prometheus"}
    try:
        out["targets"] = monitoring.targets(pod)
        out["alerts"] = monitoring.alerts(pod)
    except LabError as e:
        out.update(targets=[], alerts=[], error=f"Prometheus did not answer: {e}")
    return out


def overview(pod: LabPod) -> dict[str, Any]:
    """The keys ``lab status --json`` adds: ``prometheus``, ``controller``, ``edges``."""
    ctl = controller(pod)
    return {
        "prometheus": prometheus(pod),
        "controller": ctl,
        "edges": edges(pod, ctl.get("revision")),
    }


FOLD = 8
"""A job with more targets than this is one line of the targets table (and each target not
up); ``--json`` lists every one."""


def _show(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def print_overview(console: Console, s: dict[str, Any]) -> None:
    p = s["prometheus"]
    table = Table(
        "job", "instance", "health", "last error", title=f"Prometheus ({p['url']} in ctl)"
    )
    jobs: dict[str, list[dict[str, Any]]] = {}
    for t in p["targets"]:
        jobs.setdefault(t["job"], []).append(t)
    for job, targets in jobs.items():
        up = [t for t in targets if t["health"] == "up"]
        if len(targets) > FOLD:  # a pod's 512 VIP probes: one line, and each one not up
            table.add_row(job, f"{len(targets)} targets", f"{len(up)} up", "")
        for t in targets if len(targets) <= FOLD else [t for t in targets if t not in up]:
            health = t["health"] if t["health"] == "up" else t["health"].upper()
            table.add_row(job, t["instance"], health, t["last_error"])
    console.print(table)
    if "error" in p:
        console.print(f"  {p['error']}")
    firing = [a for a in p["alerts"] if a["state"] == "firing"]
    names = ", ".join(sorted({a["alert"] for a in firing})) or "none"
    console.print(f"  alerts firing: {names}")
    ctl = s["controller"]
    if "error" in ctl:
        console.print(f"controller: {ctl['error']}")
    else:
        table = Table("node", "state", "reason", title="nodes (controller)")
        for name, n in ctl["nodes"].items():
            table.add_row(name, n["state"], n["reason"])
        console.print(table)
        table = Table("VIP", "state", "reason", title="VIPs (controller)")
        for vip, v in ctl["vips"].items():
            table.add_row(vip, v["state"], v["reason"])
        console.print(table)
        apps = ctl["apps"]
        active = "active" if ctl["publisher_active"] else "NOT ACTIVE"
        console.print(
            f"  apps: {apps['count']}, endpoints: {apps['endpoints']}; store revision "
            f"{ctl['revision']}, publisher {active}"
        )
    table = Table(
        "edge", "replica link", "bytes behind", "replica rev", "behind store",
        "nginx rev", "behind replica", title="edges",
    )  # fmt: skip
    for name, e in s["edges"].items():
        link = e["link"] if e["link"] == "up" else _show(e["link"]).upper()
        table.add_row(
            name, link, _show(e["bytes_behind"]), _show(e["replica_revision"]),
            _show(e["revisions_behind"]), _show(e["nginx_revision"]), _show(e["nginx_behind"]),
        )  # fmt: skip
    console.print(table)
    for name, e in s["edges"].items():
        if "error" in e:
            console.print(f"  {name}: {e['error']}")
