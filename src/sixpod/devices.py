"""Typed device documents: what ``sixpod render`` writes to each ``device.json`` (pure).

:func:`sixpod.inventory.render.device_documents` builds :class:`NodeDevice` and
:class:`TorDevice` values, :func:`~sixpod.inventory.render.spine_documents` the
:class:`SpineDevice` ones (this module sits below the inventory, routing and edge packages,
which all take them); they become JSON only at the file edge (:meth:`to_json`), and
:func:`load` is the one reader of a ``device.json`` (renderers, the lab, node bootstrap take
the typed value). Addresses are parsed through :mod:`sixpod.addr`, so a hand-edited file
with bad address text is refused with the field that holds it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Interface, IPv6Network
from typing import Any, TypeVar

from sixpod import addr
from sixpod.errors import SixpodError

NODE_SCHEMA = "sixpod.node/1"
TOR_SCHEMA = "sixpod.tor/1"
SPINE_SCHEMA = "sixpod.spine/1"
T = TypeVar("T")


class DeviceError(SixpodError):
    """A ``device.json`` that is not what ``sixpod render`` writes; the message names where.
    Exit code 1."""


@dataclass(frozen=True, slots=True)
class Vips:
    ipv4: tuple[IPv4Address, ...] = ()
    ipv6: tuple[IPv6Address, ...] = ()

    @property
    def all(self) -> tuple[IPv4Address | IPv6Address, ...]:
        return (*self.ipv4, *self.ipv6)

    def to_json(self) -> dict[str, Any]:
        return {
            "ipv4": [addr.format_ip(v) for v in self.ipv4],
            "ipv6": [addr.format_ip(v) for v in self.ipv6],
        }


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    port: str
    address: IPv6Address
    asn: int


@dataclass(frozen=True, slots=True)
class Uplink:
    port: str
    mtu: int
    nic: str
    link: IPv6Network
    address: IPv6Address
    peer: Peer


@dataclass(frozen=True, slots=True)
class Bgp:
    asn: int
    hold_time: int
    router_id: IPv4Address


@dataclass(frozen=True, slots=True)
class Floor:
    min_nodes: int
    ttl: float
    redis: addr.Endpoint | None = None
    password_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"min_nodes": self.min_nodes}
        if self.redis is not None:
            out["redis"] = addr.format_endpoint(self.redis)
        if self.password_file is not None:
            out["password_file"] = self.password_file
        out["ttl"] = self.ttl
        return out


@dataclass(frozen=True, slots=True)
class NodeDevice:
    pod: str
    name: str
    rack: str
    role: str
    services: tuple[str, ...]
    prefix: IPv6Network
    prefixes: tuple[IPv6Network, ...]
    """What the node announces of its own: its /64, or nothing."""
    vips: Vips
    """The VIPs it announces (none unless its role announces them)."""
    uplink: Uplink
    bgp: Bgp
    floor: Floor | None = None

    schema = NODE_SCHEMA

    def runs(self, service: str) -> bool:
        return service in self.services

    def to_json(self) -> dict[str, Any]:
        up, peer = self.uplink, self.uplink.peer
        doc: dict[str, Any] = {
            "schema": NODE_SCHEMA,
            "pod": self.pod,
            "name": self.name,
            "rack": self.rack,
            "role": self.role,
            "services": list(self.services),
            "prefix": addr.format_prefix(self.prefix),
            "announce": {
                "prefixes": [addr.format_prefix(p) for p in self.prefixes],
                "vips": self.vips.to_json(),
            },
            "uplink": {
                "port": up.port,
                "mtu": up.mtu,
                "nic": up.nic,
                "link": addr.format_prefix(up.link),
                "address": addr.format_ip(up.address),
                "peer": {
                    "name": peer.name,
                    "port": peer.port,
                    "address": addr.format_ip(peer.address),
                    "asn": peer.asn,
                },
            },
            "bgp": {
                "asn": self.bgp.asn,
                "hold_time": self.bgp.hold_time,
                "router_id": str(self.bgp.router_id),
            },
        }
        if self.floor is not None:
            doc["floor"] = self.floor.to_json()
        return doc


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    mtu: int


@dataclass(frozen=True, slots=True)
class Neighbor:
    node: str
    role: str
    port: str
    address: IPv6Address
    local_address: IPv6Address
    link: IPv6Network
    asn: int
    prefixes: tuple[IPv6Network, ...]
    """The node's own prefixes the ToR accepts from it."""
    vips: bool
    """Whether the ToR accepts the pod's VIPs from it."""


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    port: str
    address: IPv6Address
    local: IPv6Interface
    """The ToR's own address on the link, with its length."""
    asn: int


@dataclass(frozen=True, slots=True)
class TorDevice:
    pod: str
    name: str
    rack: str
    asn: int
    router_id: IPv4Address
    aggregate: IPv6Network
    hold_time: int
    ports: tuple[Port, ...]
    neighbors: tuple[Neighbor, ...]
    upstreams: tuple[Upstream, ...]
    vips: Vips

    schema = TOR_SCHEMA

    @property
    def address(self) -> IPv6Address | None:
        """Where the pod's hosts reach the ToR (metrics, exporters): its address on the link
        to its first node by name (the pod routes every node link), else on its first
        upstream link; None for a ToR with neither."""
        if self.neighbors:
            return min(self.neighbors, key=lambda n: n.node).local_address
        return self.upstreams[0].local.ip if self.upstreams else None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": TOR_SCHEMA,
            "pod": self.pod,
            "name": self.name,
            "rack": self.rack,
            "asn": self.asn,
            "router_id": str(self.router_id),
            "aggregate": addr.format_prefix(self.aggregate),
            "hold_time": self.hold_time,
            "ports": [{"name": p.name, "mtu": p.mtu} for p in self.ports],
            "neighbors": [
                {
                    "node": n.node,
                    "role": n.role,
                    "port": n.port,
                    "address": addr.format_ip(n.address),
                    "local_address": addr.format_ip(n.local_address),
                    "link": addr.format_prefix(n.link),
                    "asn": n.asn,
                    "accept": {
                        "prefixes": [addr.format_prefix(p) for p in n.prefixes],
                        "vips": n.vips,
                    },
                }
                for n in self.neighbors
            ],
            "upstreams": [
                {
                    "name": u.name,
                    "port": u.port,
                    "address": addr.format_ip(u.address),
                    "local": addr.format_prefix(u.local),
                    "asn": u.asn,
                }
                for u in self.upstreams
            ],
            "vips": self.vips.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Downlink:
    """A spine's link to one ToR (the ToR's ``upstreams`` entry seen from the spine)."""

    tor: str
    rack: str
    port: str
    """The spine's port."""
    tor_port: str
    address: IPv6Address
    """The ToR's address on the link."""
    local: IPv6Interface
    """The spine's own address on the link, with its length."""
    asn: int
    """The ToR's ASN."""
    prefixes: tuple[IPv6Network, ...]
    """The node /64s of the rack, the only prefixes (besides VIPs) accepted from the ToR."""


@dataclass(frozen=True, slots=True)
class SpineDevice:
    """A spine named in the ToRs' ``upstreams``: everything its config needs, derived from
    the ToR documents (the inventory declares spines only from the ToR side)."""

    pod: str
    name: str
    asn: int
    router_id: IPv4Address
    aggregate: IPv6Network
    hold_time: int
    downlinks: tuple[Downlink, ...]
    vips: Vips

    schema = SPINE_SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SPINE_SCHEMA,
            "pod": self.pod,
            "name": self.name,
            "asn": self.asn,
            "router_id": str(self.router_id),
            "aggregate": addr.format_prefix(self.aggregate),
            "hold_time": self.hold_time,
            "downlinks": [
                {
                    "tor": d.tor,
                    "rack": d.rack,
                    "port": d.port,
                    "tor_port": d.tor_port,
                    "address": addr.format_ip(d.address),
                    "local": addr.format_prefix(d.local),
                    "asn": d.asn,
                    "accept": {"prefixes": [addr.format_prefix(p) for p in d.prefixes]},
                }
                for d in self.downlinks
            ],
            "vips": self.vips.to_json(),
        }


Device = NodeDevice | TorDevice | SpineDevice


def dumps(device: Device) -> str:
    """The ``device.json`` text: sorted keys, one value per line."""
    return json.dumps(device.to_json(), indent=2, sort_keys=True) + "\n"


# -- reading ----------------------------------------------------------------------------


class _Reader:
    """Typed access to a parsed document; every error names the field's path."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: tuple[str | int, ...], message: str) -> DeviceError:
        dotted = ".".join(str(p) for p in path) or "(top)"
        return DeviceError(f"{self.where}: {dotted}: {message}")

    def get(self, m: Any, key: str, path: tuple[str | int, ...], kind: type[T]) -> T:
        if not isinstance(m, Mapping):
            raise self.fail(path, "expected an object")
        if key not in m:
            raise self.fail((*path, key), "missing")
        value = m[key]
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            raise self.fail((*path, key), f"expected {kind.__name__}, got {value!r:.40}")
        return value

    def parsed(self, m: Any, key: str, path: tuple[str | int, ...], parse: Callable[[str], T]) -> T:
        text = self.get(m, key, path, str)
        try:
            return parse(text)
        except (addr.AddressError, ValueError) as e:
            raise self.fail((*path, key), str(e)) from None

    def items(self, m: Any, key: str, path: tuple[str | int, ...]) -> list[Any]:
        return list(self.get(m, key, path, list))


def _v4(text: str) -> IPv4Address:
    ip = addr.parse_ip(text)
    if not isinstance(ip, IPv4Address):
        raise ValueError(f"{text!r} is not an IPv4 address")
    return ip


def _v6(text: str) -> IPv6Address:
    ip = addr.parse_ip(text)
    if not isinstance(ip, IPv6Address):
        raise ValueError(f"{text!r} is not an IPv6 address")
    return ip


def _p6(text: str) -> IPv6Network:
    net = addr.parse_prefix(text)
    if not isinstance(net, IPv6Network):
        raise ValueError(f"{text!r} is not an IPv6 prefix")
    return net


def _i6(text: str) -> IPv6Interface:
    iface = addr.parse_interface(text)
    if not isinstance(iface, IPv6Interface):
        raise ValueError(f"{text!r} is not an IPv6 address with its length")
    return iface


def _router_id(text: str) -> IPv4Address:
    return IPv4Address(text)


def _vips(r: _Reader, m: Any, path: tuple[str | int, ...]) -> Vips:
    v4 = r.items(m, "ipv4", path)
    v6 = r.items(m, "ipv6", path)
    return Vips(
        tuple(r.parsed({"ipv4": t}, "ipv4", (*path, i), _v4) for i, t in enumerate(v4)),
        tuple(r.parsed({"ipv6": t}, "ipv6", (*path, i), _v6) for i, t in enumerate(v6)),
    )


def _prefixes(r: _Reader, m: Any, key: str, path: tuple[str | int, ...]) -> tuple[IPv6Network, ...]:
    return tuple(
        r.parsed({key: t}, key, (*path, i), _p6) for i, t in enumerate(r.items(m, key, path))
    )


def _node(r: _Reader, d: Mapping[str, Any]) -> NodeDevice:
    up = r.get(d, "uplink", (), dict)
    peer = r.get(up, "peer", ("uplink",), dict)
    bgp = r.get(d, "bgp", (), dict)
    ann = r.get(d, "announce", (), dict)
    floor = None
    if "floor" in d:
        f = r.get(d, "floor", (), dict)
        floor = Floor(
            min_nodes=r.get(f, "min_nodes", ("floor",), int),
            ttl=float(r.get(f, "ttl", ("floor",), (int, float))),  # type: ignore[arg-type]
            redis=r.parsed(f, "redis", ("floor",), addr.parse_endpoint) if "redis" in f else None,
            password_file=r.get(f, "password_file", ("floor",), str)
            if "password_file" in f
            else None,
        )
    return NodeDevice(
        pod=r.get(d, "pod", (), str),
        name=r.get(d, "name", (), str),
        rack=r.get(d, "rack", (), str),
        role=r.get(d, "role", (), str),
        services=tuple(str(s) for s in r.items(d, "services", ())),
        prefix=r.parsed(d, "prefix", (), _p6),
        prefixes=_prefixes(r, ann, "prefixes", ("announce",)),
        vips=_vips(r, r.get(ann, "vips", ("announce",), dict), ("announce", "vips")),
        uplink=Uplink(
            port=r.get(up, "port", ("uplink",), str),
            mtu=r.get(up, "mtu", ("uplink",), int),
            nic=r.get(up, "nic", ("uplink",), str),
            link=r.parsed(up, "link", ("uplink",), _p6),
            address=r.parsed(up, "address", ("uplink",), _v6),
            peer=Peer(
                name=r.get(peer, "name", ("uplink", "peer"), str),
                port=r.get(peer, "port", ("uplink", "peer"), str),
                address=r.parsed(peer, "address", ("uplink", "peer"), _v6),
                asn=r.get(peer, "asn", ("uplink", "peer"), int),
            ),
        ),
        bgp=Bgp(
            asn=r.get(bgp, "asn", ("bgp",), int),
            hold_time=r.get(bgp, "hold_time", ("bgp",), int),
            router_id=r.parsed(bgp, "router_id", ("bgp",), _router_id),
        ),
        floor=floor,
    )


def _tor(r: _Reader, d: Mapping[str, Any]) -> TorDevice:
    neighbors = []
    for i, n in enumerate(r.items(d, "neighbors", ())):
        p = ("neighbors", i)
        accept = r.get(n, "accept", p, dict)
        neighbors.append(
            Neighbor(
                node=r.get(n, "node", p, str),
                role=r.get(n, "role", p, str),
                port=r.get(n, "port", p, str),
                address=r.parsed(n, "address", p, _v6),
                local_address=r.parsed(n, "local_address", p, _v6),
                link=r.parsed(n, "link", p, _p6),
                asn=r.get(n, "asn", p, int),
                prefixes=_prefixes(r, accept, "prefixes", (*p, "accept")),
                vips=r.get(accept, "vips", (*p, "accept"), bool),
            )
        )
    upstreams = []
    for i, u in enumerate(r.items(d, "upstreams", ())):
        p = ("upstreams", i)
        upstreams.append(
            Upstream(
                name=r.get(u, "name", p, str),
                port=r.get(u, "port", p, str),
                address=r.parsed(u, "address", p, _v6),
                local=r.parsed(u, "local", p, _i6),
                asn=r.get(u, "asn", p, int),
            )
        )
    ports = tuple(
        Port(r.get(x, "name", ("ports", i), str), r.get(x, "mtu", ("ports", i), int))
        for i, x in enumerate(r.items(d, "ports", ()))
    )
    return TorDevice(
        pod=r.get(d, "pod", (), str),
        name=r.get(d, "name", (), str),
        rack=r.get(d, "rack", (), str),
        asn=r.get(d, "asn", (), int),
        router_id=r.parsed(d, "router_id", (), _router_id),
        aggregate=r.parsed(d, "aggregate", (), _p6),
        hold_time=r.get(d, "hold_time", (), int),
        ports=ports,
        neighbors=tuple(neighbors),
        upstreams=tuple(upstreams),
        vips=_vips(r, r.get(d, "vips", (), dict), ("vips",)),
    )


def _spine(r: _Reader, d: Mapping[str, Any]) -> SpineDevice:
    downlinks = []
    for i, x in enumerate(r.items(d, "downlinks", ())):
        p = ("downlinks", i)
        accept = r.get(x, "accept", p, dict)
        downlinks.append(
            Downlink(
                tor=r.get(x, "tor", p, str),
                rack=r.get(x, "rack", p, str),
                port=r.get(x, "port", p, str),
                tor_port=r.get(x, "tor_port", p, str),
                address=r.parsed(x, "address", p, _v6),
                local=r.parsed(x, "local", p, _i6),
                asn=r.get(x, "asn", p, int),
                prefixes=_prefixes(r, accept, "prefixes", (*p, "accept")),
            )
        )
    return SpineDevice(
        pod=r.get(d, "pod", (), str),
        name=r.get(d, "name", (), str),
        asn=r.get(d, "asn", (), int),
        router_id=r.parsed(d, "router_id", (), _router_id),
        aggregate=r.parsed(d, "aggregate", (), _p6),
        hold_time=r.get(d, "hold_time", (), int),
        downlinks=tuple(downlinks),
        vips=_vips(r, r.get(d, "vips", (), dict), ("vips",)),
    )


def from_json(doc: Any, where: str = "device.json") -> Device:
    r = _Reader(where)
    if not isinstance(doc, Mapping):
        raise r.fail((), "expected a JSON object")
    schema = doc.get("schema")
    if schema == NODE_SCHEMA:
        return _node(r, doc)
    if schema == TOR_SCHEMA:
        return _tor(r, doc)
    if schema == SPINE_SCHEMA:
        return _spine(r, doc)
    raise r.fail(
        ("schema",), f"{schema!r} is neither {NODE_SCHEMA}, {TOR_SCHEMA} nor {SPINE_SCHEMA}"
    )


def load(text: str, where: str = "device.json") -> Device:
    """The one reader of a ``device.json``."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise DeviceError(f"{where}: not JSON: {e}") from None
    return from_json(doc, where)
