"""The node's network config: what ``sixpod node bootstrap`` applies (pure).

``network.json`` (``"schema": "sixpod.network/1"``) is its text form, written by
``sixpod render`` beside the node's systemd-networkd files (the same config for a server
managed by systemd): the links (uplink MTU and address, the loopback's addresses), the routes
(the defaults via the ToR's link address, IPv4 too: RFC 8950, no IPv4 on any link) and the
sysctls. :func:`parse` and :func:`to_text` are a mirrored pair; every value is checked when
read, so a hand-edited file with an address of the wrong family, an unknown key or a route on
a link it does not list is refused with the field that holds it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Any

from sixpod import addr
from sixpod.node.errors import BadInput

SCHEMA = "sixpod.network/1"
MIN_MTU = 1280  # RFC 8200: every IPv6 link carries 1280 bytes
MAX_MTU = 65535
IFNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}\Z")  # IFNAMSIZ 16 with the NUL
SYSCTL_RE = re.compile(r"net\.(ipv4|ipv6|core)\.[a-z0-9_]+(\.[a-z0-9_]+)*\Z")
IPV6_CONF_RE = re.compile(r"[a-z0-9_]+\Z")


class RouteKind(StrEnum):
    UNICAST = "unicast"
    UNREACHABLE = "unreachable"
    """A covering route that answers ICMP unreachable (the node's /64 when nothing more
    specific matches: a packet for an unused address is not sent back to the ToR)."""


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    mtu: int | None
    """IP MTU in bytes; None leaves it as it is (the loopback)."""
    addresses: tuple[IPv6Interface, ...]
    ipv6: tuple[tuple[str, int], ...] = ()
    """``net.ipv6.conf.<name>.<key>`` settings (accept_dad, keep_addr_on_down, ...)."""


@dataclass(frozen=True, slots=True)
class Route:
    to: IPv4Network | IPv6Network
    kind: RouteKind = RouteKind.UNICAST
    via: IPv6Address | None = None
    """The gateway, always IPv6; an IPv4 route via it is RFC 8950's ``via inet6``."""
    dev: str | None = None
    src: IPv6Address | None = None
    """The source address of the node's own traffic on this route (IPv6 routes only): its
    own address in its /64, which the pod routes everywhere (the uplink's is only known to
    its ToR)."""


@dataclass(frozen=True, slots=True)
class NetConfig:
    node: str
    links: tuple[Link, ...]
    routes: tuple[Route, ...]
    sysctls: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        problems = check(self)
        if problems:
            raise BadInput("; ".join(problems))

    def link(self, name: str) -> Link:
        return next(x for x in self.links if x.name == name)

    def with_uplink(self, old: str, new: str) -> NetConfig:
        """The same config with link ``old`` called ``new`` (the server's NIC name)."""
        if old == new:
            return self
        if not any(x.name == old for x in self.links):
            raise BadInput(f"no link {old!r} in the network config")
        links = tuple(replace(x, name=new) if x.name == old else x for x in self.links)
        routes = tuple(replace(r, dev=new) if r.dev == old else r for r in self.routes)
        return NetConfig(self.node, links, routes, self.sysctls)


def check(cfg: NetConfig) -> list[str]:
    """What is wrong with ``cfg`` (empty when it can be applied)."""
    problems: list[str] = []
    names = [x.name for x in cfg.links]
    for x in cfg.links:
        if not IFNAME_RE.match(x.name):
            problems.append(f"link {x.name!r}: not an interface name")
        if names.count(x.name) > 1:
            problems.append(f"link {x.name}: listed twice")
        if x.mtu is not None and not MIN_MTU <= x.mtu <= MAX_MTU:
            problems.append(f"link {x.name}: mtu {x.mtu} is outside {MIN_MTU}-{MAX_MTU}")
        for a in x.addresses:
            if not isinstance(a, IPv6Interface):
                problems.append(
                    f"link {x.name}: address {addr.format_prefix(a)} is not IPv6 "
                    "(a node has no IPv4 on any link: RFC 8950)"
                )
        for key, _ in x.ipv6:
            if not IPV6_CONF_RE.match(key):
                problems.append(f"link {x.name}: ipv6 setting {key!r} is not a sysctl name")
    for r in cfg.routes:
        where = f"route {addr.format_prefix(r.to)}"
        if r.dev is not None and r.dev not in names:
            problems.append(f"{where}: dev {r.dev} is not one of the links ({', '.join(names)})")
        if r.kind is RouteKind.UNICAST and (r.via is None or r.dev is None):
            problems.append(f"{where}: needs a gateway (via) and a link (dev)")
        if r.via is not None and not isinstance(r.via, IPv6Address):
            problems.append(f"{where}: via {r.via} is not IPv6 (RFC 8950: IPv4 via inet6)")
        if r.kind is RouteKind.UNREACHABLE and r.via is not None:
            problems.append(f"{where}: an unreachable route has no gateway")
        if r.src is not None and (r.to.version != 6 or r.kind is not RouteKind.UNICAST):
            problems.append(f"{where}: src {r.src} is only for unicast IPv6 routes")
    for key, _ in cfg.sysctls:
        if not SYSCTL_RE.match(key):
            problems.append(f"sysctl {key!r}: not a net.* sysctl name")
    return problems


# -- the JSON text ------------------------------------------------------------------------


def to_json(cfg: NetConfig) -> dict[str, Any]:
    def link(x: Link) -> dict[str, Any]:
        out: dict[str, Any] = {"name": x.name}
        if x.mtu is not None:
            out["mtu"] = x.mtu
        out["addresses"] = [addr.format_prefix(a) for a in x.addresses]
        out["ipv6"] = dict(x.ipv6)
        return out

    def route(r: Route) -> dict[str, Any]:
        out: dict[str, Any] = {"to": addr.format_prefix(r.to), "type": str(r.kind)}
        if r.via is not None:
            out["via"] = addr.format_ip(r.via)
        if r.dev is not None:
            out["dev"] = r.dev
        if r.src is not None:
            out["src"] = addr.format_ip(r.src)
        return out

    return {
        "schema": SCHEMA,
        "node": cfg.node,
        "sysctls": dict(cfg.sysctls),
        "links": [link(x) for x in cfg.links],
        "routes": [route(r) for r in cfg.routes],
    }


def to_text(cfg: NetConfig) -> str:
    return json.dumps(to_json(cfg), indent=2) + "\n"


class _Reader:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, message: str) -> BadInput:
        return BadInput(f"{self.where}: {path or '(top)'}: {message}")

    def obj(self, v: Any, path: str, keys: set[str], required: set[str]) -> Mapping[str, Any]:
        if not isinstance(v, Mapping):
            raise self.fail(path, "expected an object")
        unknown = sorted(set(v) - keys)
        if unknown:
            expected = ", ".join(sorted(keys))
            raise self.fail(path, f"unknown key {unknown[0]!r} (expected {expected})")
        missing = sorted(required - set(v))
        if missing:
            raise self.fail(f"{path}.{missing[0]}".lstrip("."), "missing")
        return v

    def str_(self, v: Any, path: str) -> str:
        if not isinstance(v, str):
            raise self.fail(path, f"expected text, got {v!r:.40}")
        return v

    def int_(self, v: Any, path: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(path, f"expected a whole number, got {v!r:.40}")
        return v

    def list_(self, v: Any, path: str) -> list[Any]:
        if not isinstance(v, list):
            raise self.fail(path, f"expected a list, got {v!r:.40}")
        return v

    def ints(self, v: Any, path: str) -> tuple[tuple[str, int], ...]:
        if not isinstance(v, Mapping):
            raise self.fail(path, "expected an object")
        return tuple((str(k), self.int_(x, f"{path}.{k}")) for k, x in v.items())

    def iface6(self, v: Any, path: str) -> IPv6Interface:
        text = self.str_(v, path)
        try:
            iface = addr.parse_interface(text)
        except addr.AddressError as e:
            raise self.fail(path, str(e)) from None
        if not isinstance(iface, IPv6Interface):
            raise self.fail(path, f"{text!r} is IPv4: a node has no IPv4 on any link (RFC 8950)")
        return iface

    def ip6(self, v: Any, path: str) -> IPv6Address:
        text = self.str_(v, path)
        try:
            ip = addr.parse_ip(text)
        except addr.AddressError as e:
            raise self.fail(path, str(e)) from None
        if not isinstance(ip, IPv6Address):
            raise self.fail(path, f"{text!r} is IPv4: gateways are IPv6 (RFC 8950: via inet6)")
        return ip

    def prefix(self, v: Any, path: str) -> IPv4Network | IPv6Network:
        text = self.str_(v, path)
        try:
            return addr.parse_prefix(text)
        except addr.AddressError as e:
            raise self.fail(path, str(e)) from None


def from_json(doc: Any, where: str = "network.json") -> NetConfig:
    r = _Reader(where)
    top = r.obj(doc, "", {"schema", "node", "sysctls", "links", "routes"}, {"schema", "node"})
    if top["schema"] != SCHEMA:
        raise r.fail("schema", f"{top['schema']!r} is not {SCHEMA}")
    links = []
    for i, x in enumerate(r.list_(top.get("links", []), "links")):
        p = f"links.{i}"
        m = r.obj(x, p, {"name", "mtu", "addresses", "ipv6"}, {"name"})
        links.append(
            Link(
                name=r.str_(m["name"], f"{p}.name"),
                mtu=r.int_(m["mtu"], f"{p}.mtu") if "mtu" in m else None,
                addresses=tuple(
                    r.iface6(a, f"{p}.addresses.{j}")
                    for j, a in enumerate(r.list_(m.get("addresses", []), f"{p}.addresses"))
                ),
                ipv6=r.ints(m.get("ipv6", {}), f"{p}.ipv6"),
            )
        )
    routes = []
    for i, x in enumerate(r.list_(top.get("routes", []), "routes")):
        p = f"routes.{i}"
        m = r.obj(x, p, {"to", "type", "via", "dev", "src"}, {"to"})
        kind_text = r.str_(m.get("type", "unicast"), f"{p}.type")
        try:
            kind = RouteKind(kind_text)
        except ValueError:
            raise r.fail(f"{p}.type", f"{kind_text!r} is not unicast or unreachable") from None
        routes.append(
            Route(
                to=r.prefix(m["to"], f"{p}.to"),
                kind=kind,
                via=r.ip6(m["via"], f"{p}.via") if "via" in m else None,
                dev=r.str_(m["dev"], f"{p}.dev") if "dev" in m else None,
                src=r.ip6(m["src"], f"{p}.src") if "src" in m else None,
            )
        )
    try:
        return NetConfig(
            node=r.str_(top["node"], "node"),
            links=tuple(links),
            routes=tuple(routes),
            sysctls=r.ints(top.get("sysctls", {}), "sysctls"),
        )
    except BadInput as e:
        raise BadInput(f"{where}: {e}") from None


def parse(text: str, where: str = "network.json") -> NetConfig:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise BadInput(f"{where}: not JSON: {e}") from None
    return from_json(doc, where)
