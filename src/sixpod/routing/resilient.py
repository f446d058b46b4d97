"""ToR resilient hashing: mirror FRR's VIP paths into kernel resilient nexthop groups.

FRR 8.4 installs BGP multipath routes as plain (hash-threshold) nexthop groups: when one of N
nodes leaves, the hash space is re-split and flows on the *other* nodes move too. The kernel's
resilient groups (``type resilient``, Linux 5.13+) keep a bucket table instead; replacing a
group's members in place moves only the buckets of the member that left. This module keeps a
copy of FRR's VIP routes on such groups, in a routing table of its own that ``ip rule to VIP
lookup T`` puts in front of the main table (the helper never touches the main table: zebra would
withdraw its own routes there).

Layout (sans-IO core, thin adapters, see STYLE.md):

* Codecs: :func:`parse_frr_routes` / :func:`format_frr_routes` for FRR's ``show ip[v6] route
  json`` (captured samples in ``tests/routing/data/``); :func:`parse_kernel_state` for
  ``ip -N -j nexthop|route|rule show``; :func:`format_batches` renders operations as
  ``ip -batch`` text.
* Core: :func:`plan` takes FRR's paths and the kernel state and returns the desired state and
  the minimal ordered list of operations. No I/O, no clock.
* Adapters: :class:`IpKernel` (``ip -n NS``), :class:`VtyshFrr` (``vtysh --vty_socket DIR``),
  :class:`RouteEvents` (netlink route notifications through pyroute2, to wake the loop), then
  :func:`sync` (read, plan, apply) and :func:`run` (the daemon loop, bounded interval).

Decisions:

* **Paths come from FRR**, never from the kernel's main table: the selected entry's *active*
  next hops (``ip`` + ``interfaceName``). FRR 8.4 can leave a stale kernel group after a flap
  (upstream #12239, #13413, #14481). Recursive next hops are replaced by their resolvers.
* **All or nothing per VIP.** If any active next hop of the selected route cannot be a member
  (an IPv4 gateway, a blackhole, an interface route), the VIP is *not mirrored*: its helper
  route is removed and lookups fall through to FRR's own route in the main table. Mirroring a
  subset of FRR's paths would send traffic where FRR does not.
* **A VIP without paths** loses its helper route (lookup falls through to the main table, where
  FRR has no route either). Its ``ip rule`` stays: rules follow the configured VIP set only, so
  a path coming back never waits for a rule, and rules never churn with BGP.
* **Ids.** Helper objects use ids far above zebra's: zebra and the FRR daemons allocate below
  ``ZEBRA_NHG_PROTO_UPPER`` (250,000,000) and EVPN uses ``1<<24 | n`` and ``2<<24 | n``. Members
  live in ``[0x10000000, 0x18000000)``: the same ``(gateway, dev)`` keeps the id it has in the
  kernel, and a new one gets a hash of ``gateway%dev`` (linear probing on collision), so it
  gets the same id again after a restart or a re-join. Groups live in
  ``[0x18000000, 0x20000000)`` and are allocated, lowest free id first. Every helper object
  carries the helper's protocol number (default 250); an object in the helper's range with
  another protocol is never touched and its id never reused.
* **Groups are allocated to VIP cohorts and kept.** A VIP stays on its group as long as it
  exists; the group's members are replaced in place when the cohort's path set changes, which
  is what moves only the leaving node's buckets. When the VIPs of one group disagree (a node
  withdrew some of them), the largest part keeps the group and the others join a group with
  the same path set or a new one. Two groups that end up with the same path set are *not*
  merged: merging would reshuffle every flow of the VIPs that move. So a fresh start has one
  group per distinct path set, and later there may be more (never more than the VIPs).
* A group whose bucket count or type differs from the configuration cannot be changed in place
  (the kernel refuses); its VIPs move to a new group (flows reshuffle once) and it is deleted.
* **Order** (every prefix of a plan is safe; a failed batch is retried by the next sync):
  IPv6 rules added; IPv4 rules added; members created; groups created or replaced; routes
  set; stale routes, IPv4 rules, groups and members deleted; IPv6 rules deleted. ``ip -batch``
  cannot mix rule families, so a plan is one to three ``ip`` runs (one when only paths change).
* Table ``T`` belongs to the helper: any route there that is not desired is removed.
* Next-hop weights are not mirrored (the pod uses plain ECMP; FRR shows weight 1).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import select
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from types import TracebackType
from typing import Annotated, Any, Final, Protocol, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, field_validator

from sixpod import addr

__all__ = [
    "GROUP_BASE",
    "ID_END",
    "MEMBER_BASE",
    "VIP",
    "AddGroup",
    "AddMember",
    "AddRule",
    "Batch",
    "CommandError",
    "DelNexthop",
    "DelRoute",
    "DelRule",
    "FrrReader",
    "FrrView",
    "GroupSettings",
    "IpKernel",
    "KernelNexthop",
    "KernelPort",
    "KernelRoute",
    "KernelRule",
    "KernelState",
    "Member",
    "Op",
    "ParseError",
    "Plan",
    "ReplaceGroup",
    "ResilientError",
    "RouteEvents",
    "SetRoute",
    "Settings",
    "SyncResult",
    "TorResilientConfig",
    "VtyshFrr",
    "decode_frr_routes",
    "format_batches",
    "format_frr_routes",
    "format_op",
    "member_hint",
    "parse_frr_routes",
    "parse_kernel_state",
    "plan",
    "run",
    "sync",
    "teardown_plan",
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
_RULE_KEYS: Final = frozenset({"priority", "src", "dst", "dstlen", "table", "protocol", "flags"})
_ROUTE_GROUPS: Final = 0x40 | 0x400  # RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE


# -- errors ---------------------------------------------------------------------------------------
class ResilientError(Exception):
    """Root of this module's errors; the daemon logs it, keeps the last state and retries."""

    exit_code = 1


class ParseError(ResilientError):
    """FRR's or iproute2's output is not what this module understands (their data)."""


class CommandError(ResilientError):
    """``vtysh`` or ``ip`` failed, timed out or is missing (the environment).

    For a failed ``ip -batch`` the operations before ``line`` were applied; the next sync
    re-reads the kernel and finishes the job.
    """

    def __init__(self, message: str, *, line: str | None = None) -> None:
        super().__init__(message)
        self.line = line


# -- values ---------------------------------------------------------------------------------------
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


# -- FRR codec ------------------------------------------------------------------------------------
def _bad(what: str) -> ParseError:
    return ParseError(f"FRR route JSON: {what}")


def _selected_members(vip: VIP, entries: object) -> tuple[frozenset[Member], str | None]:
    """Members of the selected entry of ``vip``, or a reason it cannot be mirrored."""
    name = addr.format_prefix(vip)
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
        members, reason = _selected_members(vip, entries)
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


# -- kernel codec ---------------------------------------------------------------------------------
def _kbad(what: str) -> ParseError:
    return ParseError(f"ip -j output: {what}")


def _json_list(text: str, what: str) -> list[dict[str, Any]]:
    if not text.strip():
        return []
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise _kbad(f"{what} is not JSON: {e}") from None
    if not isinstance(doc, list) or not all(isinstance(x, dict) for x in doc):
        raise _kbad(f"{what} is not a list of objects")
    return doc


def _int(obj: Mapping[str, Any], key: str, what: str, *, default: int | None = None) -> int:
    value = obj.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _kbad(f"{what}: '{key}' is {value!r}, not a non-negative integer")
    return value


def _opt_int(obj: Mapping[str, Any], key: str, what: str) -> int | None:
    return None if key not in obj else _int(obj, key, what)


def _dst(text: object, version: int, what: str, dstlen: object = None) -> addr.IPNetwork:
    if not isinstance(text, str):
        raise _kbad(f"{what}: dst is {text!r}, not text")
    try:
        if text == "default":
            net = addr.parse_prefix("0.0.0.0/0" if version == 4 else "::/0")
        elif "/" in text:
            net = addr.parse_prefix(text)
        elif dstlen is not None:
            if isinstance(dstlen, bool) or not isinstance(dstlen, int):
                raise _kbad(f"{what}: dstlen is {dstlen!r}")
            net = addr.parse_prefix(f"{text}/{dstlen}")
        else:
            ip = addr.parse_ip(text)
            net = addr.parse_prefix(f"{text}/{ip.max_prefixlen}")
    except addr.AddressError as e:
        raise _kbad(f"{what}: {e}") from None
    if net.version != version:
        raise _kbad(f"{what}: {text} is not an IPv{version} prefix")
    return net


def _nexthop(obj: Mapping[str, Any]) -> KernelNexthop:
    nid = _int(obj, "id", "nexthop")
    what = f"nexthop {nid}"
    protocol = _opt_int(obj, "protocol", what)
    flags = obj.get("flags", [])
    if not isinstance(flags, list):
        raise _kbad(f"{what}: flags is {flags!r}")
    special = any(k in obj for k in ("blackhole", "fdb", "encap")) or "onlink" in flags
    if "group" in obj:
        group = obj["group"]
        if not isinstance(group, list) or not all(isinstance(g, dict) for g in group):
            raise _kbad(f"{what}: group is {group!r}")
        entries = tuple((_int(g, "id", what), _int(g, "weight", what, default=1)) for g in group)
        resilient = None
        kind = obj.get("type", "mpath")
        if kind == "resilient":
            args = obj.get("resilient_args")
            if not isinstance(args, dict):
                raise _kbad(f"{what}: resilient_args is {args!r}")
            try:
                resilient = GroupSettings(
                    buckets=_int(args, "buckets", what),
                    idle_timer=_int(args, "idle_timer", what),
                    unbalanced_timer=_int(args, "unbalanced_timer", what),
                )
            except ValueError as e:
                raise _kbad(f"{what}: {e}") from None
        elif kind != "mpath":
            special = True
        return KernelNexthop(
            id=nid, protocol=protocol, group=entries, resilient=resilient, special=special
        )
    gateway: IPv4Address | IPv6Address | None = None
    if "gateway" in obj:
        text = obj["gateway"]
        if not isinstance(text, str):
            raise _kbad(f"{what}: gateway is {text!r}")
        try:
            gateway = addr.parse_ip(text)
        except addr.AddressError as e:
            raise _kbad(f"{what}: {e}") from None
    dev = obj.get("dev")
    if dev is not None and not isinstance(dev, str):
        raise _kbad(f"{what}: dev is {dev!r}")
    return KernelNexthop(id=nid, protocol=protocol, gateway=gateway, dev=dev, special=special)


def _route(obj: Mapping[str, Any], version: int) -> KernelRoute:
    dst = _dst(obj.get("dst"), version, "route")
    what = f"route {addr.format_prefix(dst)}"
    return KernelRoute(
        dst=dst,
        metric=_int(obj, "metric", what, default=0),
        nhid=_opt_int(obj, "nhid", what),
        protocol=_opt_int(obj, "protocol", what),
        type=_int(obj, "type", what, default=_RTN_UNICAST),
    )


def _rule(obj: Mapping[str, Any], version: int) -> KernelRule:
    dst = None if "dst" not in obj else _dst(obj["dst"], version, "rule", obj.get("dstlen"))
    plain = set(obj) <= _RULE_KEYS and obj.get("src", "all") == "all" and dst is not None
    return KernelRule(dst=dst, protocol=_opt_int(obj, "protocol", "rule"), plain=plain)


def parse_kernel_state(
    *,
    nexthops: str,
    routes4: str,
    routes6: str,
    rules4: str,
    rules6: str,
    table: int,
    priority: int,
) -> KernelState:
    """The kernel state from ``ip -N -j`` output (``-N``: protocols and tables as numbers).

    ``nexthops`` is ``nexthop show``; ``routes4``/``routes6`` are ``-4``/``-6 route show table
    T``; ``rules4``/``rules6`` are ``-4``/``-6 rule show``, of which only the rules at
    ``priority`` that look up ``table`` are kept.
    """
    nhs: dict[int, KernelNexthop] = {}
    for obj in _json_list(nexthops, "nexthop show"):
        nh = _nexthop(obj)
        nhs[nh.id] = nh
    routes = [_route(o, 4) for o in _json_list(routes4, "route show")]
    routes += [_route(o, 6) for o in _json_list(routes6, "-6 route show")]
    rules: list[KernelRule] = []
    for version, text in ((4, rules4), (6, rules6)):
        for obj in _json_list(text, f"-{version} rule show"):
            if obj.get("priority") != priority or obj.get("table") not in (table, str(table)):
                continue
            rules.append(_rule(obj, version))
    return KernelState(nexthops=nhs, routes=tuple(routes), rules=tuple(rules))


# -- core -----------------------------------------------------------------------------------------
def member_hint(member: Member) -> int:
    """The id a new member nexthop gets unless taken: a stable hash of ``gateway%dev``."""
    digest = hashlib.blake2b(str(member).encode(), digest_size=8).digest()
    return MEMBER_BASE + int.from_bytes(digest, "big") % _MEMBER_SPAN


def _probe(start: int, base: int, span: int, taken: set[int]) -> int:
    offset = start - base
    for i in range(span):
        candidate = base + (offset + i) % span
        if candidate not in taken:
            return candidate
    raise ResilientError("the helper's nexthop id range is full")


def _default_metric(dst: addr.IPNetwork) -> int:
    return 0 if dst.version == 4 else 1024


def _set_key(members: frozenset[Member]) -> tuple[tuple[int, str], ...]:
    return tuple(sorted((int(m.gateway), m.dev) for m in members))


def _keeper(
    parts: Mapping[frozenset[Member], Sequence[VIP]], current: frozenset[Member]
) -> frozenset[Member]:
    """The path set that keeps a group: most VIPs, then fewest bucket moves, then order."""

    def key(s: frozenset[Member]) -> tuple[int, int, int, tuple[tuple[int, str], ...]]:
        return (-len(parts[s]), -len(s & current), len(s ^ current), _set_key(s))

    return min(parts, key=key)


def plan(paths: Mapping[VIP, frozenset[Member]], kernel: KernelState, settings: Settings) -> Plan:
    """The desired state for ``paths`` and the ordered operations from ``kernel`` to it.

    ``paths`` maps VIPs to FRR's members (:attr:`FrrView.paths`); VIPs that are not in
    ``settings.vips`` are ignored, configured VIPs missing from ``paths`` have no path.
    Applying the operations and planning again against the result yields no operation.
    """
    proto = settings.protocol
    want: dict[VIP, frozenset[Member]] = {}
    for vip in sorted(settings.vips, key=_vip_key):
        members = frozenset(paths.get(vip, ()))
        if members:
            want[vip] = members

    # The helper's objects in the kernel.
    member_nh: dict[int, Member] = {}
    group_nh: dict[int, KernelNexthop] = {}
    stray: set[int] = set()
    for nid, nh in kernel.nexthops.items():
        if nh.protocol != proto or not MEMBER_BASE <= nid < ID_END:
            continue
        m = nh.member()
        if nid < GROUP_BASE and m is not None:
            member_nh[nid] = m
        elif nid >= GROUP_BASE and nh.group and nh.resilient is not None:
            group_nh[nid] = nh
        else:
            stray.add(nid)
    taken = set(kernel.nexthops)

    # Member ids: keep the kernel's, else hash and probe.
    have: dict[Member, list[int]] = defaultdict(list)
    for nid in sorted(member_nh):
        have[member_nh[nid]].append(nid)
    member_ids: dict[Member, int] = {}
    new_members: list[tuple[int, Member]] = []
    needed: set[Member] = set()
    for members in want.values():
        needed |= members
    for m in sorted(needed):
        hint = member_hint(m)
        if have.get(m):
            member_ids[m] = hint if hint in have[m] else have[m][0]
        else:
            nid = _probe(hint, MEMBER_BASE, _MEMBER_SPAN, taken)
            taken.add(nid)
            member_ids[m] = nid
            new_members.append((nid, m))

    # Groups: every usable group keeps the largest part of its cohort.
    usable = {
        gid: nh
        for gid, nh in group_nh.items()
        if nh.resilient is not None and nh.resilient.buckets == settings.group.buckets
    }
    current: dict[addr.IPNetwork, KernelRoute] = {}
    for r in kernel.routes:
        if r.metric == _default_metric(r.dst):
            current[r.dst] = r
    cohorts: dict[int, dict[frozenset[Member], list[VIP]]] = defaultdict(lambda: defaultdict(list))
    for vip, members in want.items():
        route = current.get(vip)
        if route is not None and route.nhid in usable:
            cohorts[route.nhid][members].append(vip)

    def now_in(gid: int) -> frozenset[Member]:
        return frozenset(member_nh[i] for i, _ in usable[gid].group if i in member_nh)

    target: dict[int, frozenset[Member]] = {}
    assign: dict[VIP, int] = {}
    for gid in sorted(cohorts):
        parts = cohorts[gid]
        keep = _keeper(parts, now_in(gid))
        target[gid] = keep
        for vip in parts[keep]:
            assign[vip] = gid
    new_groups: set[int] = set()
    by_set: dict[frozenset[Member], int] = {}
    for gid in sorted(target):
        by_set.setdefault(target[gid], gid)
    for vip, members in want.items():
        if vip in assign:
            continue
        gid_or_none = by_set.get(members)
        if gid_or_none is None:
            gid = _probe(GROUP_BASE, GROUP_BASE, ID_END - GROUP_BASE, taken)
            taken.add(gid)
            new_groups.add(gid)
            target[gid] = members
            by_set[members] = gid
        else:
            gid = gid_or_none
        assign[vip] = gid

    # Operations, in an order where every prefix is safe.
    ops: list[Op] = []
    have_rule = {r.dst for r in kernel.rules if r.plain}
    missing = [v for v in sorted(settings.vips, key=_vip_key) if v not in have_rule]
    ops += [AddRule(v, settings.table, settings.priority, proto) for v in missing if v.version == 6]
    ops += [AddRule(v, settings.table, settings.priority, proto) for v in missing if v.version == 4]
    ops += [AddMember(nid, m, proto) for nid, m in sorted(new_members)]
    for gid in sorted(target):
        ids = tuple(sorted(member_ids[m] for m in target[gid]))
        if gid in new_groups:
            ops.append(AddGroup(gid, ids, settings.group, proto))
            continue
        nh = usable[gid]
        if sorted(nh.group) != [(i, 1) for i in ids] or nh.resilient != settings.group:
            ops.append(ReplaceGroup(gid, ids, settings.group, proto))
    for vip, gid in assign.items():
        route = current.get(vip)
        if (
            route is None
            or route.nhid != gid
            or route.protocol != proto
            or route.type != _RTN_UNICAST
        ):
            ops.append(SetRoute(vip, gid, settings.table, proto))
    for r in sorted(kernel.routes, key=lambda r: (_vip_key(r.dst), r.dst.prefixlen, r.metric)):
        if r.dst not in assign or r.metric != _default_metric(r.dst):
            ops.append(DelRoute(r.dst, r.metric, settings.table))
    stale_rules = sorted(
        {
            r.dst
            for r in kernel.rules
            if r.plain and r.protocol == proto and r.dst is not None and r.dst not in settings.vips
        },
        key=lambda d: (_vip_key(d), d.prefixlen),
    )
    ops += [
        DelRule(d, settings.table, settings.priority, proto) for d in stale_rules if d.version == 4
    ]
    ops += [DelNexthop(gid) for gid in sorted(group_nh) if gid not in target]
    in_use = set(member_ids.values())
    ops += [DelNexthop(nid) for nid in sorted(member_nh) if nid not in in_use]
    ops += [DelNexthop(nid) for nid in sorted(stray)]
    ops += [
        DelRule(d, settings.table, settings.priority, proto) for d in stale_rules if d.version == 6
    ]
    return Plan(
        ops=tuple(ops),
        members=member_ids,
        groups={gid: target[gid] for gid in sorted(target)},
        routes=assign,
    )


def teardown_plan(kernel: KernelState, settings: Settings) -> Plan:
    """Operations that remove every helper object (rules, table routes, groups, members)."""
    bare = Settings(
        vips=frozenset(),
        table=settings.table,
        priority=settings.priority,
        protocol=settings.protocol,
        group=settings.group,
    )
    return plan({}, kernel, bare)


# -- ip -batch ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Batch:
    """Lines for one ``ip [-6] -batch -`` run (``ip -batch`` cannot mix rule families)."""

    ipv6_rules: bool
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


def _group_args(op: AddGroup | ReplaceGroup) -> str:
    s = op.settings
    members = "/".join(str(i) for i in op.members)
    return (
        f"id {op.id} group {members} type resilient buckets {s.buckets} "
        f"idle_timer {s.idle_timer} unbalanced_timer {s.unbalanced_timer} proto {op.protocol}"
    )


def format_op(op: Op) -> str:
    """One ``ip -batch`` line (without the leading ``ip``)."""
    match op:
        case AddRule(vip, table, priority, protocol):
            dst = addr.format_prefix(vip)
            return f"rule add to {dst} lookup {table} priority {priority} proto {protocol}"
        case DelRule(dst, table, priority, protocol):
            text = addr.format_prefix(dst)
            return f"rule del to {text} lookup {table} priority {priority} proto {protocol}"
        case AddMember(nid, member, protocol):
            gw = addr.format_ip(member.gateway)
            return f"nexthop add id {nid} via {gw} dev {member.dev} proto {protocol}"
        case AddGroup():
            return f"nexthop add {_group_args(op)}"
        case ReplaceGroup():
            return f"nexthop replace {_group_args(op)}"
        case SetRoute(vip, group, table, protocol):
            dst = addr.format_prefix(vip)
            return f"route replace {dst} nhid {group} table {table} proto {protocol}"
        case DelRoute(dst, metric, table):
            return f"route del {addr.format_prefix(dst)} table {table} metric {metric}"
        case DelNexthop(nid):
            return f"nexthop del id {nid}"
    raise TypeError(f"not an operation: {op!r}")


def format_batches(ops: Sequence[Op]) -> tuple[Batch, ...]:
    """Consecutive operations grouped into ``ip -batch`` runs, order preserved."""
    batches: list[Batch] = []
    for op in ops:
        six = isinstance(op, AddRule | DelRule) and (
            (op.vip if isinstance(op, AddRule) else op.dst).version == 6
        )
        line = format_op(op)
        if batches and batches[-1].ipv6_rules == six:
            batches[-1] = Batch(six, (*batches[-1].lines, line))
        else:
            batches.append(Batch(six, (line,)))
    return tuple(batches)


# -- configuration --------------------------------------------------------------------------------
def _vip(value: Any) -> VIP:
    if isinstance(value, IPv4Network | IPv6Network):
        return _check_vip(value, "vip")
    if not isinstance(value, str):
        raise ValueError(f"expected a VIP address or host prefix, got {value!r}")
    net = addr.parse_prefix(value) if "/" in value else None
    if net is None:
        ip = addr.parse_ip(value)
        net = addr.parse_prefix(f"{value}/{ip.max_prefixlen}")
    return _check_vip(net, "vip")


VipField = Annotated[IPv4Network | IPv6Network, BeforeValidator(_vip)]
_Seconds = Annotated[int, Strict(), Field(ge=0, le=86400)]


class TorResilientConfig(BaseModel):
    """Configuration of ``sixpod tor-resilient`` (one ToR)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    vips: tuple[VipField, ...] = Field(description="VIPs to mirror: addresses or /32, /128")
    table: Annotated[int, Strict(), Field(ge=1, le=2**32 - 1)] = Field(
        default=1000, description="routing table of the helper's routes (not 253, 254, 255)"
    )
    rule_priority: Annotated[int, Strict(), Field(ge=1, le=32765)] = Field(
        default=1000, description="priority of the 'to VIP lookup table' rules (before main)"
    )
    protocol: Annotated[int, Strict(), Field(ge=5, le=255)] = Field(
        default=250, description="rtnetlink protocol number marking the helper's objects"
    )
    buckets: Annotated[int, Strict(), Field(ge=2, le=65535)] = Field(
        default=DEFAULT_BUCKETS,
        description="buckets per resilient group (well above the nodes per ToR)",
    )
    idle_timer: _Seconds = Field(
        default=DEFAULT_IDLE_TIMER,
        description="seconds a bucket must be idle before it moves to a new member",
    )
    unbalanced_timer: _Seconds = Field(
        default=DEFAULT_UNBALANCED_TIMER,
        description="seconds of imbalance before busy buckets move anyway; 0 = never",
    )
    interval: float = Field(
        default=1.0,
        ge=0.05,
        le=10.0,
        description="seconds between full syncs (route events wake the loop at once)",
    )
    settle: float = Field(
        default=0.01, ge=0.0, le=1.0, description="seconds to gather a burst of route events"
    )
    netns: str | None = Field(default=None, description="network namespace of the ToR")
    vty_socket: str | None = Field(default=None, description="FRR vty socket directory")
    vtysh: str = Field(default="vtysh", description="vtysh program")
    ip: str = Field(default="ip", description="iproute2 ip program")
    command_timeout: float = Field(default=5.0, gt=0, le=60, description="seconds per command")
    set_hash_policy: bool = Field(
        default=True, description="set fib_multipath_hash_policy=1 (L4) at start"
    )

    @field_validator("vips")
    @classmethod
    def _unique(cls, vips: tuple[VIP, ...]) -> tuple[VIP, ...]:
        if len(set(vips)) != len(vips):
            raise ValueError("vips are listed more than once")
        return vips

    @field_validator("table")
    @classmethod
    def _table(cls, table: int) -> int:
        if table in _RESERVED_TABLES:
            raise ValueError(f"table {table} is reserved (local, main, default)")
        return table

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, protocol: int) -> int:
        if protocol in _FRR_PROTOCOLS:
            raise ValueError(f"protocol {protocol} belongs to FRR")
        return protocol

    def settings(self) -> Settings:
        return Settings(
            vips=frozenset(self.vips),
            table=self.table,
            priority=self.rule_priority,
            protocol=self.protocol,
            group=GroupSettings(self.buckets, self.idle_timer, self.unbalanced_timer),
        )


# -- adapters -------------------------------------------------------------------------------------
def _run(
    argv: Sequence[str], *, stdin: str | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise CommandError(f"{' '.join(argv)}: no answer within {timeout:g} s") from None
    except OSError as e:
        raise CommandError(f"{' '.join(argv)}: {e.strerror or e}") from None


class FrrReader(Protocol):
    def read(self) -> tuple[object, object]:
        """Decoded ``show ip route json`` and ``show ipv6 route json``."""
        ...


class KernelPort(Protocol):
    def read(self, settings: Settings) -> KernelState: ...

    def apply(self, ops: Sequence[Op]) -> None: ...


class VtyshFrr:
    """Reads FRR's routes with one ``vtysh -c ... -c ...`` run."""

    def __init__(
        self, *, vty_socket: str | None = None, vtysh: str = "vtysh", timeout: float = 5.0
    ) -> None:
        self._argv = [vtysh] + (["--vty_socket", vty_socket] if vty_socket else [])
        self._timeout = timeout

    def read(self) -> tuple[object, object]:
        argv = [*self._argv, "-c", "show ip route json", "-c", "show ipv6 route json"]
        res = _run(argv, stdin=None, timeout=self._timeout)
        if res.returncode != 0:
            raise CommandError(f"vtysh: exit {res.returncode}: {res.stderr.strip()}")
        decoder = json.JSONDecoder()
        text, pos, docs = res.stdout, 0, []
        for version in (4, 6):
            while pos < len(text) and text[pos].isspace():
                pos += 1
            try:
                doc, pos = decoder.raw_decode(text, pos)
            except ValueError as e:
                raise _bad(f"vtysh printed no IPv{version} JSON document: {e}") from None
            docs.append(doc)
        return docs[0], docs[1]


class IpKernel:
    """The ToR's kernel through iproute2's ``ip`` (``-n NS`` when ``netns`` is set)."""

    def __init__(self, *, netns: str | None = None, ip: str = "ip", timeout: float = 5.0) -> None:
        self.netns = netns
        self._program = ip
        self._ip = [ip] + (["-n", netns] if netns else [])
        self._timeout = timeout

    def _show(self, *args: str, missing_ok: bool = False) -> str:
        res = _run([*self._ip, "-N", "-j", *args], stdin=None, timeout=self._timeout)
        if res.returncode != 0:
            # A table that never had a route does not exist yet (kernel extack): it is empty.
            if missing_ok and "FIB table does not exist" in res.stderr:
                return "[]"
            raise CommandError(f"ip {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}")
        return res.stdout

    def read(self, settings: Settings) -> KernelState:
        table = str(settings.table)
        return parse_kernel_state(
            nexthops=self._show("nexthop", "show"),
            routes4=self._show("-4", "route", "show", "table", table, missing_ok=True),
            routes6=self._show("-6", "route", "show", "table", table, missing_ok=True),
            rules4=self._show("-4", "rule", "show"),
            rules6=self._show("-6", "rule", "show"),
            table=settings.table,
            priority=settings.priority,
        )

    def apply(self, ops: Sequence[Op]) -> None:
        for batch in format_batches(ops):
            argv = [*self._ip, *(["-6"] if batch.ipv6_rules else []), "-batch", "-"]
            res = _run(argv, stdin=batch.text, timeout=self._timeout)
            if res.returncode != 0:
                err = res.stderr.strip()
                m = re.search(r"Command failed -:(\d+)", err)
                line = batch.lines[int(m.group(1)) - 1] if m else None
                where = f" at '{line}'" if line else ""
                raise CommandError(f"ip -batch failed{where}: {err}", line=line)

    def set_multipath_hash(self, policy: int = 1) -> None:
        """``fib_multipath_hash_policy`` for both families (1 = L4 5-tuple) in the ToR's ns."""
        _check_int(policy, "policy", 0, 3)
        keys = ("net.ipv4.fib_multipath_hash_policy", "net.ipv6.fib_multipath_hash_policy")
        prefix = [self._program, "netns", "exec", self.netns] if self.netns else []
        argv = [*prefix, "sysctl", "-q", "-w", *(f"{k}={policy}" for k in keys)]
        res = _run(argv, stdin=None, timeout=self._timeout)
        if res.returncode != 0:
            raise CommandError(f"sysctl: exit {res.returncode}: {res.stderr.strip()}")


class RouteEvents:
    """Wakes the loop on route changes in the ToR's namespace (netlink, through pyroute2).

    Changes of the helper's own table are ignored. Use as a context manager, from one thread
    (pyroute2 binds its socket to the event loop of the thread that opened it).
    """

    def __init__(self, *, netns: str | None = None, ignore_table: int | None = None) -> None:
        self._netns = netns
        self._ignore = ignore_table
        self._ipr: Any = None

    def __enter__(self) -> RouteEvents:
        from pyroute2 import IPRoute

        try:
            self._ipr = IPRoute(netns=self._netns) if self._netns else IPRoute()
            self._ipr.bind(groups=_ROUTE_GROUPS)
        except Exception as e:  # pyroute2 raises OSError, NetlinkError and others
            self.close()
            raise CommandError(f"route events in {self._netns or 'this namespace'}: {e}") from None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._ipr is not None:
            with contextlib.suppress(Exception):
                self._ipr.close()
            self._ipr = None

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s; True if a relevant route changed (pending ones drained)."""
        if self._ipr is None:
            raise CommandError("route events: not open")
        relevant = False
        deadline = time.monotonic() + max(0.0, timeout)
        for _ in range(10_000):  # bounded drain of a burst
            left = 0.0 if relevant else max(0.0, deadline - time.monotonic())
            try:
                ready, _, _ = select.select([self._ipr.fileno()], [], [], left)
                if not ready:
                    return relevant
                msgs = self._ipr.get()
            except Exception as e:
                raise CommandError(f"route events: {e}") from None
            for msg in msgs:
                table = msg.get_attr("RTA_TABLE") or msg.get("table")
                if table != self._ignore:
                    relevant = True
        return relevant


# -- sync and loop --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SyncResult:
    """One sync: FRR's view, the plan, and whether its operations were applied."""

    view: FrrView
    plan: Plan
    applied: bool

    @property
    def ops(self) -> tuple[Op, ...]:
        return self.plan.ops

    @property
    def changed(self) -> bool:
        return self.applied and bool(self.plan.ops)


def sync(
    settings: Settings, *, frr: FrrReader, kernel: KernelPort, dry_run: bool = False
) -> SyncResult:
    """Read FRR, read the kernel, plan, apply. Nothing is applied if a read fails."""
    doc4, doc6 = frr.read()
    view = decode_frr_routes(doc4, doc6, settings.vips)
    state = kernel.read(settings)
    result = plan(view.paths, state, settings)
    if result.ops and not dry_run:
        kernel.apply(result.ops)
    return SyncResult(view=view, plan=result, applied=bool(result.ops) and not dry_run)


class _Waiter(Protocol):
    def wait(self, timeout: float) -> bool: ...


def run(
    config: TorResilientConfig,
    *,
    frr: FrrReader,
    kernel: KernelPort,
    stop: threading.Event,
    events: _Waiter | None = None,
    on_result: Callable[[SyncResult | ResilientError], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Sync until ``stop`` is set; return the number of syncs.

    A full sync runs every ``config.interval`` s, and at once (after ``config.settle`` s to
    gather the burst) when ``events`` reports a route change. Errors of this module are
    passed to ``on_result`` and retried at the next sync; the kernel keeps its last state.
    """
    settings = config.settings()
    count = 0
    while not stop.is_set():
        try:
            result: SyncResult | ResilientError = sync(settings, frr=frr, kernel=kernel)
        except ResilientError as e:
            result = e
        count += 1
        if on_result is not None:
            on_result(result)
        deadline = clock() + config.interval
        while not stop.is_set():
            left = deadline - clock()
            if left <= 0:
                break
            if events is None:
                stop.wait(left)
                continue
            try:
                if events.wait(min(left, 0.5)):
                    if config.settle:
                        events.wait(config.settle)
                    break
            except ResilientError as e:
                if on_result is not None:
                    on_result(e)
                stop.wait(left)
                break
    return count
