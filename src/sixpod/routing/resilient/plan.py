"""The planner: FRR's paths and the kernel state in, the desired state and its operations out.

No I/O, no clock; applying a plan's operations and planning again yields no operation.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence

from sixpod import addr
from sixpod.routing.resilient.errors import ResilientError
from sixpod.routing.resilient.model import (
    _MEMBER_SPAN,
    _RTN_UNICAST,
    GROUP_BASE,
    ID_END,
    MEMBER_BASE,
    VIP,
    AddGroup,
    AddMember,
    AddRule,
    DelNexthop,
    DelRoute,
    DelRule,
    KernelNexthop,
    KernelRoute,
    KernelState,
    Member,
    Op,
    Plan,
    ReplaceGroup,
    SetRoute,
    Settings,
    _vip_key,
)

__all__ = [
    "member_hint",
    "plan",
    "teardown_plan",
]


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
