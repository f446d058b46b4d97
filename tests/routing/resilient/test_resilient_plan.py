"""The planner, against the fake kernel: ids, groups, order, convergence."""

from __future__ import annotations

import json
from ipaddress import IPv4Network, IPv6Address, IPv6Network

from hypothesis import given, settings
from hypothesis import strategies as st

from resilientkit import (
    PROTO,
    SETTINGS,
    V4,
    V6,
    FakeKernel,
    N,
    converge,
    fixture,
    frr_view,
    nodes,
)
from sixpod import addr
from sixpod.routing.resilient.iproute import format_batches
from sixpod.routing.resilient.model import (
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
    GroupSettings,
    KernelState,
    Member,
    ReplaceGroup,
    SetRoute,
    Settings,
)
from sixpod.routing.resilient.plan import member_hint, plan, teardown_plan


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
