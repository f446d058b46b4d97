"""The fabric in the lab: lldpd on every ToR and node, ``WORKDIR/fabric.yaml`` (how
``sixpod fabric lldp|plan|deploy`` reach the lab's ToRs), and the cabling changes a fabric
test makes (a cable moved to another port, a new server cabled and then provisioned).

Each lldpd runs in its device's namespace with a control socket of its own (``lldpcli -u``)
and the device's rendered ``lldpd.conf`` (ToRs and nodes: their chassis id), plus a 1 s
transmit interval so that a change is seen within seconds. Every process is in the lab's
sandbox: :meth:`LabPod.down` stops them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from sixpod import devices
from sixpod.devices import NodeDevice
from sixpod.lab.netns import LabError, Process, rtnl, wait_for

if TYPE_CHECKING:
    from sixpod.lab.pod import LabNode, LabPod

LLDPD_CHROOT = Path("/run/lldpd")  # lldpd's privilege-separation chroot (Debian's build)
TX_INTERVAL = "configure lldp tx-interval 1\n"
CONFIG = "fabric.yaml"
DEPLOY_LOG = "fabric-deploy.log"
DEADLINE = 30.0
"""Seconds a lab ToR's sessions have after a deploy (fabric.yaml ``deadline``)."""


def start_lldpd(
    lab: LabPod, ns: str, name: str, conf: str, folder: Path | None = None
) -> tuple[Process, Path]:
    """lldpd in ``ns`` with config ``conf`` (plus :data:`TX_INTERVAL`) and its own control
    socket (in ``folder``, a new one by default); returns the process and the socket once
    lldpd listens on it."""
    if shutil.which("lldpd") is None:
        raise LabError("lldpd is not installed (Debian package lldpd)")
    LLDPD_CHROOT.mkdir(exist_ok=True)
    folder = folder or lab.box.shared_dir(f"lldp-{name}")
    (folder / "lldpd.conf").write_text(conf + TX_INTERVAL)
    sock = folder / "lldpd.sock"
    sock.unlink(missing_ok=True)  # a killed lldpd's: never taken for the new one's
    argv = ["lldpd", "-d", "-u", str(sock), "-O", str(folder / "lldpd.conf")]
    proc = lab.box.spawn(f"{name}-lldpd", ns, argv)
    wait_for(lambda: sock.exists() or not proc.alive(), timeout=15, what=f"{name}'s lldpd socket")
    if not proc.alive():
        raise LabError(f"{name}: lldpd exited; see {proc.log}")
    return proc, sock


def start_lldp(lab: LabPod) -> Path | None:
    """lldpd on every ToR and node of ``lab`` (their rendered ``lldpd.conf``), then
    ``WORKDIR/fabric.yaml``; returns its path (None, and nothing started, without lldpd)."""
    if shutil.which("lldpd") is None:
        return None
    sockets: dict[str, Path] = {}
    for tor in lab.tors.values():
        conf = (lab.rendered / "tors" / tor.name / "lldpd.conf").read_text()
        sockets[tor.name] = start_lldpd(lab, tor.ns, tor.name, conf)[1]
    for node in lab.nodes.values():
        conf = (lab.rendered / "nodes" / node.name / "lldpd.conf").read_text()
        start_lldpd(lab, node.ns, node.name, conf)
    return write_config(lab, sockets)


def restart_lldpd(lab: LabPod, device: str) -> None:
    """lldpd again on a ToR or node whose namespace a drill killed, with the control socket
    ``fabric.yaml`` names for a ToR (nothing in a lab without lldpd)."""
    path = lab.workdir / CONFIG
    if shutil.which("lldpd") is None or not path.exists():
        return
    tor = next((t for t in lab.tors.values() if t.name == device), None)
    if tor is not None:
        sock = json.loads(path.read_text())["tors"].get(tor.name, {}).get("lldp_socket")
        conf = (lab.rendered / "tors" / tor.name / "lldpd.conf").read_text()
        start_lldpd(lab, tor.ns, tor.name, conf, Path(sock).parent if sock else None)
    elif device in lab.nodes:
        conf = (lab.rendered / "nodes" / device / "lldpd.conf").read_text()
        start_lldpd(lab, lab.nodes[device].ns, device, conf)


def write_config(lab: LabPod, lldp_sockets: dict[str, Path]) -> Path:
    """``WORKDIR/fabric.yaml``: each ToR's namespace, lldpd and FRR sockets (the deploy
    saves a ToR's running config in its own FRR folder, never in the machine's /etc/frr),
    the deploy log in the workdir. JSON, which is YAML."""
    tors = {}
    for tor in lab.tors.values():
        access = {
            "netns": tor.ns,
            "vty_socket": str(tor.frr.rundir),
            "confdir": str(tor.frr.rundir),
        }
        if tor.name in lldp_sockets:
            access["lldp_socket"] = str(lldp_sockets[tor.name])
        tors[tor.name] = access
    doc = {"tors": tors, "log": str(lab.workdir / DEPLOY_LOG), "deadline": DEADLINE}
    path = lab.workdir / CONFIG
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def move_cable(lab: LabPod, rack: str, port: str, to: str) -> None:
    """Move the cable on ``port`` of ``rack``'s ToR to its port ``to``: the ToR's end of the
    veth is renamed (the far end keeps its name and addresses, as a moved cable does)."""
    tor = lab.tors[rack]
    ports = {p.name for p in tor.doc.ports}
    if to not in ports:
        raise LabError(f"{tor.name} has no port {to} (its ports: {', '.join(sorted(ports))})")
    with rtnl(tor.ns, f"move the cable on {port} to {to}") as ipr:
        found = ipr.link_lookup(ifname=port)
        if not found:
            raise LabError(f"{tor.name}: no cable on {port}")
        if ipr.link_lookup(ifname=to):
            raise LabError(f"{tor.name}: {to} already has a cable")
        ipr.link("set", index=found[0], state="down")
        ipr.link("set", index=found[0], ifname=to)
        ipr.link("set", index=found[0], state="up")


def cable_server(lab: LabPod, rack: str, port: str, name: str, *, mtu: int = 1500) -> Process:
    """A new server ``name``, not yet in the pod: a namespace cabled to ``port`` of
    ``rack``'s ToR, running lldpd as installed (only its hostname set); returns that lldpd."""
    tor = lab.tors[rack]
    ns = lab.box.netns(f"n-{name}")
    lab.box.veth(tor.ns, port, ns, "eth0", mtu=mtu)
    return start_lldpd(lab, ns, name, f"configure system hostname {name}\n")[0]


def provision(lab: LabPod, rendered: Path, name: str, lldpd: Process | None = None) -> LabNode:
    """Provision a server :func:`cable_server` cabled, now that ``rendered`` (a render of the
    changed pod) has it: its rendered ``lldpd.conf`` (``lldpd`` is stopped first), then
    ``sixpod node bootstrap`` as for every lab node (its addresses, routes and daemons). Its
    files are copied into the lab's render, as provisioning installs them on the server."""
    from sixpod.lab.pod import LabNode

    src = rendered / "nodes" / name
    try:
        doc = devices.load((src / "device.json").read_text())
    except (OSError, ValueError) as e:
        raise LabError(f"{src}: {e}") from None
    if not isinstance(doc, NodeDevice):
        raise LabError(f"{src}: not a node")
    ns = f"{lab.prefix}n-{name}"
    if ns not in lab.box.namespaces:
        raise LabError(f"{name} is not cabled (cable_server first)")
    shutil.copytree(src, lab.rendered / "nodes" / name, dirs_exist_ok=True)
    node = LabNode(name, ns, doc, lab.workdir / "nodes" / name, bool(doc.vips.all))
    node.dir.mkdir(parents=True, exist_ok=True)
    if lldpd is not None:
        lab.box.stop(lldpd)
    start_lldpd(lab, ns, name, (src / "lldpd.conf").read_text())
    lab.nodes[name] = node
    lab._start_node(node)  # the bootstrap, as every lab node's
    return node
