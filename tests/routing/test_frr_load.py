"""Every generated ToR config loads into a running FRR (bgpd, bfdd), which `vtysh -C` alone
does not prove: some conflicts only show when bgpd applies the commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labkit import ROOT
from sixpod.devices import TorDevice
from sixpod.inventory.load import load_inventory
from sixpod.inventory.lock import parse_lock
from sixpod.inventory.render import device_documents
from sixpod.lab.frr import Frr
from sixpod.lab.netns import Sandbox
from sixpod.routing.render import frr_conf

pytestmark = [pytest.mark.integration, pytest.mark.lab_suite]


@pytest.mark.parametrize("example", ["small", "pod"])
def test_tor_configs_load_into_frr(example: str, tmp_path: Path) -> None:
    inv = load_inventory((ROOT / "examples" / f"{example}.yaml").read_text(), "x").inventory
    lock = parse_lock((ROOT / "examples" / f"{example}.lock").read_text(), "x")[0]
    box = Sandbox(prefix=f"sxf{os.getpid() % 10000}-", workdir=tmp_path)
    try:
        for doc in device_documents(inv, lock).values():
            if not isinstance(doc, TorDevice):
                continue
            conf = tmp_path / f"{doc.name}.conf"
            conf.write_text(frr_conf(doc))
            ns = box.netns(doc.rack, router=True)
            frr = Frr(box, ns, doc.name, conf, ("bgpd", "bfdd"))
            frr.start()  # raises if any command is refused
            running = frr.vtysh("show running-config")
            assert f"router bgp {doc.asn}" in running
            for n in doc.neighbors:
                assert f"neighbor {n.address} peer-group NODES" in running
            for u in doc.upstreams:
                assert f"neighbor {u.address} remote-as {u.asn}" in running
            frr.stop()
    finally:
        assert box.close() == []
