"""The deploy's orchestration over several ToRs, with fake devices and a fake clock (the
plans still go through the real vtysh -C and frr-reload.py --test)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from fabkit import rendered

from sixpod.fabric.config import FabricConfig
from sixpod.fabric.deploy import deploy
from sixpod.fabric.plan import effective_delta

pytestmark = pytest.mark.skipif(
    not Path("/usr/lib/frr/frr-reload.py").exists() or shutil.which("vtysh") is None,
    reason="FRR's vtysh and frr-reload.py are needed",
)
FRR = rendered("small")["tors/r1-tor/frr.conf"]
EDGE1 = "2001:db8:2ff::2"


class FakeTor:
    """A ToR whose edge1 session accepts 2 prefixes, or ``broken_accepts`` once it runs a
    config containing ``breaks``."""

    def __init__(self, name: str, breaks: str | None = None) -> None:
        self.name = name
        self.config = FRR.replace("r1-tor", name)
        self.breaks = breaks
        self.reloads: list[str] = []

    def running_config(self) -> str:
        return self.config

    def bgp_summary(self) -> Any:
        broken = self.breaks is not None and self.breaks in self.config
        peers = {EDGE1: {"state": "Established", "pfxRcd": 1 if broken else 2}}
        return {"ipv6Unicast": {"peers": peers}}

    def reload(self, config: Path) -> str:
        self.config = config.read_text()
        self.reloads.append(self.config)
        return ""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def cfg(tmp: Path) -> FabricConfig:
    return FabricConfig(log=str(tmp / "deploy.log"), deadline=5.0, settle=1.0)


def test_a_rollback_stops_the_deploy_before_the_next_tor(tmp_path: Path) -> None:
    a, b, c = FakeTor("a"), FakeTor("b", breaks="BROKEN"), FakeTor("c")
    new = {t.name: t.config.replace("node edge2", "node edge2 BROKEN") for t in (a, b, c)}
    clock = Clock()
    outs = deploy([a, b, c], new, cfg(tmp_path), what="t", clock=clock, sleep=clock.sleep)
    assert [o.result for o in outs] == ["deployed", "rolled-back", "skipped"]
    assert "accepts 1 prefixes (was 2)" in outs[1].detail[0]
    assert len(b.reloads) == 2  # the change, then the config it ran before
    assert "BROKEN" not in b.config
    assert c.reloads == []
    assert clock.now == 1.0 + 5.0 + 1.0  # a settles; b fails at its deadline, rollback settles
    log = [json.loads(line) for line in Path(cfg(tmp_path).log).read_text().splitlines()]
    assert [e["tor"] for e in log] == ["a", "b"]


def test_one_refused_plan_applies_nothing_anywhere(tmp_path: Path) -> None:
    a, b = FakeTor("a"), FakeTor("b")
    new = {"a": a.config.replace("node edge2", "node edge9"), "b": b.config.split("router bgp")[0]}
    outs = deploy([a, b], new, cfg(tmp_path), clock=Clock(), sleep=lambda s: None)
    assert [o.result for o in outs] == ["skipped", "refused"]
    assert a.reloads == b.reloads == []


def test_forced_past_the_guard_it_deploys(tmp_path: Path) -> None:
    a = FakeTor("a")
    gone = re.sub(r".*2001:db8:2ff:(1|2)::2.*\n", "", a.config)  # 2 of 3 neighbors
    clock = Clock()
    outs = deploy([a], {"a": gone}, cfg(tmp_path), force=True, clock=clock, sleep=clock.sleep)
    assert [o.result for o in outs] == ["deployed"]
    entry = json.loads(Path(cfg(tmp_path).log).read_text())
    assert entry["forced"] is True
    assert entry["violations"][0].startswith("neighbors-removed")


def test_unchanged_tors_are_not_reloaded(tmp_path: Path) -> None:
    a = FakeTor("a")
    outs = deploy([a], {"a": a.config}, cfg(tmp_path), clock=Clock(), sleep=lambda s: None)
    assert [o.result for o in outs] == ["unchanged"]
    assert a.reloads == []


def test_effective_delta_drops_noops_and_repeated_headings() -> None:
    delta = [
        "", "Lines To Delete", "===============", "no hostname vm", "",
        "Lines To Add", "============",
        "bfd", " profile NODES", "  detect-multiplier 3",
        "bfd", " profile NODES", "  receive-interval 100",
        "ip forwarding",
        "router bgp 1", "router bgp 1", " neighbor a remote-as 2",
        "router bgp 1", " neighbor a description x",
    ]  # fmt: skip
    assert effective_delta(delta) == [
        "Lines To Delete",
        "no hostname vm",
        "Lines To Add",
        "bfd",
        " profile NODES",
        "  receive-interval 100",
        "router bgp 1",
        " neighbor a remote-as 2",
        " neighbor a description x",
    ]
    assert (
        effective_delta(
            ["Lines To Add", "ip forwarding", "bfd", " profile P", "  detect-multiplier 3"]
        )
        == []
    )


class FakeFwTor(FakeTor):
    """A FakeTor with a firewall: a ruleset containing DROPALL takes every session down."""

    def __init__(self, name: str, firewall: str | None = None) -> None:
        super().__init__(name)
        self.fw = firewall
        self.loads: list[str] = []

    def bgp_summary(self) -> Any:
        doc = super().bgp_summary()
        if self.fw is not None and "DROPALL" in self.fw:
            doc["ipv6Unicast"]["peers"][EDGE1] = {"state": "Active", "pfxRcd": 0}
        return doc

    def firewall(self) -> str | None:
        return self.fw

    def check_firewall(self, path: Path) -> list[str]:
        return ["line 1: syntax error"] if "garbage" in path.read_text() else []

    def load_firewall(self, path: Path) -> str:
        self.fw = path.read_text()
        self.loads.append(self.fw)
        return ""


def test_a_firewall_nft_rejects_applies_nothing_anywhere(tmp_path: Path) -> None:
    a, b = FakeFwTor("a"), FakeFwTor("b")
    new = {t.name: t.config.replace("node edge2", "node edge9") for t in (a, b)}
    fws = {"a": "table inet sixpod_tor {}\n", "b": "garbage\n"}
    outs = deploy([a, b], new, cfg(tmp_path), firewalls=fws, clock=Clock(), sleep=lambda s: 0)
    assert [o.result for o in outs] == ["skipped", "invalid"]
    assert outs[1].detail == ["the firewall does not parse (nft -c): line 1: syntax error"]
    assert a.reloads == b.reloads == a.loads == b.loads == []


def test_a_firewall_that_breaks_a_session_is_rolled_back_and_stops_the_deploy(
    tmp_path: Path,
) -> None:
    old = "table inet sixpod_tor {\n\tchain input {\n\t}\n}\n"
    a, b, c = FakeFwTor("a", old), FakeFwTor("b", old), FakeFwTor("c")
    new = {t.name: t.config.replace("node edge2", "node edge9") for t in (a, b, c)}
    fws = {"a": "ok\n", "b": "DROPALL\n", "c": "ok\n"}
    clock = Clock()
    c_ = cfg(tmp_path)
    outs = deploy([a, b, c], new, c_, firewalls=fws, clock=clock, sleep=clock.sleep)
    assert [o.result for o in outs] == ["deployed", "rolled-back", "skipped"]
    assert outs[0].detail == ["firewall loaded"]
    assert f"with the new firewall: {EDGE1}: Active (was Established)" in outs[1].detail
    assert b.loads == ["DROPALL\n", "table inet sixpod_tor\ndelete table inet sixpod_tor\n" + old]
    assert len(b.reloads) == 1  # its frr.conf stays deployed
    assert c.reloads == c.loads == []
    log = [json.loads(line)["result"] for line in Path(c_.log).read_text().splitlines()]
    assert log == ["deployed", "rolled-back"]


def test_no_firewall_before_means_none_after_a_rollback(tmp_path: Path) -> None:
    a = FakeFwTor("a")
    fws = {"a": "DROPALL\n"}
    clock = Clock()
    outs = deploy(
        [a], {"a": a.config}, cfg(tmp_path), firewalls=fws, clock=clock, sleep=clock.sleep
    )
    assert [o.result for o in outs] == ["rolled-back"]
    assert a.fw == "table inet sixpod_tor\ndelete table inet sixpod_tor\n"


class StickyTor(FakeTor):
    """Once it ran the breaking config, its session stays short (the old config included)."""

    stuck = False

    def bgp_summary(self) -> Any:
        self.stuck = self.stuck or (self.breaks is not None and self.breaks in self.config)
        peers = {EDGE1: {"state": "Established", "pfxRcd": 1 if self.stuck else 2}}
        return {"ipv6Unicast": {"peers": peers}}


def test_a_rollback_that_does_not_heal_the_tor_is_a_failure(tmp_path: Path) -> None:
    # still short of its prefixes under the config it ran before: "failed", not "rolled-back"
    a = StickyTor("a", breaks="BROKEN")
    new = {"a": a.config.replace("node edge2", "node edge2 BROKEN")}
    clock = Clock()
    outs = deploy([a], new, cfg(tmp_path), what="t", clock=clock, sleep=clock.sleep)
    assert [o.result for o in outs] == ["failed"]
    assert "BROKEN" not in a.config  # the rollback itself happened
    assert any(d.startswith("after the rollback: ") for d in outs[0].detail), outs[0].detail
