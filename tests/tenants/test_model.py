"""The values a write asks the store for: each refuses bad input when built, for every caller."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from sixpod.inventory.lock import Lock
from sixpod.tenants.errors import InvalidInput
from sixpod.tenants.model import (
    BODY_LIMIT_MAX,
    AppPatch,
    AppSpec,
    EndpointRef,
    EndpointSpec,
    EndpointState,
    NodeSpec,
    NodeState,
    VipSpec,
    VipState,
)
from sixpod.tenants.store import Store


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"name": "Bad"}, "app name 'Bad': expected 1-63 lower-case"),
        ({"name": "xn--zz"}, "reserved in DNS labels"),
        ({"name": "a", "owner": "a\nb"}, "owner: control characters"),
        ({"name": "a", "owner": "x" * 201}, "owner: expected text of at most 200"),
        ({"name": "a", "shard_seed": -1}, "shard_seed: expected an integer 0-"),
        ({"name": "a", "shard_seed": True}, "shard_seed: expected an integer 0-"),
        ({"name": "a", "settings": []}, "settings: expected a JSON object"),
        ({"name": "a", "settings": {"k": "a\x00"}}, "settings.k: holds a NUL"),
        ({"name": "a", "settings": {"k": "x" * 17000}}, "over the 16 KiB limit"),
        ({"name": "a", "settings": {"k": float("nan")}}, "not storable as JSON text"),
        ({"name": "a", "settings": {"max_body_bytes": 0}}, f"from 1 to {BODY_LIMIT_MAX}"),
        ({"name": "a", "settings": {"https_redirect": 1}}, "expected true or false"),
        ({"name": "a", "settings": {"hsts_max_age": -1}}, "whole seconds from 0"),
    ],
)
def test_an_app_is_refused_when_built(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        AppSpec(**kw)


def test_app_settings_are_normalised_and_read_only() -> None:
    spec = AppSpec("shop", settings={"b": [1], "a": {"z": None}})
    assert list(spec.settings) == ["a", "b"]  # as the store keeps them: JSON, keys sorted
    with pytest.raises(TypeError):
        spec.settings["c"] = 1  # type: ignore[index]
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(20):
        cur["d"] = {}
        cur = cur["d"]
    with pytest.raises(InvalidInput, match="nested deeper than 16 levels"):
        AppPatch(settings=deep)
    assert AppPatch() == AppPatch(None, None, None)  # nothing given: nothing changes
    with pytest.raises(InvalidInput, match="owner: control characters"):
        AppPatch(owner="a\tb")


@pytest.mark.parametrize(
    ("address", "kw", "message"),
    [
        ("zz", {}, "endpoint address: 'zz'"),
        ("192.0.2.1", {}, "containers are IPv6-only"),
        ("::", {}, "the unspecified address"),
        ("2001:db8:200:1::", {}, "Subnet-Router anycast address"),
        ("2001:db8:200:1::5", {"port": 0}, "port: expected an integer 1-65535"),
        ("2001:db8:200:1::5", {"port": True}, "port: expected an integer 1-65535"),
        ("2001:db8:200:1::5", {"weight": 1001}, "weight: expected an integer 1-1000"),
        ("2001:db8:200:1::5", {"state": "gone"}, "state: expected one of up, draining, down"),
        ("2001:db8:200:1::5", {"node": 5}, "node: expected a node's name"),
    ],
)
def test_an_endpoint_is_refused_when_built(address: str, kw: dict[str, Any], message: str) -> None:
    kw.setdefault("port", 80)
    with pytest.raises(InvalidInput, match=message):
        EndpointSpec.parse(address, **kw)


def test_an_endpoint_takes_typed_values_and_its_state_as_text() -> None:
    e = EndpointSpec.parse("2001:DB8:200:1:0::5", 80, state="draining")  # type: ignore[arg-type]
    assert e == EndpointSpec(IPv6Address("2001:db8:200:1::5"), 80, 100, EndpointState.DRAINING)
    with pytest.raises(InvalidInput, match="expected an IPv6Address"):
        EndpointSpec(IPv4Address("192.0.2.1"), 80)  # type: ignore[arg-type]
    assert EndpointRef.parse("[2001:db8:200:1::5]:80") == EndpointRef(e.address, 80)
    with pytest.raises(InvalidInput, match="endpoint: 'junk'"):
        EndpointRef.parse("junk")
    with pytest.raises(InvalidInput, match=r"'192\.0\.2\.1:80': containers are IPv6-only"):
        EndpointRef.parse("192.0.2.1:80")
    with pytest.raises(InvalidInput, match="port: expected an integer 1-65535"):
        EndpointRef(e.address, 65536)


def test_vip_and_node_states_are_refused_when_built() -> None:
    assert VipSpec.parse("2001:DB8::1", VipState.DRAINED).address == IPv6Address("2001:db8::1")
    with pytest.raises(InvalidInput, match="VIP: 'zz'"):
        VipSpec.parse("zz", VipState.ACTIVE)
    with pytest.raises(InvalidInput, match="VIP state: expected one of active, drained"):
        VipSpec.parse("192.0.2.1", "weird")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="reason: control characters"):
        VipSpec.parse("192.0.2.1", VipState.ACTIVE, "a\x01")
    with pytest.raises(InvalidInput, match="node state: expected one of active, drained"):
        NodeSpec("edge1", "gone")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="reason: control characters"):
        NodeSpec("edge1", NodeState.DRAINED, "a\x7f")


def test_the_store_still_checks_what_only_it_knows(store: Store, small_lock: Lock) -> None:
    store.create_app(AppSpec("shop"))
    head = store.head()
    inside_edge2 = str(small_lock.nodes["edge2"].prefix[6])
    cases = [
        ([EndpointSpec.parse("2001:db8:ffff::1", 80)], "not inside any node's /64 in pod.lock"),
        ([EndpointSpec.parse(inside_edge2, 80, node="edge1")], "endpoints[0]: "),
        ([EndpointSpec.parse(inside_edge2, 80)] * 2, "appears twice"),
    ]
    for items, message in cases:
        with pytest.raises(InvalidInput) as e:
            store.set_endpoints("shop", items)
        assert message in e.value.detail
    with pytest.raises(TypeError, match="expected EndpointSpec"):  # not built: not checked
        store.set_endpoints("shop", [{"address": inside_edge2, "port": 80}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="expected AppSpec"):
        store.create_app("blog")  # type: ignore[arg-type]
    assert store.head() == head  # nothing stored
