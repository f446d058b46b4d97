"""``pod.lock``: every allocation of a pod, as reviewable, diff-friendly text.

One line per rack and per node, one line per VIP, sorted, addresses quoted and canonical.
:func:`format_lock` and :func:`parse_lock` are mirrored: ``parse_lock(format_lock(x)) == x``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import Any

from sixpod import addr
from sixpod.inventory import source
from sixpod.inventory.errors import Diagnostic, InventoryError
from sixpod.inventory.source import Path, Source

LOCK_VERSION = 1


@dataclass(frozen=True, slots=True)
class NodeAllocation:
    """A node's container /64 and its uplink: the link /64 and both ends' addresses."""

    prefix: IPv6Network
    link: IPv6Network
    tor: IPv6Address
    node: IPv6Address


@dataclass(frozen=True, slots=True)
class Lock:
    pod: str
    node_asn: int
    racks: dict[str, int] = field(default_factory=dict)
    nodes: dict[str, NodeAllocation] = field(default_factory=dict)
    vips4: tuple[IPv4Address, ...] = ()
    vips6: tuple[IPv6Address, ...] = ()


def lock_path_for(inventory_path: str) -> str:
    """``pods/ams1.yaml`` → ``pods/ams1.lock``."""
    stem = inventory_path.removesuffix(".yaml").removesuffix(".yml")
    return stem + ".lock"


def format_lock(lock: Lock) -> str:
    q = addr.format_ip
    p = addr.format_prefix
    lines = [
        f"# Allocations of pod {lock.pod}, kept by `sixpod allocate`. Review changes in pull",
        "# requests. Nothing here is ever renumbered: lines are only added and freed.",
        f"version: {LOCK_VERSION}",
        f"pod: {lock.pod}",
        f"node_asn: {lock.node_asn}",
        "racks:" + ("" if lock.racks else " {}"),
    ]
    lines += [f"  {name}: {{asn: {asn}}}" for name, asn in sorted(lock.racks.items())]
    lines.append("nodes:" + ("" if lock.nodes else " {}"))
    for name, n in sorted(lock.nodes.items()):
        lines.append(
            f'  {name}: {{prefix: "{p(n.prefix)}", link: "{p(n.link)}", '
            f'tor: "{q(n.tor)}", node: "{q(n.node)}"}}'
        )
    lines.append("vips:")
    for fam, vips in (
        ("ipv4", [q(v) for v in sorted(lock.vips4)]),
        ("ipv6", [q(v) for v in sorted(lock.vips6)]),
    ):
        lines.append(f"  {fam}:" + ("" if vips else " []"))
        lines += [f'    - "{v}"' for v in vips]
    return "\n".join(lines) + "\n"


class _Reader:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.problems: list[Diagnostic] = []

    def fail(self, path: Path, message: str) -> None:
        self.problems.append(self.src.diagnostic(path, message))

    def mapping(self, value: Any, path: Path, keys: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, "expected a mapping")
            return {}
        if keys is not None:
            for k in value:
                if k not in keys:
                    self.fail(
                        (*path, k),
                        f"unknown key {k!r} (expected one of: {', '.join(sorted(keys))})",
                    )
            for k in sorted(keys - set(value)):
                self.fail(path, f"missing required key {k!r}")
        return value

    def integer(self, value: Any, path: Path) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(path, f"expected a number, got {value!r}")
            return 0
        return value

    def parse(self, fn: Any, value: Any, path: Path, kind: type) -> Any:
        if not isinstance(value, str):
            self.fail(path, f"expected quoted address text, got {value!r}")
            return None
        try:
            out = fn(value)
        except addr.AddressError as e:
            self.fail(path, str(e))
            return None
        if not isinstance(out, kind):
            self.fail(path, f"{value!r} is not an {kind.__name__}")
            return None
        return out


def parse_lock(text: str, filename: str) -> tuple[Lock, Source]:
    """Read a lock file; raise :class:`InventoryError` naming line and column of each problem."""
    src = source.load(text, filename)
    r = _Reader(src)
    top = r.mapping(src.data, (), {"version", "pod", "node_asn", "racks", "nodes", "vips"})
    if r.problems:
        raise InventoryError(r.problems)
    if top["version"] != LOCK_VERSION:
        r.fail(
            ("version",), f"unsupported lock version {top['version']!r} (this is {LOCK_VERSION})"
        )
    pod = top["pod"] if isinstance(top["pod"], str) else ""
    if not pod:
        r.fail(("pod",), "expected the pod's name")
    node_asn = r.integer(top["node_asn"], ("node_asn",))
    racks = {
        str(k): r.integer(r.mapping(v, ("racks", k), {"asn"}).get("asn"), ("racks", k, "asn"))
        for k, v in r.mapping(top["racks"], ("racks",)).items()
    }
    nodes: dict[str, NodeAllocation] = {}
    for name, v in r.mapping(top["nodes"], ("nodes",)).items():
        base: Path = ("nodes", name)
        m = r.mapping(v, base, {"prefix", "link", "tor", "node"})
        if set(m) != {"prefix", "link", "tor", "node"}:
            continue
        prefix = r.parse(addr.parse_prefix, m["prefix"], (*base, "prefix"), IPv6Network)
        link = r.parse(addr.parse_prefix, m["link"], (*base, "link"), IPv6Network)
        tor = r.parse(addr.parse_ip, m["tor"], (*base, "tor"), IPv6Address)
        node = r.parse(addr.parse_ip, m["node"], (*base, "node"), IPv6Address)
        if None in (prefix, link, tor, node):
            continue
        for key, ip in (("tor", tor), ("node", node)):
            if ip not in link or ip == link.network_address:
                r.fail((*base, key), f"{addr.format_ip(ip)} is not a host address of the link")
        if tor == node:
            r.fail((*base, "node"), "the node and the ToR have the same address")
        nodes[str(name)] = NodeAllocation(prefix, link, tor, node)
    vips = r.mapping(top["vips"], ("vips",), {"ipv4", "ipv6"})
    lists: dict[str, list[Any]] = {}
    for fam, kind in (("ipv4", IPv4Address), ("ipv6", IPv6Address)):
        items = vips.get(fam) or []
        if not isinstance(items, list):
            r.fail(("vips", fam), "expected a list of addresses")
            items = []
        parsed = [r.parse(addr.parse_ip, v, ("vips", fam, i), kind) for i, v in enumerate(items)]
        seen: set[Any] = set()
        for i, ip in enumerate(parsed):
            if ip is not None and ip in seen:
                r.fail(("vips", fam, i), f"VIP {addr.format_ip(ip)} is listed twice")
            seen.add(ip)
        lists[fam] = [ip for ip in parsed if ip is not None]
    if r.problems:
        raise InventoryError(r.problems)
    lock = Lock(
        pod=pod,
        node_asn=node_asn,
        racks=racks,
        nodes=nodes,
        vips4=tuple(lists["ipv4"]),
        vips6=tuple(lists["ipv6"]),
    )
    return lock, src
