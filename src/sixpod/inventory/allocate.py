"""The allocation engine: inventory + previous lock → new lock. Pure and deterministic.

Rules: what the old lock holds is kept (never renumbered); removed nodes and racks free their
entries; new ones take the lowest free value in inventory order. The pod's first /64 is
reserved; IPv6 VIP pools never hand out their Subnet-Router anycast address (RFC 4291 §2.6.1);
uplinks get a /64 each with the ToR on ``::1`` and the node on ``::2``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeVar

from sixpod import addr
from sixpod.inventory.errors import InventoryError
from sixpod.inventory.lock import Lock, NodeAllocation
from sixpod.inventory.model import Inventory
from sixpod.inventory.rules import LINK_PREFIXLEN, NODE_PREFIXLEN
from sixpod.inventory.source import Path


@dataclass(frozen=True, slots=True)
class LockProblem:
    """The old lock contradicts the inventory; ``path`` points into the lock (or the inventory)."""

    path: Path
    message: str
    in_lock: bool = True


class AllocationError(InventoryError):
    """The old lock contradicts the inventory; each problem points into one of them."""

    def __init__(self, problems: list[LockProblem]) -> None:
        self.problems = problems
        super().__init__([], "; ".join(p.message for p in problems))


def _nth_subnet(net: IPv6Network, prefixlen: int, index: int) -> IPv6Network:
    size = 1 << (128 - prefixlen)
    return IPv6Network((int(net.network_address) + index * size, prefixlen))


def _low32(link: IPv6Network) -> int:
    return (int(link.network_address) >> 64) & 0xFFFFFFFF


def _free_subnets(
    net: IPv6Network, prefixlen: int, start: int, used: set[IPv6Network]
) -> Iterator[IPv6Network]:
    count = 1 << (prefixlen - net.prefixlen)
    for i in range(start, count):
        sub = _nth_subnet(net, prefixlen, i)
        if sub not in used:
            yield sub


A = TypeVar("A", IPv4Address, IPv6Address)


def _choose_vips(
    pools: Sequence[IPv4Network | IPv6Network],
    count: int,
    kept: tuple[A, ...],
    make: Callable[[int], A],
    family: int,
    problems: list[LockProblem],
) -> tuple[A, ...]:
    """Keep what the lock has (lowest ``count`` of them), then add the lowest free addresses."""
    for i, v in enumerate(kept):
        if not any(v in p for p in pools):
            problems.append(
                LockProblem(
                    ("vips", f"ipv{family}", i),
                    f"VIP {addr.format_ip(v)} is outside the ipv{family} VIP pools; "
                    "remove it from the lock to release it",
                )
            )
    chosen = sorted(kept)[:count]
    have = set(chosen)
    for pool in pools:
        first = int(pool.network_address) + (1 if pool.version == 6 else 0)
        for i in range(first, int(pool.network_address) + pool.num_addresses):
            if len(chosen) >= count:
                return tuple(sorted(chosen))
            candidate = make(i)
            if candidate not in have:
                chosen.append(candidate)
                have.add(candidate)
    return tuple(sorted(chosen))


def allocate(inv: Inventory, old: Lock | None) -> Lock:
    """The lock for ``inv``, keeping everything ``old`` already gave out."""
    pod = inv.pod
    problems: list[LockProblem] = []
    if old is not None and old.pod != pod.name:
        raise AllocationError(
            [LockProblem(("pod",), f"this lock belongs to pod {old.pod!r}, not {pod.name!r}")]
        )
    old = old or Lock(pod=pod.name, node_asn=pod.asns.first)

    # ASNs: one for all nodes, one per rack.
    node_asn = old.node_asn
    if not pod.asns.first <= node_asn <= pod.asns.last:
        problems.append(
            LockProblem(
                ("node_asn",),
                f"node ASN {node_asn} is outside the pod's range "
                f"{pod.asns.first}-{pod.asns.last}; remove the line to allocate a new one",
            )
        )
    racks: dict[str, int] = {}
    pinned_asn = {r.asn: r.name for r in inv.racks if r.asn is not None}
    for rack in inv.racks:
        if rack.asn is not None:
            racks[rack.name] = rack.asn
        elif rack.name in old.racks:
            asn = old.racks[rack.name]
            if not pod.asns.first <= asn <= pod.asns.last:
                problems.append(
                    LockProblem(
                        ("racks", rack.name, "asn"),
                        f"rack {rack.name}'s ASN {asn} is outside the pod's range "
                        f"{pod.asns.first}-{pod.asns.last}; remove the line to allocate a new one",
                    )
                )
            elif asn in pinned_asn and pinned_asn[asn] != rack.name:
                problems.append(
                    LockProblem(
                        ("racks", rack.name, "asn"),
                        f"rack {rack.name}'s ASN {asn} is now pinned to rack {pinned_asn[asn]}",
                    )
                )
            racks[rack.name] = asn
    for name, asn in racks.items():
        if asn == node_asn:
            rack_index = next(i for i, r in enumerate(inv.racks) if r.name == name)
            pinned_here = inv.racks[rack_index].asn is not None
            problems.append(
                LockProblem(
                    ("racks", rack_index, "asn") if pinned_here else ("racks", name, "asn"),
                    f"rack {name}'s ASN {asn} is the nodes' ASN (node_asn in the lock): "
                    "node sessions would become iBGP",
                    in_lock=not pinned_here,
                )
            )
    used_asn = {node_asn, *racks.values()}
    free_asn = (a for a in range(pod.asns.first, pod.asns.last + 1) if a not in used_asn)
    for rack in inv.racks:
        if rack.name not in racks:
            racks[rack.name] = next(free_asn)

    # Node /64s and uplinks.
    nodes: dict[str, NodeAllocation] = {}
    pinned = {n.prefix: n.name for n in inv.nodes if n.prefix is not None}
    for node in inv.nodes:
        prev = old.nodes.get(node.name)
        if prev is None:
            continue
        where = ("nodes", node.name)
        if node.prefix is None:
            if not prev.prefix.subnet_of(pod.aggregate) or prev.prefix.prefixlen != NODE_PREFIXLEN:
                problems.append(
                    LockProblem(
                        (*where, "prefix"),
                        f"node {node.name}'s prefix {addr.format_prefix(prev.prefix)} is not a "
                        f"/64 of the aggregate {addr.format_prefix(pod.aggregate)}; "
                        "nothing is renumbered automatically: remove the line to renumber",
                    )
                )
            elif pinned.get(prev.prefix, node.name) != node.name:
                problems.append(
                    LockProblem(
                        (*where, "prefix"),
                        f"node {node.name}'s prefix {addr.format_prefix(prev.prefix)} is pinned "
                        f"to node {pinned[prev.prefix]} in the inventory",
                    )
                )
        if not prev.link.subnet_of(pod.links) or prev.link.prefixlen != LINK_PREFIXLEN:
            problems.append(
                LockProblem(
                    (*where, "link"),
                    f"node {node.name}'s link {addr.format_prefix(prev.link)} is not a /64 of the "
                    f"link pool {addr.format_prefix(pod.links)}; remove the line to renumber",
                )
            )
        prefix = node.prefix if node.prefix is not None else prev.prefix
        nodes[node.name] = NodeAllocation(prefix, prev.link, prev.tor, prev.node)
    taken_prefix = {a.prefix for a in nodes.values()} | set(pinned)
    taken_link = {a.link for a in nodes.values()}
    for seen_name, a in nodes.items():
        clash = [
            n
            for n, b in nodes.items()
            if n != seen_name and (b.prefix == a.prefix or b.link == a.link)
        ]
        if clash:
            problems.append(
                LockProblem(
                    ("nodes", seen_name),
                    f"node {seen_name} shares a prefix or link with {clash[0]}",
                )
            )
    free_prefix = _free_subnets(pod.aggregate, NODE_PREFIXLEN, 1, taken_prefix)
    # A link whose /64 number ends in 32 zero bits would give its node router id 0.0.0.0.
    # (check() keeps the pool within a /32, so only its first /64 can be such a link.)
    first_link = _nth_subnet(pod.links, LINK_PREFIXLEN, 0)
    zero_id = {first_link} if _low32(first_link) == 0 else set()
    free_link = _free_subnets(pod.links, LINK_PREFIXLEN, 0, taken_link | zero_id)
    for node in inv.nodes:
        if node.name in nodes:
            continue
        prefix = node.prefix if node.prefix is not None else next(free_prefix)
        link = next(free_link)
        nodes[node.name] = NodeAllocation(
            prefix, link, link.network_address + 1, link.network_address + 2
        )

    # VIPs.
    v4 = pod.vips.ipv4
    v6 = pod.vips.ipv6
    vips4 = _choose_vips(v4.pools, v4.count, old.vips4, IPv4Address, 4, problems) if v4 else ()
    vips6 = _choose_vips(v6.pools, v6.count, old.vips6, IPv6Address, 6, problems) if v6 else ()

    if problems:
        raise AllocationError(problems)
    return Lock(
        pod=pod.name,
        node_asn=node_asn,
        racks=racks,
        nodes=nodes,
        vips4=vips4,
        vips6=vips6,
    )
