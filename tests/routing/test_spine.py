"""The spine's device document and FRR config: derived from the ToRs' upstreams, accepted by
`vtysh -C`, golden for the small pod, filters that accept only each rack's own /64s."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from labkit import ROOT, small_with_spine
from sixpod import devices
from sixpod.inventory.load import load_inventory
from sixpod.inventory.lock import parse_lock
from sixpod.inventory.render import RenderError, device_documents, render, spine_documents
from sixpod.routing.spine import spine_frr_conf

GOLDEN = Path(__file__).resolve().parent / "golden" / "spine1"


def rendered(name: str, text: str | None = None) -> dict[str, str]:
    inv = load_inventory(
        text or (ROOT / "examples" / f"{name}.yaml").read_text(), "pod.yaml"
    ).inventory
    lock = parse_lock((ROOT / "examples" / f"{name}.lock").read_text(), "pod.lock")[0]
    return render(inv, lock)


def tors(name: str) -> list[devices.TorDevice]:
    inv = load_inventory((ROOT / "examples" / f"{name}.yaml").read_text(), "pod.yaml").inventory
    lock = parse_lock((ROOT / "examples" / f"{name}.lock").read_text(), "pod.lock")[0]
    return [d for d in device_documents(inv, lock).values() if isinstance(d, devices.TorDevice)]


def test_small_pod_spine_matches_golden_files() -> None:
    files = rendered("small", small_with_spine())
    got = {p: t for p, t in files.items() if p.startswith("spines/")}
    assert sorted(got) == ["spines/spine1/device.json", "spines/spine1/frr.conf"]
    if os.environ.get("SIXPOD_UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        GOLDEN.mkdir(parents=True)
        for path, text in got.items():
            (GOLDEN / Path(path).name).write_text(text)
    for path, text in got.items():
        assert text == (GOLDEN / Path(path).name).read_text(), path
    doc = devices.load(got["spines/spine1/device.json"])
    assert devices.dumps(doc) == got["spines/spine1/device.json"]


def test_no_upstreams_no_spine() -> None:
    assert not [p for p in rendered("small") if p.startswith("spines/")]


@pytest.mark.parametrize("example", ["small", "pod"])
def test_spine_configs_pass_vtysh_check(example: str, tmp_path: Path) -> None:
    text = small_with_spine() if example == "small" else None
    files = rendered(example, text)
    confs = [p for p in files if p.startswith("spines/") and p.endswith("frr.conf")]
    assert confs
    for path in confs:
        conf = tmp_path / "spine.conf"
        conf.write_text(files[path])
        res = subprocess.run(
            ["vtysh", "-C", "-f", str(conf)], capture_output=True, text=True, check=False
        )
        assert res.returncode == 0, res.stdout + res.stderr


def test_pod_spine_takes_each_rack_through_its_own_filter() -> None:
    [spine] = spine_documents(tors("pod")).values()
    assert spine.name == "spine1"
    assert spine.asn == 65000
    assert [(d.tor, d.port, d.tor_port) for d in spine.downlinks] == [
        ("r1-tor", "swp1", "swp16"),
        ("r2-tor", "swp2", "swp16"),
        ("r3-tor", "swp3", "swp16"),
    ]
    racks = {t.name: t for t in tors("pod")}
    for d in spine.downlinks:
        own = {p for n in racks[d.tor].neighbors for p in n.prefixes}
        assert set(d.prefixes) == own
        assert d.address in d.local.network
    text = spine_frr_conf(spine)
    assert text.count(" neighbor TORS default-originate") == 2  # both families
    assert "bgp bestpath as-path multipath-relax" in text  # ECMP across ToR ASNs
    for d in spine.downlinks:
        assert f"  neighbor {d.address} route-map FROM-{d.tor} in" in text
    addresses = [line for line in text.splitlines() if line.startswith(" ip")]
    assert addresses
    assert all(line.startswith(" ipv6 address ") for line in addresses)  # no IPv4 on links


def test_tors_must_agree_on_a_spines_asn() -> None:
    first, *rest = tors("pod")
    up = replace(first.upstreams[0], asn=65001)
    with pytest.raises(RenderError, match="different ASNs"):
        spine_documents([replace(first, upstreams=(up,)), *rest])
