"""Cabling from LLDP: what each ToR's lldpd sees against what the inventory says (pure).

Input: the ToRs' documents (their ports, which node and upstream is on which port) and, per
ToR, ``lldpcli -f json0 show neighbors`` (:func:`parse_neighbors`). Devices are recognised
by their **chassis id** (and the port they are seen on), never by hostname: a node's lldpd
announces ``sixpod:POD:NAME`` (``nodes/NAME/lldpd.conf``; :func:`sixpod.fabric.render.
chassis_id`), which nobody sets by accident, and which follows the node whatever NIC it has.

Findings, per port (:class:`Status`):

- ``ok``: the node the inventory puts there;
- ``wrong-port``: a node of the pod on another port (or another ToR) than its own;
- ``missing``: a node seen nowhere (its port is empty, or holds something else);
- ``unknown``: a device the inventory does not know, on a node's port or on a port the ToR
  does not have in the inventory; on a **free** port it is ``new`` and gets a proposed
  ``pod.yaml`` line (printed, never written);
- ``unconfigured``: on a node's port, a device without a sixpod chassis id whose system
  name is that node's name: most likely the node, cabled right, not yet given its
  ``lldpd.conf``. Still a mismatch: a hostname proves nothing;
- ``upstream``: something on an upstream's port (spines are not sixpod's to name);
  not a mismatch, nor is an upstream port that is silent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sixpod.devices import TorDevice
from sixpod.fabric.errors import ParseError
from sixpod.fabric.render import parse_chassis_id

NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
DEFAULT_ROLE = "internal"
"""The role a proposal gives a new node: announces only its own /64 (least authority)."""


class Status(StrEnum):
    OK = "ok"
    UPSTREAM = "upstream"
    WRONG_PORT = "wrong-port"
    MISSING = "missing"
    UNKNOWN = "unknown"
    NEW = "new"
    UNCONFIGURED = "unconfigured"

    @property
    def mismatch(self) -> bool:
        return self not in (Status.OK, Status.UPSTREAM)


@dataclass(frozen=True, slots=True)
class Seen:
    """One LLDP neighbor a ToR sees on one of its ports."""

    tor: str
    port: str
    """The ToR's own interface it was seen on."""
    chassis_type: str
    chassis: str
    port_type: str
    port_id: str
    """The neighbor's own port (its interface name when it sends ``ifname``)."""
    system_name: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    status: Status
    tor: str
    port: str
    node: str | None = None
    """The node the inventory puts on this port, or the node seen here."""
    seen: Seen | None = None
    expected: str | None = None
    """Where the node belongs (``TOR port``) when seen elsewhere; None otherwise."""
    detail: str = ""
    proposal: str | None = None

    def to_json(self) -> dict[str, Any]:
        s = self.seen
        return {
            "status": str(self.status),
            "tor": self.tor,
            "port": self.port,
            "node": self.node,
            "chassis": f"{s.chassis_type} {s.chassis}" if s else None,
            "system_name": s.system_name if s else None,
            "neighbor_port": s.port_id if s else None,
            "expected": self.expected,
            "detail": self.detail,
            "proposal": self.proposal,
        }


def _first(items: Any, key: str = "value") -> Any:
    """json0 wraps every value in a list of objects: the first one's ``key``."""
    if isinstance(items, list) and items and isinstance(items[0], Mapping):
        return items[0].get(key)
    return None


def parse_neighbors(text: str, tor: str) -> tuple[Seen, ...]:
    """``lldpcli -f json0 show neighbors`` of ``tor``. json0 keeps every list a list, even
    of one item (plain ``-f json`` turns one neighbor into an object)."""
    try:
        doc = json.loads(text)
    except (ValueError, TypeError) as e:
        raise ParseError(f"{tor}: lldpcli output is not JSON: {e}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("lldp"), list):
        raise ParseError(f"{tor}: lldpcli output has no 'lldp' list")
    out: list[Seen] = []
    for block in doc["lldp"]:
        if not isinstance(block, Mapping):
            raise ParseError(f"{tor}: lldpcli output: 'lldp' holds {block!r:.40}")
        for i, iface in enumerate(block.get("interface", [])):
            where = f"{tor}: lldpcli output: interface {i}"
            if not isinstance(iface, Mapping) or not isinstance(iface.get("name"), str):
                raise ParseError(f"{where}: no name")
            chassis = _first(iface.get("chassis"), "id")
            port = _first(iface.get("port"), "id")
            cid = chassis[0] if isinstance(chassis, list) and chassis else None
            pid = port[0] if isinstance(port, list) and port else None
            if not isinstance(cid, Mapping) or not isinstance(pid, Mapping):
                raise ParseError(f"{where} ({iface['name']}): no chassis or port id")
            values = (cid.get("type"), cid.get("value"), pid.get("type"), pid.get("value"))
            if not all(isinstance(v, str) for v in values):
                raise ParseError(f"{where} ({iface['name']}): chassis or port id is not text")
            name = _first(_first(iface.get("chassis"), "name"))
            out.append(
                Seen(
                    tor=tor,
                    port=iface["name"],
                    chassis_type=str(values[0]),
                    chassis=str(values[1]),
                    port_type=str(values[2]),
                    port_id=str(values[3]),
                    system_name=name if isinstance(name, str) else None,
                )
            )
    return tuple(out)


def compare(tors: Sequence[TorDevice], seen: Sequence[Seen]) -> tuple[Finding, ...]:
    """Every finding, sorted by ToR and port (in the ToR's port order)."""
    pod = tors[0].pod if tors else ""
    home: dict[str, tuple[str, str]] = {}  # node -> (tor, port)
    by_port: dict[tuple[str, str], str] = {}  # (tor, port) -> node
    upstream_ports: set[tuple[str, str]] = set()
    all_ports: dict[str, list[str]] = {}
    racks: dict[str, str] = {}
    for t in tors:
        racks[t.name] = t.rack
        all_ports[t.name] = [p.name for p in t.ports]
        for n in t.neighbors:
            home[n.node] = (t.name, n.port)
            by_port[(t.name, n.port)] = n.node
        upstream_ports |= {(t.name, u.port) for u in t.upstreams}
    names = set(home) | {t.name for t in tors}

    findings: list[Finding] = []
    found_at: dict[str, list[tuple[str, str]]] = {}
    taken = set(names)
    for s in seen:
        ident = parse_chassis_id(s.chassis) if s.chassis_type == "local" else None
        node = ident[1] if ident is not None and ident[0] == pod and ident[1] in home else None
        here = (s.tor, s.port)
        if node is not None:
            found_at.setdefault(node, []).append(here)
            if home[node] == here:
                findings.append(Finding(Status.OK, s.tor, s.port, node, s))
            else:
                exp = " ".join(home[node])
                findings.append(
                    Finding(
                        Status.WRONG_PORT, s.tor, s.port, node, s, exp, f"{node} belongs on {exp}"
                    )
                )
            continue
        if here in upstream_ports:
            findings.append(Finding(Status.UPSTREAM, s.tor, s.port, None, s))
            continue
        who = _describe(s, ident)
        if here in by_port:
            owner = by_port[here]
            if s.system_name == owner and ident is None:
                findings.append(
                    Finding(
                        Status.UNCONFIGURED,
                        s.tor,
                        s.port,
                        owner,
                        s,
                        detail=f"{who}: named like {owner} but without its chassis id: "
                        f"install nodes/{owner}/lldpd.conf on it",
                    )
                )
            else:
                findings.append(
                    Finding(
                        Status.UNKNOWN, s.tor, s.port, owner, s, detail=f"{who} on {owner}'s port"
                    )
                )
            continue
        if s.port not in all_ports.get(s.tor, []):
            findings.append(
                Finding(
                    Status.UNKNOWN,
                    s.tor,
                    s.port,
                    None,
                    s,
                    detail=f"{who} on a port not in the inventory",
                )
            )
            continue
        name = _proposed_name(s, taken)
        taken.add(name)
        proposal = (
            f"  - {{name: {name}, rack: {racks[s.tor]}, role: {DEFAULT_ROLE}, port: {s.port}}}"
            f"  # LLDP: chassis {s.chassis_type} {s.chassis}"
            + (f", system name {s.system_name}" if s.system_name else "")
        )
        findings.append(
            Finding(
                Status.NEW,
                s.tor,
                s.port,
                None,
                s,
                detail=f"{who} on a free port",
                proposal=proposal,
            )
        )

    for node, (tor, port) in home.items():
        if node not in found_at:
            on_port = [f for f in findings if (f.tor, f.port) == (tor, port)]
            detail = "nothing on its port" if not on_port else "its port holds another device"
            findings.append(Finding(Status.MISSING, tor, port, node, None, detail=detail))

    order = {(t, p): i for t, ps in all_ports.items() for i, p in enumerate(ps)}
    tor_order = {t.name: i for i, t in enumerate(tors)}
    findings.sort(
        key=lambda f: (
            tor_order.get(f.tor, len(tor_order)),
            order.get((f.tor, f.port), 1 << 30),
            f.port,
        )
    )
    return tuple(findings)


def _describe(s: Seen, ident: tuple[str, str] | None) -> str:
    if ident is not None:
        return f"sixpod device {ident[1]} of pod {ident[0]}"
    name = f" ({s.system_name})" if s.system_name else ""
    return f"chassis {s.chassis_type} {s.chassis}{name}"


def _proposed_name(s: Seen, taken: set[str]) -> str:
    """A valid node name from the system name (lowercased, its first label), else one
    made from where it is; never one the pod already uses."""
    base = (s.system_name or "").split(".")[0].lower()
    base = re.sub(r"[^a-z0-9-]+", "-", base).strip("-")[:63]
    if not NAME_RE.match(base) or base in taken:
        base = f"new-{s.tor}-{s.port}".lower()
        base = re.sub(r"[^a-z0-9-]+", "-", base).strip("-")[:63]
    name, i = base, 2
    while name in taken:
        name = f"{base}-{i}"
        i += 1
    return name


def mismatches(findings: Sequence[Finding]) -> int:
    return sum(1 for f in findings if f.status.mismatch)
