"""`sixpod lab up|status|test|down` on the small example, through the real command line."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from labkit import ROOT, SIXPOD, small_with_spine
from sixpod.lab.netns import _start_time, existing_namespaces

pytestmark = pytest.mark.integration


def sixpod(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SIXPOD, *args], capture_output=True, text=True, timeout=300, check=check)


def test_lab_lifecycle(tmp_path: Path) -> None:
    (tmp_path / "small.yaml").write_text(small_with_spine())
    shutil.copy(ROOT / "examples" / "small.lock", tmp_path / "small.lock")
    workdir = tmp_path / "lab"
    up = sixpod("lab", "up", str(tmp_path / "small.yaml"), "--workdir", str(workdir), check=False)
    try:
        assert up.returncode == 0, up.stderr
        assert "pod up in" in up.stdout
        state = json.loads((workdir / "lab.json").read_text())
        prefix = state["box"]["prefix"]
        assert existing_namespaces(prefix)
        again = sixpod(
            "lab", "up", str(tmp_path / "small.yaml"), "--workdir", str(workdir), check=False
        )
        assert again.returncode == 1
        assert "already up" in again.stderr
        status = json.loads(sixpod("lab", "status", "--workdir", str(workdir), "--json").stdout)
        spine = status["spines"]["spine1"]
        assert spine["tors"]["r1-tor"]["bgp"]
        assert spine["vips_by_tor_count"] == {"ipv4": {"1": 4}, "ipv6": {"1": 4}}
        r1 = status["racks"]["r1"]
        assert all(n["bgp"] and n["bfd"] for n in r1["nodes"].values())
        assert r1["vips_by_path_count"] == {"ipv4": {"2": 4}, "ipv6": {"2": 4}}
        journey = sixpod("lab", "test", "--workdir", str(workdir))
        assert "out of the ECMP set" in journey.stdout
        assert "back in" in journey.stdout
        assert "edge replicas within" in journey.stdout  # controller -> Redis -> every edge
        # Razor on the edges answers the app's route name; HTTP over a VIP of each family,
        # every request answered by one of the app's containers, over both edge nodes
        cname = "www.journey.example {} -> CNAME journey.route.lab1.example -> {}"
        assert cname.format("AAAA", "2001:db8:2fe::") in journey.stdout
        assert cname.format("A", "203.0.113.") in journey.stdout
        fetched = [line for line in journey.stdout.splitlines() if "answered, over" in line]
        assert len(fetched) == 4, journey.stdout  # HTTP, then HTTPS, over each family
        assert [line.split("://")[0].split()[-1] for line in fetched] == ["http"] * 2 + [
            "https"
        ] * 2
        for line in fetched:
            assert "40/40 answered, over 2 edge nodes" in line
            assert "and 6 containers" in line
        assert "controller is publishing" in up.stderr
        assert "ctl: Prometheus: 22 targets, all up" in up.stderr  # every device, every VIP
        # two drills through the command line, as the README shows them
        figures = {}
        for name in ("kill-edge", "blackhole-vip"):
            drill = sixpod("lab", "drill", name, "--workdir", str(workdir), "--json", check=False)
            result = json.loads(drill.stdout)
            assert (drill.returncode, result["ok"]) == (0, True), (name, result, drill.stderr)
            assert result["problems"] == []
            figures[name] = result["figures"]
        assert figures["kill-edge"]["other_flows_broken"] == 0
        assert figures["kill-edge"]["rejoined_s"] is not None
        for key in ("withdrawn_tor_s", "withdrawn_spine_s", "razor_stopped_s", "released_tor_s"):
            assert figures["blackhole-vip"][key] is not None, key
        # the killed node's lldpd came back with it: the cabling is whole again
        lldp = [
            "fabric", "lldp", str(tmp_path / "small.yaml"), "--json",
            "--config", str(workdir / "fabric.yaml"),
        ]  # fmt: skip
        deadline = time.monotonic() + 60
        while (seen := sixpod(*lldp, check=False)).returncode != 0:
            assert time.monotonic() < deadline, seen.stdout
            time.sleep(1)
        statuses = {f["node"]: f["status"] for f in json.loads(seen.stdout)["findings"]}
        assert statuses == {"edge1": "ok", "edge2": "ok", "app1": "ok"}, seen.stdout
    finally:
        down = sixpod("lab", "down", "--workdir", str(workdir), check=False)
    assert down.returncode == 0, down.stderr
    assert existing_namespaces(prefix) == []
    assert not (workdir / "lab.json").exists()
    gone = sixpod("lab", "down", "--workdir", str(workdir), check=False)
    assert gone.returncode == 1
    assert "no lab is up" in gone.stderr


def test_a_lab_up_killed_half_way_is_taken_down_from_its_journal(tmp_path: Path) -> None:
    # `lab up` SIGKILLed while it builds (its daemons run on in their own sessions): the
    # journal it kept says what exists, `lab up` refuses the workdir, `lab down` removes it all
    (tmp_path / "small.yaml").write_text(small_with_spine())
    shutil.copy(ROOT / "examples" / "small.lock", tmp_path / "small.lock")
    workdir = tmp_path / "lab"
    journal = workdir / "lab.box.json"
    argv = [SIXPOD, "lab", "up", str(tmp_path / "small.yaml"), "--workdir", str(workdir)]
    up = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saved: dict[str, object] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and up.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                saved = json.loads(journal.read_text())
            if len(saved.get("processes", [])) >= 3:  # type: ignore[arg-type]
                break
            time.sleep(0.05)
        assert up.poll() is None, "lab up ended before it could be killed"
        up.kill()
        up.wait(10)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
    saved = json.loads(journal.read_text())
    prefix = str(saved["prefix"])
    assert existing_namespaces(prefix)
    assert not (workdir / "lab.json").exists()
    pids = [int(p["pid"]) for p in saved["processes"]]  # type: ignore[attr-defined]
    assert any(Path(f"/proc/{pid}").exists() for pid in pids)
    again = sixpod(
        "lab", "up", str(tmp_path / "small.yaml"), "--workdir", str(workdir), check=False
    )
    assert again.returncode == 1
    assert "killed half-way" in again.stderr
    down = sixpod("lab", "down", "--workdir", str(workdir), check=False)
    assert down.returncode == 0, down.stderr
    assert existing_namespaces(prefix) == []
    assert not journal.exists()
    for p in saved["processes"]:  # type: ignore[attr-defined]
        assert _start_time(int(p["pid"])) != p["start"], p
