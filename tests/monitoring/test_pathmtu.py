"""The path MTU core: the hops the inventory puts between two nodes, what each probe size
should do, and the bisection that finds what the path really carries."""

from __future__ import annotations

import pytest

from labkit import ROOT
from sixpod.inventory.load import load_inventory
from sixpod.inventory.lock import parse_lock
from sixpod.inventory.render import device_documents
from sixpod.monitoring import pathmtu
from sixpod.monitoring.pathmtu import Hop, Outcome, Result


def docs(name: str) -> dict[str, object]:
    loaded = load_inventory((ROOT / "examples" / f"{name}.yaml").read_text(), name)
    lock, _ = parse_lock((ROOT / "examples" / f"{name}.lock").read_text(), name)
    return device_documents(loaded.inventory, lock)  # type: ignore[return-value]


def test_same_rack_crosses_both_uplinks_and_the_tor_ports() -> None:
    hops = pathmtu.path_hops(docs("small"), "edge1", "app1")  # type: ignore[arg-type]
    assert hops == [
        Hop("edge1 uplink", 9000),
        Hop("r1-tor swp1", 9216),
        Hop("r1-tor swp3", 9216),
        Hop("app1 uplink", 9000),
    ]
    assert pathmtu.narrowest(hops) == Hop("edge1 uplink", 9000)


def test_across_racks_the_narrowest_upstream_of_each_tor_counts() -> None:
    hops = pathmtu.path_hops(docs("pod"), "r1-edge1", "r3-edge1")  # type: ignore[arg-type]
    whats = [h.what for h in hops]
    assert whats[0] == "r1-edge1 uplink"
    assert "r1-tor swp16 (to spine1)" in whats
    assert "r3-tor swp16 (to spine1)" in whats
    assert whats[-1] == "r3-edge1 uplink"
    # r3-legacy1 hangs off r3-tor's swp8, 1500 (examples/pod.yaml): that port is the narrowest
    legacy = pathmtu.path_hops(docs("pod"), "r1-edge1", "r3-legacy1")  # type: ignore[arg-type]
    assert pathmtu.narrowest(legacy) == Hop("r3-tor swp8", 1500)


def test_unknown_nodes_are_named() -> None:
    with pytest.raises(pathmtu.PathError, match="no node named 'nope' \\(nodes: app1, edge1"):
        pathmtu.path_hops(docs("small"), "nope", "app1")  # type: ignore[arg-type]


def test_sizes_and_verdicts() -> None:
    hops = [Hop("a uplink", 9000), Hop("t swp3", 1500), Hop("b uplink", 9000)]
    assert pathmtu.sizes_to_probe(hops, (1400, 1000)) == [1280, 1400, 1500, 9000]
    results = [
        Result(1500, Outcome.PASSED),
        Result(9000, Outcome.PASSED),  # more than the inventory says: the inventory is wrong
        Result(1280, Outcome.LOST),  # should pass
    ]
    verdicts = pathmtu.judge(hops, results)
    assert [v.ok for v in verdicts] == [True, False, False]
    narrow = pathmtu.narrowest(hops)
    assert "t swp3 carries only 1500" in verdicts[1].explain(narrow)
    assert "a black hole" in verdicts[2].explain(narrow)


@pytest.mark.parametrize("real", [1280, 1400, 1500, 4000, 8999, 9000])
def test_bisection_finds_what_the_path_carries(real: int) -> None:
    asked: list[int] = []

    def probe(size: int) -> Result:
        asked.append(size)
        return Result(size, Outcome.PASSED if size <= real else Outcome.LOST)

    first = [probe(s) for s in (1280, 1500, 9000)]
    assert pathmtu.path_mtu(first, probe) == real
    assert len(asked) <= 3 + 13


def test_a_packet_too_big_is_tried_first_and_nothing_passing_is_none() -> None:
    asked: list[int] = []

    def probe(size: int) -> Result:
        asked.append(size)
        return Result(size, Outcome.PASSED if size <= 1400 else Outcome.TOO_BIG, 1400, "r")

    first = [probe(s) for s in (1280, 1500, 9000)]
    assert pathmtu.path_mtu(first, probe) == 1400
    assert asked[3] == 1400
    assert pathmtu.path_mtu([Result(1280, Outcome.LOST)], probe) is None


def test_a_packet_too_big_outside_what_it_could_mean_is_called_bogus() -> None:
    hops = [Hop("a uplink", 9000), Hop("b uplink", 9000)]
    narrow = pathmtu.narrowest(hops)
    for mtu in (1000, 9000, 20000):
        [v] = pathmtu.judge(hops, [Result(9000, Outcome.TOO_BIG, mtu, "2001:db8::1")])
        assert "bogus" in v.explain(narrow)
    [v] = pathmtu.judge(hops, [Result(9000, Outcome.TOO_BIG, 1500, "2001:db8::1")])
    assert "bogus" not in v.explain(narrow)
