"""Values of the ToR resilient-hashing helper: paths, settings, kernel state, operations, plan.

Every value is frozen and validated when built. The id ranges are the helper's (see the
package documentation); the operations are what :func:`~.plan.plan` returns and
:mod:`.iproute` renders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Final, TypeAlias

from sixpod import addr

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_IDLE_TIMER",
    "DEFAULT_UNBALANCED_TIMER",
    "GROUP_BASE",
    "ID_END",
    "MEMBER_BASE",
    "VIP",
    "AddGroup",
    "AddMember",
    "AddRule",
    "DelNexthop",
    "DelRoute",
    "DelRule",
    "FrrView",
    "GroupSettings",
    "KernelNexthop",
    "KernelRoute",
    "KernelRule",
    "KernelState",
    "Member",
    "Op",
    "Plan",
    "ReplaceGroup",
    "SetRoute",
    "Settings",
]


VIP: TypeAlias = IPv4Network | IPv6Network

MEMBER_BASE: Final = 0x10000000
"""First id of the helper's member nexthops (zebra stays below 250,000,000)."""
GROUP_BASE: Final = 0x18000000
"""First id of the helper's resilient groups."""
ID_END: Final = 0x20000000
"""End (exclusive) of the helper's id range."""
_MEMBER_SPAN: Final = GROUP_BASE - MEMBER_BASE

_RESERVED_TABLES: Final = frozenset({0, 253, 254, 255})
_FRR_PROTOCOLS: Final = frozenset({11, *range(186, 200)})
_RTN_UNICAST: Final = 1
_IFNAME = re.compile(r"[A-Za-z0-9_.+-]{1,15}")


def _vip_key(vip: VIP) -> tuple[int, int]:
    return (vip.version, int(vip.network_address))


def _check_vip(vip: object, what: str) -> VIP:
    if not isinstance(vip, IPv4Network | IPv6Network):
        raise ValueError(f"{what} must be an IPv4Network or IPv6Network, got {vip!r}")
    if vip.prefixlen != vip.max_prefixlen:
        raise ValueError(f"{what} {addr.format_prefix(vip)} is not a host prefix (/32 or /128)")
    return vip


def _check_int(value: object, what: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer {low}..{high}, got {value!r}")


@dataclass(frozen=True, slots=True, order=True)
class Member:
    """One path of a VIP: an IPv6 gateway (a node's link address) behind a ToR interface."""

    gateway: IPv6Address
    dev: str

    def __post_init__(self) -> None:
        if not isinstance(self.gateway, IPv6Address):
            raise ValueError(f"gateway must be an IPv6Address, got {self.gateway!r}")
        if (
            not isinstance(self.dev, str)
            or not _IFNAME.fullmatch(self.dev)
            or self.dev in {".", ".."}
        ):
            raise ValueError(f"dev must be an interface name ({_IFNAME.pattern}), got {self.dev!r}")

    def __str__(self) -> str:
        return f"{addr.format_ip(self.gateway)}%{self.dev}"


# Buckets move to a re-joined node only when idle for the idle timer, or after the group has
# been unbalanced for the unbalanced timer. A bucket carries many flows, so under load it is
# rarely idle: the unbalanced timer bounds how long a re-joined node waits for its share (the
# flows of the buckets that move then break, as plain ECMP would break them at once). An idle
# timer above common keepalive idle times (nginx: 75 s) spares idle keepalive connections.
DEFAULT_BUCKETS = 128
DEFAULT_IDLE_TIMER = 120
DEFAULT_UNBALANCED_TIMER = 300


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """Parameters of a resilient group: bucket count and timers in seconds (0 = off)."""

    buckets: int = DEFAULT_BUCKETS
    idle_timer: int = DEFAULT_IDLE_TIMER
    unbalanced_timer: int = DEFAULT_UNBALANCED_TIMER

    def __post_init__(self) -> None:
        _check_int(self.buckets, "buckets", 1, 65535)
        _check_int(self.idle_timer, "idle_timer", 0, 86400)
        _check_int(self.unbalanced_timer, "unbalanced_timer", 0, 86400)


@dataclass(frozen=True, slots=True)
class Settings:
    """What the planner needs: the VIPs, where the helper writes, and the group parameters."""

    vips: frozenset[VIP]
    table: int = 1000
    priority: int = 1000
    protocol: int = 250
    group: GroupSettings = GroupSettings()

    def __post_init__(self) -> None:
        if not isinstance(self.vips, frozenset):
            raise ValueError(f"vips must be a frozenset, got {self.vips!r}")
        for vip in self.vips:
            _check_vip(vip, "vip")
        _check_int(self.table, "table", 1, 2**32 - 1)
        if self.table in _RESERVED_TABLES:
            raise ValueError(f"table {self.table} is reserved (local, main, default)")
        _check_int(self.priority, "priority", 1, 32765)
        _check_int(self.protocol, "protocol", 5, 255)
        if self.protocol in _FRR_PROTOCOLS:
            raise ValueError(f"protocol {self.protocol} belongs to FRR")
        if not isinstance(self.group, GroupSettings):
            raise ValueError(f"group must be GroupSettings, got {self.group!r}")


@dataclass(frozen=True, slots=True)
class FrrView:
    """FRR's VIP routes: for every configured VIP the members to use (empty: no helper route).

    ``unmirrored`` lists the VIPs FRR routes through something a member cannot express, with
    the reason; they have no member either, so lookups use FRR's own route in the main table.
    """

    paths: Mapping[VIP, frozenset[Member]]
    unmirrored: Mapping[VIP, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KernelNexthop:
    """A nexthop object as ``ip -N -j nexthop show`` prints it (any owner)."""

    id: int
    protocol: int | None = None
    gateway: IPv4Address | IPv6Address | None = None
    dev: str | None = None
    group: tuple[tuple[int, int], ...] = ()
    """(member id, weight) for a group, empty for a single nexthop"""
    resilient: GroupSettings | None = None
    """set for a group of type resilient"""
    special: bool = False
    """blackhole, fdb, encap, onlink, or a group of another type: never a helper member"""

    def member(self) -> Member | None:
        """The path this nexthop is, if it can be one of the helper's members."""
        if self.group or self.special or not isinstance(self.gateway, IPv6Address):
            return None
        try:
            return Member(self.gateway, self.dev or "")
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class KernelRoute:
    """A route of the helper's table; ``metric`` as the kernel has it (IPv6 default 1024)."""

    dst: addr.IPNetwork
    metric: int = 0
    nhid: int | None = None
    protocol: int | None = None
    type: int = _RTN_UNICAST


@dataclass(frozen=True, slots=True)
class KernelRule:
    """A rule at the helper's priority that looks up the helper's table.

    ``plain`` means it has no selector but ``to`` (no ``from``, iif, fwmark, ...): only plain
    rules count as the helper's rules; the others are somebody else's and left alone.
    """

    dst: addr.IPNetwork | None
    protocol: int | None = None
    plain: bool = True


@dataclass(frozen=True, slots=True)
class KernelState:
    """What the helper reads from the ToR's kernel."""

    nexthops: Mapping[int, KernelNexthop] = field(default_factory=dict)
    routes: tuple[KernelRoute, ...] = ()
    rules: tuple[KernelRule, ...] = ()


# -- operations -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AddRule:
    """``ip rule add to VIP lookup T priority P proto N``."""

    vip: VIP
    table: int
    priority: int
    protocol: int


@dataclass(frozen=True, slots=True)
class DelRule:
    """``ip rule del to DST lookup T priority P proto N`` (only rules with our protocol)."""

    dst: addr.IPNetwork
    table: int
    priority: int
    protocol: int


@dataclass(frozen=True, slots=True)
class AddMember:
    """``ip nexthop add id I via GW dev DEV proto N``."""

    id: int
    member: Member
    protocol: int


@dataclass(frozen=True, slots=True)
class AddGroup:
    """``ip nexthop add id G group a/b/c type resilient ...``: a new group."""

    id: int
    members: tuple[int, ...]
    settings: GroupSettings
    protocol: int

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a group needs at least one member")


@dataclass(frozen=True, slots=True)
class ReplaceGroup:
    """``ip nexthop replace id G group ...``: in place, unchanged members keep their buckets."""

    id: int
    members: tuple[int, ...]
    settings: GroupSettings
    protocol: int

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a group needs at least one member")


@dataclass(frozen=True, slots=True)
class SetRoute:
    """``ip route replace VIP nhid G table T proto N``."""

    vip: VIP
    group: int
    table: int
    protocol: int


@dataclass(frozen=True, slots=True)
class DelRoute:
    """``ip route del DST table T metric M``."""

    dst: addr.IPNetwork
    metric: int
    table: int


@dataclass(frozen=True, slots=True)
class DelNexthop:
    """``ip nexthop del id I`` (a group or a member of the helper)."""

    id: int


Op: TypeAlias = (
    AddRule | DelRule | AddMember | AddGroup | ReplaceGroup | SetRoute | DelRoute | DelNexthop
)


@dataclass(frozen=True, slots=True)
class Plan:
    """Desired state and the operations that reach it from the kernel state planned against."""

    ops: tuple[Op, ...]
    members: Mapping[Member, int]
    """member id of every path in use"""
    groups: Mapping[int, frozenset[Member]]
    """members of every group in use"""
    routes: Mapping[VIP, int]
    """group of every VIP with a helper route"""
