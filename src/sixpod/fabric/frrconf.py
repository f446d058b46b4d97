"""What an FRR config says that a plan's guard cares about (pure).

Reads an integrated ``frr.conf`` (rendered, or ``show running-config``) into
:class:`FrrFacts`: the hostname, the BGP instance, its neighbors and the VIPs its prefix
lists permit. Only the text's structure is read (top-level commands, and the indented
lines of a block); FRR's own parser (``vtysh -C``) judges the syntax before this runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sixpod import addr
from sixpod.routing.frrnames import VIPS_V4, VIPS_V6


@dataclass(frozen=True, slots=True)
class FrrFacts:
    hostname: str | None
    bgp_asn: int | None
    """The default VRF's ``router bgp ASN``; None if there is none."""
    neighbors: frozenset[str]
    """Neighbor addresses (canonical text) of that instance; peer-groups are not counted."""
    vips: frozenset[str]
    """Prefixes the VIP prefix lists permit (canonical text)."""


def blocks(text: str) -> list[tuple[str, list[str]]]:
    """Top-level commands with the indented lines under each (``!`` and ``exit`` dropped)."""
    out: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("!"):
            continue
        if line[0] in " \t":
            if out and line.strip() not in ("exit", "exit-address-family", "exit-vrf"):
                out[-1][1].append(line.strip())
            continue
        if line.strip() == "exit":
            continue
        out.append((line.strip(), []))
    return out


def _ip_text(text: str) -> str | None:
    try:
        return addr.format_ip(addr.parse_ip(text))
    except addr.AddressError:
        return None


def facts(text: str) -> FrrFacts:
    hostname: str | None = None
    asn: int | None = None
    neighbors: set[str] = set()
    vips: set[str] = set()
    for head, body in blocks(text):
        words = head.split()
        if words[0] == "hostname" and len(words) == 2:
            hostname = words[1]
        elif words[:2] == ["router", "bgp"] and len(words) == 3 and words[2].isdigit():
            asn = int(words[2])
            for line in body:
                w = line.split()
                if len(w) >= 3 and w[0] == "neighbor" and (ip := _ip_text(w[1])) is not None:
                    neighbors.add(ip)
        elif (
            len(words) >= 7
            and words[0] in ("ip", "ipv6")
            and words[1] == "prefix-list"
            and words[2] in (VIPS_V4, VIPS_V6)
            and words[5] == "permit"
        ):
            try:
                vips.add(addr.format_prefix(addr.parse_prefix(words[6])))
            except addr.AddressError:
                continue
    return FrrFacts(hostname, asn, frozenset(neighbors), frozenset(vips))
