"""The inventory model (``pod.yaml``): the pod, its roles, racks and nodes.

Field validation (shapes, unknown keys) lives here, with the field types (names, addresses,
ASNs, MTUs) from :mod:`sixpod.configtypes`; rules that relate several fields or objects live
in :mod:`sixpod.inventory.rules`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

from sixpod.configtypes import (
    ASN,
    MTU,
    Int,
    IPv4Prefix,
    IPv6Addr,
    IPv6Endpoint,
    IPv6Iface,
    IPv6Prefix,
    Name,
)
from sixpod.monitoring import ports

PORT_RANGE_RE = re.compile(r"([A-Za-z][A-Za-z_.-]*?)(\d+)-(?:\1)?(\d+)\Z")
PORT_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_./:-]{0,31}\Z")

ASN_PRIVATE_2BYTE = (64512, 65534)
ASN_PRIVATE_4BYTE = (4200000000, 4294967294)
ETHERNET_OVERHEAD = 14 + 4  # Ethernet header + one 802.1Q tag; FCS not counted by NICs
VIPS_PER_FAMILY_MAX = 512


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Announce(StrEnum):
    NODE_PREFIX = "node-prefix"
    VIPS = "vips"


class Service(StrEnum):
    ANNOUNCER = "announcer"
    EDGE_PROXY = "edge-proxy"
    REDIS_REPLICA = "redis-replica"
    RAZOR = "razor"


class Role(_Model):
    """What a role announces over BGP and which sixpod services it runs."""

    announce: tuple[Announce, ...] = Field(
        default=(Announce.NODE_PREFIX,), description="what its nodes announce over BGP"
    )
    services: tuple[Service, ...] = Field(
        default=(Service.ANNOUNCER,), description="the sixpod services its nodes run"
    )


DEFAULT_ROLES: dict[str, Role] = {
    "edge": Role(
        announce=(Announce.NODE_PREFIX, Announce.VIPS),
        services=(Service.ANNOUNCER, Service.EDGE_PROXY, Service.REDIS_REPLICA, Service.RAZOR),
    ),
    "internal": Role(announce=(Announce.NODE_PREFIX,), services=(Service.ANNOUNCER,)),
}


class VipPool4(_Model):
    pools: tuple[IPv4Prefix, ...] = Field(min_length=1, description="VIPs come from here")
    count: Int = Field(ge=0, le=VIPS_PER_FAMILY_MAX, description="VIPs to allocate")


class VipPool6(_Model):
    pools: tuple[IPv6Prefix, ...] = Field(min_length=1, description="VIPs come from here")
    count: Int = Field(ge=0, le=VIPS_PER_FAMILY_MAX, description="VIPs to allocate")


class Vips(_Model):
    ipv4: VipPool4 | None = Field(default=None, description="the IPv4 anycast VIPs")
    ipv6: VipPool6 | None = Field(default=None, description="the IPv6 anycast VIPs")


class AsnRange(_Model):
    first: ASN = Field(description="first ASN of the range; the nodes' shared ASN")
    last: ASN = Field(description="last ASN of the range")


class Floor(_Model):
    """The pod-wide safety floor: a bad health-check rollout must not withdraw the VIPs from
    every node at once. Rendered into the announcer.yaml of every node that announces them."""

    min_nodes: Int = Field(
        default=0,
        ge=0,
        le=1000,
        description="how many other nodes must still announce the VIPs for one to withdraw "
        "them on a degraded check (broken checks and drains always withdraw); 0: off",
    )
    redis: IPv6Endpoint | None = Field(
        default=None,
        description="the pod's Redis primary, [IPv6]:port, that the nodes coordinate through "
        "(needed when min_nodes > 0; not a replica)",
    )
    password_file: Annotated[str, Strict()] | None = Field(
        default=None, description="file on each node that holds the Redis password"
    )
    ttl: Annotated[float, Strict(), Field(gt=0, le=3600)] = Field(
        default=5.0, description="seconds after which a silent node stops counting"
    )


class Firewall(_Model):
    """The ToRs' own firewall (nftables, input only; forwarded traffic is not filtered here).

    Always allowed, whatever this says: BGP (TCP 179) and BFD from each link's peer on its
    port, ICMPv6 as RFC 4890 section 4.4 says (Packet Too Big is never dropped), and replies.
    """

    management: tuple[IPv6Prefix, ...] | None = Field(
        default=None,
        description="prefixes that may reach the ToRs' management ports (default: the "
        "pod's aggregate)",
    )
    management_tcp: tuple[Annotated[int, Strict(), Field(ge=1, le=65535)], ...] = Field(
        default=(22, ports.NODE_EXPORTER, ports.FRR_EXPORTER, ports.RESILIENT),
        description="TCP ports open to management: SSH and the exporters Prometheus scrapes",
    )


class Pod(_Model):
    name: Name = Field(description="the pod's name")
    aggregate: IPv6Prefix = Field(description="node /64s are delegated from here")
    links: IPv6Prefix = Field(description="one /64 per node uplink: ToR ::1, node ::2")
    vips: Vips = Field(default=Vips(), description="the anycast VIP pools")
    asns: AsnRange = Field(description="private ASNs for the nodes and ToRs, RFC 6996")
    hold_time: Int = Field(default=9, ge=3, le=65535, description="BGP hold time, seconds")
    floor: Floor = Field(default=Floor(), description="the pod-wide safety floor (default off)")
    firewall: Firewall = Field(default=Firewall(), description="the ToRs' own firewall")


class Upstream(_Model):
    """A BGP neighbor of the ToR outside the pod (spine, border router)."""

    name: Name = Field(description="the neighbor's name")
    port: Annotated[str, Strict()] = Field(description="the ToR port it is on")
    address: IPv6Addr = Field(description="the upstream's address on the link")
    local: IPv6Iface = Field(description="the ToR's address on the link, with its length")
    asn: ASN = Field(description="the neighbor's AS number")


class Tor(_Model):
    name: Name = Field(description="the switch's name")
    mtu: MTU = Field(default=9216, description="IP MTU of every port, bytes")
    ports: tuple[str, ...] = Field(min_length=1, description="port names; ranges like swp1-swp48")
    port_mtu: dict[str, MTU] = Field(
        default_factory=dict, description="IP MTU of single ports, bytes"
    )
    upstreams: tuple[Upstream, ...] = Field(default=(), description="BGP neighbors outside the pod")


class Rack(_Model):
    name: Name = Field(description="the rack's name")
    tor: Tor | None = Field(default=None, description="its top-of-rack switch")
    asn: ASN | None = Field(default=None, description="pin the rack's ASN instead of allocating")


class Nic(StrEnum):
    BAREMETAL = "baremetal"
    VMXNET3 = "vmxnet3"
    VIRTIO = "virtio"
    E1000 = "e1000"


# Largest Ethernet frame (header + 802.1Q tag + payload, no FCS) each vNIC receives by default.
NIC_MAX_FRAME: dict[Nic, int | None] = {
    Nic.BAREMETAL: None,
    Nic.VMXNET3: 9018,
    Nic.VIRTIO: 65535,
    Nic.E1000: 16128,
}


class Node(_Model):
    name: Name = Field(description="the node's name")
    rack: Annotated[str, Strict()] = Field(description="the name of its rack")
    role: Annotated[str, Strict()] = Field(
        description="the name of its role: edge, internal, or one in roles"
    )
    port: Annotated[str, Strict()] = Field(description="the ToR port of its uplink")
    mtu: MTU = Field(default=9000, description="IP MTU of its uplink, bytes")
    nic: Nic = Field(default=Nic.BAREMETAL, description="bare metal, or a VM's vNIC")
    vswitch_mtu: MTU | None = Field(default=None, description="hypervisor vSwitch MTU")
    max_frame: Int | None = Field(default=None, ge=1518, description="vNIC receive limit, bytes")
    prefix: IPv6Prefix | None = Field(default=None, description="pin the node /64")


class Inventory(_Model):
    pod: Pod = Field(description="name, prefixes, ASNs and VIPs")
    roles: dict[str, Role] = Field(
        default_factory=lambda: dict(DEFAULT_ROLES),
        description="what each role's nodes announce and run",
    )
    racks: tuple[Rack, ...] = Field(min_length=1, description="each rack with its ToR")
    nodes: tuple[Node, ...] = Field(default=(), description="the servers")

    def role_of(self, node: Node) -> Role:
        return self.roles[node.role]


def expand_ports(spec: str) -> list[str]:
    """``swp1-swp4`` or ``swp1-4`` → ``[swp1, swp2, swp3, swp4]``; a plain name → itself."""
    m = PORT_RANGE_RE.match(spec)
    if m:
        stem, lo, hi = m.group(1), int(m.group(2)), int(m.group(3))
        if lo > hi:
            raise ValueError(f"port range {spec!r} runs backwards")
        if hi - lo >= 4096:
            raise ValueError(f"port range {spec!r} is too long")
        return [f"{stem}{i}" for i in range(lo, hi + 1)]
    if not PORT_NAME_RE.match(spec):
        raise ValueError(f"{spec!r} is not a valid port name")
    return [spec]
