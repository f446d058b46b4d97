"""Loading and checking pod.yaml: one test per kind of error, each pointing at LINE:COL."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from podtext import SMALL, line_of

from sixpod.inventory import source
from sixpod.inventory.errors import InventoryError
from sixpod.inventory.load import load_inventory


def errors(text: str) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        load_inventory(text, "pod.yaml")
    return [str(d) for d in exc.value.diagnostics]


def expect(text: str, needle: str, message: str, nth: int = 0) -> None:
    line = line_of(text, needle, nth)
    found = errors(text)
    assert any(e.startswith(f"pod.yaml:{line}:") and message in e for e in found), found


def test_examples_load_clean(small_text: str, full_text: str) -> None:
    small = load_inventory(small_text, "small.yaml")
    assert [n.name for n in small.inventory.nodes] == ["edge1", "edge2", "app1"]
    assert all(d.note for d in small.warnings)  # documentation space: notes, not warnings
    full = load_inventory(full_text, "pod.yaml")
    assert len(full.inventory.racks) == 3
    assert len(full.inventory.nodes) == 12
    assert full.inventory.pod.vips.ipv4 is not None
    assert full.inventory.pod.vips.ipv4.count == 512
    assert not any(d.warning for d in full.warnings), [str(d) for d in full.warnings]


def test_yaml_syntax_error() -> None:
    text = "pod:\n  name: [unclosed\n"
    assert errors(text)[0].startswith("pod.yaml:3:")
    assert "not valid YAML" in errors(text)[0]


def test_empty_file() -> None:
    assert errors("") == ["pod.yaml:1:1: file is empty"]


def test_top_level_not_a_mapping() -> None:
    assert "expected a mapping" in errors("- 1\n")[0]


def test_unknown_key(small_text: str) -> None:
    text = small_text.replace("  name: lab1\n", "  name: lab1\n  colour: blue\n")
    expect(text, "colour: blue", "unknown key 'colour' (expected one of: aggregate, asns")


def test_unknown_key_in_list_item(small_text: str) -> None:
    text = small_text.replace("port: swp3}", "port: swp3, speed: 25}")
    expect(text, "speed: 25", "unknown key 'speed'")


def test_missing_key(small_text: str) -> None:
    text = small_text.replace("  links: 2001:db8:2ff::/60\n", "")
    expect(text, "name: lab1", "missing required key 'links'", 0)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2.5", 2.5),
        ("-0.5", -0.5),
        ("1e3", 1000.0),
        ("1.5E-2", 0.015),
        (".5", 0.5),
        ("7", 7),
        ('"2.5"', "2.5"),  # quoted: text
        ("1.2.3", "1.2.3"),
        (".inf", ".inf"),
        ("2001:db8::1", "2001:db8::1"),
    ],
)
def test_yaml_numbers_are_numbers(text: str, value: object) -> None:
    loaded = source.load(f"x: {text}\n", "f.yaml").data["x"]
    assert loaded == value
    assert type(loaded) is type(value)


def test_a_fractional_ttl_is_a_number(small_text: str) -> None:
    text = small_text.replace("  floor: {", "  floor: {ttl: 2.5, ", 1)
    assert load_inventory(text, "pod.yaml").inventory.pod.floor.ttl == 2.5


def test_duplicate_yaml_key(small_text: str) -> None:
    text = small_text.replace("  name: lab1\n", "  name: lab1\n  name: lab2\n")
    expect(text, "name: lab2", "duplicate key 'name' (first at line")


def test_wrong_type(small_text: str) -> None:
    text = small_text.replace("port: swp1}", "port: swp1, mtu: big}")
    expect(text, "mtu: big", "mtu")


def test_quoted_number_is_not_a_number(small_text: str) -> None:
    text = small_text.replace("port: swp1}", 'port: swp1, mtu: "9000"}')
    expect(text, 'mtu: "9000"', "got text '9000' (write numbers without quotes)")


def test_bad_address_text(small_text: str) -> None:
    text = small_text.replace("2001:db8:200::/56", "2001::dead::beef::/56")
    expect(text, "aggregate:", "2001::dead::beef::/56")


def test_prefix_with_host_bits(small_text: str) -> None:
    text = small_text.replace("2001:db8:200::/56", "2001:db8:200::1/56")
    expect(text, "aggregate:", "host bits")


def test_ipv4_where_ipv6_needed(small_text: str) -> None:
    text = small_text.replace("2001:db8:2ff::/60", "198.51.100.0/24")
    expect(text, "links:", "IPv6 prefix is needed")


def test_bad_name(small_text: str) -> None:
    text = small_text.replace("name: edge2", "name: Edge_2")
    expect(text, "Edge_2", "not a valid name")


def test_duplicate_node_name(small_text: str) -> None:
    text = small_text.replace("name: app1", "name: edge1")
    expect(text, "port: swp3", "duplicate name 'edge1': already used by node edge1")


def test_node_named_like_tor(small_text: str) -> None:
    text = small_text.replace("name: app1", "name: r1-tor")
    expect(text, "port: swp3", "already used by the ToR of rack r1")


def test_overlapping_pools(small_text: str) -> None:
    text = small_text.replace("2001:db8:2ff::/60", "2001:db8:200:f0::/60")
    expect(text, "links:", "the link pool 2001:db8:200:f0::/60 overlaps the aggregate")


def test_overlapping_vip_pools(small_text: str) -> None:
    text = small_text.replace("pools: [203.0.113.0/28]", "pools: [203.0.113.0/28, 203.0.113.8/29]")
    expect(text, "203.0.113.8/29", "overlaps an IPv4 VIP pool 203.0.113.0/28")


@pytest.mark.parametrize(
    ("pool", "why"),
    [
        ("10.0.0.0/28", "private space (10.0.0.0/8, RFC 1918)"),
        ("100.64.0.0/28", "shared address space"),
        ("127.0.0.0/28", "loopback"),
        ("169.254.0.0/28", "link-local"),
        ("224.0.0.0/28", "multicast"),
    ],
)
def test_vip_pools_clients_cannot_reach_are_errors(small_text: str, pool: str, why: str) -> None:
    text = small_text.replace("pools: [203.0.113.0/28]", f"pools: [{pool}]")
    expect(text, pool, f"VIP pool {pool} is in {why}")


@pytest.mark.parametrize(
    ("pool", "why"),
    [
        ("fe80::/124", "link-local"),
        ("fd00:1::/124", "unique local (ULA) space"),
        ("ff02::/124", "multicast"),
    ],
)
def test_ipv6_vip_pools_clients_cannot_reach_are_errors(
    small_text: str, pool: str, why: str
) -> None:
    text = small_text.replace("pools: [2001:db8:2fe::/124]", f"pools: [{pool}]")
    expect(text, pool, f"VIP pool {pool} is in {why}")


def test_vip_pool_too_small(small_text: str) -> None:
    text = small_text.replace("/28], count: 4", "/28], count: 17")
    expect(text, "count: 17", "ipv4 VIP pools hold 16 addresses, count asks for 17")


def test_ipv6_vip_pool_excludes_subnet_router_anycast(small_text: str) -> None:
    text = small_text.replace("/124], count: 4", "/124], count: 16")
    expect(text, "count: 16", "ipv6 VIP pools hold 15 addresses")


def test_vip_count_above_512(small_text: str) -> None:
    text = small_text.replace("/28], count: 4", "/28], count: 513")
    expect(text, "count: 513", "pod.vips.ipv4.count: must be at most 512 (VIPs to allocate)")


def test_aggregate_too_small(small_text: str) -> None:
    text = small_text.replace("2001:db8:200::/56", "2001:db8:200::/63")
    expect(text, "aggregate:", "holds 1 node /64, not enough for 3 nodes (one each)")


def test_link_pool_too_small(small_text: str) -> None:
    text = small_text.replace("2001:db8:2ff::/60", "2001:db8:2ff::/63")
    expect(text, "links:", "holds 2 link /64s, not enough for 3 uplinks (one each)")


def test_pinned_prefix_outside_aggregate(small_text: str) -> None:
    text = small_text.replace("port: swp3}", 'port: swp3, prefix: "2001:db8:999::/64"}')
    expect(text, "2001:db8:999::/64", "outside the aggregate 2001:db8:200::/56")


def test_pinned_prefix_not_a_64(small_text: str) -> None:
    text = small_text.replace("port: swp3}", 'port: swp3, prefix: "2001:db8:200:10::/60"}')
    expect(text, "2001:db8:200:10::/60", "must be a /64")


def test_pinned_prefix_twice(small_text: str) -> None:
    text = small_text.replace("port: swp2}", 'port: swp2, prefix: "2001:db8:200:5::/64"}')
    text = text.replace("port: swp3}", 'port: swp3, prefix: "2001:db8:200:5::/64"}')
    expect(text, "port: swp3", "already pinned by node edge2")


def test_asn_not_private(small_text: str) -> None:
    text = small_text.replace("first: 64512", "first: 65535")
    expect(text, "asns:", "ASN 65535 is not a private ASN")


def test_asn_out_of_any_range(small_text: str) -> None:
    text = small_text.replace("last: 64520", "last: 4294967295")
    expect(text, "asns:", "not a valid AS number")


def test_asn_range_backwards(small_text: str) -> None:
    text = small_text.replace("first: 64512, last: 64520", "first: 64520, last: 64512")
    expect(text, "asns:", "runs backwards")


def test_asn_range_too_small(small_text: str) -> None:
    text = small_text.replace("last: 64520", "last: 64512")
    expect(text, "asns:", "holds 1 ASN, not enough for the nodes' one and one per rack (1 rack)")


def test_rack_asn_out_of_range(small_text: str) -> None:
    text = small_text.replace("  - name: r1\n", "  - name: r1\n    asn: 64600\n")
    expect(text, "asn: 64600", "rack ASN 64600 is outside 64512-64520")


def test_rack_asn_collides_with_node_asn(small_text: str) -> None:
    text = small_text.replace("  - name: r1\n", "  - name: r1\n    asn: 64512\n")
    expect(text, "asn: 64512", "collides with the pod's node ASN")


def test_rack_asns_collide(small_text: str) -> None:
    text = small_text.replace("  - name: r1\n", "  - name: r1\n    asn: 64513\n")
    text = text.replace(
        "nodes:\n",
        "  - name: r2\n    asn: 64513\n    tor: {name: r2-tor, ports: [swp1]}\n\nnodes:\n",
    )
    expect(text, "asn: 64513", "collides with rack r1", 1)


def test_upstream_asn_collides(full_text: str) -> None:
    text = full_text.replace("asn: 65000}", "asn: 4200000005}", 1)
    expect(text, "asn: 4200000005", "collides with the pod's range")


def test_rack_without_tor(small_text: str) -> None:
    text = small_text.replace("nodes:\n", "  - name: r2\n\nnodes:\n")
    expect(text, "name: r2", "rack r2 has no ToR switch")


def test_node_on_missing_rack(small_text: str) -> None:
    text = small_text.replace("rack: r1, role: internal", "rack: r9, role: internal")
    expect(text, "rack: r9", "node app1: no rack named 'r9'")


def test_node_on_missing_port(small_text: str) -> None:
    text = small_text.replace("port: swp3}", "port: swp9}")
    expect(text, "port: swp9", "node app1: r1-tor has no port swp9")


def test_two_nodes_on_one_port(small_text: str) -> None:
    text = small_text.replace("port: swp3}", "port: swp2}")
    expect(text, "name: app1", "port swp2 of r1-tor is already used by node edge2")


def test_node_on_upstream_port(full_text: str) -> None:
    text = full_text.replace("port: swp4, mtu: 9000}", "port: swp16, mtu: 9000}", 1)
    expect(text, "port: swp16, mtu: 9000", "already used by upstream spine1")


def test_unknown_role(small_text: str) -> None:
    text = small_text.replace("role: internal", "role: storage")
    expect(text, "role: storage", "unknown role 'storage' (edge, internal)")


def test_bad_port_range(small_text: str) -> None:
    text = small_text.replace("[swp1-swp8]", "[swp8-swp1]")
    expect(text, "swp8-swp1", "runs backwards")


def test_node_mtu_above_port(full_text: str) -> None:
    text = full_text.replace("port: swp8, mtu: 1500}", "port: swp8, mtu: 9000}")
    expect(text, "port: swp8, mtu: 9000", "MTU 9000 exceeds the MTU 1500 of r3-tor port swp8")


def test_vm_mtu_above_vswitch(full_text: str) -> None:
    text = full_text.replace(
        "port: swp3, mtu: 9000, nic: vmxnet3, vswitch_mtu: 9000",
        "port: swp3, mtu: 9000, nic: vmxnet3, vswitch_mtu: 1500",
    )
    expect(text, "vswitch_mtu: 1500", "exceeds its hypervisor vSwitch MTU 1500")


def test_vswitch_mtu_above_port(full_text: str) -> None:
    text = full_text.replace(
        "port: swp8, mtu: 1500}", "port: swp8, mtu: 1500, nic: virtio, vswitch_mtu: 9000}"
    )
    expect(text, "r3-legacy1", "vSwitch MTU 9000 exceeds the MTU 1500 of r3-tor port swp8")


def test_vmxnet3_large_frame_is_a_warning(full_text: str) -> None:
    text = full_text.replace(
        "port: swp3, mtu: 9000, nic: vmxnet3, vswitch_mtu: 9000",
        "port: swp3, mtu: 9100, nic: vmxnet3, vswitch_mtu: 9100",
    ).replace("{swp3: 9000,", "{swp3: 9100,")
    loaded = load_inventory(text, "pod.yaml")
    line = line_of(text, "mtu: 9100")
    [warning] = [str(w) for w in loaded.warnings if w.warning and "plus 18" in str(w)]
    assert warning.startswith(f"pod.yaml:{line}:")
    assert "warning: node r2-app1: MTU 9100 plus 18 bytes" in warning
    assert "9018-byte frames its vmxnet3 vNIC receives" in warning


def test_a_vm_path_below_its_tor_port_warns_which_setting_to_change(full_text: str) -> None:
    """The ToR (and every jumbo sender behind it) may put frames up to its port MTU on the
    link; a vSwitch or vNIC that carries less drops them without a Packet Too Big."""
    text = full_text.replace(
        "port: swp3, mtu: 9000, nic: vmxnet3, vswitch_mtu: 9000",
        "port: swp3, mtu: 1500, nic: vmxnet3, vswitch_mtu: 1500",
    )
    loaded = load_inventory(text, "pod.yaml")
    line = line_of(text, "vswitch_mtu: 1500")
    [warning] = [str(w) for w in loaded.warnings if w.warning]
    assert warning.startswith(f"pod.yaml:{line}:")
    assert "warning: node r2-app1: its hypervisor vSwitch carries 1500-byte packets" in warning
    assert "r2-tor port swp3 sends up to 9000" in warning
    assert "set port_mtu {swp3: 1500} on r2-tor" in warning
    assert "raise vswitch_mtu to 9000" in warning


def test_baremetal_with_vswitch_settings(small_text: str) -> None:
    text = small_text.replace("port: swp3}", "port: swp3, vswitch_mtu: 9000}")
    expect(text, "vswitch_mtu: 9000", "bare metal but sets vswitch_mtu")


def test_role_with_vips_but_no_proxy_warns(small_text: str) -> None:
    text = small_text.replace(
        "racks:\n",
        "roles:\n  edge: {announce: [node-prefix, vips], services: [announcer]}\n"
        "  internal: {}\n\nracks:\n",
    )
    loaded = load_inventory(text, "pod.yaml")
    assert any("announces the VIPs but runs no edge-proxy" in str(w) for w in loaded.warnings)


def test_role_unknown_announce(small_text: str) -> None:
    text = small_text.replace(
        "racks:\n", "roles:\n  edge: {announce: [node-prefix, everything]}\n\nracks:\n"
    )
    expect(text, "everything", "'everything' is not one of node-prefix, vips")


def test_all_errors_reported_at_once(small_text: str) -> None:
    text = small_text.replace("port: swp3}", "port: swp9}").replace(
        "rack: r1, role: edge, port: swp2", "rack: r7, role: edge, port: swp2"
    )
    found = errors(text)
    assert len(found) == 2


def test_link_pool_shorter_than_32(small_text: str) -> None:
    text = small_text.replace("2001:db8:2ff::/60", "2001:d00::/24")
    expect(text, "links:", "shorter than a /32")


def test_upstream_address_outside_its_link(full_text: str) -> None:
    text = full_text.replace('address: "2001:db8:1fe:1::1"', 'address: "2001:db8:1fe:9::1"')
    expect(text, "2001:db8:1fe:9::1", "is not another address of the link 2001:db8:1fe:1::/64")


def test_upstream_link_inside_the_pod(full_text: str) -> None:
    text = full_text.replace(
        'address: "2001:db8:1fe:1::1", local: "2001:db8:1fe:1::2/64"',
        'address: "2001:db8:1ff:ff::1", local: "2001:db8:1ff:ff::2/64"',
    )
    expect(text, "2001:db8:1ff:ff::2/64", "overlaps the pod's aggregate or link pool")


def test_port_mtu_for_unknown_port(small_text: str) -> None:
    text = small_text.replace("ports: [swp1-swp8]}", "ports: [swp1-swp8], port_mtu: {swp99: 1500}}")
    expect(text, "swp99", "port_mtu names swp99, which is not a port of r1-tor")


def test_merge_keys_are_refused() -> None:
    text = "base: &b {name: x}\npod:\n  <<: *b\n"
    assert any("merge keys" in e and e.startswith("pod.yaml:3:") for e in errors(text))


def test_keys_must_be_text() -> None:
    text = "pod:\n  [a, b]: 1\n"
    assert any("keys must be text" in e for e in errors(text))


def test_role_announcing_without_announcer(small_text: str) -> None:
    text = small_text.replace(
        "racks:\n",
        "roles:\n  edge: {announce: [node-prefix], services: [edge-proxy]}\n"
        "  internal: {}\n\nracks:\n",
    )
    expect(text, "services: [edge-proxy]", "announces routes but does not run the announcer")


UPSTREAM = (
    'upstreams: [{name: spine1, port: swp8, address: "ADDR:1", local: "ADDR:2/64", asn: 65000}]'
)


def with_upstream(small_text: str, prefix: str) -> str:
    tor = UPSTREAM.replace("ADDR", prefix)
    return small_text.replace("ports: [swp1-swp8]}", f"ports: [swp1-swp8], {tor}}}")


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        ("fe80:", "link-local space (fe80::/10, RFC 4291)"),
        ("fd00:1:2:3:", "unique local (ULA) space (fc00::/7, private, RFC 4193)"),
        ("ff02:", "multicast space (ff00::/8, RFC 4291)"),
    ],
)
def test_upstream_links_in_unreachable_space_are_errors(
    small_text: str, prefix: str, why: str
) -> None:
    text = with_upstream(small_text, prefix)
    expect(text, "spine1", f"upstream spine1: link {prefix}:/64 is in {why}")


def test_documentation_space_is_a_note_for_labs(small_text: str) -> None:
    loaded = load_inventory(with_upstream(small_text, "2001:db8:1fe:1:"), "pod.yaml")
    notes = [str(d) for d in loaded.warnings]
    line = line_of(small_text, "ipv4: {pools:")
    assert f"pod.yaml:{line}:20: note: VIP pool 203.0.113.0/28 is documentation space " in notes[0]
    assert "(203.0.113.0/24, RFC 5737): fine for a lab" in notes[0]
    assert "2001:db8:2fe::/124 is documentation space (2001:db8::/32, RFC 3849)" in notes[1]
    assert "upstream spine1: link 2001:db8:1fe:1::/64 is documentation space" in notes[2]
    assert len(notes) == 3
    assert not any(d.warning for d in loaded.warnings)


def _paths(data: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [path]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*path, i))
    return out


_SMALL = yaml.safe_load(SMALL)
_PATHS = _paths(_SMALL)[1:]
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
# Sentences of the validation library that must never reach an operator.
_LEAKS = ("Input should", "after validation", "should have", "Value error", "Field required",
          "Extra inputs", "NoneType", "valid dictionary", "instance of")  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_PATHS), _VALUES, st.booleans())
def test_garbage_anywhere_gets_only_our_own_messages(
    path: tuple[object, ...], value: object, rename: bool
) -> None:
    data = copy.deepcopy(_SMALL)
    *parent_path, last = path
    parent = data
    for part in parent_path:
        parent = parent[part]
    if rename and isinstance(parent, dict):
        parent[f"{last}x"] = parent.pop(last)  # a typo of the key
    else:
        parent[last] = value
    text = yaml.safe_dump(data)
    try:
        load_inventory(text, "pod.yaml")
    except InventoryError as e:
        messages = [d.message for d in e.diagnostics]
        for m in messages:
            assert not any(leak in m for leak in _LEAKS), m
        if rename and any(m.endswith(f"did you mean {last!r}?") for m in messages):
            assert not any(f"missing required key {last!r}" in m for m in messages), messages


def test_a_name_with_control_characters_is_never_printed_raw(small_text: str) -> None:
    """A right-to-left override in a name would reorder the operator's terminal line."""
    text = small_text.replace("name: edge1,", 'name: "edge\\u202e1",', 1)
    [msg] = errors(text)
    assert "\u202e" not in msg
    assert "node 'edge\\u202e1': name:" in msg


def test_a_bad_port_range_is_one_error_not_one_per_node(small_text: str) -> None:
    text = small_text.replace("ports: [swp1-swp8]", "ports: [swp8-swp1]", 1)
    assert text != small_text
    found = errors(text)
    assert len(found) == 1, found
    assert "runs backwards" in found[0]


def test_node_mtu_above_its_tors_upstream_is_a_warning(full_text: str) -> None:
    """Every packet to another rack leaves through an upstream: one narrower than the node
    makes each large packet a Packet Too Big (lost where ICMPv6 is filtered)."""
    text = full_text.replace("port_mtu: {swp8: 1500}", "port_mtu: {swp8: 1500, swp16: 1500}")
    loaded = load_inventory(text, "pod.yaml")
    warnings = [str(w) for w in loaded.warnings if w.warning and "another rack" in str(w)]
    # r3's four nodes: three at 9000 are warned, r3-legacy1 (1500) is not
    assert len(warnings) == 3
    assert any(
        "node r3-edge1: MTU 9000 is above the 1500 that r3-tor port swp16 (to spine1) carries" in w
        for w in warnings
    )
    assert not any("r3-legacy1" in w for w in warnings)
