"""Rules across the inventory that field validation cannot see. Pure: findings out, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from sixpod import addr
from sixpod.inventory.model import (
    ASN_PRIVATE_2BYTE,
    ASN_PRIVATE_4BYTE,
    ETHERNET_OVERHEAD,
    NIC_MAX_FRAME,
    Announce,
    Inventory,
    Nic,
    Node,
    Service,
    Tor,
    expand_ports,
)
from sixpod.inventory.source import Path
from sixpod.words import plural, suggest


@dataclass(frozen=True, slots=True)
class Finding:
    path: Path
    message: str
    warning: bool = False
    note: bool = False  # worth knowing, nothing wrong (documentation space in a lab)


NODE_PREFIXLEN = 64
LINK_PREFIXLEN = 64


def subnet_count(net: IPv6Network, prefixlen: int) -> int:
    return 0 if net.prefixlen > prefixlen else 1 << (prefixlen - net.prefixlen)


def node_prefix_capacity(aggregate: IPv6Network) -> int:
    """Node /64s available: the aggregate's first /64 stays reserved for the pod itself."""
    return max(subnet_count(aggregate, NODE_PREFIXLEN) - 1, 0)


def vip_capacity(pools: tuple[IPv4Network, ...] | tuple[IPv6Network, ...]) -> int:
    """VIPs available: IPv6 pools never hand out their Subnet-Router anycast address."""
    return sum(p.num_addresses - (1 if p.version == 6 else 0) for p in pools)


def private_asn_range(asn: int) -> tuple[int, int] | None:
    for lo, hi in (ASN_PRIVATE_2BYTE, ASN_PRIVATE_4BYTE):
        if lo <= asn <= hi:
            return lo, hi
    return None


def tor_ports(inv: Inventory) -> dict[str, dict[str, int]]:
    """Each rack's ToR ports with their MTU (ranges expanded). A rack with a bad port spec
    is left out: its one error is reported, not every port it would have held."""
    out: dict[str, dict[str, int]] = {}
    for rack in inv.racks:
        if rack.tor is None:
            continue
        ports: dict[str, int] = {}
        try:
            for spec in rack.tor.ports:
                for name in expand_ports(spec):
                    ports[name] = rack.tor.port_mtu.get(name, rack.tor.mtu)
        except ValueError:
            continue
        out[rack.name] = ports
    return out


def check(inv: Inventory) -> list[Finding]:
    """Every error and warning about ``inv``, in file order where possible."""
    out: list[Finding] = []
    out += _check_names(inv)
    out += _check_pools(inv)
    out += _check_asns(inv)
    out += _check_racks(inv)
    out += _check_roles(inv)
    out += _check_nodes(inv)
    out += _check_floor(inv)
    if all(f.warning or f.note for f in out):  # the pod's resilience, once it is valid
        out += _check_no_floor(inv)
    return out


def _check_floor(inv: Inventory) -> list[Finding]:
    floor = inv.pod.floor
    if floor.min_nodes == 0:
        return []
    where: Path = ("pod", "floor", "min_nodes")
    if floor.redis is None:
        return [
            Finding(
                where,
                f"pod.floor.min_nodes: {floor.min_nodes} needs pod.floor.redis, the pod's Redis "
                "primary ([IPv6]:port) that the nodes coordinate through",
            )
        ]
    announcing = sum(
        1 for n in inv.nodes if n.role in inv.roles and Announce.VIPS in inv.roles[n.role].announce
    )
    if 0 < announcing <= floor.min_nodes:
        return [
            Finding(
                where,
                f"pod.floor.min_nodes: {floor.min_nodes} with "
                f"{plural(announcing, 'node')} announcing the VIPs: none may ever withdraw them "
                f"for a degraded check (it needs {floor.min_nodes} others still announcing); "
                f"use at most {announcing - 1}, or add nodes",
                warning=True,
            )
        ]
    return []


def _check_no_floor(inv: Inventory) -> list[Finding]:
    """With the floor off, a replica check's failure withdraws at once: when the pod's Redis
    primary stops, every edge node's replica loses it together and the pod goes dark."""
    if inv.pod.floor.min_nodes:
        return []
    replicas = [
        n.name
        for n in inv.nodes
        if n.role in inv.roles
        and Announce.VIPS in inv.roles[n.role].announce
        and Service.REDIS_REPLICA in inv.roles[n.role].services
    ]
    if len(replicas) < 2:
        return []
    return [
        Finding(
            ("pod", "floor", "min_nodes"),
            f"pod.floor is off: the {plural(len(replicas), 'node')} announcing the VIPs check "
            "their Redis replica, so when the pod's Redis primary stops every one of them "
            "withdraws the VIPs at once (the pod goes dark); set pod.floor.min_nodes and "
            "pod.floor.redis",
            warning=True,
        )
    ]


def _check_names(inv: Inventory) -> list[Finding]:
    out: list[Finding] = []
    seen: dict[str, str] = {}

    def claim(name: str, what: str, path: Path) -> None:
        if name in seen:
            out.append(Finding(path, f"duplicate name {name!r}: already used by {seen[name]}"))
        else:
            seen[name] = what

    for i, rack in enumerate(inv.racks):
        claim(rack.name, f"rack {rack.name}", ("racks", i, "name"))
    for i, rack in enumerate(inv.racks):
        if rack.tor is not None:
            claim(rack.tor.name, f"the ToR of rack {rack.name}", ("racks", i, "tor", "name"))
    for i, node in enumerate(inv.nodes):
        claim(node.name, f"node {node.name}", ("nodes", i, "name"))
    return out


LAB_NOTE = "fine for a lab; clients on the Internet cannot reach it"


def _unreachable(net: IPv4Network | IPv6Network) -> str | None:
    """Why clients on the Internet could never reach addresses in ``net`` (``is in link-local
    space (fe80::/10, RFC 4291)``), or None."""
    found = addr.unreachable_space(net)
    return addr.describe_space(net, found) if found else None


def _documentation(net: IPv4Network | IPv6Network) -> str | None:
    found = addr.documentation_space(net)
    if found is None:
        return None
    return f"{found.name} ({addr.format_prefix(found.block)}, {found.ref})"


def _check_pools(inv: Inventory) -> list[Finding]:
    pod = inv.pod
    out: list[Finding] = []
    vip_pools: list[tuple[str, int, IPv4Network | IPv6Network]] = [
        *(("ipv4", i, p) for i, p in enumerate(pod.vips.ipv4.pools if pod.vips.ipv4 else ())),
        *(("ipv6", i, p) for i, p in enumerate(pod.vips.ipv6.pools if pod.vips.ipv6 else ())),
    ]
    for fam, i, p in vip_pools:
        where: Path = ("pod", "vips", fam, "pools", i)
        why = _unreachable(p)
        doc = _documentation(p)
        if why:
            out.append(
                Finding(
                    where,
                    f"VIP pool {addr.format_prefix(p)} {why}: anycast VIPs must be "
                    "global unicast addresses clients can reach (documentation ranges are "
                    "allowed, for labs)",
                )
            )
        elif doc:
            out.append(
                Finding(where, f"VIP pool {addr.format_prefix(p)} is {doc}: {LAB_NOTE}", note=True)
            )
    v6: list[tuple[Path, str, IPv6Network]] = [
        (("pod", "aggregate"), "the aggregate", pod.aggregate),
        (("pod", "links"), "the link pool", pod.links),
    ]
    v4: list[tuple[Path, str, IPv4Network]] = []
    if pod.vips.ipv6:
        v6 += [
            (("pod", "vips", "ipv6", "pools", i), "an IPv6 VIP pool", p)
            for i, p in enumerate(pod.vips.ipv6.pools)
        ]
    if pod.vips.ipv4:
        v4 += [
            (("pod", "vips", "ipv4", "pools", i), "an IPv4 VIP pool", p)
            for i, p in enumerate(pod.vips.ipv4.pools)
        ]
    out += _overlaps(v6) + _overlaps(v4)

    nodes = len(inv.nodes)
    if nodes > node_prefix_capacity(pod.aggregate):
        out.append(
            Finding(
                ("pod", "aggregate"),
                f"aggregate {addr.format_prefix(pod.aggregate)} holds "
                f"{plural(node_prefix_capacity(pod.aggregate), 'node /64')}, "
                f"not enough for {plural(nodes, 'node')} (one each)",
            )
        )
    if pod.links.prefixlen < 32:
        out.append(
            Finding(
                ("pod", "links"),
                f"link pool {addr.format_prefix(pod.links)} is shorter than a /32: node BGP "
                "router ids (the low 32 bits of each link /64's number) would not be unique",
            )
        )
    elif nodes > subnet_count(pod.links, LINK_PREFIXLEN) - _zero_id_links(pod.links):
        out.append(
            Finding(
                ("pod", "links"),
                f"link pool {addr.format_prefix(pod.links)} holds "
                f"{plural(subnet_count(pod.links, LINK_PREFIXLEN), 'link /64')}, "
                f"not enough for {plural(nodes, 'uplink')} (one each)",
            )
        )
    for fam, pool in (("ipv4", pod.vips.ipv4), ("ipv6", pod.vips.ipv6)):
        if pool is not None and pool.count > vip_capacity(pool.pools):
            out.append(
                Finding(
                    ("pod", "vips", fam, "count"),
                    f"{fam} VIP pools hold {plural(vip_capacity(pool.pools), 'address')}, "
                    f"count asks for {pool.count}",
                )
            )

    pinned: dict[IPv6Network, str] = {}
    for i, node in enumerate(inv.nodes):
        if node.prefix is None:
            continue
        where = ("nodes", i, "prefix")
        text = addr.format_prefix(node.prefix)
        if node.prefix.prefixlen != NODE_PREFIXLEN:
            out.append(Finding(where, f"node prefix {text} must be a /64"))
        elif not node.prefix.subnet_of(pod.aggregate):
            out.append(
                Finding(
                    where,
                    f"node prefix {text} is outside the aggregate "
                    f"{addr.format_prefix(pod.aggregate)}",
                )
            )
        elif node.prefix.network_address == pod.aggregate.network_address:
            out.append(Finding(where, f"node prefix {text} is the pod's reserved first /64"))
        elif node.prefix in pinned:
            out.append(
                Finding(where, f"node prefix {text} is already pinned by {pinned[node.prefix]}")
            )
        else:
            pinned[node.prefix] = f"node {node.name}"
    return out


def _zero_id_links(links: IPv6Network) -> int:
    """1 if the pool's first /64 would give its node router id 0.0.0.0 (it is skipped)."""
    return 1 if (int(links.network_address) >> 64) & 0xFFFFFFFF == 0 else 0


def _overlaps(pools: Sequence[tuple[Path, str, IPv4Network | IPv6Network]]) -> list[Finding]:
    out: list[Finding] = []
    for j, (path, what, net) in enumerate(pools):
        for _, other_what, other in pools[:j]:
            if net.version == other.version and net.overlaps(other):
                out.append(
                    Finding(
                        path,
                        f"{what} {addr.format_prefix(net)} overlaps "
                        f"{other_what} {addr.format_prefix(other)}",
                    )
                )
    return out


def _check_asns(inv: Inventory) -> list[Finding]:
    out: list[Finding] = []
    rng = inv.pod.asns
    lo_range = private_asn_range(rng.first)
    if lo_range is None:
        out.append(Finding(("pod", "asns", "first"), _not_private(rng.first)))
    if private_asn_range(rng.last) is None:
        out.append(Finding(("pod", "asns", "last"), _not_private(rng.last)))
    if rng.first > rng.last:
        out.append(Finding(("pod", "asns"), f"ASN range {rng.first}-{rng.last} runs backwards"))
    elif lo_range is not None and private_asn_range(rng.last) not in (None, lo_range):
        out.append(Finding(("pod", "asns"), "ASN range mixes 2-byte and 4-byte private ASNs"))
    elif rng.last - rng.first + 1 < len(inv.racks) + 1:
        out.append(
            Finding(
                ("pod", "asns"),
                f"ASN range {rng.first}-{rng.last} holds "
                f"{plural(rng.last - rng.first + 1, 'ASN')}, not enough for the nodes' one "
                f"and one per rack ({plural(len(inv.racks), 'rack')})",
            )
        )
    used: dict[int, str] = {rng.first: "the pod's node ASN"}
    for i, rack in enumerate(inv.racks):
        if rack.asn is None:
            continue
        path: Path = ("racks", i, "asn")
        if not rng.first <= rack.asn <= rng.last:
            out.append(Finding(path, f"rack ASN {rack.asn} is outside {rng.first}-{rng.last}"))
        elif rack.asn in used:
            out.append(Finding(path, f"rack ASN {rack.asn} collides with {used[rack.asn]}"))
        else:
            used[rack.asn] = f"rack {rack.name}"
    for i, rack in enumerate(inv.racks):
        if rack.tor is None:
            continue
        for j, up in enumerate(rack.tor.upstreams):
            if rng.first <= up.asn <= rng.last:
                out.append(
                    Finding(
                        ("racks", i, "tor", "upstreams", j, "asn"),
                        f"upstream ASN {up.asn} collides with the pod's range "
                        f"{rng.first}-{rng.last}",
                    )
                )
    return out


def _not_private(asn: int) -> str:
    return (
        f"ASN {asn} is not a private ASN "
        f"({ASN_PRIVATE_2BYTE[0]}-{ASN_PRIVATE_2BYTE[1]} or "
        f"{ASN_PRIVATE_4BYTE[0]}-{ASN_PRIVATE_4BYTE[1]}, RFC 6996)"
    )


def _check_racks(inv: Inventory) -> list[Finding]:
    out: list[Finding] = []
    for i, rack in enumerate(inv.racks):
        if rack.tor is None:
            out.append(Finding(("racks", i), f"rack {rack.name} has no ToR switch ('tor')"))
            continue
        seen: set[str] = set()
        bad_spec = False  # then the ports it names are unknown: no "has no port" after it
        for j, spec in enumerate(rack.tor.ports):
            try:
                names = expand_ports(spec)
            except ValueError as e:
                out.append(Finding(("racks", i, "tor", "ports", j), str(e)))
                bad_spec = True
                continue
            for name in names:
                if name in seen:
                    out.append(
                        Finding(("racks", i, "tor", "ports", j), f"port {name} is listed twice")
                    )
                seen.add(name)
        for name in rack.tor.port_mtu:
            if name not in seen and not bad_spec:
                out.append(
                    Finding(
                        ("racks", i, "tor", "port_mtu", name),
                        f"port_mtu names {name}, which is not a port of {rack.tor.name}",
                        warning=False,
                    )
                )
        for j, up in enumerate(rack.tor.upstreams):
            where: Path = ("racks", i, "tor", "upstreams", j)
            if up.address not in up.local.network or up.address == up.local.ip:
                out.append(
                    Finding(
                        (*where, "address"),
                        f"upstream {up.name}: {addr.format_ip(up.address)} is not another "
                        f"address of the link {addr.format_prefix(up.local.network)}",
                    )
                )
            link = addr.format_prefix(up.local.network)
            why = _unreachable(up.local.network)
            doc = _documentation(up.local.network)
            if why:
                out.append(
                    Finding(
                        (*where, "local"),
                        f"upstream {up.name}: link {link} {why}: an upstream link needs "
                        "global unicast addresses (documentation ranges are allowed, for labs)",
                    )
                )
            elif doc:
                out.append(
                    Finding(
                        (*where, "local"),
                        f"upstream {up.name}: link {link} is {doc}: {LAB_NOTE}",
                        note=True,
                    )
                )
            pools = [inv.pod.aggregate, inv.pod.links]
            if any(up.local.network.overlaps(p) for p in pools):
                out.append(
                    Finding(
                        (*where, "local"),
                        f"upstream {up.name}: link {addr.format_prefix(up.local.network)} "
                        "overlaps the pod's aggregate or link pool",
                    )
                )
            if up.port not in seen and not bad_spec:
                out.append(
                    Finding(
                        ("racks", i, "tor", "upstreams", j, "port"),
                        f"upstream {up.name}: {rack.tor.name} has no port {up.port}",
                    )
                )
    return out


def _check_roles(inv: Inventory) -> list[Finding]:
    out: list[Finding] = []
    for name, role in inv.roles.items():
        if Announce.VIPS in role.announce and Service.EDGE_PROXY not in role.services:
            out.append(
                Finding(
                    ("roles", name, "services"),
                    f"role {name} announces the VIPs but runs no edge-proxy: "
                    "VIP traffic to its nodes would be dropped",
                    warning=True,
                )
            )
        if role.announce and Service.ANNOUNCER not in role.services:
            out.append(
                Finding(
                    ("roles", name, "services"),
                    f"role {name} announces routes but does not run the announcer",
                )
            )
    return out


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    guess = suggest(word, choices)
    return f": did you mean {guess!r}?" if guess else ""


def _check_nodes(inv: Inventory) -> list[Finding]:
    out: list[Finding] = []
    racks = {rack.name: rack for rack in inv.racks}
    ports = tor_ports(inv)
    taken: dict[tuple[str, str], str] = {}
    for r in inv.racks:
        if r.tor is not None:
            for up in r.tor.upstreams:
                taken[(r.name, up.port)] = f"upstream {up.name}"
    for i, node in enumerate(inv.nodes):
        base: Path = ("nodes", i)
        if node.role not in inv.roles:
            known = ", ".join(sorted(inv.roles))
            out.append(
                Finding(
                    (*base, "role"),
                    f"node {node.name}: unknown role {node.role!r} ({known})"
                    + _did_you_mean(node.role, inv.roles),
                )
            )
        rack = racks.get(node.rack)
        if rack is None:
            out.append(
                Finding(
                    (*base, "rack"),
                    f"node {node.name}: no rack named {node.rack!r}"
                    + _did_you_mean(node.rack, racks),
                )
            )
            continue
        if rack.tor is None or node.rack not in ports:
            continue
        port_mtu = ports[node.rack].get(node.port)
        if port_mtu is None:
            out.append(
                Finding(
                    (*base, "port"), f"node {node.name}: {rack.tor.name} has no port {node.port}"
                )
            )
            continue
        key = (node.rack, node.port)
        if key in taken:
            out.append(
                Finding(
                    (*base, "port"),
                    f"node {node.name}: port {node.port} of {rack.tor.name} "
                    f"is already used by {taken[key]}",
                )
            )
        else:
            taken[key] = f"node {node.name}"
        out += _check_mtu(node, base, rack.tor.name, port_mtu)
        out += _check_path_out(node, base, rack.tor, ports[node.rack])
    return out


def _check_path_out(node: Node, base: Path, tor: Tor, ports: dict[str, int]) -> list[Finding]:
    """Traffic to other racks leaves through the ToR's upstreams (ECMP takes any): a node
    whose MTU is above what one of them carries gets every larger packet to another rack
    back as a Packet Too Big, and loses it where something filters ICMPv6."""
    ups = [(ports[u.port], u) for u in tor.upstreams if u.port in ports]
    if not ups:
        return []
    carries, up = min(ups, key=lambda x: x[0])
    if node.mtu <= carries:
        return []
    return [
        Finding(
            (*base, "mtu"),
            f"node {node.name}: MTU {node.mtu} is above the {carries} that {tor.name} port "
            f"{up.port} (to {up.name}) carries: every larger packet to another rack relies on "
            f"a Packet Too Big from {tor.name}; set its mtu to {carries}, or raise port_mtu "
            f"{{{up.port}: ...}} on {tor.name} (and the {up.name} side)",
            warning=True,
        )
    ]


def _check_path_below_port(
    node: Node, base: Path, tor: str, port_mtu: int, vswitch: int, max_frame: int | None
) -> list[Finding]:
    """The direction that bites: the ToR routes packets up to its port MTU onto the link (from
    any jumbo-framed sender), and a VM's vSwitch or vNIC that carries less drops them at layer
    2, with no ICMPv6 Packet Too Big, so path MTU discovery never learns (a black hole)."""
    limits: list[tuple[str, str, int, str]] = []  # (what, key, carries, raise it to)
    if vswitch < port_mtu:
        key = "vswitch_mtu" if node.vswitch_mtu is not None else "mtu"
        what = "hypervisor vSwitch"
        if node.vswitch_mtu is None:
            what += " (vswitch_mtu not set: taken to be its mtu)"
        limits.append((what, key, vswitch, f"vswitch_mtu to {port_mtu}"))
    if max_frame is not None and max_frame - ETHERNET_OVERHEAD < port_mtu:
        key = "max_frame" if node.max_frame is not None else "nic"
        what = f"{node.nic} vNIC ({max_frame}-byte frames"
        what += ")" if node.max_frame is not None else ", its default)"
        fix = f"max_frame to {port_mtu + ETHERNET_OVERHEAD} (if the vNIC is set up for it)"
        limits.append((what, key, max_frame - ETHERNET_OVERHEAD, fix))
    if not limits:
        return []
    carries = min(c for _, _, c, _ in limits)
    what, key, _, _ = next(x for x in limits if x[2] == carries)
    raises = " and ".join(f for _, _, _, f in limits)
    return [
        Finding(
            (*base, key),
            f"node {node.name}: its {what} carries {carries}-byte packets, but {tor} port "
            f"{node.port} sends up to {port_mtu}: larger frames from the ToR (and every "
            "jumbo-framed sender behind it) are dropped without a Packet Too Big; set "
            f"port_mtu {{{node.port}: {carries}}} on {tor}, or raise {raises}",
            warning=True,
        )
    ]


def _check_mtu(node: Node, base: Path, tor: str, port_mtu: int) -> list[Finding]:
    out: list[Finding] = []
    where = f"{tor} port {node.port}"
    if node.nic is Nic.BAREMETAL:
        if node.vswitch_mtu is not None or node.max_frame is not None:
            out.append(
                Finding(
                    (*base, "nic"),
                    f"node {node.name} is bare metal but sets vswitch_mtu or max_frame",
                )
            )
        if node.mtu > port_mtu:
            out.append(
                Finding(
                    (*base, "mtu"),
                    f"node {node.name}: MTU {node.mtu} exceeds the MTU {port_mtu} of {where}",
                )
            )
        return out
    vswitch = node.vswitch_mtu if node.vswitch_mtu is not None else node.mtu
    if node.mtu > vswitch:
        out.append(
            Finding(
                (*base, "mtu"),
                f"node {node.name}: MTU {node.mtu} exceeds its hypervisor vSwitch MTU {vswitch}",
            )
        )
    if vswitch > port_mtu:
        out.append(
            Finding(
                (*base, "vswitch_mtu" if node.vswitch_mtu is not None else "mtu"),
                f"node {node.name}: hypervisor vSwitch MTU {vswitch} exceeds the MTU "
                f"{port_mtu} of {where}",
            )
        )
    max_frame = node.max_frame if node.max_frame is not None else NIC_MAX_FRAME[node.nic]
    out += _check_path_below_port(node, base, tor, port_mtu, vswitch, max_frame)
    if max_frame is not None and node.mtu + ETHERNET_OVERHEAD > max_frame:
        out.append(
            Finding(
                (*base, "mtu"),
                f"node {node.name}: MTU {node.mtu} plus {ETHERNET_OVERHEAD} bytes of Ethernet "
                f"and 802.1Q header is {node.mtu + ETHERNET_OVERHEAD}, more than the "
                f"{max_frame}-byte frames its {node.nic} vNIC receives; large frames will be "
                "dropped on receive",
                warning=True,
            )
        )
    return out
