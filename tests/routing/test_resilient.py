"""The ToR resilient-hashing helper's pure core: FRR codec, kernel codec, planner, sync loop.

The kernel is faked at the narrowest seam: :class:`FakeKernel` applies operations with the
kernel's semantics (checked against the real kernel in ``test_resilient_kernel.py``) and
prints its state as ``ip -N -j`` does, so every plan goes through the real parser.
"""

from __future__ import annotations

import contextlib
import json
import stat
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sixpod import addr
from sixpod.routing.resilient import (
    GROUP_BASE,
    ID_END,
    MEMBER_BASE,
    VIP,
    AddGroup,
    AddMember,
    AddRule,
    CommandError,
    DelNexthop,
    DelRoute,
    DelRule,
    FrrView,
    GroupSettings,
    KernelState,
    Member,
    Op,
    ParseError,
    ReplaceGroup,
    ResilientError,
    SetRoute,
    Settings,
    SyncResult,
    TorResilientConfig,
    VtyshFrr,
    decode_frr_routes,
    format_batches,
    format_frr_routes,
    member_hint,
    parse_frr_routes,
    parse_kernel_state,
    plan,
    run,
    sync,
    teardown_plan,
)

DATA = Path(__file__).parent / "data" / "resilient"
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


# -- FRR codec ------------------------------------------------------------------------------------
def test_captured_frr_json_three_paths() -> None:
    view = frr_view("3paths")
    assert view.paths == {V4: nodes(1, 2, 3), V6: nodes(1, 2, 3)}
    assert view.unmirrored == {}


def test_captured_frr_json_after_a_node_left() -> None:
    assert frr_view("2paths").paths == {V4: nodes(1, 2), V6: nodes(1, 2)}


def test_only_configured_vips_are_read() -> None:
    other = IPv6Network("2001:db8:f::99/128")
    view = parse_frr_routes(
        fixture("frr84-bgp-3paths-ipv4.json"), fixture("frr84-bgp-3paths-ipv6.json"), [other]
    )
    assert view.paths == {other: frozenset()}


def test_format_round_trips_and_has_the_captured_shape() -> None:
    paths = {V4: nodes(1, 2, 3), V6: nodes(2)}
    text4, text6 = format_frr_routes(paths, ifindex={"swp1": 2, "swp2": 3, "swp3": 4})
    assert parse_frr_routes(text4, text6, [V4, V6]).paths == paths
    captured = json.loads(fixture("frr84-bgp-3paths-ipv4.json"))["203.0.113.10/32"][0]
    synthetic = json.loads(text4)["203.0.113.10/32"][0]
    assert set(synthetic) <= set(captured)
    assert set(synthetic["nexthops"][0]) <= set(captured["nexthops"][0])
    # the captured document formats back to itself, as far as the helper reads it
    view = frr_view("3paths")
    assert parse_frr_routes(*format_frr_routes(view.paths), [V4, V6]) == view


def _entry(*hops: dict[str, Any], selected: bool = True) -> dict[str, Any]:
    return {"prefix": "203.0.113.10/32", "selected": selected, "nexthops": list(hops)}


def _hop(n: int, **extra: Any) -> dict[str, Any]:
    return {"ip": f"2001:db8:ff:{n}::2", "afi": "ipv6", "interfaceName": f"swp{n}"} | extra


def _decode4(*entries: dict[str, Any]) -> FrrView:
    return decode_frr_routes({"203.0.113.10/32": list(entries)}, {}, [V4])


def test_selected_entry_and_active_next_hops_only() -> None:
    view = _decode4(
        _entry(_hop(5, active=True), selected=False),
        _entry(_hop(1, active=True), _hop(2), _hop(3, active=True, duplicate=True)),
    )
    assert view.paths[V4] == nodes(1)


def test_no_selected_entry_means_no_path() -> None:
    assert _decode4(_entry(_hop(1, active=True), selected=False)).paths[V4] == frozenset()


def test_recursive_next_hops_use_their_resolvers() -> None:
    view = _decode4(
        _entry(
            {"ip": "2001:db8:aa::1", "afi": "ipv6", "active": True, "recursive": True},
            _hop(1, resolver=True, active=True),
            {"interfaceName": "swp2", "resolver": True, "directlyConnected": True},
            {"ip": "2001:db8:aa::2", "afi": "ipv6", "recursive": True},
            _hop(4, resolver=True),
            _hop(3, active=True),
        )
    )
    assert view.paths[V4] == nodes(1, 3) | {Member(IPv6Address("2001:db8:aa::1"), "swp2")}


@pytest.mark.parametrize(
    ("hop", "reason"),
    [
        ({"ip": "198.51.100.1", "afi": "ipv4", "interfaceName": "swp1"}, "IPv4 gateway"),
        ({"unreachable": True, "blackhole": True}, "blackhole"),
        ({"directlyConnected": True, "interfaceName": "swp1"}, "without a gateway"),
        (_hop(2, interfaceName="a b"), "interface name 'a b'"),
    ],
)
def test_unmirrorable_next_hops_leave_the_vip_to_the_main_table(
    hop: dict[str, Any], reason: str
) -> None:
    view = _decode4(_entry(_hop(1, active=True), hop | {"active": True}))
    assert view.paths[V4] == frozenset()
    assert reason in view.unmirrored[V4]


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"203.0.113.10/32": {}},
        {"203.0.113.10/32": ["x"]},
        {"203.0.113.10/32": [{"selected": "yes"}]},
        {"203.0.113.10/32": [{"selected": True, "nexthops": {}}]},
        {"203.0.113.10/32": [{"selected": True, "nexthops": [{"active": 1}]}]},
        {"203.0.113.10/32": [{"selected": True, "nexthops": [_hop(1, active=True, ip=7)]}]},
        {"203.0.113.10/32": [{"selected": True, "nexthops": [_hop(1, active=True, ip="x")]}]},
        {"203.0.113.10/32": [{"selected": True, "nexthops": [_hop(1, interfaceName=3)]}]},
    ],
)
def test_malformed_frr_json_is_our_error(doc: object) -> None:
    with pytest.raises(ParseError):
        decode_frr_routes(doc, {}, [V4])


def test_frr_text_that_is_not_json() -> None:
    with pytest.raises(ParseError, match="IPv6 document is not JSON"):
        parse_frr_routes("{}", "% Unknown command", [V4])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
HOPISH = st.fixed_dictionaries(
    {},
    optional={
        "ip": st.sampled_from(["2001:db8:ff:1::2", "198.51.100.1", "fe80::1", "zz", 3]),
        "interfaceName": st.sampled_from(["swp1", "eth 0", "", "x" * 20, None]),
        "active": st.booleans() | st.none(),
        "recursive": st.booleans(),
        "resolver": st.booleans(),
        "duplicate": st.booleans(),
        "unreachable": st.booleans(),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    doc=JSON
    | st.fixed_dictionaries(
        {
            "203.0.113.10/32": st.lists(
                st.fixed_dictionaries(
                    {"selected": st.booleans() | JSON, "nexthops": st.lists(HOPISH) | JSON}
                ),
                max_size=3,
            )
        }
    )
)
def test_garbage_frr_json_raises_only_our_error(doc: object) -> None:
    try:
        view = decode_frr_routes(doc, {}, [V4])
    except ParseError:
        return
    assert all(isinstance(m, Member) for m in view.paths[V4])


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40) | JSON.map(json.dumps))
def test_garbage_kernel_json_raises_only_our_error(text: str) -> None:
    for key in ("nexthops", "routes4", "routes6", "rules4", "rules6"):
        args = dict.fromkeys(("nexthops", "routes4", "routes6", "rules4", "rules6"), "[]")
        args[key] = text
        with contextlib.suppress(ParseError):
            parse_kernel_state(**args, table=1000, priority=1000)


# -- kernel codec ---------------------------------------------------------------------------------
def test_zebra_nexthops_parse_and_are_not_ours() -> None:
    state = parse_kernel_state(
        nexthops=fixture("zebra-nexthops-after-flap.json"),
        routes4="",
        routes6="[]",
        rules4="[]",
        rules6="[]",
        table=1000,
        priority=1000,
    )
    assert set(state.nexthops) == {4, 5, 6, 11, 12, 13, 14, 18}
    assert state.nexthops[18].group == ((12, 1), (13, 1))
    assert state.nexthops[12].member() == N[1]
    assert {nh.protocol for nh in state.nexthops.values()} == {11}
    ops = plan({V4: nodes(1, 2)}, state, SETTINGS).ops
    touched = set()
    for op in ops:
        touched |= {getattr(op, "id", MEMBER_BASE), getattr(op, "group", MEMBER_BASE)}
        touched |= set(getattr(op, "members", ()))
    assert len(touched) > 1
    assert min(touched) >= MEMBER_BASE


def test_rules_with_other_selectors_are_not_ours() -> None:
    rules = [
        {"priority": 1000, "src": "all", "dst": "203.0.113.10", "table": "1000"},
        {"priority": 1000, "src": "198.51.100.1", "dst": "203.0.113.11", "table": "1000"},
        {"priority": 1000, "src": "all", "dst": "203.0.113.12", "iif": "lo", "table": "1000"},
        {"priority": 1000, "src": "all", "dst": "203.0.113.0", "dstlen": 24, "table": "1000"},
        {"priority": 1001, "src": "all", "dst": "203.0.113.13", "table": "1000"},
        {"priority": 1000, "src": "all", "dst": "203.0.113.14", "table": "254"},
    ]
    state = parse_kernel_state(
        nexthops="[]",
        routes4="[]",
        routes6="[]",
        rules4=json.dumps(rules),
        rules6="[]",
        table=1000,
        priority=1000,
    )
    assert [(r.dst, r.plain) for r in state.rules] == [
        (V4, True),
        (IPv4Network("203.0.113.11/32"), False),
        (IPv4Network("203.0.113.12/32"), False),
        (IPv4Network("203.0.113.0/24"), True),
    ]


# -- planner --------------------------------------------------------------------------------------
def test_plan_from_captured_json_on_an_empty_kernel() -> None:
    view = frr_view("3paths")
    result = plan(view.paths, KernelState(), SETTINGS)
    members = sorted((member_hint(N[i]), N[i]) for i in (1, 2, 3))
    ids = [i for i, _ in members]
    gs = GroupSettings()
    assert result.ops == (
        AddRule(V6, 1000, 1000, PROTO),
        AddRule(V4, 1000, 1000, PROTO),
        *(AddMember(i, m, PROTO) for i, m in members),
        AddGroup(GROUP_BASE, tuple(ids), gs, PROTO),
        SetRoute(V4, GROUP_BASE, 1000, PROTO),
        SetRoute(V6, GROUP_BASE, 1000, PROTO),
    )
    assert result.groups == {GROUP_BASE: nodes(1, 2, 3)}
    assert result.routes == {V4: GROUP_BASE, V6: GROUP_BASE}
    batches = format_batches(result.ops)
    assert [b.ipv6_rules for b in batches] == [True, False]
    assert batches[0].text == "rule add to 2001:db8:f::10/128 lookup 1000 priority 1000 proto 250\n"
    lines = batches[1].lines
    assert lines[0] == "rule add to 203.0.113.10/32 lookup 1000 priority 1000 proto 250"
    hint = member_hint(N[1])
    assert f"nexthop add id {hint} via 2001:db8:ff:1::2 dev swp1 proto 250" in lines
    group = "/".join(str(i) for i in ids)
    assert lines[-3:] == (
        f"nexthop add id {GROUP_BASE} group {group} type resilient buckets 128 idle_timer 120 "
        "unbalanced_timer 300 proto 250",
        f"route replace 203.0.113.10/32 nhid {GROUP_BASE} table 1000 proto 250",
        f"route replace 2001:db8:f::10/128 nhid {GROUP_BASE} table 1000 proto 250",
    )


def test_member_ids_are_stable_hashes_in_their_range() -> None:
    for m in N.values():
        assert MEMBER_BASE <= member_hint(m) < GROUP_BASE
        assert member_hint(m) == member_hint(Member(m.gateway, m.dev))
    assert len({member_hint(m) for m in N.values()}) == len(N)
    # pinned: the id a path gets must not change between releases (it survives restarts)
    assert member_hint(Member(IPv6Address("2001:db8:ff:1::2"), "swp1")) == 0x144FCBD1


def test_apply_then_replan_is_empty_and_zebra_untouched() -> None:
    kernel = FakeKernel()
    zebra = json.loads(fixture("zebra-nexthops-after-flap.json"))
    for obj in zebra:
        kernel.add_nexthop(obj)
    converge(kernel, frr_view("3paths").paths)
    for obj in zebra:
        assert kernel.nexthops[obj["id"]] == obj


def test_node_leaving_replaces_the_group_in_place() -> None:
    kernel = FakeKernel()
    converge(kernel, frr_view("3paths").paths)
    ops = converge(kernel, frr_view("2paths").paths)
    ids = tuple(sorted(member_hint(N[i]) for i in (1, 2)))
    assert ops == (
        ReplaceGroup(GROUP_BASE, ids, SETTINGS.group, PROTO),
        DelNexthop(member_hint(N[3])),
    )
    assert kernel.route_group(V4) == kernel.route_group(V6) == GROUP_BASE
    assert kernel.group_members(GROUP_BASE) == nodes(1, 2)
    # re-join: the same member id again, the group again replaced in place
    ids3 = tuple(sorted(member_hint(N[i]) for i in (1, 2, 3)))
    ops = converge(kernel, frr_view("3paths").paths)
    assert ops == (
        AddMember(member_hint(N[3]), N[3], PROTO),
        ReplaceGroup(GROUP_BASE, ids3, SETTINGS.group, PROTO),
    )


def test_vip_losing_all_paths_falls_back_to_the_main_table() -> None:
    kernel = FakeKernel()
    converge(kernel, {V4: nodes(1, 2), V6: nodes(1, 2)})
    ops = converge(kernel, {V4: nodes(1, 2)})
    assert ops == (DelRoute(V6, 1024, 1000),)
    assert {r["dst"] for r in kernel.rules} == {"203.0.113.10", "2001:db8:f::10"}
    ops = converge(kernel, {})
    assert ops == (
        DelRoute(V4, 0, 1000),
        DelNexthop(GROUP_BASE),
        *(DelNexthop(i) for i in sorted(member_hint(N[j]) for j in (1, 2))),
    )
    assert len(kernel.rules) == 2
    assert kernel.nexthops == {}


def test_split_cohort_keeps_the_group_for_the_larger_part() -> None:
    vips = [IPv4Network(f"203.0.113.{i}/32") for i in (1, 2, 3)]
    st_ = Settings(vips=frozenset(vips))
    kernel = FakeKernel()
    converge(kernel, dict.fromkeys(vips, nodes(1, 2, 3)), st_)
    # node 3 withdraws only the third VIP
    ops = converge(
        kernel, {vips[0]: nodes(1, 2, 3), vips[1]: nodes(1, 2, 3), vips[2]: nodes(1, 2)}, st_
    )
    g2 = GROUP_BASE + 1
    assert ops == (
        AddGroup(g2, tuple(sorted(member_hint(N[i]) for i in (1, 2))), st_.group, PROTO),
        SetRoute(vips[2], g2, 1000, PROTO),
    )
    assert kernel.route_group(vips[0]) == kernel.route_group(vips[1]) == GROUP_BASE
    # the third VIP gets node 3 back: it stays on its own group, replaced in place (no merge)
    ops = converge(kernel, dict.fromkeys(vips, nodes(1, 2, 3)), st_)
    assert ops == (
        ReplaceGroup(g2, tuple(sorted(member_hint(N[i]) for i in (1, 2, 3))), st_.group, PROTO),
    )


def test_new_vip_joins_an_existing_group_with_its_path_set() -> None:
    vips = [IPv4Network(f"203.0.113.{i}/32") for i in (1, 2)]
    st_ = Settings(vips=frozenset(vips))
    kernel = FakeKernel()
    converge(kernel, {vips[0]: nodes(1, 2)}, st_)
    ops = converge(kernel, {vips[0]: nodes(1, 2), vips[1]: nodes(1, 2)}, st_)
    assert ops == (SetRoute(vips[1], GROUP_BASE, 1000, PROTO),)


def test_bucket_count_change_moves_vips_to_a_new_group() -> None:
    kernel = FakeKernel()
    converge(kernel, {V4: nodes(1, 2)})
    st_ = Settings(vips=SETTINGS.vips, group=GroupSettings(buckets=256))
    ops = converge(kernel, {V4: nodes(1, 2)}, st_)
    g2 = GROUP_BASE + 1
    assert [type(op).__name__ for op in ops] == ["AddGroup", "SetRoute", "DelNexthop"]
    assert ops[-1] == DelNexthop(GROUP_BASE)
    assert kernel.route_group(V4) == g2
    # timers change in place
    st2 = Settings(vips=SETTINGS.vips, group=GroupSettings(256, idle_timer=30))
    ops = converge(kernel, {V4: nodes(1, 2)}, st2)
    assert [type(op) for op in ops] == [ReplaceGroup]


def test_foreign_objects_in_the_helper_range_are_left_alone() -> None:
    kernel = FakeKernel()
    hint = member_hint(N[1])
    foreign = {"id": hint, "gateway": "2001:db8:ff:9::9", "dev": "swp9", "protocol": "11"}
    kernel.add_nexthop(foreign | {"flags": []})
    kernel.add_nexthop({"id": GROUP_BASE, "group": [{"id": hint}], "protocol": "11", "flags": []})
    kernel.rules.append(
        {"priority": 1000, "src": "all", "dst": "203.0.113.99", "table": "1000", "_v": 4}
    )
    converge(kernel, {V4: nodes(1)})
    assert kernel.nexthops[hint]["gateway"] == "2001:db8:ff:9::9"
    assert kernel.nexthops[GROUP_BASE]["protocol"] == "11"
    assert kernel.route_group(V4) == GROUP_BASE + 1
    assert kernel.group_members(GROUP_BASE + 1) == nodes(1)
    # the foreign rule (no protocol) stays even for an unconfigured VIP
    assert any(r["dst"] == "203.0.113.99" for r in kernel.rules)


def test_unconfigured_and_stray_entries_are_removed() -> None:
    kernel = FakeKernel()
    old = IPv4Network("203.0.113.77/32")
    converge(kernel, {V4: nodes(1), old: nodes(2)}, Settings(vips=frozenset({V4, old})))
    kernel.routes[(IPv4Network("198.51.100.0/24"), 0)] = {"type": "7", "dst": "198.51.100.0/24"}
    kernel.routes[(V4, 5)] = {"dst": "203.0.113.10", "metric": 5, "nhid": GROUP_BASE}
    ops = converge(kernel, {V4: nodes(1), old: nodes(2)})
    assert ops == (
        AddRule(V6, 1000, 1000, PROTO),
        DelRoute(IPv4Network("198.51.100.0/24"), 0, 1000),
        DelRoute(V4, 5, 1000),
        DelRoute(old, 0, 1000),
        DelRule(old, 1000, 1000, PROTO),
        DelNexthop(GROUP_BASE + 1),
        DelNexthop(member_hint(N[2])),
    )


def test_teardown_removes_everything_of_ours() -> None:
    kernel = FakeKernel()
    kernel.add_nexthop({"id": 7, "gateway": "2001:db8:ff:1::2", "dev": "swp1", "protocol": "11"})
    converge(kernel, frr_view("3paths").paths)
    kernel.apply(teardown_plan(kernel.read(SETTINGS), SETTINGS).ops)
    assert set(kernel.nexthops) == {7}
    assert kernel.routes == {}
    assert kernel.rules == []


# -- property: random path-set sequences ---------------------------------------------------------
VIPS = [IPv4Network(f"203.0.113.{i}/32") for i in (1, 2, 3)] + [
    IPv6Network(f"2001:db8:f::{i}/128") for i in (1, 2)
]
PATHS = st.frozensets(st.sampled_from([N[i] for i in (1, 2, 3, 4)]))
STEP = st.fixed_dictionaries(dict.fromkeys(VIPS, PATHS))


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_random_sequences_converge_with_stable_ids(
    steps: list[dict[VIP, frozenset[Member]]],
) -> None:
    st_ = Settings(vips=frozenset(VIPS))
    kernel = FakeKernel()
    prev_ids: dict[Member, int] = {}
    prev_group: dict[VIP, int] = {}
    for paths in steps:
        ops = converge(kernel, paths, st_)
        state = kernel.read(st_)
        # the kernel forwards each VIP exactly over FRR's paths, or not at all
        for vip in VIPS:
            gid = kernel.route_group(vip)
            if paths[vip]:
                assert gid is not None
                assert GROUP_BASE <= gid < ID_END
                assert kernel.group_members(gid) == paths[vip]
            else:
                assert gid is None
        assert {r["dst"] for r in kernel.rules} == {addr.format_ip(v.network_address) for v in VIPS}
        # member ids never change while the member exists
        ids = {nh.member(): nid for nid, nh in state.nexthops.items() if nid < GROUP_BASE}
        for m, nid in ids.items():
            assert MEMBER_BASE <= nid < GROUP_BASE
            if m in prev_ids:
                assert prev_ids[m] == nid
        # a VIP stays on its group unless its group's VIPs now disagree
        for vip, gid in prev_group.items():
            if not paths[vip]:
                continue
            cohort = {u for u, g in prev_group.items() if g == gid and paths[u]}
            if len({paths[u] for u in cohort}) == 1:
                assert kernel.route_group(vip) == gid
        # when a group's VIPs disagree, a largest part keeps it (fewest VIPs reshuffled)
        for gid in set(prev_group.values()):
            parts: dict[frozenset[Member], int] = {}
            for u, g in prev_group.items():
                if g == gid and paths[u]:
                    parts[paths[u]] = parts.get(paths[u], 0) + 1
            stayed = {u for u, g in prev_group.items() if g == gid and kernel.route_group(u) == gid}
            if parts:
                assert len({paths[u] for u in stayed}) == 1
                assert len(stayed) == max(parts.values())
        # every new group serves a VIP that is new or moved
        for op in ops:
            if isinstance(op, AddGroup):
                users = {v for v in VIPS if kernel.route_group(v) == op.id}
                assert users
                assert all(prev_group.get(v) != op.id for v in users)
        prev_ids = {m: i for m, i in ids.items() if m is not None}
        prev_group = {v: g for v in VIPS if (g := kernel.route_group(v)) is not None}


# -- configuration --------------------------------------------------------------------------------
def test_config_is_typed_and_strict() -> None:
    cfg = TorResilientConfig.model_validate(
        {"vips": ["203.0.113.10", "2001:db8:f::10/128"], "netns": "tor"}
    )
    assert cfg.settings() == Settings(vips=frozenset({V4, V6}))
    for bad in (
        {"vips": ["203.0.113.0/24"]},
        {"vips": ["203.0.113.10", "203.0.113.10/32"]},
        {"vips": [], "table": 254},
        {"vips": [], "protocol": 186},
        {"vips": [], "rule_priority": 32766},
        {"vips": [], "buckets": 1},
        {"vips": [], "colour": "blue"},
        {"vips": ["203.0.113.010"]},
    ):
        with pytest.raises(ValidationError):
            TorResilientConfig.model_validate(bad)


def test_values_are_validated_when_built() -> None:
    with pytest.raises(ValueError, match="interface name"):
        Member(IPv6Address("2001:db8::1"), "eth0 up")
    with pytest.raises(ValueError, match="IPv6Address"):
        Member("2001:db8::1", "eth0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="host prefix"):
        Settings(vips=frozenset({IPv4Network("203.0.113.0/24")}))
    with pytest.raises(ValueError, match="buckets"):
        GroupSettings(buckets=0)
    with pytest.raises(ValueError, match="at least one member"):
        AddGroup(GROUP_BASE, (), GroupSettings(), PROTO)


# -- sync and loop --------------------------------------------------------------------------------
@dataclass
class FakeFrr:
    docs: list[tuple[str, str]]
    reads: int = 0

    def read(self) -> tuple[object, object]:
        text4, text6 = self.docs[min(self.reads, len(self.docs) - 1)]
        self.reads += 1
        return json.loads(text4), json.loads(text6)


def test_sync_applies_then_has_nothing_to_do() -> None:
    kernel = FakeKernel()
    frr = FakeFrr([format_frr_routes({V4: nodes(1, 2, 3), V6: nodes(1, 2, 3)})])
    first = sync(SETTINGS, frr=frr, kernel=kernel)
    assert first.changed
    assert first.applied
    assert first.view.paths[V4] == nodes(1, 2, 3)
    second = sync(SETTINGS, frr=frr, kernel=kernel)
    assert not second.changed
    assert second.ops == ()
    dry = sync(SETTINGS, frr=FakeFrr([format_frr_routes({})]), kernel=kernel, dry_run=True)
    assert dry.ops
    assert not dry.applied
    assert not dry.changed
    assert kernel.route_group(V4) == GROUP_BASE


def test_sync_changes_nothing_when_frr_output_is_bad() -> None:
    kernel = FakeKernel()
    converge(kernel, {V4: nodes(1)})
    before = kernel.show()

    class Broken:
        def read(self) -> tuple[object, object]:
            return {"203.0.113.10/32": "garbage"}, {}

    with pytest.raises(ParseError):
        sync(SETTINGS, frr=Broken(), kernel=kernel)
    assert kernel.show() == before


class FakeEvents:
    """Reports a route change on every other wait."""

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, timeout: float) -> bool:
        self.waits += 1
        return self.waits % 2 == 1


def test_run_loop_syncs_reports_errors_and_stops() -> None:
    cfg = TorResilientConfig(vips=(V4, V6), interval=5.0)
    frr = FakeFrr(
        [
            format_frr_routes({V4: nodes(1, 2, 3), V6: nodes(1, 2, 3)}),
            ("not json", "{}"),
            format_frr_routes({V4: nodes(1, 2), V6: nodes(1, 2)}),
        ]
    )

    class JsonFrr(FakeFrr):
        def read(self) -> tuple[object, object]:
            text4, text6 = self.docs[min(self.reads, len(self.docs) - 1)]
            self.reads += 1
            try:
                return json.loads(text4), json.loads(text6)
            except ValueError:
                raise ParseError("not JSON") from None

    frr = JsonFrr(frr.docs)
    kernel = FakeKernel()
    stop = threading.Event()
    results: list[SyncResult | ResilientError] = []

    def on_result(r: SyncResult | ResilientError) -> None:
        results.append(r)
        if len(results) == 4:
            stop.set()

    count = run(cfg, frr=frr, kernel=kernel, stop=stop, events=FakeEvents(), on_result=on_result)
    assert count == 4
    assert isinstance(results[0], SyncResult)
    assert results[0].changed
    assert isinstance(results[1], ParseError)
    assert isinstance(results[2], SyncResult)
    assert results[2].ops == (
        ReplaceGroup(
            GROUP_BASE,
            tuple(sorted(member_hint(N[i]) for i in (1, 2))),
            cfg.settings().group,
            PROTO,
        ),
        DelNexthop(member_hint(N[3])),
    )
    assert isinstance(results[3], SyncResult)
    assert not results[3].changed


def test_run_loop_without_events_waits_on_the_stop_event() -> None:
    cfg = TorResilientConfig(vips=(V4,), interval=0.05)
    stop = threading.Event()
    results: list[SyncResult | ResilientError] = []

    def on_result(r: SyncResult | ResilientError) -> None:
        results.append(r)
        if len(results) == 3:
            stop.set()

    frr = FakeFrr([format_frr_routes({V4: nodes(1)})])
    assert run(cfg, frr=frr, kernel=FakeKernel(), stop=stop, on_result=on_result) == 3


def _fake_program(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_vtysh_adapter_reads_both_documents(tmp_path: Path) -> None:
    text4, text6 = format_frr_routes({V4: nodes(1), V6: nodes(2)})
    body = f"sys.stdout.write({text4!r} + '\\n' + {text6!r} + '\\n')"
    frr = VtyshFrr(vtysh=_fake_program(tmp_path, "vtysh", body))
    doc4, doc6 = frr.read()
    assert decode_frr_routes(doc4, doc6, [V4, V6]).paths == {V4: nodes(1), V6: nodes(2)}


def test_vtysh_adapter_errors_are_ours(tmp_path: Path) -> None:
    down = _fake_program(tmp_path, "down", "sys.exit('Exiting: failed to connect')")
    with pytest.raises(CommandError, match="failed to connect"):
        VtyshFrr(vtysh=down).read()
    with pytest.raises(CommandError):
        VtyshFrr(vtysh=str(tmp_path / "missing")).read()
    half = _fake_program(tmp_path, "half", "print('{}')")
    with pytest.raises(ParseError, match="IPv6"):
        VtyshFrr(vtysh=half).read()
    slow = _fake_program(tmp_path, "slow", "import time; time.sleep(5)")
    with pytest.raises(CommandError, match="no answer"):
        VtyshFrr(vtysh=slow, timeout=0.2).read()
