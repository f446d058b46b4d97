"""Stable allocation: invariants, stability under adds and removes, and lock round trips."""

from __future__ import annotations

import difflib
from ipaddress import IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from podtext import FULL, SMALL

from sixpod.inventory.allocate import AllocationError, allocate
from sixpod.inventory.errors import InventoryError
from sixpod.inventory.load import load_inventory
from sixpod.inventory.lock import Lock, format_lock, parse_lock
from sixpod.inventory.model import Inventory, Node


def inventory(text: str) -> Inventory:
    return load_inventory(text, "pod.yaml").inventory


def with_nodes(inv: Inventory, nodes: list[Node]) -> Inventory:
    return inv.model_copy(update={"nodes": tuple(nodes)})


def assert_invariants(inv: Inventory, lock: Lock) -> None:
    pod = inv.pod
    assert set(lock.nodes) == {n.name for n in inv.nodes}
    assert set(lock.racks) == {r.name for r in inv.racks}
    prefixes = [a.prefix for a in lock.nodes.values()]
    links = [a.link for a in lock.nodes.values()]
    assert len(set(prefixes)) == len(prefixes)
    assert len(set(links)) == len(links)
    reserved = IPv6Network((pod.aggregate.network_address, 64))
    for a in lock.nodes.values():
        assert a.prefix.prefixlen == 64
        assert a.prefix.subnet_of(pod.aggregate)
        assert a.prefix != reserved
        assert a.link.subnet_of(pod.links)
        assert a.link.prefixlen == 64
        for ip in (a.tor, a.node):
            assert ip in a.link
            assert ip != a.link.network_address  # Subnet-Router anycast
        assert a.tor != a.node
    asns = [lock.node_asn, *lock.racks.values()]
    assert len(set(asns)) == len(asns)
    assert all(pod.asns.first <= x <= pod.asns.last for x in asns)
    for vips, pool in ((lock.vips4, pod.vips.ipv4), (lock.vips6, pod.vips.ipv6)):
        assert pool is not None
        assert len(vips) == pool.count
        assert len(set(vips)) == len(vips)
        for v in vips:
            [p] = [p for p in pool.pools if v in p]
            if p.version == 6:
                assert v != p.network_address


def test_full_example_allocation() -> None:
    inv = inventory(FULL)
    lock = allocate(inv, None)
    assert_invariants(inv, lock)
    assert lock.node_asn == 4200000000
    assert lock.racks == {"r1": 4200000001, "r2": 4200000002, "r3": 4200000003}
    assert str(lock.nodes["r1-edge1"].prefix) == "2001:db8:100:1::/64"
    assert str(lock.nodes["r1-edge1"].link) == "2001:db8:1ff::/64"
    assert str(lock.nodes["r1-edge1"].tor) == "2001:db8:1ff::1"
    assert str(lock.nodes["r1-edge1"].node) == "2001:db8:1ff::2"
    assert len(lock.vips4) == 512
    assert len(lock.vips6) == 512
    assert str(lock.vips4[0]) == "198.51.100.0"
    assert str(lock.vips6[0]) == "2001:db8:ffff::1"


def test_rerun_changes_nothing() -> None:
    inv = inventory(FULL)
    lock = allocate(inv, None)
    text = format_lock(lock)
    again = allocate(inv, parse_lock(text, "pod.lock")[0])
    assert again == lock
    assert format_lock(again) == text


def test_lock_round_trip() -> None:
    lock = allocate(inventory(FULL), None)
    assert parse_lock(format_lock(lock), "pod.lock")[0] == lock


def added_and_removed(before: str, after: str) -> tuple[list[str], list[str]]:
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return [d[2:] for d in diff if d.startswith("+ ")], [d[2:] for d in diff if d.startswith("- ")]


def test_adding_a_node_adds_only_its_line() -> None:
    inv = inventory(SMALL)
    lock = allocate(inv, None)
    extra = inv.nodes[0].model_copy(update={"name": "edge3", "port": "swp4"})
    bigger = with_nodes(inv, [*inv.nodes, extra])
    new = allocate(bigger, lock)
    added, removed = added_and_removed(format_lock(lock), format_lock(new))
    assert removed == []
    assert len(added) == 1
    assert added[0].startswith("  edge3: {prefix:")


def test_removing_a_node_frees_only_its_line() -> None:
    inv = inventory(FULL)
    lock = allocate(inv, None)
    smaller = with_nodes(inv, [n for n in inv.nodes if n.name != "r2-edge1"])
    new = allocate(smaller, lock)
    added, removed = added_and_removed(format_lock(lock), format_lock(new))
    assert added == []
    assert len(removed) == 1
    assert removed[0].startswith("  r2-edge1: {")


def test_freed_prefix_is_reused_lowest_first() -> None:
    inv = inventory(SMALL)
    lock = allocate(inv, None)
    freed = lock.nodes["edge1"]
    without = with_nodes(inv, list(inv.nodes[1:]))
    lock2 = allocate(without, lock)
    back = with_nodes(inv, [*inv.nodes[1:], inv.nodes[0].model_copy(update={"name": "edge9"})])
    lock3 = allocate(back, lock2)
    assert lock3.nodes["edge9"].prefix == freed.prefix
    assert lock3.nodes["edge2"] == lock.nodes["edge2"]


def test_pinned_prefix_is_used() -> None:
    text = SMALL.replace("port: swp3}", 'port: swp3, prefix: "2001:db8:200:1::/64"}')
    inv = inventory(text)
    lock = allocate(inv, None)
    assert str(lock.nodes["app1"].prefix) == "2001:db8:200:1::/64"
    assert str(lock.nodes["edge1"].prefix) == "2001:db8:200:2::/64"
    assert_invariants(inv, lock)


def test_vip_count_shrinks_and_grows_stably() -> None:
    inv = inventory(SMALL)
    lock = allocate(inv, None)
    fewer = inventory(SMALL.replace("/28], count: 4", "/28], count: 2"))
    lock2 = allocate(fewer, lock)
    assert lock2.vips4 == lock.vips4[:2]
    lock3 = allocate(inv, lock2)
    assert lock3.vips4 == lock.vips4


def test_lock_of_another_pod_is_refused() -> None:
    lock = allocate(inventory(SMALL), None)
    other = inventory(SMALL.replace("name: lab1", "name: lab2"))
    with pytest.raises(AllocationError, match="belongs to pod 'lab1', not 'lab2'"):
        allocate(other, lock)


def test_aggregate_change_never_renumbers() -> None:
    lock = allocate(inventory(SMALL), None)
    moved = inventory(SMALL.replace("2001:db8:200::/56", "2001:db8:300::/56"))
    with pytest.raises(AllocationError) as exc:
        allocate(moved, lock)
    assert len(exc.value.problems) == 3
    assert "is not a /64 of the aggregate 2001:db8:300::/56" in exc.value.problems[0].message
    assert exc.value.problems[0].path == ("nodes", "edge1", "prefix")


def test_vip_pool_change_never_drops_silently() -> None:
    lock = allocate(inventory(SMALL), None)
    moved = inventory(SMALL.replace("203.0.113.0/28", "203.0.113.16/28"))
    with pytest.raises(AllocationError, match=r"VIP 203\.0\.113\.0 is outside the ipv4 VIP pools"):
        allocate(moved, lock)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("version: 1", "version: 7", "unsupported lock version 7"),
        ("node_asn: 64512", "node_asn: x", "expected a number"),
        ('tor: "2001:db8:2ff::1"', 'tor: "2001:db8:2ff::"', "is not a host address of the link"),
        ('tor: "2001:db8:2ff::1"', 'tor: "2001:db8:2ff::2"', "the node and the ToR have the same"),
        ('prefix: "2001:db8:200:1::/64"', 'prefix: "2001:db8:200:1::1/64"', "host bits"),
        ('prefix: "2001:db8:200:1::/64"', 'prefix: "2001::dead::beef/64"', "more than one '::'"),
        (
            'prefix: "2001:db8:200:1::/64"',
            'prefiks: "2001:db8:200:1::/64"',
            "unknown key 'prefiks'",
        ),
        ('    - "203.0.113.1"', '    - "203.0.113.0"', "VIP 203.0.113.0 is listed twice"),
        ('    - "203.0.113.1"', '    - "2001:db8::1"', "is not an IPv4Address"),
        ('    - "203.0.113.1"', "    - 203", "expected quoted address text"),
    ],
)
def test_broken_lock_is_reported_with_position(old: str, new: str, message: str) -> None:
    text = format_lock(allocate(inventory(SMALL), None))
    assert old in text
    broken = text.replace(old, new, 1)
    line = [i for i, s in enumerate(broken.splitlines(), 1) if new in s][-1]
    with pytest.raises(InventoryError) as exc:
        parse_lock(broken, "pod.lock")
    found = [str(d) for d in exc.value.diagnostics]
    assert any(f.startswith(f"pod.lock:{line}:") and message in f for f in found), found


NAMES = [f"n{i}" for i in range(12)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(NAMES)), min_size=1, max_size=30))
def test_stable_under_random_adds_and_removes(ops: list[tuple[bool, str]]) -> None:
    base = inventory(
        SMALL.replace("[swp1-swp8]", "[swp1-swp16]").replace(
            "2001:db8:2ff::/60", "2001:db8:2ff::/59"
        )
    )
    template = base.nodes[0]
    present: dict[str, Node] = {}
    lock: Lock | None = None
    for add, name in ops:
        if add:
            port = f"swp{NAMES.index(name) + 1}"
            present[name] = template.model_copy(update={"name": name, "port": port})
        else:
            present.pop(name, None)
        inv = with_nodes(base, list(present.values()))
        new = allocate(inv, lock)
        assert_invariants(inv, new)
        if lock is not None:
            for n in present:
                if n in lock.nodes:
                    assert new.nodes[n] == lock.nodes[n], "a kept node was renumbered"
            assert new.racks == lock.racks
            assert new.vips4 == lock.vips4
            assert new.vips6 == lock.vips6
        assert allocate(inv, new) == new
        lock = new


def test_link_that_would_give_router_id_zero_is_skipped() -> None:
    inv = inventory(SMALL.replace("2001:db8:2ff::/60", "2001:db8::/48"))
    lock = allocate(inv, None)
    assert str(lock.nodes["edge1"].link) == "2001:db8:0:1::/64"  # 2001:db8::/64: id 0.0.0.0
    assert_invariants(inv, lock)


def test_rack_pinned_to_the_node_asn_is_refused() -> None:
    lock = allocate(inventory(SMALL.replace("first: 64512", "first: 64513")), None)
    assert lock.node_asn == 64513
    text = SMALL.replace("  - name: r1\n", "  - name: r1\n    asn: 64513\n")
    with pytest.raises(AllocationError, match="is the nodes' ASN"):
        allocate(inventory(text), lock)
