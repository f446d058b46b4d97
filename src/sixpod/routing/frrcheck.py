"""Semantic checks of a ToR's FRR config that FRR's own parser (``vtysh -C``) does not do.

Every peer-group, prefix-list, route-map, community-list and BFD profile referenced is
defined; the BGP ASNs, neighbors and accepted prefixes are exactly those of the device data
(and so of the lock). The names it looks for are the renderer's
(:mod:`sixpod.routing.frrnames`).
"""

from __future__ import annotations

import re
from collections import defaultdict

from sixpod import addr
from sixpod.devices import TorDevice
from sixpod.routing.frrnames import NODE_PREFIXES, NODES, VIPS_V4, VIPS_V6, node_list, node_map

_DEF = {
    "prefix-list": re.compile(
        r"^ip(?:v6)? prefix-list (\S+) seq \d+ (?:permit|deny) (\S+)(?P<range> [gl]e \d+.*)?$"
    ),
    "route-map": re.compile(r"^route-map (\S+) (?:permit|deny) \d+$"),
    "community-list": re.compile(r"^bgp community-list standard (\S+) "),
    "bfd-profile": re.compile(r"^ profile (\S+)$"),
    "peer-group": re.compile(r"^ neighbor (\S+) peer-group$"),
}
_REF = {
    "prefix-list": re.compile(r"match ip(?:v6)? address prefix-list (\S+)"),
    "route-map": re.compile(r"^\s+neighbor \S+ route-map (\S+) (?:in|out)$"),
    "community-list": re.compile(r"match community (\S+)"),
    "bfd-profile": re.compile(r"neighbor \S+ bfd profile (\S+)"),
    "peer-group": re.compile(r"^ neighbor \S+ peer-group (\S+)$"),
}


def check_frr(text: str, doc: TorDevice) -> list[str]:
    """Problems found in ``text`` for the ToR described by ``doc`` (empty when consistent)."""
    defined: dict[str, set[str]] = defaultdict(set)
    entries: dict[str, list[str]] = defaultdict(list)
    problems: list[str] = []
    lines = text.splitlines()
    for line in lines:
        for kind, rx in _DEF.items():
            m = rx.match(line)
            if m:
                defined[kind].add(m.group(1))
                if kind == "prefix-list" and m.group(2) != "any":
                    entries[m.group(1)].append(m.group(2))
                    if m.group("range") and not m.group(1).startswith(NODE_PREFIXES):
                        problems.append(f"prefix-list {m.group(1)} accepts a range: {line}")
    for number, line in enumerate(lines, 1):
        for kind, rx in _REF.items():
            m = rx.search(line)
            if m and m.group(1) not in defined[kind]:
                problems.append(f"line {number}: {kind} {m.group(1)} is referenced but not defined")

    asn = re.search(r"^router bgp (\d+)$", text, re.M)
    if asn is None or int(asn.group(1)) != doc.asn:
        problems.append(f"router bgp is not the rack's ASN {doc.asn}")
    nodes = re.escape(NODES)
    remote = {int(x) for x in re.findall(rf"^ neighbor {nodes} remote-as (\d+)$", text, re.M)}
    remote |= {
        int(x)
        for x in re.findall(r"^ neighbor [0-9a-f:]+ remote-as (\d+)$", text, re.M)
        if int(x) not in {u.asn for u in doc.upstreams}
    }
    want_asns = {n.asn for n in doc.neighbors}
    if doc.neighbors and remote != want_asns:
        problems.append(
            f"node remote-as {sorted(remote)} differs from the lock's {sorted(want_asns)}"
        )
    members = set(re.findall(rf"^ neighbor (\S+) peer-group {nodes}$", text, re.M))
    want = {addr.format_ip(n.address) for n in doc.neighbors}
    if members != want:
        problems.append(f"{NODES} members {sorted(members)} differ from the lock's {sorted(want)}")

    if " bgp ebgp-requires-policy" not in lines:
        problems.append("bgp ebgp-requires-policy is off: a peer without a policy gets routes")
    for af in ("ipv4", "ipv6"):
        start = text.find(f" address-family {af} unicast")
        block = text[start : text.find("exit-address-family", start)] if start >= 0 else ""
        for n in doc.neighbors:
            bind = f"  neighbor {addr.format_ip(n.address)} route-map {node_map(n.node)} in"
            if bind not in block.splitlines():
                problems.append(f"{af}: node {n.node} is not filtered by {node_map(n.node)}")

    def canon(items: list[str]) -> list[str]:
        return sorted(addr.format_prefix(addr.parse_prefix(p)) for p in items)

    for n in doc.neighbors:
        name = node_list(n.node)
        accept = [addr.format_prefix(p) for p in n.prefixes]
        if canon(entries.get(name, [])) != canon(accept):
            problems.append(f"prefix-list {name} does not accept exactly {accept}")
    for fam, plen, name in (("ipv4", 32, VIPS_V4), ("ipv6", 128, VIPS_V6)):
        want_vips = canon([f"{addr.format_ip(v)}/{plen}" for v in getattr(doc.vips, fam)])
        if canon(entries.get(name, [])) != want_vips:
            problems.append(f"prefix-list {name} does not list exactly the lock's {fam} VIPs")
    return problems
