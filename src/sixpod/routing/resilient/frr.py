"""FRR's ``show ip route json`` / ``show ipv6 route json``: the VIP paths FRR selected."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from typing import Any

from sixpod import addr
from sixpod.routing.resilient.errors import ParseError
from sixpod.routing.resilient.model import VIP, FrrView, Member, _check_vip, _vip_key

__all__ = [
    "decode_frr_routes",
    "format_frr_routes",
    "parse_frr_routes",
    "selected_members",
]


def _bad(what: str) -> ParseError:
    return ParseError(f"FRR route JSON: {what}")


def selected_members(
    prefix: IPv4Network | IPv6Network, entries: object
) -> tuple[frozenset[Member], str | None]:
    """The next hops FRR selected for ``prefix`` (a VIP, or any other prefix), from its
    entries in ``show ip[v6] route json``; or no member and the reason they cannot be used
    as kernel paths (a blackhole, an interface without a gateway, an IPv4 gateway).

    The one reading of FRR's selection, for the helper, the lab and the benchmarks: the first
    selected entry; its active next hops, a recursive hop replaced by its resolved ones,
    duplicates skipped. Raises :class:`ParseError` for anything not shaped like FRR's output.
    """
    name = addr.format_prefix(prefix)
    if not isinstance(entries, list):
        raise _bad(f"{name}: expected a list of route entries, got {type(entries).__name__}")
    selected: dict[str, Any] | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            raise _bad(f"{name}: a route entry is {type(entry).__name__}, not an object")
        flag = entry.get("selected", False)
        if not isinstance(flag, bool):
            raise _bad(f"{name}: 'selected' is {flag!r}, not a boolean")
        if flag and selected is None:
            selected = entry
    if selected is None:
        return frozenset(), None
    hops = selected.get("nexthops", [])
    if not isinstance(hops, list):
        raise _bad(f"{name}: 'nexthops' is {type(hops).__name__}, not a list")
    members: set[Member] = set()
    parent: tuple[bool, IPv6Address | None] | None = None  # (active, gateway) of a recursive hop
    for hop in hops:
        if not isinstance(hop, dict):
            raise _bad(f"{name}: a next hop is {type(hop).__name__}, not an object")
        flags = {}
        for key in ("active", "recursive", "resolver", "duplicate", "unreachable"):
            value = hop.get(key, False)
            if not isinstance(value, bool):
                raise _bad(f"{name}: next hop '{key}' is {value!r}, not a boolean")
            flags[key] = value
        ip_text, ifname = hop.get("ip"), hop.get("interfaceName")
        if ip_text is not None and not isinstance(ip_text, str):
            raise _bad(f"{name}: next hop 'ip' is {ip_text!r}, not text")
        if ifname is not None and not isinstance(ifname, str):
            raise _bad(f"{name}: next hop 'interfaceName' is {ifname!r}, not text")
        try:
            gateway = addr.parse_ip(ip_text) if ip_text is not None else None
        except addr.AddressError as e:
            raise _bad(f"{name}: {e}") from None
        if flags["recursive"]:
            parent = (flags["active"], gateway if isinstance(gateway, IPv6Address) else None)
            continue
        if flags["resolver"]:
            if parent is None or not parent[0]:
                continue
            if gateway is None:
                gateway = parent[1]
        else:
            parent = None
            if not flags["active"]:
                continue
        if flags["duplicate"]:
            continue
        if flags["unreachable"]:
            return frozenset(), "a blackhole next hop"
        if gateway is None or ifname is None:
            return frozenset(), "an interface next hop without a gateway"
        if not isinstance(gateway, IPv6Address):
            return frozenset(), f"IPv4 gateway {addr.format_ip(gateway)}"
        try:
            members.add(Member(gateway, ifname))
        except ValueError:
            return frozenset(), f"interface name {ifname!r}"
    return frozenset(members), None


def decode_frr_routes(ipv4: object, ipv6: object, vips: Iterable[VIP]) -> FrrView:
    """FRR's view of ``vips`` from decoded ``show ip route json`` / ``show ipv6 route json``.

    FRR keys prefixes by their canonical text (``inet_ntop``, RFC 5952), so each VIP is looked
    up by :func:`sixpod.addr.format_prefix`. Raises :class:`ParseError` for anything that does
    not have the shape of FRR's output.
    """
    docs: dict[int, dict[str, object]] = {}
    for version, doc in ((4, ipv4), (6, ipv6)):
        if not isinstance(doc, dict):
            raise _bad(f"the IPv{version} document is {type(doc).__name__}, not an object")
        docs[version] = doc
    paths: dict[VIP, frozenset[Member]] = {}
    unmirrored: dict[VIP, str] = {}
    for vip in sorted(vips, key=_vip_key):
        _check_vip(vip, "vip")
        entries = docs[vip.version].get(addr.format_prefix(vip))
        if entries is None:
            paths[vip] = frozenset()
            continue
        members, reason = selected_members(vip, entries)
        paths[vip] = members
        if reason is not None:
            unmirrored[vip] = reason
    return FrrView(paths=paths, unmirrored=unmirrored)


def parse_frr_routes(ipv4_json: str, ipv6_json: str, vips: Iterable[VIP]) -> FrrView:
    """:func:`decode_frr_routes` of JSON text (``vtysh -c 'show ip[v6] route json'``)."""
    docs = []
    for version, text in ((4, ipv4_json), (6, ipv6_json)):
        try:
            docs.append(json.loads(text))
        except (ValueError, TypeError) as e:
            raise _bad(f"the IPv{version} document is not JSON: {e}") from None
    return decode_frr_routes(docs[0], docs[1], vips)


def format_frr_routes(
    paths: Mapping[VIP, Iterable[Member]], *, ifindex: Mapping[str, int] | None = None
) -> tuple[str, str]:
    """``show ip route json`` and ``show ipv6 route json`` as FRR 8.4 prints BGP ECMP routes.

    The mirror of :func:`parse_frr_routes` (VIPs with no member are absent, as in FRR); used
    to feed the helper synthetic FRR state in tests and drills.
    """
    docs: dict[int, dict[str, list[dict[str, Any]]]] = {4: {}, 6: {}}
    for vip in sorted(paths, key=_vip_key):
        _check_vip(vip, "vip")
        members = sorted(set(paths[vip]))
        if not members:
            continue
        hops: list[dict[str, Any]] = []
        for m in members:
            hop: dict[str, Any] = {
                "flags": 3,
                "fib": True,
                "ip": addr.format_ip(m.gateway),
                "afi": "ipv6",
            }
            if ifindex is not None and m.dev in ifindex:
                hop["interfaceIndex"] = ifindex[m.dev]
            hop |= {"interfaceName": m.dev, "active": True, "weight": 1}
            hops.append(hop)
        name = addr.format_prefix(vip)
        docs[vip.version][name] = [
            {
                "prefix": name,
                "prefixLen": vip.prefixlen,
                "protocol": "bgp",
                "vrfId": 0,
                "vrfName": "default",
                "selected": True,
                "destSelected": True,
                "distance": 20,
                "metric": 0,
                "installed": True,
                "table": 254,
                "internalNextHopNum": len(hops),
                "internalNextHopActiveNum": len(hops),
                "nexthops": hops,
            }
        ]
    return json.dumps(docs[4], indent=2), json.dumps(docs[6], indent=2)
