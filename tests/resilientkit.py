"""Shared by the resilient-hashing helper's tests: captured FRR samples and a fake kernel.

The kernel is faked at the narrowest seam: :class:`FakeKernel` applies operations with the
kernel's semantics (checked against the real kernel in ``tests/routing/test_resilient_kernel.py``)
and prints its state as ``ip -N -j`` does, so every plan goes through the real parser.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from sixpod import addr
from sixpod.routing.resilient.frr import parse_frr_routes
from sixpod.routing.resilient.iproute import parse_kernel_state
from sixpod.routing.resilient.model import (
    VIP,
    AddGroup,
    AddMember,
    AddRule,
    DelNexthop,
    DelRoute,
    DelRule,
    FrrView,
    KernelState,
    Member,
    Op,
    ReplaceGroup,
    SetRoute,
    Settings,
)
from sixpod.routing.resilient.plan import plan

DATA = Path(__file__).parent / "routing" / "data" / "resilient"
V4 = IPv4Network("203.0.113.10/32")
V6 = IPv6Network("2001:db8:f::10/128")
N = {i: Member(IPv6Address(f"2001:db8:ff:{i}::2"), f"swp{i}") for i in range(1, 7)}
SETTINGS = Settings(vips=frozenset({V4, V6}))
PROTO = SETTINGS.protocol


def fixture(name: str) -> str:
    return (DATA / name).read_text()


def frr_view(paths: str) -> FrrView:
    return parse_frr_routes(
        fixture(f"frr84-bgp-{paths}-ipv4.json"), fixture(f"frr84-bgp-{paths}-ipv6.json"), [V4, V6]
    )


def nodes(*ids: int) -> frozenset[Member]:
    return frozenset(N[i] for i in ids)


# -- a fake kernel with the kernel's semantics -----------------------------------------------------
class KernelRefused(Exception):
    pass


@dataclass
class FakeKernel:
    """Nexthops, one routing table and rules, printed as ``ip -N -j`` prints them."""

    table: int = SETTINGS.table
    priority: int = SETTINGS.priority
    nexthops: dict[int, dict[str, Any]] = field(default_factory=dict)
    routes: dict[tuple[addr.IPNetwork, int], dict[str, Any]] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)
    applied: list[Op] = field(default_factory=list)

    # KernelPort
    def read(self, settings: Settings) -> KernelState:
        return parse_kernel_state(**self.show(), table=settings.table, priority=settings.priority)

    def apply(self, ops: Sequence[Op]) -> None:
        for op in ops:
            self.apply_one(op)
            self.applied.append(op)

    def show(self) -> dict[str, str]:
        fam: dict[int, list[dict[str, Any]]] = {4: [], 6: []}
        for (dst, _), r in sorted(self.routes.items(), key=lambda kv: str(kv[0])):
            fam[dst.version].append(r)
        rules: dict[int, list[dict[str, Any]]] = {4: [], 6: []}
        for r in self.rules:
            rules[r["_v"]].append({k: v for k, v in r.items() if k != "_v"})
        base = [{"priority": 0, "src": "all", "table": "255"}]
        tail = [{"priority": 32766, "src": "all", "table": "254"}]
        return {
            "nexthops": json.dumps([self.nexthops[i] for i in sorted(self.nexthops)]),
            "routes4": json.dumps(fam[4]),
            "routes6": json.dumps(fam[6]),
            "rules4": json.dumps(base + rules[4] + tail),
            "rules6": json.dumps(base + rules[6] + tail),
        }

    def add_nexthop(self, obj: dict[str, Any]) -> None:
        self.nexthops[obj["id"]] = obj

    def _group_of(self, ids: Iterable[int]) -> list[dict[str, int]]:
        for i in ids:
            if i not in self.nexthops or "group" in self.nexthops[i]:
                raise KernelRefused(f"no such member {i}")
        return [{"id": i} for i in ids]

    def _delete_nexthop(self, nid: int) -> None:
        obj = self.nexthops.pop(nid)
        if "group" not in obj:
            for gid, g in list(self.nexthops.items()):
                if "group" in g:
                    g["group"] = [m for m in g["group"] if m["id"] != nid]
                    if not g["group"]:
                        self._delete_nexthop(gid)
        for key, r in list(self.routes.items()):
            if r.get("nhid") == nid:
                del self.routes[key]

    def apply_one(self, op: Op) -> None:
        match op:
            case AddRule(vip, table, priority, protocol):
                rule = {
                    "priority": priority,
                    "src": "all",
                    "dst": addr.format_ip(vip.network_address),
                    "table": str(table),
                    "protocol": str(protocol),
                    "_v": vip.version,
                }
                if rule in self.rules:
                    raise KernelRefused("rule exists")
                self.rules.append(rule)
            case DelRule(dst, table, priority, protocol):
                for r in self.rules:
                    if (
                        r["priority"] == priority
                        and r["table"] == str(table)
                        and r.get("dst") == addr.format_ip(dst.network_address)
                        and r.get("protocol") == str(protocol)
                    ):
                        self.rules.remove(r)
                        break
                else:
                    raise KernelRefused("no such rule")
            case AddMember(nid, member, protocol):
                if nid in self.nexthops:
                    raise KernelRefused("nexthop exists")
                self.nexthops[nid] = {
                    "id": nid,
                    "gateway": addr.format_ip(member.gateway),
                    "dev": member.dev,
                    "scope": "253",
                    "protocol": str(protocol),
                    "flags": [],
                }
            case AddGroup(gid, members, gs, protocol) | ReplaceGroup(gid, members, gs, protocol):
                old = self.nexthops.get(gid)
                if isinstance(op, AddGroup) and old is not None:
                    raise KernelRefused("nexthop exists")
                if isinstance(op, ReplaceGroup):
                    if old is None or old.get("type") != "resilient":
                        raise KernelRefused("cannot replace: no resilient group")
                    if old["resilient_args"]["buckets"] != gs.buckets:
                        raise KernelRefused("Can not change number of buckets")
                self.nexthops[gid] = {
                    "id": gid,
                    "group": self._group_of(members),
                    "type": "resilient",
                    "resilient_args": {
                        "buckets": gs.buckets,
                        "idle_timer": gs.idle_timer,
                        "unbalanced_timer": gs.unbalanced_timer,
                        "unbalanced_time": 0,
                    },
                    "protocol": str(protocol),
                    "flags": [],
                }
            case SetRoute(vip, group, table, protocol):
                if group not in self.nexthops:
                    raise KernelRefused("no such nexthop")
                metric = 0 if vip.version == 4 else 1024
                route: dict[str, Any] = {
                    "dst": addr.format_ip(vip.network_address),
                    "nhid": group,
                    "protocol": str(protocol),
                    "flags": [],
                }
                if vip.version == 6:
                    route["metric"] = metric
                self.routes[(vip, metric)] = route
            case DelRoute(dst, metric, table):
                if (dst, metric) not in self.routes:
                    raise KernelRefused("no such route")
                del self.routes[(dst, metric)]
            case DelNexthop(nid):
                if nid not in self.nexthops:
                    raise KernelRefused("no such nexthop")
                self._delete_nexthop(nid)

    # views for assertions
    def group_members(self, gid: int) -> frozenset[Member]:
        out = set()
        for m in self.nexthops[gid]["group"]:
            nh = self.nexthops[m["id"]]
            out.add(Member(IPv6Address(nh["gateway"]), nh["dev"]))
        return frozenset(out)

    def route_group(self, vip: VIP) -> int | None:
        r = self.routes.get((vip, 0 if vip.version == 4 else 1024))
        return None if r is None else int(r["nhid"])


def converge(
    kernel: FakeKernel, paths: Mapping[VIP, frozenset[Member]], st: Settings = SETTINGS
) -> tuple[Op, ...]:
    """Plan, apply, and check that planning again finds nothing to do."""
    first = plan(paths, kernel.read(st), st)
    kernel.apply(first.ops)
    again = plan(paths, kernel.read(st), st)
    assert again.ops == (), again.ops
    assert again.routes == first.routes
    assert again.members == first.members
    return first.ops


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
