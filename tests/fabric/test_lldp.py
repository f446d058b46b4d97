"""The LLDP cabling core, on output captured from the real lldpcli (fixtures/)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from ipaddress import IPv6Address, IPv6Interface
from pathlib import Path

import pytest
from fabkit import rendered, tor
from hypothesis import given
from hypothesis import strategies as st

from sixpod.devices import TorDevice, Upstream
from sixpod.fabric.errors import ParseError
from sixpod.fabric.lldp import Seen, Status, compare, mismatches, parse_neighbors

FIXTURES = Path(__file__).parent / "fixtures"


def seen(scenario: str, tor_name: str = "r1-tor") -> tuple[Seen, ...]:
    return parse_neighbors((FIXTURES / f"lldp-{scenario}.json").read_text(), tor_name)


@pytest.fixture(scope="module")
def r1() -> TorDevice:
    return tor(rendered("small"), "r1-tor")


def table(findings: tuple[object, ...]) -> set[tuple[str, str, str | None]]:
    return {(f.status.value, f.port, f.node) for f in findings}  # type: ignore[attr-defined]


def test_parse_keeps_chassis_and_port_ids() -> None:
    got = {s.port: s for s in seen("mixed")}
    assert got["swp1"].chassis_type == "local"
    assert got["swp1"].chassis == "sixpod:lab1:edge1"
    assert got["swp1"].port_id == "eth0"
    assert got["swp1"].system_name == "edge1"
    assert got["swp5"].chassis_type == "mac"
    assert got["swp5"].system_name == "web7.example.net"
    assert seen("none") == ()


def test_all_right_is_no_mismatch(r1: TorDevice) -> None:
    ok = [s for s in seen("mixed") if s.port == "swp1"]
    app1 = dataclasses.replace(next(s for s in seen("mixed") if s.port == "swp2"), port="swp3")
    edge2 = dataclasses.replace(ok[0], port="swp2", chassis="sixpod:lab1:edge2")
    findings = compare([r1], [*ok, app1, edge2])
    assert mismatches(findings) == 0
    assert table(findings) == {
        ("ok", "swp1", "edge1"),
        ("ok", "swp2", "edge2"),
        ("ok", "swp3", "app1"),
    }


def test_node_on_the_wrong_port_and_the_one_it_displaced(r1: TorDevice) -> None:
    findings = compare([r1], seen("mixed"))
    wrong = next(f for f in findings if f.status is Status.WRONG_PORT)
    assert (wrong.port, wrong.node, wrong.expected) == ("swp2", "app1", "r1-tor swp3")
    missing = next(f for f in findings if f.status is Status.MISSING)
    assert (missing.port, missing.node) == ("swp2", "edge2")
    assert missing.detail == "its port holds another device"


def test_missing_node_with_an_empty_port(r1: TorDevice) -> None:
    findings = compare([r1], ())
    assert table(findings) == {
        ("missing", "swp1", "edge1"),
        ("missing", "swp2", "edge2"),
        ("missing", "swp3", "app1"),
    }
    assert all(f.detail == "nothing on its port" for f in findings)


def test_unknown_device_on_a_free_port_gets_a_proposal(r1: TorDevice) -> None:
    new = next(f for f in compare([r1], seen("mixed")) if f.status is Status.NEW)
    assert new.port == "swp5"
    assert new.proposal is not None
    assert new.proposal.startswith("  - {name: web7, rack: r1, role: internal, port: swp5}")
    assert "chassis mac " in new.proposal


def test_a_proposal_never_reuses_a_name(r1: TorDevice) -> None:
    web = next(s for s in seen("mixed") if s.port == "swp5")
    dup = dataclasses.replace(web, system_name="edge1", port="swp6")
    anon = dataclasses.replace(web, system_name=None, port="swp7")
    props = {f.port: f.proposal for f in compare([r1], [web, dup, anon]) if f.proposal}
    assert props["swp6"].startswith("  - {name: new-r1-tor-swp6,")
    assert props["swp7"].startswith("  - {name: new-r1-tor-swp7,")


def test_unknown_device_on_a_node_port(r1: TorDevice) -> None:
    findings = compare([r1], seen("unconfigured"))
    unknown = next(f for f in findings if f.status is Status.UNKNOWN)
    assert (unknown.port, unknown.node) == ("swp3", "app1")
    assert "mystery" in unknown.detail
    assert unknown.proposal is None


def test_unknown_device_on_a_port_the_inventory_lacks(r1: TorDevice) -> None:
    web = next(s for s in seen("mixed") if s.port == "swp5")
    f = compare([r1], [dataclasses.replace(web, port="swp48")])
    other = next(x for x in f if x.port == "swp48")
    assert other.status is Status.UNKNOWN
    assert other.detail.endswith("on a port not in the inventory")


def test_node_without_its_chassis_id_is_unconfigured_not_ok(r1: TorDevice) -> None:
    findings = compare([r1], seen("unconfigured"))
    f = next(x for x in findings if x.port == "swp2" and x.status is Status.UNCONFIGURED)
    assert f.node == "edge2"
    assert "nodes/edge2/lldpd.conf" in f.detail
    assert ("missing", "swp2", "edge2") in table(findings)  # a hostname proves nothing


def test_node_on_another_tor_is_wrong_port(r1: TorDevice) -> None:
    r2 = dataclasses.replace(r1, name="r2-tor", rack="r2", neighbors=())
    s = next(x for x in seen("mixed") if x.port == "swp1")
    findings = compare([r1, r2], [dataclasses.replace(s, tor="r2-tor", port="swp4")])
    wrong = next(f for f in findings if f.status is Status.WRONG_PORT)
    assert (wrong.tor, wrong.port, wrong.expected) == ("r2-tor", "swp4", "r1-tor swp1")


def test_a_node_of_another_pod_is_unknown(r1: TorDevice) -> None:
    s = next(x for x in seen("mixed") if x.port == "swp1")
    f = compare([r1], [dataclasses.replace(s, chassis="sixpod:ams9:edge1")])
    assert ("unknown", "swp1", "edge1") in table(f)


def test_upstream_ports_are_not_judged(r1: TorDevice) -> None:
    up = Upstream(
        "spine1", "swp8", IPv6Address("2001:db8:1fe::1"), IPv6Interface("2001:db8:1fe::2/64"), 65000
    )
    with_up = dataclasses.replace(r1, upstreams=(up,))
    web = next(s for s in seen("mixed") if s.port == "swp5")
    f = compare([with_up], [dataclasses.replace(web, port="swp8")])
    assert ("upstream", "swp8", None) in table(f)
    assert not Status.UPSTREAM.mismatch


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"lldp": {}}',
        '{"lldp": [{"interface": [{"name": "swp1"}]}]}',
        '{"lldp": [1]}',
        '{"lldp": [{"interface": [{"name": "swp1", "chassis": [{"id": [{"type": 1}]}],'
        ' "port": [{"id": [{}]}]}]}]}',
    ],
)
def test_bad_lldpcli_output_is_refused(text: str) -> None:
    with pytest.raises(ParseError, match="r1-tor"):
        parse_neighbors(text, "r1-tor")


@given(
    st.recursive(
        st.none() | st.text(max_size=5) | st.integers(),
        lambda c: (
            st.lists(c)
            | st.dictionaries(
                st.sampled_from(
                    ["lldp", "interface", "name", "chassis", "port", "id", "type", "value"]
                ),
                c,
            )
        ),
        max_leaves=20,
    )
)
def test_garbage_gives_only_our_error(doc: object) -> None:
    with contextlib.suppress(ParseError):
        parse_neighbors(json.dumps(doc), "t")
