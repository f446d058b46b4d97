"""Typed device documents: the rendered files load into them and write back byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sixpod.inventory import devices

GOLDEN = Path(__file__).resolve().parent / "golden" / "small"


@pytest.mark.parametrize(
    "path",
    sorted(GOLDEN.glob("*/*/device.json")),
    ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}",
)
def test_every_rendered_document_round_trips(path: Path) -> None:
    text = path.read_text()
    dev = devices.load(text, str(path))
    assert devices.dumps(dev) == text


def test_typed_fields_are_parsed_values() -> None:
    node = devices.load((GOLDEN / "nodes" / "edge1" / "device.json").read_text())
    assert isinstance(node, devices.NodeDevice)
    assert node.runs("edge-proxy")
    assert node.uplink.address.version == 6
    assert node.vips.all
    tor = devices.load((GOLDEN / "tors" / "r1-tor" / "device.json").read_text())
    assert isinstance(tor, devices.TorDevice)
    assert {n.node for n in tor.neighbors} >= {"edge1"}


def _doc(**changes: object) -> str:
    doc = json.loads((GOLDEN / "nodes" / "edge1" / "device.json").read_text())
    for dotted, value in changes.items():
        *head, last = dotted.split("__")
        target = doc
        for k in head:
            target = target[k]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema": "sixpod.node/9"}, "schema: 'sixpod.node/9' is neither"),
        ({"uplink__address": "2001:db8::zz"}, "uplink.address: "),
        ({"uplink__address": "192.0.2.1"}, "uplink.address: '192.0.2.1' is not an IPv6"),
        ({"uplink__mtu": "9000"}, "uplink.mtu: expected int"),
        ({"uplink__mtu": True}, "uplink.mtu: expected int"),
        ({"bgp__asn": None}, "bgp.asn: missing"),
        ({"announce__vips__ipv4": ["2001:db8::1"]}, "announce.vips.0.ipv4: '2001:db8::1' is not"),
        ({"announce__prefixes": "x"}, "announce.prefixes: expected list"),
    ],
)
def test_a_bad_document_is_refused_naming_the_field(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(devices.DeviceError, match=message.replace(".", r"\.").replace("(", r"\(")):
        devices.load(_doc(**changes), "edge1/device.json")


def test_not_json_or_not_an_object() -> None:
    with pytest.raises(devices.DeviceError, match="not JSON"):
        devices.load("{", "x.json")
    with pytest.raises(devices.DeviceError, match="expected a JSON object"):
        devices.load("[]", "x.json")
